import GRDB
import GRDBSQLite

/// The rows a funding tick writes for a million accounts — a bill and a balance each — bound straight to a
/// cached statement through SQLite's C interface. Going through GRDB's `StatementArguments` boxed every value
/// (an allocation per column); this writes the same rows in the same transaction at about half the cost.
///
/// The statements' SQL is its own (`-- bulk`): GRDB skips rebinding a cached statement whose arguments equal the
/// ones it bound last, so a statement bound here behind its back must never be one GRDB also executes.
public enum BulkWrites {
    /// SQLite copies a bound text before `sqlite3_bind_text` returns.
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    private static func bind(_ statement: OpaquePointer, _ index: Int32, _ text: String) {
        var text = text
        text.withUTF8 { bytes in
            bytes.withMemoryRebound(to: CChar.self) { chars in
                if let base = chars.baseAddress {
                    _ = sqlite3_bind_text(statement, index, base, Int32(chars.count), transient)
                } else {
                    _ = sqlite3_bind_text(statement, index, "", 0, transient)
                }
            }
        }
    }

    private static func step(_ statement: Statement, _ db: Database) throws {
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
        for (offset, bill) in bills.enumerated() {
            sqlite3_bind_int64(handle, 1, firstID + Int64(offset))
            bind(handle, 2, bill.uid)
            bind(handle, 3, bill.ccy)
            bind(handle, 4, bill.balChg)
            bind(handle, 5, bill.bal)
            bind(handle, 6, bill.type.rawValue)
            bind(handle, 7, bill.subType)
            bind(handle, 8, bill.instId)
            bind(handle, 9, bill.ordId)
            bind(handle, 10, bill.pnl)
            bind(handle, 11, bill.fee)
            bind(handle, 12, bill.sz)
            bind(handle, 13, bill.px)
            bind(handle, 14, bill.notes)
            sqlite3_bind_int64(handle, 15, bill.ts)
            try step(statement, db)
        }
    }

    /// Inserts or replaces the cash balance of each (uid, ccy).
    public static func store(balances: [(uid: String, ccy: String, cashBal: String)], into db: Database) throws {
        let statement = try db.cachedStatement(
            sql: """
                INSERT INTO balance (uid, ccy, cashBal) VALUES (?, ?, ?) ON CONFLICT(uid, ccy) DO UPDATE SET cashBal = excluded.cashBal -- bulk
                """)
        let handle = statement.sqliteStatement
        defer { sqlite3_clear_bindings(handle) }
        for balance in balances {
            bind(handle, 1, balance.uid)
            bind(handle, 2, balance.ccy)
            bind(handle, 3, balance.cashBal)
            try step(statement, db)
        }
    }
}
