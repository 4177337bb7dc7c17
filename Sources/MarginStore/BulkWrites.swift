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

/// Cash balances and bills encoded as text, end to end in one buffer each, by the thread that computes them
/// (a funding run's chunk): the store's writer binds every field where it lies, so that no string is made,
/// copied or freed on the writing thread, the one a funding tick waits for.
public struct EncodedLedgerRows: Sendable {
    /// Text fields per bill: every column but `billId` and `ts`.
    static let billFields = 13
    static let balanceFields = 3

    private var billBytes: [UInt8] = [0]  // never empty: a field's address is never nil
    private var billEnds: [Int32] = []
    private var billTimes: [Int64] = []
    private var balanceBytes: [UInt8] = [0]
    private var balanceEnds: [Int32] = []

    public init(reservingBills bills: Int, balances: Int) {
        billBytes.reserveCapacity(bills * 128)
        billEnds.reserveCapacity(bills * Self.billFields)
        billTimes.reserveCapacity(bills)
        balanceBytes.reserveCapacity(balances * 40)
        balanceEnds.reserveCapacity(balances * Self.balanceFields)
    }

    public var billCount: Int { billTimes.count }
    public var balanceCount: Int { balanceEnds.count / Self.balanceFields }

    private static func add(_ text: String, to bytes: inout [UInt8], ends: inout [Int32]) {
        bytes.append(contentsOf: text.utf8)
        ends.append(Int32(bytes.count))
    }

    /// A bill, numbered when it is stored (after the largest stored `billId`, in the order appended).
    public mutating func appendBill(
        uid: String, ccy: String, balChg: String, bal: String, type: BillType, subType: String, instId: String, ordId: String,
        pnl: String, fee: String, sz: String, px: String, notes: String, ts: Int64
    ) {
        Self.add(uid, to: &billBytes, ends: &billEnds)
        Self.add(ccy, to: &billBytes, ends: &billEnds)
        Self.add(balChg, to: &billBytes, ends: &billEnds)
        Self.add(bal, to: &billBytes, ends: &billEnds)
        Self.add(type.rawValue, to: &billBytes, ends: &billEnds)
        Self.add(subType, to: &billBytes, ends: &billEnds)
        Self.add(instId, to: &billBytes, ends: &billEnds)
        Self.add(ordId, to: &billBytes, ends: &billEnds)
        Self.add(pnl, to: &billBytes, ends: &billEnds)
        Self.add(fee, to: &billBytes, ends: &billEnds)
        Self.add(sz, to: &billBytes, ends: &billEnds)
        Self.add(px, to: &billBytes, ends: &billEnds)
        Self.add(notes, to: &billBytes, ends: &billEnds)
        billTimes.append(ts)
    }

    /// The cash balance of (uid, ccy), inserted or replacing the stored one.
    public mutating func appendBalance(uid: String, ccy: String, cashBal: String) {
        Self.add(uid, to: &balanceBytes, ends: &balanceEnds)
        Self.add(ccy, to: &balanceBytes, ends: &balanceEnds)
        Self.add(cashBal, to: &balanceBytes, ends: &balanceEnds)
    }

    private static func field(_ bytes: [UInt8], _ ends: [Int32], _ index: Int) -> String {
        let start = index == 0 ? 1 : Int(ends[index - 1])
        return String(decoding: bytes[start..<Int(ends[index])], as: UTF8.self)
    }

    /// The bills as records (`billId` 0), for a store that writes records.
    public var bills: [BillRecord] {
        (0..<billCount).map { row in
            let base = row * Self.billFields
            func text(_ column: Int) -> String { Self.field(billBytes, billEnds, base + column) }
            return BillRecord(
                billId: 0, uid: text(0), ccy: text(1), balChg: text(2), bal: text(3), type: BillType(rawValue: text(4)) ?? .trade,
                subType: text(5), instId: text(6), ordId: text(7), pnl: text(8), fee: text(9), sz: text(10), px: text(11),
                notes: text(12), ts: billTimes[row])
        }
    }

    /// The balances as (uid, ccy, cashBal), for a store that writes records.
    public var balances: [(uid: String, ccy: String, cashBal: String)] {
        (0..<balanceCount).map { row in
            let base = row * Self.balanceFields
            return (
                Self.field(balanceBytes, balanceEnds, base), Self.field(balanceBytes, balanceEnds, base + 1),
                Self.field(balanceBytes, balanceEnds, base + 2)
            )
        }
    }

    /// Binds each row's fields to `statement` (columns `firstColumn…`, `SQLITE_STATIC`: the buffer outlives every
    /// step `body` makes) and calls `body` with the row's index, its fields' (start, end) offsets in `chars`.
    static func eachRow(
        _ bytes: [UInt8], _ ends: [Int32], fields: Int, binding statement: OpaquePointer, firstColumn: Int32,
        _ body: (_ row: Int, _ chars: UnsafePointer<CChar>) throws -> Void
    ) rethrows {
        try bytes.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress else { preconditionFailure("an encoded buffer is never empty") }
            try base.withMemoryRebound(to: CChar.self, capacity: buffer.count) { chars in
                var start: Int32 = 1
                for row in 0..<(ends.count / fields) {
                    for field in 0..<fields {
                        let end = ends[row * fields + field]
                        sqlite3_bind_text(statement, firstColumn + Int32(field), chars + Int(start), end - start, nil)
                        start = end
                    }
                    try body(row, chars)
                }
            }
        }
    }

    /// Stores the balances (an update, an insert when no row matched) then inserts the bills numbered from
    /// `firstBillID`, through SQLite's C interface with every text bound where it lies (`SQLITE_STATIC`).
    func write(firstBillID: Int64, into db: Database) throws {
        let update = try db.cachedStatement(sql: "UPDATE balance SET cashBal = ?3 WHERE uid = ?1 AND ccy = ?2 -- bulk")
        let insert = try db.cachedStatement(sql: "INSERT INTO balance (uid, ccy, cashBal) VALUES (?1, ?2, ?3) -- bulk")
        let bill = try db.cachedStatement(
            sql: """
                INSERT INTO bill (billId, uid, ccy, balChg, bal, type, subType, instId, ordId, pnl, fee, sz, px, notes, ts)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) -- bulk
                """)
        defer {
            for statement in [update, insert, bill] { sqlite3_clear_bindings(statement.sqliteStatement) }
        }
        try Self.eachRow(balanceBytes, balanceEnds, fields: Self.balanceFields, binding: update.sqliteStatement, firstColumn: 1) {
            row, chars in
            try BulkWrites.step(update, db)
            // Counts the rows the update matched, changed in value or not.
            guard sqlite3_changes(db.sqliteConnection) == 0 else { return }
            for field in 0..<Self.balanceFields {
                let index = row * Self.balanceFields + field
                let start = index == 0 ? 1 : balanceEnds[index - 1]
                sqlite3_bind_text(insert.sqliteStatement, Int32(field + 1), chars + Int(start), balanceEnds[index] - start, nil)
            }
            try BulkWrites.step(insert, db)
        }
        let handle = bill.sqliteStatement
        try Self.eachRow(billBytes, billEnds, fields: Self.billFields, binding: handle, firstColumn: 2) { row, _ in
            sqlite3_bind_int64(handle, 1, firstBillID + Int64(row))
            sqlite3_bind_int64(handle, 15, billTimes[row])
            try BulkWrites.step(bill, db)
        }
    }
}
