import Foundation
import MarginEngine
import MarginStore
import MarginStorePostgres
import PostgresNIO
import Testing

/// A ledger backend the store tests run against: SQLite in memory and on file always, PostgreSQL whenever
/// `PM_TEST_POSTGRES_URL` names a server (`scripts/test` starts one). With the variable set, an unreachable
/// server fails every PostgreSQL case: it is never skipped.
enum Backend: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqliteMemory, sqliteFile, postgres

    static let postgresURL = ProcessInfo.processInfo.environment["PM_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }
    static let available: [Backend] = postgresURL == nil ? [.sqliteMemory, .sqliteFile] : allCases

    var testDescription: String { rawValue }
}

/// A fresh, empty ledger on one backend, removed by ``remove()``; ``reopen()`` opens the same ledger anew (a
/// restart).
final class ScratchLedger: @unchecked Sendable {  // @unchecked: used by one test at a time
    let backend: Backend
    private(set) var store: any LedgerStore
    private let path: String?
    private let postgres: (server: PostgresAddress, name: String)?

    init(_ backend: Backend) throws {
        self.backend = backend
        switch backend {
        case .sqliteMemory:
            store = try AppDatabase.inMemory()
            path = nil
            postgres = nil
        case .sqliteFile:
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("pm-ledger-\(UUID().uuidString).sqlite").path
            store = try AppDatabase(path: file)
            path = file
            postgres = nil
        case .postgres:
            let url = try #require(Backend.postgresURL, "PM_TEST_POSTGRES_URL is not set")
            let server = try PostgresAddress(parsing: url)
            let name = "pm_test_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16)
            let address = try PostgresDatabases.create(name, on: server)
            store = try PostgresLedger(address)
            path = nil
            postgres = (server, name)
        }
    }

    /// The same ledger opened again (SQLite in memory has no "again": the same store).
    func reopen() throws -> any LedgerStore {
        switch backend {
        case .sqliteMemory: return store
        case .sqliteFile: return try AppDatabase(path: path ?? "")
        case .postgres:
            (store as? PostgresLedger)?.close()
            var address = try #require(postgres).server
            address.database = try #require(postgres).name
            return try PostgresLedger(address)
        }
    }

    func remove() {
        if let path { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        if let postgres {
            (store as? PostgresLedger)?.close()
            try? PostgresDatabases.drop(postgres.name, on: postgres.server)
        }
    }
}

/// Everything ``LedgerStore/load(only:into:)`` hands over, as text.
struct RecordingVisitor: LedgerVisitor {
    var rows: [String] = []
    var largestOrderID: Int64 = -1

    mutating func account(_ record: AccountRecord) {
        rows.append("account \(record.uid) \(record.acctLv) \(record.acknowledged) \(record.autoLoan) \(record.label) \(record.createdAt)")
    }
    mutating func balance(uid: String, ccy: String, cashBal: String) { rows.append("balance \(uid) \(ccy) \(cashBal)") }
    mutating func position(uid: String, instId: String, pos: String, avgPx: String, cTime: Int64, uTime: Int64) {
        rows.append("position \(uid) \(instId) \(pos) \(avgPx) \(cTime) \(uTime)")
    }
    mutating func openOrder(_ order: OrderRecord) { rows.append("order \(order.ordId) \(order.uid) \(order.state.rawValue) \(order.px)") }
    mutating func interest(uid: String, ccy: String, pending: String, accrued: String) {
        rows.append("interest \(uid) \(ccy) \(pending) \(accrued)")
    }
    mutating func accountSetting(key: String, value: String) { rows.append("setting \(key) \(value)") }
    mutating func insuranceFund(partition: Int, ccy: String, balance: String) { rows.append("fund \(partition) \(ccy) \(balance)") }
    mutating func house(partition: Int, ccy: String, balance: String) { rows.append("house \(partition) \(ccy) \(balance)") }
    mutating func largestOrderID(_ id: Int64) { largestOrderID = id }
}

/// The ledger store's contract, the same on every backend: what is written is loaded back exactly (decimal
/// text included), a failed transaction stores nothing, ids continue after the stored ones, history reads
/// filter and order alike, and a reopened ledger holds what was committed.
@Suite struct LedgerStoreTests {
    static let bigDecimal = "123456789012.123456789012345678"

