import Foundation
import MarginDefaults
import MarginEngine
import MarginStore
import MarginStorePostgres
import MarginTestSupport
import Testing

@testable import Sandbox

/// Several nodes over one PostgreSQL ledger: each holds some partitions, one drives the market and publishes its
/// ticks, every node applies every tick to its partitions, and a request for another node's account is forwarded.
@Suite struct SharedMarketTests {
    /// One node: its ledger (holding `partitions`), its exchange, its market log, follower and simulator, its API.
    struct Node {
        let ledger: PostgresLedger
        let log: PostgresMarketLog
        let exchange: Exchange
        let follower: MarketFollower
        let simulator: MarketSimulator
        let api: SandboxAPI

        init(_ address: PostgresAddress, _ name: String, partitions: [Int], forwarder: (any RequestForwarder)? = nil) throws {
            ledger = try PostgresLedger(address, servingAs: name, partitions: partitions)
            log = PostgresMarketLog(address)
            let market = Fixtures.calmMarket
            let start = try MarketFollower.position(of: partitions, in: ledger, log: log, base: market)
            exchange = try Exchange(
                database: ledger, secrets: SecretBox(keyBytes: Array(repeating: 7, count: 32)), catalog: Fixtures.catalog,
                parameters: Fixtures.parameters, market: start.market, partitions: partitions)
            follower = MarketFollower(exchange: exchange, log: log, base: market, partitions: partitions, applied: start.tick)
            simulator = try MarketSimulator(
                exchange: exchange, base: market, mode: .random(seed: 7), database: ledger, stepSeconds: 3_600, follower: follower)
            api = SandboxAPI(exchange: exchange, adminToken: "admin-token", simulator: simulator, forwarder: forwarder)
        }

        func close() {
            log.close()
            ledger.close()
        }
    }

    /// Sends a request to another node's API in process (what `OwnerForwarder` does over HTTP).
    struct InProcessForwarder: RequestForwarder {
        let owners: @Sendable (Int) -> SandboxAPI?
        func forward(_ request: APIRequest, partition: Int) async -> APIResponse? {
            var forwarded = request
            forwarded.headers[RequestForwarding.header] = "test"
            return await owners(partition)?.handle(forwarded)
        }
    }

    static func tickSettings(_ ledger: PostgresLedger) throws -> [String: String] {
        Dictionary(uniqueKeysWithValues: try ledger.settings(prefix: "tick.").map { ($0.key, $0.value) })
    }

    @Test(.enabled(if: LedgerBackendTests.Backend.postgresURL != nil, "PM_TEST_POSTGRES_URL names no PostgreSQL server"))
    func oneDriverPublishesAndEveryPartitionAppliesEveryTick() async throws {
        let scratch = try LedgerBackendTests.Scratch(.postgres)
        defer { scratch.remove() }
        var address = try #require(scratch.server)
        address.database = scratch.path
        let low = try Node(address, "node-a", partitions: Array(0..<8))
        defer { low.close() }
        let high = try Node(address, "node-b", partitions: Array(8..<16))
        defer { high.close() }
        #expect(try low.log.tryToDrive() && low.log.drives)
        #expect(try !high.log.tryToDrive())
        // Three hourly steps published by the driver, applied at once by its own node and then by the other.
        for _ in 0..<3 { _ = try await low.simulator.step() }
        #expect(await low.follower.applied == 3)
        #expect(try await high.follower.catchUp() != nil)
        #expect(await high.follower.applied == 3)
        let lowMarket = await low.exchange.market
        let highMarket = await high.exchange.market
        #expect(
            lowMarket.valuationTime == highMarket.valuationTime
                && lowMarket.valuationTime.rawValue > Fixtures.calmMarket.valuationTime.rawValue)
        #expect(try lowMarket.indexUSD("BTC") == highMarket.indexUSD("BTC"))
        #expect(try lowMarket.indexUSD("BTC") != Fixtures.calmMarket.indexUSD("BTC"))
        #expect(try Self.tickSettings(low.ledger) == Dictionary(uniqueKeysWithValues: (0..<16).map { ("tick.\($0)", "3") }))
        // Only the driver moves the market.
        await #expect(throws: OKXError.self) { try await high.simulator.shock(["BTC": -0.1]) }
        // The driver goes (its connection ends): the other node takes over from the newest tick, and the path goes on
        // as one simulator's would: the fourth tick equals a lone simulator's fourth step from the same seed.
        low.log.close()
        #expect(throws: PostgresLedgerError.self) { _ = try low.log.append(state: [:]) }
        #expect(try high.log.tryToDrive())
        await high.simulator.restore(try #require(try high.log.latest()).state)
        _ = try await high.simulator.step()
        let lone = try SandboxHarness(market: Fixtures.calmMarket)
        let reference = try MarketSimulator(
            exchange: lone.exchange, base: Fixtures.calmMarket, mode: .random(seed: 7), database: lone.store, stepSeconds: 3_600)
        for _ in 0..<4 { _ = try await reference.step() }
        #expect(try high.log.latest()?.state == (await reference.persistentState()))
        #expect(try await low.follower.catchUp() != nil)
        #expect(await low.exchange.market.valuationTime == (await high.exchange.market.valuationTime))
        #expect(try Self.tickSettings(high.ledger).values.allSatisfy { $0 == "4" })
    }

    /// A private request for an account of a partition the node does not hold goes to the partition's owner, whose
    /// answer comes back; with no owner to send it to, the client gets 50001 (which ccxt retries).
    @Test(.enabled(if: LedgerBackendTests.Backend.postgresURL != nil, "PM_TEST_POSTGRES_URL names no PostgreSQL server"))
    func anotherNodesAccountIsForwardedToItsOwner() async throws {
        let scratch = try LedgerBackendTests.Scratch(.postgres)
        defer { scratch.remove() }
        var address = try #require(scratch.server)
        address.database = scratch.path
        let owner = try Node(address, "node-a", partitions: Array(0..<8))
        defer { owner.close() }
        let ownerAPI = owner.api
        let forwarding = try Node(
            address, "node-b", partitions: Array(8..<16), forwarder: InProcessForwarder { $0 < 8 ? ownerAPI : nil })
        defer { forwarding.close() }
        // The same node with nothing to forward to (the owner's lease lapsed, the partition is moving).
        let alone = SandboxAPI(exchange: forwarding.exchange, adminToken: "admin-token", forwarder: nil)
        let created = try await owner.exchange.createAccount(deposits: [("USDT", ExactDecimal(50_000))])
        #expect(LedgerPartitions.postgres.partition(of: created.uid) < 8)
        let harness = try SandboxHarness()
        let user = SandboxHarness.Credentials(
            uid: created.uid, apiKey: created.apiKey, secret: created.secretKey, passphrase: created.passphrase)
        let order = #"{"instId":"BTC-USDT-SWAP","tdMode":"cross","side":"buy","ordType":"limit","px":"80000","sz":"1"}"#
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let placed = await forwarding.api.handle(harness.request("POST", "/api/v5/trade/order", body: order, as: user, timestamp: now))
        #expect(placed.code == "0", "\(placed.envelope)")
        #expect(await owner.exchange.account(created.uid)?.openOrders.count == 1)
        #expect(await forwarding.exchange.account(created.uid) == nil, "the forwarding node does not load another node's account")
        let refused = await alone.handle(harness.request("GET", "/api/v5/account/balance", as: user, timestamp: now))
        #expect(refused.code == "50001", "\(refused.envelope)")
    }
}
