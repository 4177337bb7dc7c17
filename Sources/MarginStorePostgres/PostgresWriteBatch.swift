import MarginStore
import PostgresNIO

/// One transaction's writes, gathered table by table and turned into a few statements when the transaction
/// ends: one `INSERT … SELECT FROM unnest(column arrays)` per table and 10,000 rows, instead of a statement
/// (and a network round trip) per row. Rows written twice under one key keep the last one (an order placed and
/// filled in one group commit), as the SQLite ledger's successive upserts leave it. Tables are written in the
/// order their foreign keys need: accounts, keys, balances, positions, interest, settings, orders, fills, bills,
/// fund, house.
final class PostgresWriteBatch: LedgerWriter {
    enum Numbered { case bills, fills }

    struct Statement {
        var query: PostgresQuery
        /// Set when the statement numbers rows and answers the first number it gave.
        var numbers: Numbered?
    }

    private var accounts = Upserts<String, AccountRecord>()
    private var keys: [APIKeyRecord] = []
    private var balances = Upserts<Pair, (uid: String, ccy: String, cashBal: String)>()
    private var positions = Upserts<Pair, PositionRecord>()
    private var deletedPositions = Upserts<Pair, Pair>()
    private var interests = Upserts<Pair, InterestRecord>()
    private var settings = Upserts<String, SettingRecord>()
    private var orders = Upserts<Int64, OrderRecord>()
    private var fills: [FillRecord] = []
    private var bills: [BillRecord] = []
    private var funds = Upserts<Pair, InsuranceFundRecord>()
    private var houses = Upserts<Pair, HouseRecord>()

    struct Pair: Hashable {
        var first: String
        var second: String
    }

    func save(_ account: AccountRecord) throws { accounts.set(account.uid, account) }
    func store(_ balance: BalanceRecord) throws {
        balances.set(Pair(first: balance.uid, second: balance.ccy), (balance.uid, balance.ccy, balance.cashBal))
    }
    func write(_ rows: EncodedLedgerRows) throws {
        for balance in rows.balances { balances.set(Pair(first: balance.uid, second: balance.ccy), balance) }
        bills += rows.bills
    }
    func store(_ position: PositionRecord) throws {
        let key = Pair(first: position.uid, second: position.instId)
        deletedPositions.remove(key)
        positions.set(key, position)
    }
    func deletePosition(uid: String, instId: String) throws {
        let key = Pair(first: uid, second: instId)
        positions.remove(key)
        deletedPositions.set(key, key)
    }
    func store(_ interest: InterestRecord) throws { interests.set(Pair(first: interest.uid, second: interest.ccy), interest) }
    func store(_ setting: SettingRecord) throws { settings.set(setting.key, setting) }
    func insert(_ key: APIKeyRecord) throws { keys.append(key) }
    func store(_ order: OrderRecord) throws { orders.set(order.ordId, order) }
    func insert(fills: [FillRecord]) throws { self.fills += fills }
    func insert(bills: [BillRecord]) throws { self.bills += bills }
    func store(_ fund: InsuranceFundRecord) throws { funds.set(Pair(first: String(fund.partition), second: fund.ccy), fund) }
    func store(_ house: HouseRecord) throws { houses.set(Pair(first: String(house.partition), second: house.ccy), house) }

