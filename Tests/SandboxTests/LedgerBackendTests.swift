import Foundation
import GRDB
import MarginEngine
import MarginStore
import MarginStorePostgres
import MarginTestSupport
import Testing

@testable import Sandbox

/// The exchange on each ledger backend — SQLite always, PostgreSQL whenever `PM_TEST_POSTGRES_URL` names a server
/// (`scripts/test` starts one; an unreachable server fails these cases) — keeps the same promises: a restart
/// restores what the API showed, a commit that fails changes nothing in memory or in storage and every item of
/// its group is answered 50000, concurrent requests share commits and lose nothing.
@Suite struct LedgerBackendTests {
    enum Backend: String, Sendable, CustomTestStringConvertible {
        case sqlite, postgres
        static let postgresURL = ProcessInfo.processInfo.environment["PM_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }
        static let available: [Backend] = postgresURL == nil ? [.sqlite] : [.sqlite, .postgres]
        var testDescription: String { rawValue }
    }

    /// A fresh ledger (a SQLite file, or a new PostgreSQL database), opened again by ``open()``.
    final class Scratch: @unchecked Sendable {  // @unchecked: used by one test at a time
        let backend: Backend
        let path: String
        let server: PostgresAddress?

        init(_ backend: Backend) throws {
            self.backend = backend
            switch backend {
            case .sqlite:
                path = FileManager.default.temporaryDirectory.appendingPathComponent("pm-backend-\(UUID().uuidString).sqlite").path
                server = nil
            case .postgres:
                let server = try PostgresAddress(parsing: try #require(Backend.postgresURL))
                path = "pm_sandbox_" + String(UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16))
                _ = try PostgresDatabases.create(path, on: server)
                self.server = server
            }
        }

        func open() throws -> any LedgerStore {
            switch backend {
            case .sqlite: return try AppDatabase(path: path)
            case .postgres:
                var address = try #require(server)
                address.database = path
                return try PostgresLedger(address)
            }
        }

        /// Runs SQL outside the exchange (installing a trigger).
        func execute(_ sql: String, on store: any LedgerStore) throws {
            switch backend {
            case .sqlite: try (store as! AppDatabase).writer.write { db in try db.execute(sql: sql) }
            case .postgres: _ = try (store as! PostgresLedger).execute(sql)
            }
        }

        func remove() {
            if let server { try? PostgresDatabases.drop(path, on: server) }
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        }
    }