    static func account(_ uid: String, level: String = "3") -> AccountRecord {
        AccountRecord(uid: uid, acctLv: level, acknowledged: level == "4", autoLoan: false, label: "l_\(uid)", createdAt: 1_700_000_000_000)
    }

    static func bill(_ uid: String, _ ccy: String, _ change: String, type: BillType = .trade, ts: Int64 = 5) -> BillRecord {
        BillRecord(
            billId: 0, uid: uid, ccy: ccy, balChg: change, bal: change, type: type, subType: "1", instId: "BTC-USDT-SWAP", ordId: "9",
            pnl: "0", fee: "-0.01", sz: "1", px: "87000.5", notes: "n", ts: ts)
    }

    static func order(_ id: Int64, _ uid: String, state: OrderState, clOrdId: String = "", instId: String = "BTC-USDT-SWAP") -> OrderRecord
    {
        OrderRecord(
            ordId: id, uid: uid, clOrdId: clOrdId, instId: instId, tdMode: .cross, side: .buy, ordType: .limit, px: "85000.1", sz: "2",
            tgtCcy: "", reduceOnly: id % 2 == 0, state: state, accFillSz: "0", avgPx: "", fee: "0", feeCcy: "USDT", category: .normal,
            tag: "", cTime: id, uTime: id + 1)
    }

    static func fill(_ ordId: Int64, _ uid: String, instId: String = "BTC-USDT-SWAP") -> FillRecord {
        FillRecord(
            tradeId: 0, ordId: ordId, uid: uid, clOrdId: "", instId: instId, side: .buy, fillPx: "87000.5", fillSz: "1", fee: "-0.0435",
            feeCcy: "USDT", pnl: "0", execType: "T", category: .normal, ts: 7)
    }

