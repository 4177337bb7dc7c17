import Foundation
import GRDB
import MarginEngine

/// An account of the sandbox. `acctLv` is OKX's level ("3" classic, "4" portfolio margin).
public struct AccountRecord: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "account"
    public var uid: String
    public var acctLv: String
    public var acknowledged: Bool
    public var autoLoan: Bool
    public var label: String
    public var createdAt: Int64

    public init(uid: String, acctLv: String, acknowledged: Bool, autoLoan: Bool, label: String, createdAt: Int64) {
        self.uid = uid
        self.acctLv = acctLv
        self.acknowledged = acknowledged
        self.autoLoan = autoLoan
        self.label = label
        self.createdAt = createdAt
    }
}

/// An API key: its secret encrypted at rest, its passphrase hashed, its permissions (`read`, `read,trade`).
public struct APIKeyRecord: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "apiKey"
    public var apiKey: String
    public var uid: String
    public var secretCipher: Data
    public var passphraseHash: String
    public var permissions: String
    public var label: String
    public var createdAt: Int64

    public init(
        apiKey: String, uid: String, secretCipher: Data, passphraseHash: String, permissions: String, label: String, createdAt: Int64
    ) {
        self.apiKey = apiKey
        self.uid = uid
        self.secretCipher = secretCipher
        self.passphraseHash = passphraseHash
        self.permissions = permissions
        self.label = label
        self.createdAt = createdAt
    }
}

/// A cash balance (exact decimal text).
public struct BalanceRecord: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "balance"
    public var uid: String
    public var ccy: String
    public var cashBal: String

    public init(uid: String, ccy: String, cashBal: String) {
        self.uid = uid
        self.ccy = ccy
        self.cashBal = cashBal
    }
}

/// A net position in contracts (coins for none: spot is a balance).
public struct PositionRecord: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "position"
    public var uid: String
    public var instId: String
    public var pos: String
    public var avgPx: String
    public var lever: String
    public var cTime: Int64
    public var uTime: Int64

    public init(uid: String, instId: String, pos: String, avgPx: String, lever: String, cTime: Int64, uTime: Int64) {
        self.uid = uid
        self.instId = instId
        self.pos = pos
        self.avgPx = avgPx
        self.lever = lever
        self.cTime = cTime
        self.uTime = uTime
    }
}

/// An order, in OKX's vocabulary (`state`: live, partially_filled, filled, canceled).
public struct OrderRecord: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "order"
    public var ordId: Int64
    public var uid: String
    public var clOrdId: String
    public var instId: String
    public var tdMode: TradeMode
    public var side: OrderSide
    public var ordType: OrderType
    public var px: String
    public var sz: String
    public var tgtCcy: String
    public var reduceOnly: Bool
    public var state: OrderState
    public var accFillSz: String
    public var avgPx: String
    public var fee: String
    public var feeCcy: String
    public var category: OrderCategory
    public var tag: String
    public var cTime: Int64
    public var uTime: Int64

    public init(
        ordId: Int64, uid: String, clOrdId: String, instId: String, tdMode: TradeMode, side: OrderSide, ordType: OrderType, px: String,
        sz: String, tgtCcy: String, reduceOnly: Bool, state: OrderState, accFillSz: String, avgPx: String, fee: String,
        feeCcy: String, category: OrderCategory, tag: String, cTime: Int64, uTime: Int64
    ) {
        self.ordId = ordId
        self.uid = uid
        self.clOrdId = clOrdId
        self.instId = instId
        self.tdMode = tdMode
        self.side = side
        self.ordType = ordType
        self.px = px
        self.sz = sz
        self.tgtCcy = tgtCcy
        self.reduceOnly = reduceOnly
        self.state = state
        self.accFillSz = accFillSz
        self.avgPx = avgPx
        self.fee = fee
        self.feeCcy = feeCcy
        self.category = category
        self.tag = tag
        self.cTime = cTime
        self.uTime = uTime
    }

    public var isOpen: Bool { state.isOpen }
}

extension OrderRecord {
    static let columns = [
        "ordId", "uid", "clOrdId", "instId", "tdMode", "side", "ordType", "px", "sz", "tgtCcy", "reduceOnly", "state", "accFillSz",
        "avgPx", "fee", "feeCcy", "category", "tag", "cTime", "uTime",
    ]
    static let upsertSQL = """
        INSERT INTO "order" (\(columns.map { "\"\($0)\"" }.joined(separator: ", ")))
        VALUES (\(columns.map { _ in "?" }.joined(separator: ", ")))
        ON CONFLICT("ordId") DO UPDATE SET \(columns.dropFirst().map { "\"\($0)\" = excluded.\"\($0)\"" }.joined(separator: ", "))
        """

