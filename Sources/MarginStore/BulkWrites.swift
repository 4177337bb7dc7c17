import GRDB
import GRDBSQLite

/// The rows a funding tick writes for a million accounts — a bill and a balance each — bound straight to a
/// cached statement through SQLite's C interface. Going through GRDB's `StatementArguments` boxed every value
/// (an allocation per column); this writes the same rows in the same transaction at about half the cost.
///
/// The statements' SQL is its own (`-- bulk`): GRDB skips rebinding a cached statement whose arguments equal the
/// ones it bound last, so a statement bound here behind its back must never be one GRDB also executes.
public enum BulkWrites {
    fileprivate static func step(_ statement: Statement, _ db: Database) throws {
        let handle = statement.sqliteStatement
        let code = sqlite3_step(handle)
        sqlite3_reset(handle)
        guard code == SQLITE_DONE else {
            sqlite3_clear_bindings(handle)
            throw DatabaseError(
                resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errmsg(db.sqliteConnection)), sql: statement.sql)
        }
    }

    /// Inserts `bills`, the first numbered `firstID`, the next ones after it.
    public static func insert(bills: [BillRecord], firstID: Int64, into db: Database) throws {
        let statement = try db.cachedStatement(
            sql: """
                INSERT INTO bill (billId, uid, ccy, balChg, bal, type, subType, instId, ordId, pnl, fee, sz, px, notes, ts)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) -- bulk
                """)
        let handle = statement.sqliteStatement
        defer { sqlite3_clear_bindings(handle) }
        var texts = RowTexts()
        for (offset, bill) in bills.enumerated() {
            sqlite3_bind_int64(handle, 1, firstID + Int64(offset))
            texts.add(2, bill.uid)
            texts.add(3, bill.ccy)
            texts.add(4, bill.balChg)
            texts.add(5, bill.bal)
            texts.add(6, bill.type.rawValue)
            texts.add(7, bill.subType)
            texts.add(8, bill.instId)
            texts.add(9, bill.ordId)
            texts.add(10, bill.pnl)
            texts.add(11, bill.fee)
            texts.add(12, bill.sz)
            texts.add(13, bill.px)
            texts.add(14, bill.notes)
            sqlite3_bind_int64(handle, 15, bill.ts)
            try texts.step(statement, db)
        }
    }

    /// Inserts or replaces the cash balance of each (uid, ccy): an update, and an insert only when it changed no
    /// row (a funding tick's balances nearly all exist; an upsert's failed insert cost a second b-tree seek each).
    public static func store(balances: [(uid: String, ccy: String, cashBal: String)], into db: Database) throws {
        let update = try db.cachedStatement(sql: "UPDATE balance SET cashBal = ?3 WHERE uid = ?1 AND ccy = ?2 -- bulk")
        let insert = try db.cachedStatement(sql: "INSERT INTO balance (uid, ccy, cashBal) VALUES (?1, ?2, ?3) -- bulk")
        defer {
            sqlite3_clear_bindings(update.sqliteStatement)
            sqlite3_clear_bindings(insert.sqliteStatement)
        }
        var texts = RowTexts()
        func run(_ statement: Statement, _ balance: (uid: String, ccy: String, cashBal: String)) throws {
            texts.add(1, balance.uid)
            texts.add(2, balance.ccy)
            texts.add(3, balance.cashBal)
            try texts.step(statement, db)
        }
        for balance in balances {
            try run(update, balance)
            // Counts the rows the update matched, changed in value or not.
            if sqlite3_changes(db.sqliteConnection) == 0 { try run(insert, balance) }
        }
    }
}

/// One row's texts laid end to end in a buffer reused from row to row, and bound without a copy
/// (`SQLITE_STATIC`): SQLite reads them during `sqlite3_step`, and every column is bound again before the next
/// step. Binding each text as `SQLITE_TRANSIENT` made SQLite allocate, copy and free it: fourteen times per
/// bill, a fifth of a funding tick's bill writes.
private struct RowTexts {
    private var bytes: [UInt8] = [0]  // never empty: its base address is never nil
    private var spans: [(column: Int32, start: Int, count: Int)] = []

    init() {
        bytes.reserveCapacity(1_024)
        spans.reserveCapacity(16)
    }

    mutating func add(_ column: Int32, _ text: String) {
        let start = bytes.count
        bytes.append(contentsOf: text.utf8)
        spans.append((column, start, bytes.count - start))
    }

    /// Binds the texts added since the last step, steps `statement` (with whatever else is bound), and starts
    /// the next row.
    mutating func step(_ statement: Statement, _ db: Database) throws {
        let handle = statement.sqliteStatement
        defer {
            bytes.removeSubrange(1...)
            spans.removeAll(keepingCapacity: true)
        }
        try bytes.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress else { preconditionFailure("a row's buffer is never empty") }
            try base.withMemoryRebound(to: CChar.self, capacity: buffer.count) { chars in
                for span in spans { sqlite3_bind_text(handle, span.column, chars + span.start, Int32(span.count), nil) }
                try BulkWrites.step(statement, db)
            }
        }
    }
}