    @Test(arguments: Backend.available)
    func whatIsWrittenLoadsBackExactly(_ backend: Backend) throws {
        let ledger = try ScratchLedger(backend)
        defer { ledger.remove() }
        let ids = try ledger.store.write { writer in
            try writer.save(Self.account("u1", level: "4"))
            try writer.save(Self.account("u2"))
            try writer.store(BalanceRecord(uid: "u1", ccy: "USDT", cashBal: Self.bigDecimal))
            try writer.write(Self.encoded)
            try writer.store(
                PositionRecord(uid: "u1", instId: "BTC-USDT-SWAP", pos: "-2.5", avgPx: "87000.1", lever: "", cTime: 3, uTime: 4))
            try writer.store(PositionRecord(uid: "u1", instId: "ETH-USDT-SWAP", pos: "1", avgPx: "3000", lever: "5", cTime: 3, uTime: 4))
            try writer.store(InterestRecord(uid: "u2", ccy: "BTC", pending: "0.00000001", accrued: "0.5"))
            try writer.store(SettingRecord(key: "lever:u1:ETH-USDT-SWAP", value: "5"))
            try writer.store(SettingRecord(key: "siu:u2:BTC", value: "0.25"))
            try writer.store(SettingRecord(key: "sim.time", value: "42"))
            try writer.store(Self.order(11, "u1", state: .live))
            try writer.store(Self.order(12, "u1", state: .filled))
            try writer.store(Self.order(13, "u2", state: .partiallyFilled))
            try writer.insert(fills: [Self.fill(12, "u1")])
            try writer.insert(bills: [Self.bill("u1", "USDT", "1", type: .deposit), Self.bill("u2", "BTC", "2", type: .deposit)])
            try writer.store(InsuranceFundRecord(ccy: "USDT", balance: "0.01"))
            try writer.store(HouseRecord(ccy: "USDT", balance: "-1.5"))
        }
        #expect(ids == LedgerIDs(firstBillID: 1, firstTradeID: 1))
        let expected = [
            "account u1 4 true false l_u1 1700000000000", "account u2 3 false false l_u2 1700000000000",
            "balance u1 USDT \(Self.bigDecimal)", "balance u2 BTC -0.000000000000000001", "balance u2 ETH 3",
            "fund 0 USDT 0.01", "house 0 USDT -1.5", "interest u2 BTC 0.00000001 0.5",
            "order 11 u1 live 85000.1", "order 13 u2 partially_filled 85000.1",
            "position u1 BTC-USDT-SWAP -2.5 87000.1 3 4", "position u1 ETH-USDT-SWAP 1 3000 3 4",
            "setting lever:u1:ETH-USDT-SWAP 5", "setting siu:u2:BTC 0.25",
        ]
        for store in [ledger.store, try ledger.reopen()] {
            var all = RecordingVisitor()
            try store.load(only: nil, into: &all)
            #expect(all.rows.sorted() == expected)
            #expect(all.largestOrderID == 13)
            var one = RecordingVisitor()
            try store.load(only: "u2", into: &one)
            #expect(one.rows.sorted() == expected.filter { $0.contains(" u2 ") || $0.contains(":u2:") })
            #expect(try store.settings(prefix: "sim.") == [SettingRecord(key: "sim.time", value: "42")])
            #expect(try store.fills(uid: "u1", instId: nil, ordId: nil, limit: 10).map(\.tradeId) == [1])
            // The encoded bill, first written, is bill 1, every field as appended.
            var funding = Self.encoded.bills[0]
            funding.billId = 1
            #expect(try store.bills(uid: "u2", currency: "ETH", type: nil, limit: 10) == [funding])
        }
    }

    /// Two balances (one a new row, written by insert) and a funding bill, encoded as a funding run encodes them.
    static let encoded = {
        var rows = EncodedLedgerRows(reservingBills: 1, balances: 2)
        rows.appendBalance(uid: "u2", ccy: "BTC", cashBal: "-0.000000000000000001")
        rows.appendBalance(uid: "u2", ccy: "ETH", cashBal: "3")
        rows.appendBill(
            uid: "u2", ccy: "ETH", balChg: "-0.25", bal: "3", type: .funding, subType: "173", instId: "ETH-USDT-SWAP", ordId: "",
            pnl: "0", fee: "0", sz: "", px: "3012.5", notes: "funding rate 0.0001", ts: 17)
        return rows
    }()