    /// Inserts the order, or updates every column of the stored one with its `ordId`, in one cached
    /// statement. GRDB's `save` ran an UPDATE that missed for every new order and then an INSERT, encoding
    /// the record through `Codable` and compiling the SQL each time: an eighth of the sandbox's CPU per
    /// order under load.
    public func store(in db: Database) throws {
        let arguments: StatementArguments = [
            ordId, uid, clOrdId, instId, tdMode, side, ordType, px, sz, tgtCcy, reduceOnly, state, accFillSz, avgPx, fee, feeCcy,
            category, tag, cTime, uTime,
        ]
        try db.cachedStatement(sql: Self.upsertSQL).execute(arguments: arguments)
    }
}

/// A fill (trade) of an order. `fee` is negative when charged, as OKX reports it.
public struct FillRecord: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "fill"
    public var tradeId: Int64
    public var ordId: Int64
    public var uid: String
    public var clOrdId: String
    public var instId: String
    public var side: OrderSide
    public var fillPx: String
    public var fillSz: String
    public var fee: String
    public var feeCcy: String
    public var pnl: String
    public var execType: String
    public var category: OrderCategory
    public var ts: Int64

    public init(
        tradeId: Int64, ordId: Int64, uid: String, clOrdId: String, instId: String, side: OrderSide, fillPx: String, fillSz: String,
        fee: String, feeCcy: String, pnl: String, execType: String, category: OrderCategory, ts: Int64
    ) {
        self.tradeId = tradeId
        self.ordId = ordId
        self.uid = uid
        self.clOrdId = clOrdId
        self.instId = instId
        self.side = side
        self.fillPx = fillPx
        self.fillSz = fillSz
        self.fee = fee
        self.feeCcy = feeCcy
        self.pnl = pnl
        self.execType = execType
        self.category = category
        self.ts = ts
    }
}

/// A ledger entry: every change of a cash balance is one bill, and `bal` is the balance after it.
///
/// Types follow OKX's bill types: 1 transfer (deposit), 2 trade, 3 delivery, 5 liquidation, 7 interest,
/// 8 funding fee; plus 102 insurance fund (deficit cover) of ours.
public struct BillRecord: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "bill"
    public var billId: Int64
    public var uid: String
    public var ccy: String
    public var balChg: String
    public var bal: String
    public var type: BillType
    public var subType: String
    public var instId: String
    public var ordId: String
    public var pnl: String
    public var fee: String
    public var sz: String
    public var px: String
    public var notes: String
    public var ts: Int64

    public init(
        billId: Int64, uid: String, ccy: String, balChg: String, bal: String, type: BillType, subType: String, instId: String,
        ordId: String, pnl: String, fee: String, sz: String, px: String, notes: String, ts: Int64
    ) {
        self.billId = billId
        self.uid = uid
        self.ccy = ccy
        self.balChg = balChg
        self.bal = bal
        self.type = type
        self.subType = subType
        self.instId = instId
        self.ordId = ordId
        self.pnl = pnl
        self.fee = fee
        self.sz = sz
        self.px = px
        self.notes = notes
        self.ts = ts
    }
}

/// Interest accrued but not yet capitalised, and the total ever charged, per account and currency.
public struct InterestRecord: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "interest"
    public var uid: String
    public var ccy: String
    public var pending: String
    public var accrued: String

    public init(uid: String, ccy: String, pending: String, accrued: String) {
        self.uid = uid
        self.ccy = ccy
        self.pending = pending
        self.accrued = accrued
    }
}

/// The insurance fund's balance per currency, one row per partition (``LedgerPartitions``): what the accounts of
/// that partition paid in and drew. The fund is their sum; a SQLite ledger has one partition.
public struct InsuranceFundRecord: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "insuranceFund"
    public var partition: Int
    public var ccy: String
    public var balance: String

    public init(partition: Int = 0, ccy: String, balance: String) {
        self.partition = partition
        self.ccy = ccy
        self.balance = balance
    }
}

/// The house's balance per currency. The sandbox is the counterparty of every trade (fills against its simulated
/// book), of funding and of expiry settlement, and buys the collateral a liquidation sells; what it receives is
/// added here and what it pays is subtracted, in the same transaction as the bills it mirrors. With it, per
/// currency, Σ account balances + insurance fund + house = Σ deposits, exactly. One row per partition and currency,
/// as the fund's: the house's side of the movements of that partition's accounts; the house is their sum.
public struct HouseRecord: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "house"
    public var partition: Int
    public var ccy: String
    public var balance: String

    public init(partition: Int = 0, ccy: String, balance: String) {
        self.partition = partition
        self.ccy = ccy
        self.balance = balance
    }
}

