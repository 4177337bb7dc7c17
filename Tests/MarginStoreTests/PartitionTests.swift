import Foundation
import GRDB
import MarginStore
import MarginStorePostgres
import PostgresNIO
import Testing

/// Accounts belong to partitions by a stable hash of their id, the same in Swift and in the database, and stored
/// on the account.
@Suite struct LedgerPartitionsTests {
    /// FNV-1a 32-bit test vectors (Fowler, Noll and Vo's published table), so the hash is the published one and
    /// not merely self-consistent.
    @Test(arguments: [("", UInt32(0x811c_9dc5)), ("a", 0xe40c_292c), ("foobar", 0xbf9c_f968)])
    func theHashIsFNV1a(_ text: String, _ hash: UInt32) {
        #expect(LedgerPartitions.stableHash(text) == hash)
    }

    /// Ids as the sandbox makes them (a 9-digit number and 4 hex digits) spread evenly over PostgreSQL's 16
    /// partitions: each holds 1/16 of 16,000 ids within a fifth.
    @Test func sandboxIdsSpreadOverThePartitions() {
        let partitions = LedgerPartitions.postgres
        var counts = [Int](repeating: 0, count: partitions.count)
        for number in 0..<16_000 {
            let uid = String(100_000_001 + number) + String(format: "%04x", (number &* 40_503) & 0xffff)
            counts[partitions.partition(of: uid)] += 1
        }
        #expect(counts.allSatisfy { (800...1_200).contains($0) }, "\(counts)")
        #expect(LedgerPartitions.single.partition(of: "100000001abcd") == 0)
    }

    /// Ids with bytes above 0x7f (UTF-8 of two, three and four bytes), a quote and the empty id: PostgreSQL's
    /// `pm_partition` agrees with Swift on every one.
    static let awkwardIds = ["", "a", "O'Brien", "ümlaut", "東京", "🙂", "100000001ab12", String(repeating: "z", count: 300)]

    @Test(.enabled(if: Backend.postgresURL != nil, "PM_TEST_POSTGRES_URL names no PostgreSQL server"))
    func postgresComputesTheSamePartition() throws {
        let ledger = try ScratchLedger(.postgres)
        defer { ledger.remove() }
        let postgres = try #require(ledger.store as? PostgresLedger)
        var ids = Self.awkwardIds
        for number in 0..<2_000 { ids.append(String(100_000_001 + number) + String(format: "%04x", number &* 977 & 0xffff)) }
        let values = ids.map { "('" + $0.replacingOccurrences(of: "'", with: "''") + "')" }.joined(separator: ", ")
        let rows = try postgres.execute("SELECT u, pm_partition(u) FROM (VALUES \(values)) AS ids(u)")
        #expect(rows.count == ids.count)
        for row in rows {
            let (uid, partition) = try row.decode((String, Int32).self)
            #expect(Int(partition) == LedgerPartitions.postgres.partition(of: uid), "\(uid)")
        }
    }

    /// The partition is stored on the account by whoever inserts it: PostgreSQL computes it (a generated
    /// column); a SQLite ledger is one partition.
    @Test(arguments: Backend.available)
    func theAccountStoresItsPartition(_ backend: Backend) throws {
        let ledger = try ScratchLedger(backend)
        defer { ledger.remove() }
        let uids = Self.awkwardIds.filter { !$0.isEmpty } + (0..<64).map { "1000000\($0)" }
        try ledger.store.write { writer in for uid in uids { try writer.save(LedgerStoreTests.account(uid)) } }
        var stored: [String: Int] = [:]
        switch backend {
        case .sqliteMemory, .sqliteFile:
            let database = try #require(ledger.store as? AppDatabase)
            for row in try database.writer.read({ try Row.fetchAll($0, sql: "SELECT uid, partition FROM account") }) {
                stored[row["uid"]] = row["partition"]
            }
            #expect(throws: DatabaseError.self) {
                try database.writer.write { try $0.execute(sql: "UPDATE account SET partition = 1") }
            }
        case .postgres:
            let postgres = try #require(ledger.store as? PostgresLedger)
            for row in try postgres.execute(#"SELECT "uid", "partition" FROM account"#) {
                let (uid, partition) = try row.decode((String, Int32).self)
                stored[uid] = Int(partition)
            }
        }
        let partitions = backend == .postgres ? LedgerPartitions.postgres : .single
        #expect(stored.count == uids.count)
        for uid in uids { #expect(stored[uid] == partitions.partition(of: uid), "\(uid)") }
        if backend == .postgres { #expect(Set(stored.values).count > 8, "64 accounts fall in more than half of the 16 partitions") }
    }
}

/// A node loads only the partitions it holds: their accounts with every row attached to them, and their rows of the
/// fund and the house.
@Suite struct PartitionedLoadTests {
    /// The account a loaded row belongs to (nil for the fund and the house), as `RecordingVisitor` writes it.
    static func uid(of row: String) -> String? {
        let fields = row.split(separator: " ").map(String.init)
        switch fields[0] {
        case "account", "balance", "position", "interest": return fields[1]
        case "order": return fields[2]
        case "setting": return String(fields[1].split(separator: ":")[1])
        default: return nil
        }
    }