    static func order(
        _ side: String, _ type: String, _ size: String, px: String? = nil, clOrdId: String = "", instId: String = "BTC-USDT-SWAP"
    ) -> String {
        #"{"instId":"\#(instId)","tdMode":"cross","side":"\#(side)","ordType":"\#(type)","sz":"\#(size)""#
            + (px.map { #","px":"\#($0)""# } ?? "") + (clOrdId.isEmpty ? "" : #","clOrdId":"\#(clOrdId)""#) + "}"
    }

    /// What an account looks like through the API: stored rows (orders, fills, bills) and the state in memory.
    static func views(_ sandbox: SandboxHarness, _ user: SandboxHarness.Credentials) async -> [String] {
        var shown: [String] = []
        for target in [
            "/api/v5/account/balance", "/api/v5/account/positions", "/api/v5/trade/orders-pending",
            "/api/v5/trade/orders-history?instType=SWAP",
            "/api/v5/trade/fills", "/api/v5/account/bills", "/api/v5/account/config",
            "/api/v5/account/leverage-info?instId=BTC-USDT-SWAP&mgnMode=cross",
        ] {
            // The balance's update times are the clock's now, which moves with every call.
            func withoutTimes(_ value: JSONValue) -> JSONValue {
                switch value {
                case .object(let members):
                    .object(JSONObject(members.members.filter { $0.key != "uTime" }.map { ($0.key, withoutTimes($0.value)) }))
                case .array(let items): .array(items.map(withoutTimes))
                default: value
                }
            }
            shown.append(target + " " + JSONWriter.serialize(withoutTimes(.array(await sandbox.call("GET", target, as: user).data))))
        }
        return shown
    }

    /// Per account, every bill summed per currency equals the stored balance, read through the store.
    static func ledgerBalances(_ store: any LedgerStore, _ uid: String) throws -> Bool {
        struct Balances: LedgerVisitor {
            var cash: [String: ExactDecimal] = [:]
            mutating func balance(uid: String, ccy: String, cashBal: String) { cash[ccy] = ExactDecimal(cashBal) }
            mutating func account(_ record: AccountRecord) {}
            mutating func position(uid: String, instId: String, pos: String, avgPx: String, cTime: Int64, uTime: Int64) {}
            mutating func openOrder(_ order: OrderRecord) {}
            mutating func interest(uid: String, ccy: String, pending: String, accrued: String) {}
            mutating func accountSetting(key: String, value: String) {}
            mutating func insuranceFund(partition: Int, ccy: String, balance: String) {}
            mutating func house(partition: Int, ccy: String, balance: String) {}
            mutating func largestOrderID(_ id: Int64) {}
        }
        var balances = Balances()
        try store.load(only: uid, into: &balances)
        var sums: [String: ExactDecimal] = [:]
        for bill in try store.bills(uid: uid, currency: nil, type: nil, limit: 1_000_000) {
            sums[bill.ccy, default: .zero] += ExactDecimal(bill.balChg) ?? .zero
        }
        return !balances.cash.isEmpty && balances.cash.allSatisfy { sums[$0.key] == $0.value }
    }

    @Test(arguments: Backend.available)
    func aRestartShowsWhatTheAPIShowed(_ backend: Backend) async throws {
        let scratch = try Scratch(backend)
        defer { scratch.remove() }
        let before: [String]
        let user: SandboxHarness.Credentials
        do {
            let sandbox = try SandboxHarness(store: try scratch.open())
            user = try await sandbox.account([("USDT", "50000"), ("BTC", "0.5")])
            for body in [
                Self.order("buy", "market", "2"), Self.order("sell", "limit", "1", px: "99000", clOrdId: "rest"),
                Self.order("buy", "limit", "1", px: "85000"), Self.order("sell", "market", "1"),
            ] {
                #expect(await sandbox.call("POST", "/api/v5/trade/order", body: body, as: user).code == "0")
            }
            let pending = await sandbox.call("GET", "/api/v5/trade/orders-pending", as: user).data
            let cancel = #"{"instId":"BTC-USDT-SWAP","ordId":"\#(pending.last?[member: "ordId"]?.scalarText ?? "")"}"#
            #expect(await sandbox.call("POST", "/api/v5/trade/cancel-order", body: cancel, as: user).code == "0")
            #expect(
                await sandbox.call(
                    "POST", "/api/v5/account/set-leverage", body: #"{"instId":"BTC-USDT-SWAP","lever":"7","mgnMode":"cross"}"#, as: user
                ).code == "0")
            before = await Self.views(sandbox, user)
            #expect(try Self.ledgerBalances(sandbox.store, user.uid))
            #expect(try await sandbox.cashImbalancesThroughStore() == [])
        }
        let restarted = try SandboxHarness(store: try scratch.open())
        let after = await Self.views(restarted, user)
        #expect(after == before, "\(zip(before, after).first { $0 != $1 }.map { "before: \($0)\nafter: \($1)" } ?? "")")
        #expect(before.contains { $0.contains("orders-history") && $0.contains("canceled") && $0.contains("filled") })
        #expect(before.contains { $0.contains("leverage-info") && $0.contains(#""lever":"7""#) })
        // Ids go on after the stored ones.
        let next = await restarted.call("POST", "/api/v5/trade/order", body: Self.order("buy", "market", "1"), as: user)
        #expect(next.code == "0")
        let fills = await restarted.call("GET", "/api/v5/trade/fills", as: user).data.compactMap { $0[member: "tradeId"]?.scalarText }
        #expect(fills.count == 3 && Set(fills).count == 3, "\(fills)")
    }

    /// An order retried with the same clOrdId (its answer lost, say) is refused with 51016, not placed twice: after it
    /// was stored, within one batch, across accounts only per account, and after a restart; orders without a clOrdId
    /// are not checked.
    @Test(arguments: Backend.available)
    func aRetriedClientOrderIDIsNotPlacedTwice(_ backend: Backend) async throws {
        let scratch = try Scratch(backend)
        defer { scratch.remove() }
        let user: SandboxHarness.Credentials
        do {
            let sandbox = try SandboxHarness(store: try scratch.open())
            user = try await sandbox.account([("USDT", "50000")])
            let other = try await sandbox.account([("USDT", "50000")])
            let order = Self.order("buy", "market", "1", clOrdId: "retry1")
            #expect(await sandbox.call("POST", "/api/v5/trade/order", body: order, as: user).code == "0")
            let again = await sandbox.call("POST", "/api/v5/trade/order", body: order, as: user)
            #expect(again.first?[member: "sCode"]?.scalarText == "51016", "\(again.envelope)")
            #expect(await sandbox.call("POST", "/api/v5/trade/order", body: order, as: other).code == "0")
            let pair =
                "[" + Self.order("buy", "limit", "1", px: "85000", clOrdId: "b1") + ","
                + Self.order("buy", "limit", "2", px: "85000", clOrdId: "b1") + "]"
            let batch = await sandbox.call("POST", "/api/v5/trade/batch-orders", body: pair, as: user)
            #expect(batch.data.map { $0[member: "sCode"]?.scalarText } == ["0", "51016"], "\(batch.envelope)")
            for _ in 0..<2 {
                #expect(await sandbox.call("POST", "/api/v5/trade/order", body: Self.order("buy", "market", "1"), as: user).code == "0")
            }
        }
        let restarted = try SandboxHarness(store: try scratch.open())
        let retried = await restarted.call(
            "POST", "/api/v5/trade/order", body: Self.order("buy", "market", "1", clOrdId: "retry1"), as: user)
        #expect(retried.first?[member: "sCode"]?.scalarText == "51016", "\(retried.envelope)")
        let closed = try restarted.store.closedOrders(uid: user.uid, instId: nil, limit: 100)
        #expect(closed.filter { $0.clOrdId == "retry1" }.count == 1)
        #expect(closed.filter { $0.clOrdId.isEmpty }.count == 2)
    }

    /// Failing statements: a trigger refuses one order of a batch (a statement fails inside the transaction) and,
    /// on PostgreSQL, a deferred constraint trigger refuses it only at COMMIT. Every item staged in that commit
    /// is answered 50000, memory and storage are as before, and the next commit works.
    @Test(arguments: Backend.available.flatMap { backend in (backend == .postgres ? [false, true] : [false]).map { (backend, $0) } })
    func aFailedCommitChangesNothing(_ backend: Backend, atCommit: Bool) async throws {
        let scratch = try Scratch(backend)
        defer { scratch.remove() }
        let store = try scratch.open()
        let sandbox = try SandboxHarness(store: store)
        let user = try await sandbox.account([("USDT", "50000")])
        #expect(await sandbox.call("POST", "/api/v5/trade/order", body: Self.order("buy", "market", "1"), as: user).code == "0")
        switch (backend, atCommit) {
        case (.sqlite, _):
            try scratch.execute(
                """
                CREATE TRIGGER refuse BEFORE INSERT ON "order" WHEN NEW.clOrdId = 'refused' BEGIN SELECT RAISE(ABORT, 'refused by the test'); END
                """, on: store)
        case (.postgres, false), (.postgres, true):
            try scratch.execute(
                """
                CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN IF NEW."clOrdId" = 'refused' THEN RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$
                """, on: store)
            try scratch.execute(
                atCommit
                    ? #"CREATE CONSTRAINT TRIGGER refuse AFTER INSERT ON "order" DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse()"#
                    : #"CREATE TRIGGER refuse BEFORE INSERT ON "order" FOR EACH ROW EXECUTE FUNCTION refuse()"#, on: store)
        }
        let before = await Self.views(sandbox, user)
        var stored = RecordingRows()
        try store.load(only: nil, into: &stored)
        let batch = [
            Self.order("buy", "market", "1"), Self.order("buy", "limit", "1", px: "85000"),
            Self.order("sell", "limit", "1", px: "99000", clOrdId: "refused"),
        ]
        let answer = await sandbox.call("POST", "/api/v5/trade/batch-orders", body: "[" + batch.joined(separator: ",") + "]", as: user)
        #expect(answer.data.map { $0[member: "sCode"]?.scalarText } == ["50000", "50000", "50000"], "\(answer.envelope)")
        let shown = await Self.views(sandbox, user)
        #expect(shown == before, "\(zip(before, shown).first { $0 != $1 }.map { "before: \($0)\nafter: \($1)" } ?? "")")
        var after = RecordingRows()
        try store.load(only: nil, into: &after)
        #expect(after.rows == stored.rows)
        #expect(try store.bills(uid: user.uid, currency: nil, type: nil, limit: 100).count == 2)
        // The next commit works, and its order takes the id the failed one gave back.
        let next = await sandbox.call("POST", "/api/v5/trade/order", body: Self.order("buy", "limit", "1", px: "85000"), as: user)
        #expect(next.code == "0", "\(next.envelope)")
        // The account's second order id (the first was placed before): 2 on SQLite, the partition's second on PostgreSQL.
        let partitions = store.partitions
        let second = Exchange.orderIDs(after: 0, partitions: partitions)[partitions.partition(of: user.uid)] + Int64(partitions.count)
        #expect(next.first?[member: "ordId"]?.scalarText == String(second))
        #expect(try Self.ledgerBalances(store, user.uid))
    }

    /// Group commit on each backend: concurrent orders from several accounts are all answered definitely, the
    /// ledger holds exactly the acknowledged ones, and every balance equals its bills.
    @Test(arguments: Backend.available)
    func concurrentOrdersShareCommits(_ backend: Backend) async throws {
        let scratch = try Scratch(backend)
        defer { scratch.remove() }
        let sandbox = try SandboxHarness(store: try scratch.open())
        var users: [SandboxHarness.Credentials] = []
        for _ in 0..<4 { users.append(try await sandbox.account([("USDT", "20000")])) }
        let accounts = users
        let answers = await withTaskGroup(of: (String?, String?).self) { group in
            for user in accounts {
                for n in 0..<10 {
                    group.addTask {
                        let body =
                            n % 3 == 0 ? Self.order("buy", "market", "1") : Self.order("buy", "limit", "30", px: "85000", clOrdId: "c\(n)")
                        let response = await sandbox.call("POST", "/api/v5/trade/order", body: body, as: user)
                        return (response.first?[member: "sCode"]?.scalarText, response.first?[member: "ordId"]?.scalarText)
                    }
                }
            }
            var all: [(String?, String?)] = []
            for await answer in group { all.append(answer) }
            return all
        }
        #expect(answers.count == 40 && answers.allSatisfy { $0.0 == "0" || $0.0 == "51008" }, "\(answers)")
        let accepted = Set(answers.filter { $0.0 == "0" }.compactMap(\.1))
        var stored = RecordingRows()
        try sandbox.store.load(only: nil, into: &stored)
        var owners: [(ordId: Int64, uid: String)] = stored.rows.filter { $0.hasPrefix("order ") }.map {
            let fields = $0.split(separator: " ")
            return (Int64(fields[1]) ?? -1, String(fields[2]))
        }
        for user in accounts {
            owners += try sandbox.store.closedOrders(uid: user.uid, instId: nil, limit: 100).map { ($0.ordId, $0.uid) }
            #expect(try Self.ledgerBalances(sandbox.store, user.uid))
        }
        #expect(Set(owners.map { String($0.ordId) }) == accepted)
        // An account's order ids are ≡ its partition modulo the partitions (nodes owning different partitions never
        // hand out the same id).
        let partitions = sandbox.store.partitions
        for (ordId, uid) in owners { #expect(Int(ordId) % partitions.count == partitions.partition(of: uid), "\(ordId) \(uid)") }
        #expect(try await sandbox.cashImbalancesThroughStore() == [])
    }
}

/// The loaded ledger as sorted lines.
struct RecordingRows: LedgerVisitor {
    private var lines: [String] = []
    var rows: [String] { lines.sorted() }
    mutating func account(_ record: AccountRecord) {
        lines.append("account \(record.uid) \(record.acctLv) \(record.acknowledged) \(record.autoLoan)")
    }
    mutating func balance(uid: String, ccy: String, cashBal: String) { lines.append("balance \(uid) \(ccy) \(cashBal)") }
    mutating func position(uid: String, instId: String, pos: String, avgPx: String, cTime: Int64, uTime: Int64) {
        lines.append("position \(uid) \(instId) \(pos) \(avgPx) \(cTime) \(uTime)")
    }
    mutating func openOrder(_ order: OrderRecord) { lines.append("order \(order.ordId) \(order.uid) \(order.state) \(order.accFillSz)") }
    mutating func interest(uid: String, ccy: String, pending: String, accrued: String) {
        lines.append("interest \(uid) \(ccy) \(pending) \(accrued)")
    }
    mutating func accountSetting(key: String, value: String) { lines.append("setting \(key) \(value)") }
    mutating func insuranceFund(partition: Int, ccy: String, balance: String) { lines.append("fund \(partition) \(ccy) \(balance)") }
    mutating func house(partition: Int, ccy: String, balance: String) { lines.append("house \(partition) \(ccy) \(balance)") }
    mutating func largestOrderID(_ id: Int64) { lines.append("largest order \(id)") }
}

extension SandboxHarness {
    /// ``cashImbalances()`` read through the store (any backend): Σ balances + fund + house − Σ deposits per
    /// currency, and the exchange's fund and house against the stored ones.
    func cashImbalancesThroughStore() async throws -> [String] {
        var rows = RecordingRows()
        try store.load(only: nil, into: &rows)
        let partitions = store.partitions
        var total: [String: ExactDecimal] = [:]
        // Per partition too: its accounts' balances + its fund and house rows = its accounts' deposits, so each
        // movement's other side is booked in the partition of the account it mirrors.
        var byPartition: [String: ExactDecimal] = [:]
        var storedFund: [String: ExactDecimal] = [:]
        var storedHouse: [String: ExactDecimal] = [:]
        var uids: [String] = []
        func add(_ amount: String, _ ccy: String, partition: Int, negated: Bool = false) {
            let value = negated ? -(ExactDecimal(amount) ?? .zero) : ExactDecimal(amount) ?? .zero
            total[ccy, default: .zero] += value
            byPartition["\(ccy) in partition \(partition)", default: .zero] += value
        }
        for line in rows.rows {
            let parts = line.split(separator: " ").map(String.init)
            switch parts[0] {
            case "account": uids.append(parts[1])
            case "balance": add(parts[3], parts[2], partition: partitions.partition(of: parts[1]))
            case "fund":
                add(parts[3], parts[2], partition: Int(parts[1]) ?? -1)
                storedFund[parts[2], default: .zero] += ExactDecimal(parts[3]) ?? .zero
            case "house":
                add(parts[3], parts[2], partition: Int(parts[1]) ?? -1)
                storedHouse[parts[2], default: .zero] += ExactDecimal(parts[3]) ?? .zero
            default: break
            }
        }
        for uid in uids {
            for bill in try store.bills(uid: uid, currency: nil, type: "1", limit: 1_000_000) {
                add(bill.balChg, bill.ccy, partition: partitions.partition(of: uid), negated: true)
            }
        }
        var problems = total.filter { !$0.value.isZero }.sorted { $0.key < $1.key }.map { "\($0.key) off by \($0.value)" }
        problems += byPartition.filter { !$0.value.isZero }.sorted { $0.key < $1.key }.map { "\($0.key) off by \($0.value)" }
        if await exchange.insuranceFundBalances().filter({ !$0.value.isZero }) != storedFund.filter({ !$0.value.isZero }) {
            problems.append("fund differs")
        }
        if await exchange.houseBalances().filter({ !$0.value.isZero }) != storedHouse.filter({ !$0.value.isZero }) {
            problems.append("house differs")
        }
        return problems
    }
}

/// Order ids by partition: each partition's next id is the first above the largest stored that is ≡ the partition
/// modulo the number of partitions; with one partition, the next integer.
@Suite struct OrderIDTests {
    @Test(arguments: [Int64(0), 1, 15, 16, 17, 1_000_003])
    func eachPartitionGoesOnAboveTheLargestStored(_ largest: Int64) {
        #expect(Exchange.orderIDs(after: largest, partitions: .single) == [largest + 1])
        let ids = Exchange.orderIDs(after: largest, partitions: .postgres)
        #expect(ids.count == 16)
        for (partition, id) in ids.enumerated() {
            #expect(id % 16 == Int64(partition) && id > largest && id <= largest + 16, "partition \(partition): \(id)")
        }
    }
}