    /// A write whose statement fails (a duplicate key, here after other rows of the transaction) stores nothing
    /// of its transaction, and the next write works.
    @Test(arguments: Backend.available)
    func aFailedWriteStoresNothing(_ backend: Backend) throws {
        let ledger = try ScratchLedger(backend)
        defer { ledger.remove() }
        let key = APIKeyRecord(
            apiKey: "k1", uid: "u1", secretCipher: Data([0, 1, 2, 255]), passphraseHash: "h", permissions: "read,trade", label: "",
            createdAt: 1)
        try ledger.store.write { writer in
            try writer.save(Self.account("u1"))
            try writer.insert(key)
        }
        #expect(try ledger.store.apiKey("k1") == key)
        #expect(try ledger.store.apiKey("nobody") == nil)
        for _ in 0..<2 {
            #expect(throws: (any Error).self) {
                try ledger.store.write { writer in
                    try writer.save(Self.account("u2"))
                    try writer.store(BalanceRecord(uid: "u1", ccy: "USDT", cashBal: "10"))
                    try writer.insert(bills: [Self.bill("u1", "USDT", "10")])
                    try writer.insert(key)  // the same key again
                }
            }
            var loaded = RecordingVisitor()
            try ledger.store.load(only: nil, into: &loaded)
            #expect(loaded.rows == ["account u1 3 false false l_u1 1700000000000"])
            #expect(try ledger.store.bills(uid: "u1", currency: nil, type: nil, limit: 10).isEmpty)
        }
        // A body that throws stores nothing either.
        struct Refused: Error {}
        #expect(throws: Refused.self) {
            try ledger.store.write { writer in
                try writer.store(BalanceRecord(uid: "u1", ccy: "USDT", cashBal: "10"))
                throw Refused()
            }
        }
        let ids = try ledger.store.write { writer in try writer.insert(bills: [Self.bill("u1", "USDT", "10")]) }
        #expect(ids.firstBillID == 1)
        #expect(try ledger.store.bills(uid: "u1", currency: nil, type: nil, limit: 10).map(\.billId) == [1])
    }

    /// Bills and fills are numbered consecutively after the largest stored id, across writes and across more rows
    /// than one PostgreSQL statement carries; the answer names the first.
    @Test(arguments: Backend.available)
    func idsContinueAfterTheStoredOnes(_ backend: Backend) throws {
        let ledger = try ScratchLedger(backend)
        defer { ledger.remove() }
        try ledger.store.write { writer in try writer.save(Self.account("u1")) }
        let many = (0..<25_003).map { Self.bill("u1", "USDT", String($0), ts: Int64($0)) }
        let first = try ledger.store.write { writer in
            try writer.insert(bills: many)
            try writer.insert(fills: [Self.fill(1, "u1"), Self.fill(1, "u1")])
        }
        #expect(first == LedgerIDs(firstBillID: 1, firstTradeID: 1))
        let second = try ledger.store.write { writer in
            try writer.insert(fills: [Self.fill(2, "u1")])
            try writer.insert(bills: [Self.bill("u1", "BTC", "1")])
        }
        #expect(second == LedgerIDs(firstBillID: 25_004, firstTradeID: 3))
        let newest = try ledger.store.bills(uid: "u1", currency: "USDT", type: nil, limit: 3)
        #expect(newest.map(\.billId) == [25_003, 25_002, 25_001])
        // Numbered in the order given: bill n carries change n − 1.
        #expect(newest.map(\.balChg) == ["25002", "25001", "25000"])
        #expect(newest.map(\.ts) == [25_002, 25_001, 25_000])
        #expect(try ledger.store.bills(uid: "u1", currency: "BTC", type: nil, limit: 10).map(\.billId) == [25_004])
        #expect(try ledger.store.fills(uid: "u1", instId: nil, ordId: 1, limit: 10).map(\.tradeId) == [2, 1])
        #expect(try ledger.store.write { _ in } == LedgerIDs(firstBillID: 0, firstTradeID: 0))
    }

    /// An order stored twice keeps its last version, in one write (placed and filled in one group commit) and
    /// across writes; a deleted position is gone; history reads filter and order newest first.
    @Test(arguments: Backend.available)
    func upsertsDeletesAndHistory(_ backend: Backend) throws {
        let ledger = try ScratchLedger(backend)
        defer { ledger.remove() }
        try ledger.store.write { writer in
            try writer.save(Self.account("u1"))
            try writer.save(Self.account("u_2"))
            try writer.store(Self.order(1, "u1", state: .live, clOrdId: "a"))
            try writer.store(Self.order(1, "u1", state: .filled, clOrdId: "a"))
            try writer.store(Self.order(2, "u1", state: .live, clOrdId: "b"))
            try writer.store(Self.order(3, "u1", state: .canceled, clOrdId: "b", instId: "ETH-USDT-SWAP"))
            try writer.store(PositionRecord(uid: "u1", instId: "BTC-USDT-SWAP", pos: "1", avgPx: "1", lever: "", cTime: 1, uTime: 1))
            try writer.store(SettingRecord(key: "lever:u_2:BTC-USDT-SWAP", value: "3"))
            try writer.store(SettingRecord(key: "lever:u12:BTC-USDT-SWAP", value: "4"))
            try writer.insert(bills: [
                Self.bill("u1", "USDT", "1", type: .deposit), Self.bill("u1", "USDT", "-1", type: .interest),
                Self.bill("u1", "BTC", "1", type: .interest),
            ])
        }
        try ledger.store.write { writer in
            try writer.save(AccountRecord(uid: "u1", acctLv: "4", acknowledged: true, autoLoan: true, label: "again", createdAt: 9))
            try writer.store(Self.order(2, "u1", state: .canceled, clOrdId: "b"))
            try writer.deletePosition(uid: "u1", instId: "BTC-USDT-SWAP")
        }
        #expect(try ledger.store.order(uid: "u1", instId: "BTC-USDT-SWAP", ordId: 1, clOrdId: nil)?.state == .filled)
        #expect(try ledger.store.order(uid: "u1", instId: "BTC-USDT-SWAP", ordId: nil, clOrdId: "b")?.ordId == 2)
        #expect(try ledger.store.order(uid: "u_2", instId: "BTC-USDT-SWAP", ordId: 1, clOrdId: nil) == nil)
        #expect(try ledger.store.order(uid: "u1", instId: "BTC-USDT-SWAP", ordId: nil, clOrdId: nil) == nil)
        #expect(try ledger.store.closedOrders(uid: "u1", instId: nil, limit: 10).map(\.ordId) == [3, 2, 1])
        #expect(try ledger.store.closedOrders(uid: "u1", instId: "BTC-USDT-SWAP", limit: 10).map(\.ordId) == [2, 1])
        #expect(try ledger.store.closedOrders(uid: "u1", instId: nil, limit: 1).map(\.ordId) == [3])
        #expect(try ledger.store.bills(uid: "u1", currency: nil, type: "7", limit: 10).map(\.billId) == [3, 2])
        #expect(try ledger.store.bills(uid: "u1", currency: "USDT", type: "7", limit: 10).map(\.billId) == [2])
        var loaded = RecordingVisitor()
        try ledger.store.load(only: "u1", into: &loaded)
        #expect(loaded.rows == ["account u1 4 true true again 9"])
        // `_` in a uid is a character, not LIKE's wildcard: u_2's settings are not u12's.
        var other = RecordingVisitor()
        try ledger.store.load(only: "u_2", into: &other)
        #expect(other.rows.sorted() == ["account u_2 3 false false l_u_2 1700000000000", "setting lever:u_2:BTC-USDT-SWAP 3"])
        #expect(try ledger.store.settings(prefix: "lever:u_2:").map(\.value) == ["3"])
    }
}

