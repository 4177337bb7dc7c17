import Foundation
import Logging
import MarginEngine
import MarginStore
import MarginTestSupport
import MarketFeed
import Testing

@testable import Sandbox

/// `--market follow URL` pieces that need no upstream server (tests/market/test_market.py follows a real one),
/// and the public endpoints a follower reads.
struct UpstreamMarketTests {
    /// A loopback port nothing listens on.
    static func closedPort() throws -> Int {
        let socket = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        try withUnsafeMutablePointer(to: &address) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
                guard bind(socket, raw, length) == 0, getsockname(socket, raw, &length) == 0 else { throw CredentialError("bind failed") }
            }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    @Test func anUpstreamThatDoesNotAnswerFreezesTheMarketAndSaysSo() async throws {
        let harness = try SandboxHarness()
        let url = "http://127.0.0.1:\(try Self.closedPort())"
        let simulator = try MarketSimulator(
            exchange: harness.exchange, base: Fixtures.calmMarket, mode: .follow(url: url), database: harness.database)
        let upstream = UpstreamMarket(
            client: try OKXClient(baseURL: url, timeoutSeconds: 1), simulator: simulator, catalog: Fixtures.catalog,
            logger: Logger(label: "test"), clock: { 1_000 })
        let before = await harness.exchange.market
        #expect(await upstream.poll() == false)
        #expect(await upstream.freezeReason?.contains("no answer") == true)
        let after = await harness.exchange.market
        #expect(after.valuationTime == before.valuationTime)
        #expect(after.marks == before.marks)
        let api = SandboxAPI(exchange: harness.exchange, adminToken: "admin-token", simulator: simulator, upstream: upstream)
        let response = await api.handle(harness.request("GET", "/api/v5/system/status", as: nil))
        guard case .object(let envelope) = response.envelope, case .array(let rows)? = envelope["data"], case .object(let row)? = rows.first else {
            Issue.record("no status row: \(response.envelope)")
            return
        }
        #expect(row["state"] == .string("ongoing"))
        #expect(row["begin"] == .string("1000"))
        #expect(row["maintType"] == .string("3"))
        if case .string(let title)? = row["title"] { #expect(title.contains(url)) } else { Issue.record("no title") }
        // Nothing completed yet; a second failed poll is the same freeze.
        #expect(await upstream.poll() == false)
        let completed = await api.handle(harness.request("GET", "/api/v5/system/status?state=completed", as: nil))
        #expect(JSONWriter.serialize(completed.envelope).contains("\"data\":[]"))
    }

    @Test func aFollowedMarketRefusesShocksAndOnlyFollowModeFollows() async throws {
        let harness = try SandboxHarness()
        let following = try MarketSimulator(
            exchange: harness.exchange, base: Fixtures.calmMarket, mode: .follow(url: "http://upstream"), database: harness.database)
        await #expect(throws: OKXError.self) { try await following.shock(["BTC": -0.1]) }
        #expect(try await following.step() == nil)
        await #expect(throws: OKXError.self) { try await harness.simulator.follow(Fixtures.calmMarket) }
    }

    @Test func followingTicksTheExchangeToTheUpstreamsTime() async throws {
        let harness = try SandboxHarness()
        let following = try MarketSimulator(
            exchange: harness.exchange, base: Fixtures.calmMarket, mode: .follow(url: "http://upstream"), database: harness.database)
        let later = try Fixtures.calmMarket.shocked(by: -0.1, onlyCoin: "BTC").advanced(to: UnixMillis(Fixtures.calmMarket.valuationTime.rawValue + 60_000))
        let report = try await following.follow(later)
        #expect(report.marketTime == later.valuationTime)
        let market = await harness.exchange.market
        #expect(market.valuationTime == later.valuationTime)
        #expect(market.indices["BTC-USD"] == later.indices["BTC-USD"])
    }

    @Test func withoutAnUpstreamTheStatusListsNoEvent() async throws {
        let harness = try SandboxHarness()
        let response = await harness.api.handle(harness.request("GET", "/api/v5/system/status", as: nil))
        #expect(JSONWriter.serialize(response.envelope) == #"{"code":"0","msg":"","data":[]}"#)
    }

    @Test func optionSummaryStaysFiniteAfterACrash() async throws {
        // A far out-of-the-money call marked at a subnormal price had an infinite lever (1 / mark): pm serve
        // crashed serving opt-summary to a follower after a -60 % shock.
        let harness = try SandboxHarness()
        try await harness.simulator.shock(["BTC": -0.95])
        let response = await harness.api.handle(harness.request("GET", "/api/v5/public/opt-summary?instFamily=BTC-USD", as: nil))
        #expect(response.status == 200)
        #expect(JSONWriter.serialize(response.envelope).contains("\"markVol\""))
    }
}
