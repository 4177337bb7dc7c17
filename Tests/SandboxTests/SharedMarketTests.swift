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
    /// One node, opened as `pm serve` opens it (``Sandbox/open``): its ledger holding `partitions`, its exchange, its
    /// market log, follower and simulator (random, seed 7, `stepSeconds` of market time a tick), its API.
    struct Node {
        let ledger: PostgresLedger
        let log: PostgresMarketLog
        let sandbox: Sandbox
        var exchange: Exchange { sandbox.exchange }
        var follower: MarketFollower { sandbox.follower! }
        var simulator: MarketSimulator { sandbox.simulator }
        var api: SandboxAPI { sandbox.api }

        init(
            _ address: PostgresAddress, _ name: String, partitions: [Int], files: String, stepSeconds: Double = 3_600,
            leaseSeconds: Double = 10, forwarder: (any RequestForwarder)? = nil, rebalancing: Bool = false
        ) async throws {
            ledger = try PostgresLedger(address, servingAs: name, partitions: partitions, leaseSeconds: leaseSeconds)
            log = PostgresMarketLog(address)
            var configuration = SandboxConfiguration(databasePath: "")
            configuration.filesPrefix = files
            configuration.mode = .random(seed: 7)
            configuration.stepSeconds = stepSeconds
            sandbox = try Sandbox.open(
                configuration, store: ledger, catalog: Fixtures.catalog, market: Fixtures.calmMarket, parameters: Fixtures.parameters,
                marketLog: log, partitions: partitions, forwarder: forwarder, leases: ledger, rebalancing: rebalancing)
            try await sandbox.restoreMarket()
        }

        func close() {
            log.close()
            ledger.close()
        }
    }

    /// A new PostgreSQL database for the nodes of one test, and the prefix of their shared key and token files.
    struct Scratch {
        let database: LedgerBackendTests.Scratch
        let address: PostgresAddress
        let files: String

        init() throws {
            database = try LedgerBackendTests.Scratch(.postgres)
            var address = try #require(database.server)
            address.database = database.path
            self.address = address
            files = FileManager.default.temporaryDirectory.appendingPathComponent("pm-nodes-\(UUID().uuidString)").path
        }

        func remove() {
            database.remove()
            for suffix in [".key", ".admin-token"] { try? FileManager.default.removeItem(atPath: files + suffix) }
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

    /// An account as text: record, balances, positions, open orders, interest (nil: not loaded).
    static func summary(_ account: AccountState?) -> String? {
        guard let account else { return nil }
        let balances = account.balances.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        let positions = account.positions.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.pos)@\($0.value.avgPx)" }
        let orders = account.openOrders.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value.state.rawValue):\($0.value.px)" }
        let interest = account.pendingInterest.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        return "\(account.record) \(balances) \(positions) \(orders) \(interest)"
    }

    static func tickSettings(_ ledger: PostgresLedger) throws -> [String: String] {
        Dictionary(uniqueKeysWithValues: try ledger.settings(prefix: "tick.").map { ($0.key, $0.value) })
    }

    @Test(.enabled(if: LedgerBackendTests.Backend.postgresURL != nil, "PM_TEST_POSTGRES_URL names no PostgreSQL server"))
    func oneDriverPublishesAndEveryPartitionAppliesEveryTick() async throws {
        let ledger = try Scratch()
        defer { ledger.remove() }
        let (address, files) = (ledger.address, ledger.files)
        let low = try await Node(address, "node-a", partitions: Array(0..<8), files: files)
        defer { low.close() }
        let high = try await Node(address, "node-b", partitions: Array(8..<16), files: files)
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

    /// A node that stops leaves its partitions at the last tick they applied; a node that takes them later (here one
    /// restarted with every partition) brings them up to its own tick first, applying each tick missed in order, then
    /// adopts them. Two accounts with the same book, one in a partition that never stopped and one in a partition that
    /// caught up, end with the same balances, funding and market.
    @Test(.enabled(if: LedgerBackendTests.Backend.postgresURL != nil, "PM_TEST_POSTGRES_URL names no PostgreSQL server"))
    func partitionsThatAreBehindCatchUpBeforeTheyAreAdopted() async throws {
        let ledger = try Scratch()
        defer { ledger.remove() }
        let (address, files) = (ledger.address, ledger.files)
        // Four market hours a tick: six ticks cross three funding times.
        let low = try await Node(address, "node-a", partitions: Array(0..<8), files: files, stepSeconds: 14_400, leaseSeconds: 1)
        let high = try await Node(address, "node-b", partitions: Array(8..<16), files: files, stepSeconds: 14_400, leaseSeconds: 1)
        var twins: [String] = []
        for node in [low, high] {
            let created = try await node.exchange.createAccount(deposits: [("USDT", ExactDecimal(100_000))])
            let order = OrderRequest(
                instId: "BTC-USDT-SWAP", tdMode: .cross, side: .buy, ordType: .market, size: ExactDecimal(2), price: nil, tgtCcy: "",
                clOrdId: "", tag: "", reduceOnly: false)
            _ = try await node.exchange.placeOrder(uid: created.uid, order)
            twins.append(created.uid)
        }
        #expect(try low.log.tryToDrive())
        for _ in 0..<2 { _ = try await low.simulator.step() }
        try await high.follower.catchUp()
        // Node b stops at tick 2; node a goes on to tick 6.
        high.close()
        for _ in 0..<4 { _ = try await low.simulator.step() }
        #expect(try MarketFollower.ticks(of: Array(0..<16), in: low.ledger) == [6: Array(0..<8), 2: Array(8..<16)])
        low.close()
        try await Task.sleep(nanoseconds: 1_300_000_000)
        let whole = try await Node(address, "node-c", partitions: Array(0..<16), files: files, stepSeconds: 14_400)
        defer { whole.close() }
        #expect(try MarketFollower.ticks(of: Array(0..<16), in: whole.ledger) == [6: Array(0..<16)])
        #expect(await whole.follower.partitions == Array(0..<16))
        let accounts = await (whole.exchange.account(twins[0]), whole.exchange.account(twins[1]))
        let (kept, caughtUp) = (try #require(accounts.0), try #require(accounts.1))
        #expect(kept.balances == caughtUp.balances && kept.positions.mapValues(\.pos) == caughtUp.positions.mapValues(\.pos))
        let funding = try twins.map { try whole.ledger.bills(uid: $0, currency: nil, type: BillType.funding.rawValue, limit: 100).count }
        #expect(funding[0] == 3 && funding[1] == 3, "\(funding)")
    }

    /// `--partitions auto`: a lone node takes every partition; a node that joins is given half, with their accounts
    /// exactly as they were; a node that leaves hands its partitions back. Each move keeps every balance and open order.
    @Test(.enabled(if: LedgerBackendTests.Backend.postgresURL != nil, "PM_TEST_POSTGRES_URL names no PostgreSQL server"))
    func partitionsMoveWhenNodesJoinAndLeave() async throws {
        let ledger = try Scratch()
        defer { ledger.remove() }
        let (address, files) = (ledger.address, ledger.files)
        let first = try await Node(address, "node-a", partitions: [], files: files, rebalancing: true)
        defer { first.close() }
        #expect(try await first.sandbox.rebalancer?.step().taken == Array(0..<16))
        var uids: [String] = []
        for _ in 0..<12 {
            let created = try await first.exchange.createAccount(deposits: [("USDT", ExactDecimal(20_000))])
            let order = OrderRequest(
                instId: "BTC-USDT-SWAP", tdMode: .cross, side: .buy, ordType: .limit, size: ExactDecimal(1), price: ExactDecimal(80_000),
                tgtCcy: "", clOrdId: "", tag: "", reduceOnly: false)
            _ = try await first.exchange.placeOrder(uid: created.uid, order)
            uids.append(created.uid)
        }
        var before: [String: AccountState] = [:]
        for uid in uids { before[uid] = await first.exchange.account(uid) }
        let moving = uids.filter { LedgerPartitions.postgres.partition(of: $0) >= 8 }
        #expect(!moving.isEmpty && moving.count < uids.count, "12 accounts fall on both halves")

        let second = try await Node(address, "node-b", partitions: [], files: files, rebalancing: true)
        defer { second.close() }
        #expect(try await second.sandbox.rebalancer?.step().taken == [], "nothing is free yet")
        #expect(try await first.sandbox.rebalancer?.step().released == Array(8..<16))
        #expect(try await second.sandbox.rebalancer?.step().taken == Array(8..<16))
        #expect(first.exchange.heldPartitions == Array(0..<8) && second.exchange.heldPartitions == Array(8..<16))
        #expect(first.ledger.heldPartitions == Array(0..<8) && second.ledger.heldPartitions == Array(8..<16))
        for uid in uids {
            let owner = moving.contains(uid) ? second : first
            let other = moving.contains(uid) ? first : second
            #expect(Self.summary(await owner.exchange.account(uid)) == Self.summary(before[uid]), "\(uid)")
            #expect(await other.exchange.account(uid) == nil)
        }
        // Both keep writing: an order on each side, and a tick applied by both.
        let order = OrderRequest(
            instId: "BTC-USDT-SWAP", tdMode: .cross, side: .buy, ordType: .market, size: ExactDecimal(1), price: nil, tgtCcy: "",
            clOrdId: "", tag: "", reduceOnly: false)
        _ = try await second.exchange.placeOrder(uid: moving[0], order)
        _ = try await first.exchange.placeOrder(uid: try #require(uids.first { !moving.contains($0) }), order)
        #expect(try first.log.tryToDrive())
        _ = try await first.simulator.step()
        try await second.follower.catchUp()
        #expect(try MarketFollower.ticks(of: Array(0..<16), in: first.ledger) == [1: Array(0..<16)])
        var moved: [String: AccountState] = [:]
        for uid in moving { moved[uid] = await second.exchange.account(uid) }

        // The second node leaves (a graceful stop): the first takes its partitions back at once.
        let held = second.ledger.heldPartitions
        try await second.follower.release(held) { try second.ledger.leave() }
        #expect(try await first.sandbox.rebalancer?.step().taken == Array(8..<16))
        for uid in moving { #expect(Self.summary(await first.exchange.account(uid)) == Self.summary(moved[uid]), "\(uid)") }
        #expect(first.exchange.heldPartitions == Array(0..<16))
    }

    /// The interest rate's utilisation is the whole ledger's: each node adds the liabilities its partitions store with
    /// every tick (`borrowed.PARTITION.CCY`) to its own. Two nodes, one borrowing account each: both see both loans.
    @Test(.enabled(if: LedgerBackendTests.Backend.postgresURL != nil, "PM_TEST_POSTGRES_URL names no PostgreSQL server"))
    func utilisationCountsEveryPartitionsLoans() async throws {
        let ledger = try Scratch()
        defer { ledger.remove() }
        let (address, files) = (ledger.address, ledger.files)
        let low = try await Node(address, "node-a", partitions: Array(0..<8), files: files)
        defer { low.close() }
        let high = try await Node(address, "node-b", partitions: Array(8..<16), files: files)
        defer { high.close() }
        var uids: [String] = []
        for node in [low, high] {
            let created = try await node.exchange.createAccount(deposits: [("USDT", ExactDecimal(100_000))])
            _ = try await node.exchange.setAutoLoan(uid: created.uid, enabled: true)
            let borrow = OrderRequest(
                instId: "ETH-USDT", tdMode: .cross, side: .buy, ordType: .market, size: ExactDecimal(60), price: nil, tgtCcy: "base_ccy",
                clOrdId: "", tag: "", reduceOnly: false)
            _ = try await node.exchange.placeOrder(uid: created.uid, borrow)
            uids.append(created.uid)
        }
        #expect(try low.log.tryToDrive())
        for _ in 0..<2 {
            _ = try await low.simulator.shock([:], advanceSeconds: 3_600)
            try await high.follower.catchUp()
        }
        let lowTotal = try #require(await low.exchange.borrowedByCurrency["USDT"])
        let highTotal = try #require(await high.exchange.borrowedByCurrency["USDT"])
        let stored = Dictionary(uniqueKeysWithValues: try low.ledger.settings(prefix: "borrowed.").map { ($0.key, Double($0.value) ?? 0) })
        let lowOwn = try #require(stored["borrowed.\(LedgerPartitions.postgres.partition(of: uids[0])).USDT"])
        let highOwn = try #require(stored["borrowed.\(LedgerPartitions.postgres.partition(of: uids[1])).USDT"])
        #expect(lowOwn > 50_000 && highOwn > 50_000, "\(stored)")
        for total in [lowTotal, highTotal] {
            #expect(abs(total - (lowOwn + highOwn)) < 0.001 * total, "\(total) against \(lowOwn) + \(highOwn)")
        }
    }

    /// A private request for an account of a partition the node does not hold goes to the partition's owner, whose
    /// answer comes back; with no owner to send it to, the client gets 50001 (which ccxt retries).
    @Test(.enabled(if: LedgerBackendTests.Backend.postgresURL != nil, "PM_TEST_POSTGRES_URL names no PostgreSQL server"))
    func anotherNodesAccountIsForwardedToItsOwner() async throws {
        let ledger = try Scratch()
        defer { ledger.remove() }
        let (address, files) = (ledger.address, ledger.files)
        let owner = try await Node(address, "node-a", partitions: Array(0..<8), files: files)
        defer { owner.close() }
        let ownerAPI = owner.api
        let forwarding = try await Node(
            address, "node-b", partitions: Array(8..<16), files: files, forwarder: InProcessForwarder { $0 < 8 ? ownerAPI : nil })
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
        // The account's WebSocket events come from its node: a private login elsewhere is refused, not left silent.
        for (api, code) in [(forwarding.api, "50001"), (owner.api, "0")] {
            let session = WebSocketSession(api: api, endpoint: .privateChannels)
            let reply = await session.receive(WebSocketSessionTests.loginFrame(user, seconds: now / 1000))
            #expect(WebSocketSessionTests.parse(reply.first ?? "")?[member: "code"]?.scalarText == code, "\(reply)")
            #expect(await session.isLoggedIn == (code == "0"))
        }
    }
}