/// `--db` parsing: a path or sqlite: is SQLite, postgres:// and postgresql:// PostgreSQL, any other scheme refused.
@Suite struct LedgerLocationTests {
    @Test func locationsParse() throws {
        #expect(try LedgerLocation(parsing: "pm-sandbox.sqlite") == .sqlite(path: "pm-sandbox.sqlite"))
        #expect(try LedgerLocation(parsing: "/tmp/a:b/c.sqlite") == .sqlite(path: "/tmp/a:b/c.sqlite"))
        #expect(try LedgerLocation(parsing: "sqlite:data/x.sqlite") == .sqlite(path: "data/x.sqlite"))
        #expect(try LedgerLocation(parsing: "sqlite:///var/x.sqlite") == .sqlite(path: "/var/x.sqlite"))
        #expect(
            try LedgerLocation(parsing: "postgres://pm@db.example:6543/ledger")
                == .postgres(PostgresAddress(user: "pm", host: "db.example", port: 6543, database: "ledger")))
        #expect(
            try LedgerLocation(parsing: "postgresql://pm:s%40cret@[::1]/ledger")
                == .postgres(PostgresAddress(user: "pm", password: "s@cret", host: "::1", port: 5432, database: "ledger")))
        #expect(try LedgerLocation(parsing: "postgres://pm:secret@h:1/d").description == "postgres://pm@h:1/d")
        #expect(
            try LedgerLocation(parsing: "postgres://pm@db:5432/ledger?sslmode=verify-full&sslrootcert=/etc/pm/root%20ca.pem")
                == .postgres(
                    PostgresAddress(
                        user: "pm", host: "db", port: 5432, database: "ledger", tls: .verifyFull, rootCertificatePath: "/etc/pm/root ca.pem"
                    )))
        for mode in PostgresTLSMode.allCases {
            let address = try PostgresAddress(parsing: "postgres://pm@db/ledger?sslmode=\(mode.rawValue)")
            #expect(address.tls == mode && address.rootCertificatePath == nil)
            #expect(try PostgresAddress(parsing: address.description) == address, "the description parses back")
        }
        #expect(try PostgresAddress(parsing: "postgres://pm@db/ledger").tls == .disable)
    }

    @Test(arguments: [
        "mysql://u@h/db", "foo://bar", "postgres://h:5432/db", "postgres://u@h:99999/db", "postgres://u@h:5432", "postgres://u@h:5432/",
        "postgres://u@h/db?sslmode=allow", "postgres://u@h/db?sslmode=", "postgres://u@h/db?sslmode", "postgres://u@h/db?password=x",
        "postgres://u@h/db?sslmode=require&sslrootcert=/ca.pem", "postgres://u@h/db?sslrootcert=/ca.pem", "postgres://u@h/db#x",
        "postgres://u@h/db?sslmode=verify-full&sslrootcert=", "sqlite:", "",
    ])
    func badLocationsAreRefused(_ text: String) {
        #expect(throws: LedgerLocationError.self) { try LedgerLocation(parsing: text) }
    }
}