    /// The statements, in foreign-key order.
    func statements() throws -> [Statement] {
        var statements: [Statement] = []
        func upsert<Row>(
            _ table: String, _ columns: [String], key: [String], _ rows: [Row], _ encode: (ArraySlice<Row>, inout ColumnArrays) -> Void
        ) {
            let updates = columns.filter { !key.contains($0) }.map { "\"\($0)\" = EXCLUDED.\"\($0)\"" }.joined(separator: ", ")
            for chunk in Self.chunks(rows) {
                var arrays = ColumnArrays()
                encode(chunk, &arrays)
                let sql =
                    "INSERT INTO \"\(table)\" (\(Self.list(columns))) SELECT * FROM \(arrays.unnest) "
                    + "ON CONFLICT (\(Self.list(key))) DO " + (updates.isEmpty ? "NOTHING" : "UPDATE SET \(updates)")
                statements.append(Statement(query: PostgresQuery(unsafeSQL: sql, binds: arrays.binds)))
            }
        }
        upsert("account", ["uid", "acctLv", "acknowledged", "autoLoan", "label", "createdAt"], key: ["uid"], accounts.rows) {
            rows, arrays in
            arrays.add(rows.map(\.uid))
            arrays.add(rows.map(\.acctLv))
            arrays.add(rows.map(\.acknowledged))
            arrays.add(rows.map(\.autoLoan))
            arrays.add(rows.map(\.label))
            arrays.add(rows.map(\.createdAt))
        }
        for key in keys {
            var binds = PostgresBindings()
            binds.append(key.apiKey)
            binds.append(key.uid)
            try binds.append(key.secretCipher)
            binds.append(key.passphraseHash)
            binds.append(key.permissions)
            binds.append(key.label)
            binds.append(key.createdAt)
            statements.append(
                Statement(
                    query: PostgresQuery(
                        unsafeSQL: """
                            INSERT INTO "apiKey" ("apiKey", "uid", "secretCipher", "passphraseHash", "permissions", "label", "createdAt")
                            VALUES ($1, $2, $3, $4, $5, $6, $7)
                            """, binds: binds)))
        }
        upsert("balance", ["uid", "ccy", "cashBal"], key: ["uid", "ccy"], balances.rows) { rows, arrays in
            arrays.add(rows.map(\.uid))
            arrays.add(rows.map(\.ccy))
            arrays.add(rows.map(\.cashBal))
        }
        for chunk in Self.chunks(deletedPositions.rows) {
            var arrays = ColumnArrays()
            arrays.add(chunk.map(\.first))
            arrays.add(chunk.map(\.second))
            statements.append(
                Statement(
                    query: PostgresQuery(
                        unsafeSQL: #"DELETE FROM position WHERE ("uid", "instId") IN (SELECT * FROM "# + arrays.unnest + ")",
                        binds: arrays.binds)))
        }
        upsert("position", ["uid", "instId", "pos", "avgPx", "lever", "cTime", "uTime"], key: ["uid", "instId"], positions.rows) {
            rows, arrays in
            arrays.add(rows.map(\.uid))
            arrays.add(rows.map(\.instId))
            arrays.add(rows.map(\.pos))
            arrays.add(rows.map(\.avgPx))
            arrays.add(rows.map(\.lever))
            arrays.add(rows.map(\.cTime))
            arrays.add(rows.map(\.uTime))
        }
        upsert("interest", ["uid", "ccy", "pending", "accrued"], key: ["uid", "ccy"], interests.rows) { rows, arrays in
            arrays.add(rows.map(\.uid))
            arrays.add(rows.map(\.ccy))
            arrays.add(rows.map(\.pending))
            arrays.add(rows.map(\.accrued))
        }
        upsert("setting", ["key", "value"], key: ["key"], settings.rows) { rows, arrays in
            arrays.add(rows.map(\.key))
            arrays.add(rows.map(\.value))
        }
        upsert("order", PostgresSchema.orderColumns, key: ["ordId"], orders.rows) { rows, arrays in
            arrays.add(rows.map(\.ordId))
            arrays.add(rows.map(\.uid))
            arrays.add(rows.map(\.clOrdId))
            arrays.add(rows.map(\.instId))
            arrays.add(rows.map(\.tdMode.rawValue))
            arrays.add(rows.map(\.side.rawValue))
            arrays.add(rows.map(\.ordType.rawValue))
            arrays.add(rows.map(\.px))
            arrays.add(rows.map(\.sz))
            arrays.add(rows.map(\.tgtCcy))
            arrays.add(rows.map(\.reduceOnly))
            arrays.add(rows.map(\.state.rawValue))
            arrays.add(rows.map(\.accFillSz))
            arrays.add(rows.map(\.avgPx))
            arrays.add(rows.map(\.fee))
            arrays.add(rows.map(\.feeCcy))
            arrays.add(rows.map(\.category.rawValue))
            arrays.add(rows.map(\.tag))
            arrays.add(rows.map(\.cTime))
            arrays.add(rows.map(\.uTime))
        }
        for chunk in Self.chunks(fills) {
            var arrays = ColumnArrays()
            arrays.add(chunk.map(\.ordId))
            arrays.add(chunk.map(\.uid))
            arrays.add(chunk.map(\.clOrdId))
            arrays.add(chunk.map(\.instId))
            arrays.add(chunk.map(\.side.rawValue))
            arrays.add(chunk.map(\.fillPx))
            arrays.add(chunk.map(\.fillSz))
            arrays.add(chunk.map(\.fee))
            arrays.add(chunk.map(\.feeCcy))
            arrays.add(chunk.map(\.pnl))
            arrays.add(chunk.map(\.execType))
            arrays.add(chunk.map(\.category.rawValue))
            arrays.add(chunk.map(\.ts))
            let columns = [
                "ordId", "uid", "clOrdId", "instId", "side", "fillPx", "fillSz", "fee", "feeCcy", "pnl", "execType", "category", "ts",
            ]
            statements.append(Statement(query: Self.numberedInsert("fill", id: "tradeId", columns, arrays), numbers: .fills))
        }
        for chunk in Self.chunks(bills) {
            var arrays = ColumnArrays()
            arrays.add(chunk.map(\.uid))
            arrays.add(chunk.map(\.ccy))
            arrays.add(chunk.map(\.balChg))
            arrays.add(chunk.map(\.bal))
            arrays.add(chunk.map(\.type.rawValue))
            arrays.add(chunk.map(\.subType))
            arrays.add(chunk.map(\.instId))
            arrays.add(chunk.map(\.ordId))
            arrays.add(chunk.map(\.pnl))
            arrays.add(chunk.map(\.fee))
            arrays.add(chunk.map(\.sz))
            arrays.add(chunk.map(\.px))
            arrays.add(chunk.map(\.notes))
            arrays.add(chunk.map(\.ts))
            let columns = ["uid", "ccy", "balChg", "bal", "type", "subType", "instId", "ordId", "pnl", "fee", "sz", "px", "notes", "ts"]
            statements.append(Statement(query: Self.numberedInsert("bill", id: "billId", columns, arrays), numbers: .bills))
        }
        upsert("insuranceFund", ["partition", "ccy", "balance"], key: ["partition", "ccy"], funds.rows) { rows, arrays in
            arrays.add(rows.map { Int32($0.partition) })
            arrays.add(rows.map(\.ccy))
            arrays.add(rows.map(\.balance))
        }
        upsert("house", ["partition", "ccy", "balance"], key: ["partition", "ccy"], houses.rows) { rows, arrays in
            arrays.add(rows.map { Int32($0.partition) })
            arrays.add(rows.map(\.ccy))
            arrays.add(rows.map(\.balance))
        }
        return statements
    }

