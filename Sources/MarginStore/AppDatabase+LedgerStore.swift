import Foundation
import GRDB
import MarginEngine

/// The ledger on SQLite: what the exchange read and wrote itself before the store had a second backend, moved
/// here unchanged (cursors by column position at start-up, cached statements and the bulk path on commit).
extension AppDatabase: LedgerStore {
    /// Rows are read through cursors by column position, not decoded through `Codable`. The whole ledger is read
    /// by a second thread, in one read transaction, and handed over in batches: reading rows (SQLite, text) and
    /// building accounts from them (decimals, dictionaries) then share the two cores; a million accounts load in
    /// a few seconds. One account (`only`) is read on the calling thread.
    public var partitions: LedgerPartitions { .single }

    public func load(only uid: String?, partitions: [Int]?, into visitor: inout some LedgerVisitor) throws {
        // One partition: asking for it is asking for everything.
        try checkPartitions(partitions)
        if partitions?.isEmpty == true { return }
        if uid != nil {
            try writer.read { db in try Self.readLedger(db, only: uid) { $0.deliver(to: &visitor) } }
            return
        }
        let pipe = LedgerRowPipe()
        let writer = self.writer
        Thread.detachNewThread {
            do {
                var batch: [LedgerRow] = []
                batch.reserveCapacity(LedgerRowPipe.batchSize)
                try writer.read { db in
                    try Self.readLedger(db, only: nil) { row in
                        batch.append(row)
                        guard batch.count == LedgerRowPipe.batchSize else { return }
                        pipe.put(batch)
                        batch = []
                        batch.reserveCapacity(LedgerRowPipe.batchSize)
                    }
                }
                pipe.put(batch)
                pipe.finish(failure: nil)
            } catch {
                pipe.finish(failure: error)
            }
        }
        while let batch = try pipe.take() {
            for row in batch { row.deliver(to: &visitor) }
        }
    }

