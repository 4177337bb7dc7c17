import MarginEngine
import Synchronization
import Testing

@testable import MarketFeed

/// Which requests the fetcher sends, in which order, and what it does when an upstream refuses or is gone.
struct MarketFetcherTests {
    /// An upstream answering from a table of targets, recording every request.
    final class RecordingUpstream: OKXTransport {
        let baseURL = "http://upstream.invalid"
        let answers: [String: Result<[JSONValue], OKXFeedError>]
        let requests = Mutex<[String]>([])

        init(_ answers: [String: Result<[JSONValue], OKXFeedError>]) { self.answers = answers }

        func get(_ path: String, _ query: [(String, String)], signed: Bool) async throws(OKXFeedError) -> [JSONValue] {
            let target = OKXEnvelope.target(path, query)
            requests.withLock { $0.append(target) }
            return try (answers[target] ?? .success([])).get()
        }
    }

    static func row(_ fields: (String, String)...) -> JSONValue { .object(fields.map { ($0.0, JSONValue.string($0.1)) }) }

    @Test func marksAreAskedLastSoNothingIsNewerThanTheSnapshotTime() async {
        let upstream = RecordingUpstream([:])
        _ = await MarketFetcher(client: upstream).fetchPrices(for: InstrumentCatalog(instruments: []))
        let requests = upstream.requests.withLock { $0 }
        #expect(requests.first == "/api/v5/market/index-tickers?quoteCcy=USD")
        #expect(requests.contains("/api/v5/market/index-tickers?instId=USDT-USD"), "a stablecoin index not listed is asked for by id")
        #expect(!requests.contains { $0.contains("mark-price") }, "an empty catalog has nothing to mark")
    }

    @Test func fundingRatesAreAskedOneByOneWhenTheUpstreamHasNoANY() async {
        let swap = Self.row(("instId", "BTC-USDT-SWAP"), ("instType", "SWAP"))
        let upstream = RecordingUpstream([
            "/api/v5/public/instruments?instType=SWAP": .success([swap]),
            "/api/v5/public/funding-rate?instId=ANY": .failure(.rejected(endpoint: "x", httpStatus: 200, code: "51001", message: "no ANY")),
            "/api/v5/public/funding-rate?instId=BTC-USDT-SWAP": .success([Self.row(("instId", "BTC-USDT-SWAP"), ("fundingRate", "0.0001"))]
            ),
        ])
        let answers = await MarketFetcher(client: upstream).fetchAll(coins: ["BTC"], fundingRates: true)
        #expect(
            upstream.requests.withLock { $0 }.suffix(2) == [
                "/api/v5/public/funding-rate?instId=ANY", "/api/v5/public/funding-rate?instId=BTC-USDT-SWAP",
            ])
        #expect(answers.fundingRates.count == 1)
        #expect(answers.fundingRatesRequested)
    }

    @Test func aRefusalIsNamedAndTheRestIsStillAsked() async {
        let upstream = RecordingUpstream([
            "/api/v5/public/instruments?instType=FUTURES": .failure(
                .rejected(endpoint: "x", httpStatus: 200, code: "51000", message: "refused"))
        ])
        let answers = await MarketFetcher(client: upstream).fetchAll(coins: nil, fundingRates: false)
        #expect(answers.problems.contains { $0.subject == "GET /api/v5/public/instruments?instType=FUTURES" && !$0.unanswered })
        #expect(upstream.requests.withLock { $0 }.contains("/api/v5/public/mark-price?instType=SWAP"))
    }

    @Test func anUpstreamThatIsGoneIsNotAskedForEverything() async {
        let gone = OKXFeedError.unreachable(endpoint: "x", reason: "connection refused")
        let upstream = RecordingUpstream([
            "/api/v5/public/instruments?instType=SPOT": .failure(gone), "/api/v5/public/instruments?instType=SWAP": .failure(gone),
        ])
        let answers = await MarketFetcher(client: upstream).fetchAll(coins: nil, fundingRates: true)
        #expect(upstream.requests.withLock { $0 }.count == 2, "two unanswered requests in a row end the run")
        #expect(answers.problems.contains { $0.detail.contains("not asked") && $0.unanswered })
        #expect(!MarketAssembler.assemble(answers, source: "gone").isUsable)
    }
}
