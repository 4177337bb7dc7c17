import Foundation
import GRDB
import MarginEngine
import Testing

@testable import MarginStore

/// The schema, exact decimal round trips and file persistence.
@Suite struct AppDatabaseTests {
    @Test func migratesAndRoundTripsExactDecimals() throws {
        let database = try AppDatabase.inMemory()
        let amount = "123456789.123456789012345678"
        try database.writer.write { db in
            try AccountRecord(uid: "u1", acctLv: "3", acknowledged: false, autoLoan: false, label: "", createdAt: 1).insert(db)
            try BalanceRecord(uid: "u1", ccy: "ETH", cashBal: amount).insert(db)
        }
        let stored = try database.writer.read { db in try BalanceRecord.fetchOne(db, key: ["uid": "u1", "ccy": "ETH"]) }
        #expect(stored?.cashBal == amount)
        #expect(ExactDecimal(stored?.cashBal ?? "")?.description == amount)
    }

    @Test func aFailedTransactionWritesNothing() throws {
        let database = try AppDatabase.inMemory()
        try database.writer.write { db in
            try AccountRecord(uid: "u1", acctLv: "3", acknowledged: false, autoLoan: false, label: "", createdAt: 1).insert(db)
        }
        #expect(throws: (any Error).self) {
            try database.writer.write { db in
                try BalanceRecord(uid: "u1", ccy: "USDT", cashBal: "10").insert(db)
                // A duplicate primary key fails the transaction; the balance above must be rolled back.
                try AccountRecord(uid: "u1", acctLv: "3", acknowledged: false, autoLoan: false, label: "", createdAt: 1).insert(db)
            }
        }
        #expect(try database.writer.read { db in try BalanceRecord.fetchCount(db) } == 0)
    }

    /// `transaction` (cached BEGIN/COMMIT) commits a successful body, and rolls back everything when the body
    /// throws or when COMMIT itself fails (a deferred foreign key checked only at commit), after which the next
    /// transaction works normally; on the server's file pool and on an in-memory queue.
    @Test(arguments: [true, false])
    func transactionsCommitOrLeaveNothing(onFile: Bool) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pm-tx-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let database = onFile ? try AppDatabase(path: directory.appendingPathComponent("t.sqlite").path) : try AppDatabase.inMemory()
        try database.writer.write { db in
            try db.execute(sql: "CREATE TABLE note(text TEXT)")
            try db.execute(sql: "CREATE TABLE parent(id INTEGER PRIMARY KEY)")
            try db.execute(sql: "CREATE TABLE child(parentId INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED)")
        }
        func counts() throws -> [Int] {
            try database.writer.read { db in
                [
                    try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM note") ?? -1,
                    try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM child") ?? -1,
                ]
            }
        }
        for round in 0..<3 {
            struct Refused: Error {}
            #expect(throws: Refused.self) {
                try database.transaction { db in
                    try db.execute(sql: "INSERT INTO note(text) VALUES (?)", arguments: ["u\(round)"])
                    throw Refused()
                }
            }
            #expect(throws: DatabaseError.self) {
                try database.transaction { db in
                    try db.execute(sql: "INSERT INTO note(text) VALUES (?)", arguments: ["v\(round)"])
                    try db.execute(sql: "INSERT INTO child(parentId) VALUES (42)")  // fails only at COMMIT
                }
            }
            #expect(try counts() == [round, round])
            let written = try database.transaction { db -> Int in
                try db.execute(sql: "INSERT INTO note(text) VALUES (?)", arguments: ["w\(round)"])
                try db.execute(sql: "INSERT INTO parent(id) VALUES (?)", arguments: [round])
                try db.execute(sql: "INSERT INTO child(parentId) VALUES (?)", arguments: [round])
                return round
            }
            #expect(written == round)
            #expect(try counts() == [round + 1, round + 1])
        }
    }

    /// A ledger written before the house was recorded gets the house's opening balance: what the deposits
    /// leave after the account balances and the insurance fund, per currency (zero is not stored).
    @Test func theHouseMigrationOpensWithWhatTheDepositsLeave() throws {
        let queue = try DatabaseQueue()
        try AppDatabase.migrator.migrate(queue, upTo: "v1")
        func bill(_ id: Int64, _ ccy: String, _ change: String, type: BillType) -> BillRecord {
            BillRecord(
                billId: id, uid: "u1", ccy: ccy, balChg: change, bal: "0", type: type, subType: "1", instId: "", ordId: "",
                pnl: "0", fee: "0", sz: "", px: "", notes: "", ts: id)
        }
        try queue.write { db in
            try AccountRecord(uid: "u1", acctLv: "3", acknowledged: false, autoLoan: false, label: "", createdAt: 1).insert(db)
            try bill(1, "USDT", "1000", type: .deposit).insert(db)
            try bill(2, "BTC", "0.5", type: .deposit).insert(db)
            try bill(3, "USDT", "-100.25", type: .trade).insert(db)  // a trade: not a deposit
            try BalanceRecord(uid: "u1", ccy: "USDT", cashBal: "899.75").insert(db)
            try BalanceRecord(uid: "u1", ccy: "BTC", cashBal: "0.5").insert(db)
            try db.execute(sql: "INSERT INTO insuranceFund (ccy, balance) VALUES ('USDT', '0.05')")
        }
        let database = try AppDatabase(writer: queue)
        let house = try database.writer.read { db in try HouseRecord.fetchAll(db) }
        #expect(house == [HouseRecord(ccy: "USDT", balance: "100.2")])
    }

    /// Balances, positions and interest become clustered (WITHOUT ROWID) tables with every row kept, read in uid
    /// order by a plain scan, and upserts still insert then overwrite.
    @Test func theClusteredMigrationKeepsEveryRow() throws {
        let queue = try DatabaseQueue()
        try AppDatabase.migrator.migrate(queue, upTo: "v2-house")
        let balances = [
            BalanceRecord(uid: "u2", ccy: "USDT", cashBal: "-12.5"), BalanceRecord(uid: "u1", ccy: "USDT", cashBal: "899.75"),
            BalanceRecord(uid: "u1", ccy: "BTC", cashBal: "0.00000001"),
        ]
        let positions = [
            PositionRecord(uid: "u2", instId: "BTC-USDT-SWAP", pos: "-3", avgPx: "87000.5", lever: "", cTime: 1, uTime: 2),
            PositionRecord(uid: "u1", instId: "ETH-USDT-SWAP", pos: "10", avgPx: "3000", lever: "5", cTime: 3, uTime: 4),
        ]
        let interests = [InterestRecord(uid: "u2", ccy: "USDT", pending: "0.000001", accrued: "1.5")]
        try queue.write { db in
            for uid in ["u1", "u2"] {
                try AccountRecord(uid: uid, acctLv: "3", acknowledged: false, autoLoan: false, label: "", createdAt: 1).insert(db)
            }
            for balance in balances { try balance.insert(db) }
            for position in positions { try position.insert(db) }
            for interest in interests { try interest.insert(db) }
        }
        let database = try AppDatabase(writer: queue)
        try database.writer.write { db in
            #expect(try BalanceRecord.fetchAll(db) == balances.sorted { ($0.uid, $0.ccy) < ($1.uid, $1.ccy) })
            #expect(try PositionRecord.fetchAll(db) == positions.sorted { ($0.uid, $0.instId) < ($1.uid, $1.instId) })
            #expect(try InterestRecord.fetchAll(db) == interests)
            for table in ["balance", "position", "interest"] {
                #expect(throws: DatabaseError.self) { try Row.fetchAll(db, sql: "SELECT rowid FROM \(table)") }
            }
            try BalanceRecord(uid: "u2", ccy: "USDT", cashBal: "7").store(in: db)
            try BalanceRecord(uid: "u2", ccy: "ETH", cashBal: "1").store(in: db)
            #expect(try String.fetchAll(db, sql: "SELECT cashBal FROM balance WHERE uid = 'u2' ORDER BY ccy") == ["1", "7"])
        }
    }

    /// Bills spread over id ranges, with empty ranges between them: an account's bills read range by range are
    /// exactly the ones a plain filter, newest first, with the limit, gives (the oracle), for every filter and
    /// limit, and the read seeks the (range, uid) index rather than scanning the table.
    @Test(
        arguments: [
            (nil, nil, 1), (nil, nil, 4), (nil, nil, 100), ("USDT", nil, 3), ("BTC", nil, 100), (nil, "8", 2), ("USDT", "8", 100),
            ("ETH", nil, 10),
        ] as [(String?, String?, Int)])
    func billsReadRangeByRangeAreTheNewestThatMatch(currency: String?, type: String?, limit: Int) throws {
        let database = try AppDatabase.inMemory()
        let range: Int64 = 1 << AppDatabase.billRangeBits
        let ids: [Int64] = [3, 4, range - 1, range, range + 1, 4 * range + 7, 4 * range + 8, 6 * range, 6 * range + 2]
        let uids = ["u1", "u2"]
        try database.writer.write { db in
            for uid in uids {
                try AccountRecord(uid: uid, acctLv: "3", acknowledged: false, autoLoan: false, label: "", createdAt: 1).insert(db)
            }
            // Every mix of account, currency and type over the ranges.
            for (index, id) in ids.enumerated() {
                try BillRecord(
                    billId: id, uid: uids[index % 2], ccy: ["USDT", "BTC"][index / 2 % 2], balChg: "1", bal: "1",
                    type: [.funding, .trade][index / 4 % 2], subType: "1", instId: "", ordId: "", pnl: "0", fee: "0", sz: "", px: "",
                    notes: "", ts: id
                ).insert(db)
            }
        }
        let all = try database.writer.read { db in try BillRecord.order(Column("billId").desc).fetchAll(db) }
        for uid in uids + ["nobody"] {
            let expected = all.filter {
                $0.uid == uid && (currency == nil || $0.ccy == currency) && (type == nil || $0.type.rawValue == type)
            }
            let read = try database.bills(uid: uid, currency: currency, type: type, limit: limit)
            #expect(read == Array(expected.prefix(limit)), "\(uid)")
        }
        let plan = try database.writer.read { db in
            try Row.fetchAll(
                db,
                sql:
                    "EXPLAIN QUERY PLAN SELECT * FROM bill WHERE billId >> \(AppDatabase.billRangeBits) = 4 AND uid = 'u1' ORDER BY billId DESC"
            ).map { $0["detail"] as String }
        }
        #expect(plan == ["SEARCH bill USING INDEX bill_by_id_range (<expr>=? AND uid=?)"])
    }

    /// A commit that takes the WAL past its threshold no longer copies it into the database file itself (with
    /// the checkpointer's thread not started, the file keeps its size and every row is still read, from the
    /// WAL); the checkpointer's thread, once running, does the copy.
    @Test func theWALIsCheckpointedOffTheCommittingThread() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("pm-wal-\(UUID().uuidString).sqlite").path
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        func fileBytes() throws -> Int { try #require(FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) }
        let database = try AppDatabase(path: path, checkpointing: false)
        let checkpointer = try #require(database.checkpointer)
        let before = try fileBytes()
        let bills = (0..<20_000).map {
            BillRecord(
                billId: 0, uid: "u1", ccy: "USDT", balChg: "\($0)", bal: "\($0)", type: .funding, subType: "173", instId: "BTC-USDT-SWAP",
                ordId: "", pnl: "0", fee: "0", sz: "", px: "87000.5", notes: String(repeating: "n", count: 200), ts: Int64($0))
        }
        _ = try database.write { writer in
            try writer.save(AccountRecord(uid: "u1", acctLv: "3", acknowledged: false, autoLoan: false, label: "", createdAt: 1))
            try writer.insert(bills: bills)
        }
        #expect(checkpointer.wakeup.isPending, "the commit signalled the checkpointer")
        #expect(try fileBytes() == before, "the commit copied nothing into the file")
        #expect(try database.writer.read { db in try BillRecord.fetchCount(db) } == bills.count)
        try checkpointer.start(path: path)
        let deadline = Date().addingTimeInterval(10)
        while checkpointer.wakeup.runCount == 0 && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        #expect(checkpointer.wakeup.runCount >= 1)
        #expect(try fileBytes() > before + 4_000_000, "the checkpoint copied the bills into the file")
        #expect(try database.writer.read { db in try BillRecord.fetchCount(db) } == bills.count)
    }

    /// The range index replaces the uid index and keeps every bill.
    @Test func theRangeIndexMigrationKeepsEveryBill() throws {
        let queue = try DatabaseQueue()
        try AppDatabase.migrator.migrate(queue, upTo: "v3-clustered-by-account")
        let bills = (1...3).map {
            BillRecord(
                billId: $0, uid: "u1", ccy: "USDT", balChg: "\($0)", bal: "\($0)", type: .deposit, subType: "11", instId: "", ordId: "",
                pnl: "0", fee: "0", sz: "", px: "", notes: "", ts: $0)
        }
        try queue.write { db in
            try AccountRecord(uid: "u1", acctLv: "3", acknowledged: false, autoLoan: false, label: "", createdAt: 1).insert(db)
            for bill in bills { try bill.insert(db) }
        }
        let database = try AppDatabase(writer: queue)
        let indexes = try database.writer.read { db in
            try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'bill'")
        }
        #expect(indexes == ["bill_by_id_range"])
        #expect(try database.bills(uid: "u1", currency: nil, type: nil, limit: 10) == bills.reversed())
    }

    /// `store(in:)` inserts a new order and overwrites every column of an existing one; its column list is
    /// the table's, so a column added to one and not the other fails here.
    @Test func storingAnOrderInsertsThenUpdatesEveryColumn() throws {
        let database = try AppDatabase.inMemory()
        var order = OrderRecord(
            ordId: 7, uid: "u1", clOrdId: "c1", instId: "BTC-USDT-SWAP", tdMode: .cross, side: .buy, ordType: .limit, px: "43000.1",
            sz: "2", tgtCcy: "", reduceOnly: false, state: .live, accFillSz: "0", avgPx: "", fee: "0", feeCcy: "USDT", category: .normal,
            tag: "t", cTime: 100, uTime: 100)
        try database.writer.write { db in
            try AccountRecord(uid: "u1", acctLv: "4", acknowledged: true, autoLoan: false, label: "", createdAt: 1).insert(db)
            try order.store(in: db)
        }
        #expect(try database.writer.read { db in try OrderRecord.fetchOne(db, key: 7) } == order)
        order = OrderRecord(
            ordId: 7, uid: "u1", clOrdId: "c2", instId: "ETH-USDT-SWAP", tdMode: .cash, side: .sell, ordType: .ioc, px: "1",
            sz: "3", tgtCcy: "base_ccy", reduceOnly: true, state: .filled, accFillSz: "3", avgPx: "1.5", fee: "-0.1", feeCcy: "BTC",
            category: .fullLiquidation, tag: "u", cTime: 101, uTime: 102)
        try database.writer.write { db in try order.store(in: db) }
        #expect(try database.writer.read { db in try OrderRecord.fetchAll(db) } == [order])
        let tableColumns = try database.writer.read { db in try db.columns(in: "order").map(\.name) }
        #expect(Set(tableColumns) == Set(OrderRecord.columns))
    }

    @Test func aFileDatabaseSurvivesReopening() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("pm-store-\(UUID().uuidString).sqlite").path
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        do {
            let database = try AppDatabase(path: path)
            try database.writer.write { db in
                try AccountRecord(uid: "u1", acctLv: "4", acknowledged: true, autoLoan: true, label: "x", createdAt: 5).insert(db)
            }
        }
        let reopened = try AppDatabase(path: path)
        let account = try reopened.writer.read { db in try AccountRecord.fetchOne(db, key: "u1") }
        #expect(account == AccountRecord(uid: "u1", acctLv: "4", acknowledged: true, autoLoan: true, label: "x", createdAt: 5))
        let mode = try reopened.writer.read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") }
        #expect(mode == "wal")
    }

    /// Bulk writes (bound through SQLite's C interface) and record writes of the same rows interleave: the bulk
    /// path has statements of its own, so GRDB's cached statements keep their bindings (sharing one made GRDB
    /// skip rebinding equal arguments onto a statement the bulk path had cleared: NULLs, a NOT NULL failure).
    @Test func bulkAndRecordWritesInterleave() throws {
        let database = try AppDatabase.inMemory()
        try database.transaction { db in
            try AccountRecord(uid: "u1", acctLv: "3", acknowledged: false, autoLoan: false, label: "", createdAt: 1).insert(db)
            try BalanceRecord(uid: "u1", ccy: "USDT", cashBal: "1").store(in: db)
            var encoded = EncodedLedgerRows(reservingBills: 0, balances: 2)
            encoded.appendBalance(uid: "u1", ccy: "USDT", cashBal: "2")
            encoded.appendBalance(uid: "u1", ccy: "BTC", cashBal: "0.5")
            try encoded.write(firstBillID: 1, into: db)
            try BalanceRecord(uid: "u1", ccy: "USDT", cashBal: "1").store(in: db)
            // An update to the value a row already holds still counts as done: no second insert of the key.
            var same = EncodedLedgerRows(reservingBills: 0, balances: 1)
            same.appendBalance(uid: "u1", ccy: "USDT", cashBal: "1")
            try same.write(firstBillID: 1, into: db)
            let bill = BillRecord(
                billId: 0, uid: "u1", ccy: "USDT", balChg: "1", bal: "1", type: .deposit, subType: "1", instId: "", ordId: "", pnl: "0",
                fee: "0", sz: "", px: "", notes: "deposit", ts: 5)
            try BulkWrites.insert(bills: [bill, bill], firstID: 10, into: db)
            var single = bill
            single.billId = 12
            try single.insert(into: db)
        }
        let balances = try database.writer.read { db in try BalanceRecord.order(Column("ccy")).fetchAll(db) }
        #expect(balances.map(\.cashBal) == ["0.5", "1"])
        let bills = try database.writer.read { db in try BillRecord.order(Column("billId")).fetchAll(db) }
        #expect(bills.map(\.billId) == [10, 11, 12])
        #expect(bills.allSatisfy { $0.uid == "u1" && $0.notes == "deposit" && $0.ts == 5 })
    }
}