/// A named setting of the sandbox (market mode and time, simulator state).
public struct SettingRecord: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "setting"
    public var key: String
    public var value: String

    public init(key: String, value: String) {
        self.key = key
        self.value = value
    }
}

// MARK: - Writing in bulk

/// Cached, compiled statements for the rows a commit writes (a funding tick writes a million bills and
/// balances in one transaction; encoding each through `Codable` and compiling its SQL took most of its time).
extension FillRecord {
    public func insert(into db: Database) throws {
        try db.cachedStatement(
            sql: """
                INSERT INTO fill (tradeId, ordId, uid, clOrdId, instId, side, fillPx, fillSz, fee, feeCcy, pnl, execType, category, ts)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """
        ).execute(arguments: [tradeId, ordId, uid, clOrdId, instId, side, fillPx, fillSz, fee, feeCcy, pnl, execType, category, ts])
    }
}

extension BillRecord {
    static let columnCount = 15
    static let rowsPerStatement = 64

    /// Inserts `bills` numbered from `firstID`, 64 rows per statement (a funding tick writes a million).
    public static func insert(_ bills: [BillRecord], firstID: Int64, into db: Database) throws {
        var start = 0
        while bills.count - start >= rowsPerStatement {
            let placeholders = Array(repeating: "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", count: rowsPerStatement).joined(
                separator: ", ")
            let statement = try db.cachedStatement(
                sql: """
                    INSERT INTO bill (billId, uid, ccy, balChg, bal, type, subType, instId, ordId, pnl, fee, sz, px, notes, ts) VALUES \(placeholders)
                    """)
            var values: [(any DatabaseValueConvertible)?] = []
            values.reserveCapacity(rowsPerStatement * columnCount)
            for offset in start..<(start + rowsPerStatement) {
                let bill = bills[offset]
                values +=
                    [
                        firstID + Int64(offset), bill.uid, bill.ccy, bill.balChg, bill.bal, bill.type, bill.subType, bill.instId,
                        bill.ordId,
                        bill.pnl, bill.fee, bill.sz, bill.px, bill.notes, bill.ts,
                    ] as [(any DatabaseValueConvertible)?]
            }
            try statement.execute(arguments: StatementArguments(values))
            start += rowsPerStatement
        }
        for offset in start..<bills.count {
            var numbered = bills[offset]
            numbered.billId = firstID + Int64(offset)
            try numbered.insert(into: db)
        }
    }

    public func insert(into db: Database) throws {
        try db.cachedStatement(
            sql: """
                INSERT INTO bill (billId, uid, ccy, balChg, bal, type, subType, instId, ordId, pnl, fee, sz, px, notes, ts)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """
        ).execute(arguments: [billId, uid, ccy, balChg, bal, type, subType, instId, ordId, pnl, fee, sz, px, notes, ts])
    }
}

extension BalanceRecord {
    /// Inserts or replaces the balance of (uid, ccy).
    public func store(in db: Database) throws {
        try db.cachedStatement(
            sql: """
                INSERT INTO balance (uid, ccy, cashBal) VALUES (?, ?, ?) ON CONFLICT(uid, ccy) DO UPDATE SET cashBal = excluded.cashBal
                """
        ).execute(arguments: [uid, ccy, cashBal])
    }
}

extension PositionRecord {
    /// Inserts or replaces the position of (uid, instId).
    public func store(in db: Database) throws {
        try db.cachedStatement(
            sql: """
                INSERT INTO position (uid, instId, pos, avgPx, lever, cTime, uTime) VALUES (?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(uid, instId) DO UPDATE SET pos = excluded.pos, avgPx = excluded.avgPx, lever = excluded.lever,
                cTime = excluded.cTime, uTime = excluded.uTime
                """
        ).execute(arguments: [uid, instId, pos, avgPx, lever, cTime, uTime])
    }

    public static func delete(uid: String, instId: String, in db: Database) throws {
        try db.cachedStatement(sql: "DELETE FROM position WHERE uid = ? AND instId = ?").execute(arguments: [uid, instId])
    }
}

extension InterestRecord {
    public func store(in db: Database) throws {
        try db.cachedStatement(
            sql: """
                INSERT INTO interest (uid, ccy, pending, accrued) VALUES (?, ?, ?, ?)
                ON CONFLICT(uid, ccy) DO UPDATE SET pending = excluded.pending, accrued = excluded.accrued
                """
        ).execute(arguments: [uid, ccy, pending, accrued])
    }
}

extension SettingRecord {
    public func store(in db: Database) throws {
        try db.cachedStatement(sql: "INSERT INTO setting (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value")
            .execute(arguments: [key, value])
    }
}
