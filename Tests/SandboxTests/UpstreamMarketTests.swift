import Foundation
import Logging
import MarginEngine
import MarginStore
import MarginTestSupport
import MarketFeed
import Testing

@testable import Sandbox

/// `--market-mode follow URL` pieces that need no upstream server (integration/market/test_market.py follows a real one),
/// and the public endpoints a follower reads.
struct UpstreamMarketTests {
    /// An upstream that never answers.
    struct SilentUpstream: OKXTransport {
        let baseURL = "http://upstream.invalid"
        func get(_ path: String, _ query: [(String, String)], signed: Bool) async throws(OKXFeedError) -> [JSONValue] {
            throw .unreachable(endpoint: "GET \(OKXEnvelope.target(path, query))", reason: "connection refused")
        }
    }

    /// Another sandbox as the upstream, answered in memory through its API (what `pm serve` answers over HTTP).
    struct SandboxUpstream: OKXTransport {
        let baseURL = "http://leader.invalid"
        let leader: SandboxHarness
        func get(_ path: String, _ query: [(String, String)], signed: Bool) async throws(OKXFeedError) -> [JSONValue] {
            let target = OKXEnvelope.target(path, query)
            let response = await leader.api.handle(leader.request("GET", target, as: nil))
            return try OKXEnvelope.data(
                of: Array(JSONWriter.serialize(response.envelope).utf8), status: response.status, endpoint: "GET \(target)")
        }
    }

    @Test func anUpstreamThatDoesNotAnswerFreezesTheMarketAndSaysSo() async throws {
        let harness = try SandboxHarness()
        let url = SilentUpstream().baseURL
        let simulator = try MarketSimulator(
            exchange: harness.exchange, base: Fixtures.calmMarket, mode: .follow(url: url), database: harness.database)
        let upstream = UpstreamMarket(
            client: SilentUpstream(), simulator: simulator, catalog: Fixtures.catalog, logger: Logger(label: "test"), clock: { 1_000 })
        let before = await harness.exchange.market
        #expect(await upstream.poll() == false)
        #expect(await upstream.freezeReason?.contains("connection refused") == true)
        let after = await harness.exchange.market
        #expect(after.valuationTime == before.valuationTime)
        #expect(after.marks == before.marks)
        let api = SandboxAPI(exchange: harness.exchange, adminToken: "admin-token", simulator: simulator, upstream: upstream)
        let response = await api.handle(harness.request("GET", "/api/v5/system/status", as: nil))
        guard case .object(let envelope) = response.envelope, case .array(let rows)? = envelope["data"], case .object(let row)? = rows.first
        else {
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

    @Test func aFollowerTakesTheLeadersMarksAtTheLeadersTimeAndTicksItsAccounts() async throws {
        let leader = try SandboxHarness()
        let follower = try SandboxHarness()
        let simulator = try MarketSimulator(
            exchange: follower.exchange, base: Fixtures.calmMarket, mode: .follow(url: "http://leader.invalid"), database: follower.database
        )
        let upstream = UpstreamMarket(
            client: SandboxUpstream(leader: leader), simulator: simulator, catalog: Fixtures.catalog, logger: Logger(label: "test"))
        // A follower account short a BTC perpetual: the leader's move and nine market hours reach it.
        let trader = try await follower.account([("USDT", "20000")])
        let order = #"{"instId":"BTC-USDT-SWAP","tdMode":"cross","side":"sell","ordType":"market","sz":"20"}"#
        let placed = await follower.api.handle(follower.request("POST", "/api/v5/trade/order", body: order, as: trader))
        #expect(JSONWriter.serialize(placed.envelope).contains(#""sCode":"0""#))

        try await leader.simulator.shock(["BTC": 0.05, "ETH": -0.03], advanceSeconds: 9 * 3600)
        let polled = await upstream.poll()
        let reason = await upstream.freezeReason ?? ""
        #expect(polled, "\(reason)")
        let leaderMarket = await leader.exchange.market
        let followerMarket = await follower.exchange.market
        #expect(followerMarket.valuationTime == leaderMarket.valuationTime)
        for id in ["BTC-USDT-SWAP", "ETH-USD-260327", "BTC-USD-260327-90000-C"] {
            let instrument = try #require(Fixtures.catalog.instrument(id))
            let leaderMark = try leaderMarket.market(for: instrument, path: id).markPrice
            let followerMark = try followerMarket.market(for: instrument, path: id).markPrice
            #expect(followerMark == leaderMark, "\(id)")
        }
        #expect(try followerMarket.indexUSD("BTC") == leaderMarket.indexUSD("BTC"))
        // 17:31 + 9 h crosses the 00:00 UTC funding: the follower paid or received it.
        let bills = await follower.api.handle(follower.request("GET", "/api/v5/account/bills?type=8", as: trader))
        #expect(JSONWriter.serialize(bills.envelope).contains(#""type":"8""#))
        #expect(await upstream.freezeReason == nil)
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
        let later = try Fixtures.calmMarket.shocked(by: -0.1, onlyCoin: "BTC").advanced(
            to: UnixMillis(Fixtures.calmMarket.valuationTime.rawValue + 60_000))
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