    @Test(arguments: Backend.available)
    func aNodeLoadsTheRowsOfItsPartitions(_ backend: Backend) throws {
        let ledger = try ScratchLedger(backend)
        defer { ledger.remove() }
        let store = ledger.store
        let uids = (0..<40).map { "1000000\($0)ab" }
        try store.write { writer in
            for (number, uid) in uids.enumerated() {
                try writer.save(LedgerStoreTests.account(uid))
                try writer.store(BalanceRecord(uid: uid, ccy: "USDT", cashBal: "\(number).5"))
                try writer.store(
                    PositionRecord(uid: uid, instId: "BTC-USDT-SWAP", pos: "\(number)", avgPx: "87000", lever: "", cTime: 1, uTime: 2))
                try writer.store(InterestRecord(uid: uid, ccy: "USDT", pending: "0.1", accrued: "0.2"))
                try writer.store(SettingRecord(key: "lever:\(uid):BTC-USDT-SWAP", value: "3"))
                try writer.store(LedgerStoreTests.order(Int64(number + 1), uid, state: .live))
            }
            for partition in 0..<store.partitions.count where partition % 3 == 0 {
                try writer.store(InsuranceFundRecord(partition: partition, ccy: "USDT", balance: "\(partition).25"))
                try writer.store(HouseRecord(partition: partition, ccy: "BTC", balance: "-\(partition).5"))
            }
        }
        var everything = RecordingVisitor()
        try store.load(only: nil, into: &everything)
        let asked = backend == .postgres ? [[0], [3, 7], Array(8..<16), []] : [[0], []]
        for partitions in asked {
            var loaded = RecordingVisitor()
            try store.load(only: nil, partitions: partitions, into: &loaded)
            let expected = everything.rows.filter { row in
                if let uid = Self.uid(of: row) { return partitions.contains(store.partitions.partition(of: uid)) }
                return partitions.contains(Int(row.split(separator: " ")[1]) ?? -1)
            }
            #expect(loaded.rows.sorted() == expected.sorted(), "partitions \(partitions)")
            if partitions.count == 1 { #expect(!expected.isEmpty, "partition \(partitions) holds something") }
        }
        if backend == .postgres {
            // 40 accounts over 16 partitions: the filter really leaves some out.
            var some = RecordingVisitor()
            try store.load(only: nil, partitions: [0], into: &some)
            #expect(some.rows.count < everything.rows.count)
        }
        var wrong = RecordingVisitor()
        #expect(throws: (any Error).self) { try store.load(only: nil, partitions: [store.partitions.count], into: &wrong) }
    }
}

/// Client order ids already used, looked up in one read for a whole group of orders.
@Suite struct ClientOrderIDTests {
    @Test(arguments: Backend.available)
    func storedClientOrderIDsAreFoundPerAccount(_ backend: Backend) throws {
        let ledger = try ScratchLedger(backend)
        defer { ledger.remove() }
        try ledger.store.write { writer in
            for uid in ["u1", "u2"] { try writer.save(LedgerStoreTests.account(uid)) }
            for number in 0..<450 {
                var order = LedgerStoreTests.order(Int64(number + 1), number % 2 == 0 ? "u1" : "u2", state: .filled)
                order.clOrdId = "c\(number)"
                try writer.store(order)
            }
        }
        // 900 keys (more than one statement's 400 on SQLite): each stored one under its own account only.
        let asked = (0..<450).flatMap { number in ["u1", "u2"].map { ClientOrderKey(uid: $0, clOrdId: "c\(number)") } }
        let found = try ledger.store.storedClientOrderIDs(asked + [ClientOrderKey(uid: "u1", clOrdId: "never")])
        let expected = Set((0..<450).map { ClientOrderKey(uid: $0 % 2 == 0 ? "u1" : "u2", clOrdId: "c\($0)") })
        #expect(found == expected)
        #expect(try ledger.store.storedClientOrderIDs([]).isEmpty)
    }
}