/// One serving node per PostgreSQL ledger, through a lease with an epoch: a second `pm serve` is refused while the
/// lease holds; a node whose connection drops goes on; a node that stops renewing (paused, cut off) loses the
/// lease once it expires, and from then on every write it attempts fails inside its transaction, storing
/// nothing, whatever its connection did meanwhile.
@Suite struct PostgresServingNodeTests {
    /// Ends every other connection to the scratch database (as a network cut or a restarted server would).
    static func cutConnections(_ admin: any LedgerStore) throws {
        _ = try (admin as! PostgresLedger).execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
        Thread.sleep(forTimeInterval: 0.3)
    }

    static func uids(_ store: any LedgerStore) throws -> [String] {
        var loaded = RecordingVisitor()
        try store.load(only: nil, into: &loaded)
        return loaded.rows.filter { $0.hasPrefix("account ") }.map { String($0.split(separator: " ")[1]) }
    }

    /// A paused node (it neither writes nor renews: `renewsLease: false` stands for SIGSTOP) keeps its connection,
    /// yet once its lease has expired another node takes the ledger, and the paused one, resumed, cannot commit.
    @Test(.enabled(if: Backend.postgresURL != nil, "PM_TEST_POSTGRES_URL names no PostgreSQL server"))
    func aPausedNodeLosesTheLeaseAndCannotCommit() throws {
        let ledger = try ScratchLedger(.postgres)
        defer { ledger.remove() }
        let address = try #require((ledger.store as? PostgresLedger)?.address)
        let paused = try PostgresLedger(address, servingAs: "node-a", leaseSeconds: 1, renewsLease: false)
        try paused.write { writer in try writer.save(LedgerStoreTests.account("a1")) }
        #expect(throws: PostgresLedgerError.self) { try PostgresLedger(address, servingAs: "node-b", leaseSeconds: 1) }
        let creator = try PostgresLedger(address)  // pm account create is let in
        try creator.write { writer in try writer.save(LedgerStoreTests.account("u0")) }
        Thread.sleep(forTimeInterval: 1.3)
        let taker = try PostgresLedger(address, servingAs: "node-b", leaseSeconds: 1)
        defer { taker.close() }
        for _ in 0..<2 {
            #expect(throws: PostgresLedgerError.self) { try paused.write { writer in try writer.save(LedgerStoreTests.account("late")) } }
        }
        try taker.write { writer in try writer.save(LedgerStoreTests.account("b1")) }
        // The taker renews its lease on its own: past three lease lengths, a third node is still refused.
        Thread.sleep(forTimeInterval: 3)
        #expect(throws: PostgresLedgerError.self) { try PostgresLedger(address, servingAs: "node-c", leaseSeconds: 1) }
        try taker.write { writer in try writer.save(LedgerStoreTests.account("b2")) }
        #expect(try Self.uids(taker).sorted() == ["a1", "b1", "b2", "u0"])
        paused.close()
    }