    /// Inserts rows numbered after the largest stored id (in the order given) and answers the first number.
    /// The largest id is read in the statement's snapshot, which excludes the rows it inserts; the ledger lock
    /// keeps every other writer out until the transaction ends.
    static func numberedInsert(_ table: String, id: String, _ columns: [String], _ arrays: ColumnArrays) -> PostgresQuery {
        let named = columns.map { "\"\($0)\"" }
        let sql = """
            WITH base AS (SELECT COALESCE(MAX("\(id)"), 0) AS last FROM \(table)),
            inserted AS (
                INSERT INTO \(table) ("\(id)", \(named.joined(separator: ", ")))
                SELECT base.last + numbered.n, \(named.map { "numbered.\($0)" }.joined(separator: ", "))
                FROM base, \(arrays.unnest) WITH ORDINALITY AS numbered(\(named.joined(separator: ", ")), n)
            )
            SELECT last + 1 FROM base
            """
        return PostgresQuery(unsafeSQL: sql, binds: arrays.binds)
    }

    static func list(_ columns: [String]) -> String { columns.map { "\"\($0)\"" }.joined(separator: ", ") }

    static func chunks<Row>(_ rows: [Row]) -> [ArraySlice<Row>] {
        stride(from: 0, to: rows.count, by: PostgresLedger.rowsPerStatement).map {
            rows[$0..<min($0 + PostgresLedger.rowsPerStatement, rows.count)]
        }
    }
}

/// Rows by key in first-written order, each holding the last value written under its key.
struct Upserts<Key: Hashable, Row> {
    private var slots: [Row?] = []
    private var index: [Key: Int] = [:]

    mutating func set(_ key: Key, _ row: Row) {
        if let position = index[key] {
            slots[position] = row
        } else {
            index[key] = slots.count
            slots.append(row)
        }
    }

    mutating func remove(_ key: Key) {
        if let position = index.removeValue(forKey: key) { slots[position] = nil }
    }

    var rows: [Row] { slots.compactMap { $0 } }
}

/// The column arrays of an `unnest(…)` and its SQL, `$1::text[]` and so on.
struct ColumnArrays {
    var binds = PostgresBindings()
    private var types: [String] = []

    mutating func add(_ values: some Collection<String>) {
        binds.append(Array(values))
        types.append("text[]")
    }
    mutating func add(_ values: some Collection<Int64>) {
        binds.append(Array(values))
        types.append("int8[]")
    }
    mutating func add(_ values: some Collection<Int32>) {
        binds.append(Array(values))
        types.append("int4[]")
    }
    mutating func add(_ values: some Collection<Bool>) {
        binds.append(Array(values))
        types.append("bool[]")
    }

    var unnest: String { "unnest(" + types.indices.map { "$\($0 + 1)::\(types[$0])" }.joined(separator: ", ") + ")" }
}