    /// Every row `load` hands over, in its order, to `emit`.
    private static func readLedger(_ db: Database, only uid: String?, emit: (LedgerRow) -> Void) throws {
        let filter = uid == nil ? "" : " WHERE uid = ?"
        let arguments: StatementArguments = uid.map { [$0] } ?? []
        let accountRows = try Row.fetchCursor(
            db, sql: "SELECT uid, acctLv, acknowledged, autoLoan, label, createdAt FROM account" + filter + " ORDER BY uid",
            arguments: arguments)
        while let row = try accountRows.next() {
            emit(
                .account(
                    AccountRecord(
                        uid: row[0], acctLv: row[1], acknowledged: row[2], autoLoan: row[3], label: row[4], createdAt: row[5])))
        }
        let balances = try Row.fetchCursor(
            db, sql: "SELECT uid, ccy, cashBal FROM balance" + filter + " ORDER BY uid, ccy", arguments: arguments)
        while let row = try balances.next() { emit(.balance(uid: row[0], ccy: row[1], cashBal: row[2])) }
        let positions = try Row.fetchCursor(
            db, sql: "SELECT uid, instId, pos, avgPx, cTime, uTime FROM position" + filter + " ORDER BY uid, instId", arguments: arguments)
        while let row = try positions.next() {
            emit(.position(uid: row[0], instId: row[1], pos: row[2], avgPx: row[3], cTime: row[4], uTime: row[5]))
        }
        let open = OrderRecord.filter(Column("state") == "live" || Column("state") == "partially_filled")
        for order in try (uid.map { open.filter(Column("uid") == $0) } ?? open).fetchAll(db) { emit(.openOrder(order)) }
        let interests = try Row.fetchCursor(
            db, sql: "SELECT uid, ccy, pending, accrued FROM interest" + filter + " ORDER BY uid, ccy", arguments: arguments)
        while let row = try interests.next() { emit(.interest(uid: row[0], ccy: row[1], pending: row[2], accrued: row[3])) }
        // A uid's `_` or `%` is taken literally (no uid the sandbox makes has one; a ledger written by hand might).
        let settingFilter =
            uid.map { _ in #"key LIKE ? ESCAPE '\' OR key LIKE ? ESCAPE '\'"# } ?? "key LIKE 'lever:%' OR key LIKE 'siu:%'"
        let settingArguments: StatementArguments = uid.map { [Self.likePattern("lever:\($0):"), Self.likePattern("siu:\($0):")] } ?? []
        let settings = try Row.fetchCursor(
            db, sql: "SELECT key, value FROM setting WHERE " + settingFilter + " ORDER BY key", arguments: settingArguments)
        while let row = try settings.next() { emit(.accountSetting(key: row[0], value: row[1])) }
        if uid == nil {
            for row in try InsuranceFundRecord.fetchAll(db) {
                emit(.insuranceFund(partition: row.partition, ccy: row.ccy, balance: row.balance))
            }
            for row in try HouseRecord.fetchAll(db) { emit(.house(partition: row.partition, ccy: row.ccy, balance: row.balance)) }
        }
        emit(.largestOrderID(try Int64.fetchOne(db, sql: #"SELECT MAX(ordId) FROM "order""#) ?? 0))
    }

    @discardableResult
    public func write(_ body: (any LedgerWriter) throws -> Void) throws -> LedgerIDs {
        try transaction { db in
            let writer = SQLiteLedgerWriter(db)
            try body(writer)
            return LedgerIDs(firstBillID: writer.firstBillID, firstTradeID: writer.firstTradeID)
        }
    }

    public func apiKey(_ key: String) throws -> APIKeyRecord? {
        try writer.read { db in try APIKeyRecord.fetchOne(db, key: key) }
    }

    public func settings(prefix: String) throws -> [SettingRecord] {
        try writer.read { db in try SettingRecord.filter(Column("key").like(Self.likePattern(prefix), escape: "\\")).fetchAll(db) }
    }

    /// `prefix%`, with LIKE's wildcards in the prefix taken literally (`_` in a uid).
    static func likePattern(_ prefix: String) -> String {
        prefix.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(
            of: "_", with: "\\_") + "%"
    }

    /// Newest first, one id range of the `bill_by_id_range` index at a time (a seek each) until `limit` are
    /// found or the oldest range is read: ranges are consecutive ids, so their concatenation is id order.
    public func bills(uid: String, currency: String?, type: String?, limit: Int) throws -> [BillRecord] {
        try writer.read { db in
            guard limit > 0,
                let newest = try Int64.fetchOne(db.cachedStatement(sql: "SELECT MAX(billId) FROM bill")),
                let oldest = try Int64.fetchOne(db.cachedStatement(sql: "SELECT MIN(billId) FROM bill"))
            else { return [] }
            let bits = Self.billRangeBits
            let inRange = try db.cachedStatement(
                sql: """
                    SELECT * FROM bill WHERE billId >> \(bits) = ?1 AND uid = ?2 AND (?3 IS NULL OR ccy = ?3) AND (?4 IS NULL OR type = ?4)
                    ORDER BY billId DESC LIMIT ?5
                    """)
            var found: [BillRecord] = []
            var range = newest >> bits
            while range >= oldest >> bits && found.count < limit {
                found += try BillRecord.fetchAll(inRange, arguments: [range, uid, currency, type, limit - found.count])
                range -= 1
            }
            return found
        }
    }

    public func bills(type: BillType, after billID: Int64) throws -> [BillRecord] {
        try writer.read { db in
            try BillRecord.filter(Column("type") == type && Column("billId") > billID).order(Column("billId")).fetchAll(db)
        }
    }

    public func books() throws -> (fund: [InsuranceFundRecord], house: [HouseRecord]) {
        try writer.read { db in (try InsuranceFundRecord.fetchAll(db), try HouseRecord.fetchAll(db)) }
    }

    public func storedClientOrderIDs(_ keys: [ClientOrderKey]) throws -> Set<ClientOrderKey> {
        try writer.read { db in
            var found = Set<ClientOrderKey>()
            // Row values, 400 pairs a statement (SQLite binds at most 32,766 values).
            for start in stride(from: 0, to: keys.count, by: 400) {
                let chunk = keys[start..<min(start + 400, keys.count)]
                let pairs = Array(repeating: "(?, ?)", count: chunk.count).joined(separator: ", ")
                let arguments = StatementArguments(chunk.flatMap { [$0.uid, $0.clOrdId] })
                let rows = try Row.fetchCursor(
                    db, sql: #"SELECT uid, clOrdId FROM "order" WHERE (uid, clOrdId) IN (VALUES \#(pairs))"#, arguments: arguments)
                while let row = try rows.next() { found.insert(ClientOrderKey(uid: row[0], clOrdId: row[1])) }
            }
            return found
        }
    }

    public func order(uid: String, instId: String, ordId: Int64?, clOrdId: String?) throws -> OrderRecord? {
        try writer.read { db -> OrderRecord? in
            var request = OrderRecord.filter(Column("uid") == uid && Column("instId") == instId)
            if let ordId {
                request = request.filter(Column("ordId") == ordId)
            } else if let clOrdId {
                request = request.filter(Column("clOrdId") == clOrdId)
            } else {
                return nil
            }
            return try request.order(Column("ordId").desc).fetchOne(db)
        }
    }

    public func closedOrders(uid: String, instId: String?, limit: Int) throws -> [OrderRecord] {
        try writer.read { db in
            var request = OrderRecord.filter(Column("uid") == uid && (Column("state") == "filled" || Column("state") == "canceled"))
            if let instId { request = request.filter(Column("instId") == instId) }
            return try request.order(Column("ordId").desc).limit(limit).fetchAll(db)
        }
    }

    public func fills(uid: String, instId: String?, ordId: Int64?, limit: Int) throws -> [FillRecord] {
        try writer.read { db in
            var request = FillRecord.filter(Column("uid") == uid)
            if let instId { request = request.filter(Column("instId") == instId) }
            if let ordId { request = request.filter(Column("ordId") == ordId) }
            return try request.order(Column("tradeId").desc).limit(limit).fetchAll(db)
        }
    }
}

/// One SQLite transaction's writes, executed as they come through cached statements (and the bulk path for
/// a funding tick's balances and bills).
final class SQLiteLedgerWriter: LedgerWriter {
    let db: Database
    private(set) var firstBillID: Int64 = 0
    private(set) var firstTradeID: Int64 = 0

    init(_ db: Database) { self.db = db }

    /// One more than the largest stored id; asked only when needed, through a cached statement.
    private func next(_ sql: String) throws -> Int64 { (try Int64.fetchOne(db.cachedStatement(sql: sql)) ?? 0) + 1 }

    func save(_ account: AccountRecord) throws { try account.save(db) }
    func store(_ balance: BalanceRecord) throws { try balance.store(in: db) }
    func write(_ rows: EncodedLedgerRows) throws {
        let base = rows.billCount > 0 ? try next(#"SELECT MAX(billId) FROM "bill""#) : 0
        if firstBillID == 0 { firstBillID = base }
        try rows.write(firstBillID: base, into: db)
    }
    func store(_ position: PositionRecord) throws { try position.store(in: db) }
    func deletePosition(uid: String, instId: String) throws { try PositionRecord.delete(uid: uid, instId: instId, in: db) }
    func store(_ interest: InterestRecord) throws { try interest.store(in: db) }
    func store(_ setting: SettingRecord) throws { try setting.store(in: db) }
    func insert(_ key: APIKeyRecord) throws { try key.insert(db) }
    func store(_ order: OrderRecord) throws { try order.store(in: db) }

    func insert(fills: [FillRecord]) throws {
        guard !fills.isEmpty else { return }
        let base = try next(#"SELECT MAX(tradeId) FROM "fill""#)
        if firstTradeID == 0 { firstTradeID = base }
        for (offset, fill) in fills.enumerated() {
            var numbered = fill
            numbered.tradeId = base + Int64(offset)
            try numbered.insert(into: db)
        }
    }

    func insert(bills: [BillRecord]) throws {
        guard !bills.isEmpty else { return }
        let base = try next(#"SELECT MAX(billId) FROM "bill""#)
        if firstBillID == 0 { firstBillID = base }
        try BulkWrites.insert(bills: bills, firstID: base, into: db)
    }

    func store(_ fund: InsuranceFundRecord) throws { try fund.save(db) }
    func store(_ house: HouseRecord) throws { try house.save(db) }
}