    /// The owner and epoch of each partition's lease.
    static func leases(_ admin: any LedgerStore) throws -> [Int: String] {
        var leases: [Int: String] = [:]
        for row in try (admin as! PostgresLedger).execute(#"SELECT "partition", "owner", "epoch" FROM lease"#) {
            let (partition, owner, epoch) = try row.decode((Int32, String, Int64).self)
            leases[Int(partition)] = "\(owner)@\(epoch)"
        }
        return leases
    }

    /// Each partition has a lease of its own. Two nodes holding different partitions both commit; a node asking for
    /// a held partition is refused and takes none of those it asked for, not even a free one; a paused node loses
    /// its partitions once they expire, and a node that takes only some of them is enough to fence it, while the node
    /// holding the others goes on.
    @Test(.enabled(if: Backend.postgresURL != nil, "PM_TEST_POSTGRES_URL names no PostgreSQL server"))
    func eachPartitionHasALeaseOfItsOwn() throws {
        let ledger = try ScratchLedger(.postgres)
        defer { ledger.remove() }
        let address = try #require((ledger.store as? PostgresLedger)?.address)
        for wrong in [[16], [-1], [3, 3]] {
            #expect(throws: PostgresLedgerError.self, "\(wrong)") { try PostgresLedger(address, servingAs: "node-x", partitions: wrong) }
        }
        let paused = try PostgresLedger(address, servingAs: "node-a", partitions: Array(0..<7), leaseSeconds: 1, renewsLease: false)
        let high = try PostgresLedger(address, servingAs: "node-b", partitions: Array(8..<16), leaseSeconds: 1)
        defer { high.close() }
        #expect(paused.heldPartitions == Array(0..<7) && high.heldPartitions == Array(8..<16))
        try paused.write { writer in try writer.save(LedgerStoreTests.account("a1")) }
        try high.write { writer in try writer.save(LedgerStoreTests.account("b1")) }
        // Partition 7 is free, 8 is node-b's: asking for both takes neither.
        #expect(throws: PostgresLedgerError.self) { try PostgresLedger(address, servingAs: "node-c", partitions: [7, 8]) }
        #expect(try Self.leases(ledger.store)[7] == nil)
        Thread.sleep(forTimeInterval: 1.3)
        // node-a's leases have expired; node-b renews its own.
        #expect(throws: PostgresLedgerError.self) { try PostgresLedger(address, servingAs: "node-c", partitions: [8]) }
        let taker = try PostgresLedger(address, servingAs: "node-c", partitions: [0, 1, 2, 3, 7], leaseSeconds: 1)
        defer { taker.close() }
        #expect(throws: PostgresLedgerError.self) { try paused.write { writer in try writer.save(LedgerStoreTests.account("late")) } }
        try high.write { writer in try writer.save(LedgerStoreTests.account("b2")) }
        try taker.write { writer in try writer.save(LedgerStoreTests.account("c1")) }
        let leases = try Self.leases(ledger.store)
        #expect((0..<4).allSatisfy { leases[$0] == "node-c@2" } && leases[7] == "node-c@1", "\(leases)")
        #expect((4..<7).allSatisfy { leases[$0] == "node-a@1" }, "\(leases)")
        #expect((8..<16).allSatisfy { leases[$0] == "node-b@1" }, "\(leases)")
        #expect(try Self.uids(taker).sorted() == ["a1", "b1", "b2", "c1"])
        paused.close()
    }

    /// A node stopped inside a write transaction (here: a session that took the ledger lock and then says nothing, as
    /// a SIGSTOPped process would) does not stop the others: the server ends its idle transaction after a few seconds,
    /// and the other node's write, waiting for the lock, goes through.
    @Test(.enabled(if: Backend.postgresURL != nil, "PM_TEST_POSTGRES_URL names no PostgreSQL server"))
    func aNodeStoppedInsideATransactionDoesNotBlockTheOthers() throws {
        let ledger = try ScratchLedger(.postgres)
        defer { ledger.remove() }
        let address = try #require((ledger.store as? PostgresLedger)?.address)
        let stopped = try PostgresLedger(address)
        _ = try stopped.execute("BEGIN")
        _ = try stopped.execute("SELECT pg_advisory_xact_lock(\(PostgresLedger.ledgerLockKey))")
        let writer = try PostgresLedger(address, servingAs: "node-b", partitions: [0])
        defer { writer.close() }
        let done = DispatchSemaphore(value: 0)
        let started = Date()
        nonisolated(unsafe) var outcome: (any Error)?
        Thread.detachNewThread {
            do { try writer.write { try $0.save(LedgerStoreTests.account("b1")) } } catch { outcome = error }
            done.signal()
        }
        let finished = done.wait(timeout: .now() + 30)
        let waited = Date().timeIntervalSince(started)
        // Ends the stopped session in any case (a write still waiting would otherwise keep the test from ending).
        stopped.close()
        if finished == .timedOut { done.wait() }
        #expect(finished == .success, "the write still waited after 30 s")
        #expect(outcome == nil, "\(String(describing: outcome))")
        #expect(waited > 3 && waited < 15, "waited \(waited) s")
        #expect(try Self.uids(writer) == ["b1"])
    }

    /// A node whose connection drops reconnects and goes on under the same lease; restarted under the same node id
    /// (a new process), it takes the lease at once with a new epoch, which fences the instance before it.
    @Test(.enabled(if: Backend.postgresURL != nil, "PM_TEST_POSTGRES_URL names no PostgreSQL server"))
    func aDroppedConnectionGoesOnAndARestartFencesTheOldInstance() throws {
        let ledger = try ScratchLedger(.postgres)
        defer { ledger.remove() }
        let address = try #require((ledger.store as? PostgresLedger)?.address)
        let first = try PostgresLedger(address, servingAs: "node-a")
        #expect(throws: PostgresLedgerError.self) { try PostgresLedger(address, servingAs: "node-b") }
        try first.write { writer in try writer.save(LedgerStoreTests.account("u1")) }
        // The connection drops; the write that meets the dead connection may fail; the next one works.
        try Self.cutConnections(ledger.store)
        _ = try? first.write { writer in try writer.save(LedgerStoreTests.account("u2")) }
        try first.write { writer in try writer.save(LedgerStoreTests.account("u3")) }
        let restarted = try PostgresLedger(address, servingAs: "node-a")
        try restarted.write { writer in try writer.save(LedgerStoreTests.account("r1")) }
        #expect(throws: PostgresLedgerError.self) { try first.write { writer in try writer.save(LedgerStoreTests.account("late")) } }
        let uids = try Self.uids(restarted)
        #expect(uids.contains("u3") && uids.contains("r1") && !uids.contains("late"), "\(uids)")
        first.close()
        restarted.close()
    }
}
