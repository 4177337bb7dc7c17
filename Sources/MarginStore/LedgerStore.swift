import Foundation
import MarginEngine

/// Where the sandbox keeps its ledger, as `--db` names it: a SQLite file (a plain path or `sqlite:PATH`, the
/// embedded default) or a PostgreSQL database (`postgres://USER@HOST:PORT/DB`, also `postgresql://`).
///
/// Any other scheme is refused rather than taken for a file name: `mysql://h/db` would otherwise become a
/// SQLite file under a folder named `mysql:`.
public enum LedgerLocation: Sendable, Equatable, CustomStringConvertible {
    case sqlite(path: String)
    case postgres(PostgresAddress)

    public init(parsing text: String) throws {
        if text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") {
            self = .postgres(try PostgresAddress(parsing: text))
            return
        }
        if text.hasPrefix("sqlite:") {
            var path = String(text.dropFirst("sqlite:".count))
            // sqlite:///abs/path and sqlite://rel are URL spellings of the same file.
            if path.hasPrefix("//") { path = String(path.dropFirst(2)) }
            guard !path.isEmpty else { throw LedgerLocationError("\(text): no file after sqlite:") }
            self = .sqlite(path: path)
            return
        }
        // A scheme is letters, digits, +, - or . before "://" (RFC 3986); a path such as ./a:b/c has none.
        if let separator = text.range(of: "://") {
            let scheme = text[..<separator.lowerBound]
            if !scheme.isEmpty, scheme.allSatisfy({ $0.isLetter || $0.isNumber || "+-.".contains($0) }) {
                throw LedgerLocationError(
                    "\(text): unsupported database scheme \(scheme):// (use a SQLite file path, sqlite:PATH, or postgres://USER@HOST:PORT/DB)"
                )
            }
        }
        guard !text.isEmpty else { throw LedgerLocationError("the database path is empty") }
        self = .sqlite(path: text)
    }

    public var description: String {
        switch self {
        case .sqlite(let path): path
        case .postgres(let address): address.description
        }
    }
}

/// Whether and how the connection to PostgreSQL is encrypted: libpq's `sslmode` values (its `allow` is not
/// offered). `disable` is the default here (libpq's is `prefer`, which neither insists on encryption nor checks
/// the server): name `require` or `verify-full` for a server reached over a network.
public enum PostgresTLSMode: String, Sendable, CaseIterable {
    /// Plain TCP.
    case disable
    /// TLS when the server offers it, plain otherwise; the server's certificate is not checked.
    case prefer
    /// TLS or no connection; the server's certificate is not checked (encryption against eavesdroppers only).
    case require
    /// TLS, and the server's certificate must chain to a trusted root (`sslrootcert`, else the system's).
    case verifyCA = "verify-ca"
    /// As `verify-ca`, and the certificate must name the host connected to (a DNS name or IP address).
    case verifyFull = "verify-full"
}

/// A PostgreSQL database named by a URL: `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=MODE[&sslrootcert=PATH]]`.
public struct PostgresAddress: Sendable, Equatable, CustomStringConvertible {
    public var user: String
    public var password: String?
    public var host: String
    public var port: Int
    public var database: String
    public var tls: PostgresTLSMode
    /// The certificate (PEM) of the root a verifying mode trusts instead of the system's.
    public var rootCertificatePath: String?

    public init(
        user: String, password: String? = nil, host: String, port: Int = 5432, database: String, tls: PostgresTLSMode = .disable,
        rootCertificatePath: String? = nil
    ) {
        self.user = user
        self.password = password
        self.host = host
        self.port = port
        self.database = database
        self.tls = tls
        self.rootCertificatePath = rootCertificatePath
    }

    public init(parsing text: String) throws {
        guard let separator = text.range(of: "://") else { throw LedgerLocationError("\(text): not a postgres:// URL") }
        var rest = Substring(text[separator.upperBound...])
        if rest.contains("#") { throw LedgerLocationError("\(text): a fragment (#…) means nothing here") }
        var tls = PostgresTLSMode.disable
        var rootCertificatePath: String?
        if let question = rest.firstIndex(of: "?") {
            for parameter in rest[rest.index(after: question)...].split(separator: "&") {
                let parts = parameter.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let value = parts.count == 2 ? Self.decode(parts[1]) : nil
                switch parts[0] {
                case "sslmode":
                    guard let value, let mode = PostgresTLSMode(rawValue: value) else {
                        let modes = PostgresTLSMode.allCases.map(\.rawValue).joined(separator: ", ")
                        throw LedgerLocationError("\(text): sslmode must be one of \(modes)")
                    }
                    tls = mode
                case "sslrootcert":
                    guard let value, !value.isEmpty else { throw LedgerLocationError("\(text): sslrootcert needs a file path") }
                    rootCertificatePath = value
                default:
                    throw LedgerLocationError(
                        "\(text): the parameter \(parts[0]) is not supported (only sslmode and sslrootcert; credentials go before the @)")
                }
            }
            rest = rest[..<question]
        }
        if rootCertificatePath != nil, tls != .verifyCA, tls != .verifyFull {
            throw LedgerLocationError("\(text): sslrootcert is only used with sslmode=verify-ca or verify-full")
        }
        guard let slash = rest.firstIndex(of: "/") else {
            throw LedgerLocationError("\(text): no database name (postgres://USER@HOST:PORT/DB)")
        }
        let database = Self.decode(rest[rest.index(after: slash)...])
        rest = rest[..<slash]
        guard let at = rest.lastIndex(of: "@") else { throw LedgerLocationError("\(text): no user (postgres://USER@HOST:PORT/DB)") }
        let credentials = rest[..<at]
        let server = rest[rest.index(after: at)...]
        var user = Self.decode(credentials)
        var password: String?
        if let colon = credentials.firstIndex(of: ":") {
            user = Self.decode(credentials[..<colon])
            password = Self.decode(credentials[credentials.index(after: colon)...])
        }
        var host = String(server)
        var port = 5432
        if let colon = server.lastIndex(of: ":"), !server.hasSuffix("]") {
            host = String(server[..<colon])
            guard let number = Int(server[server.index(after: colon)...]), (1...65_535).contains(number) else {
                throw LedgerLocationError("\(text): the port must be a number from 1 to 65535")
            }
            port = number
        }
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard let database, !database.isEmpty, !database.contains("/") else { throw LedgerLocationError("\(text): no database name") }
        guard let user, !user.isEmpty else { throw LedgerLocationError("\(text): no user name") }
        guard !host.isEmpty else { throw LedgerLocationError("\(text): no host") }
        self.init(
            user: user, password: password, host: host, port: port, database: database, tls: tls, rootCertificatePath: rootCertificatePath)
    }

    private static func decode(_ text: Substring) -> String? { String(text).removingPercentEncodingIfPresent }

    /// The URL without its password.
    public var description: String {
        let shownHost = host.contains(":") ? "[\(host)]" : host
        var text = "postgres://\(user)@\(shownHost):\(port)/\(database)"
        if tls != .disable { text += "?sslmode=\(tls.rawValue)" }
        if let rootCertificatePath { text += "&sslrootcert=\(rootCertificatePath)" }
        return text
    }
}

extension String {
    /// `%XX` sequences decoded (UTF-8), or nil when one is malformed; Foundation-free, so the store's
    /// parsing does not depend on the platform's URL rules.
    var removingPercentEncodingIfPresent: String? {
        guard contains("%") else { return self }
        var bytes: [UInt8] = []
        var iterator = utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next(), let low = iterator.next(),
                let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)
            else { return nil }
            bytes.append(value)
        }
        return String(validating: bytes, as: UTF8.self)
    }
}

public struct LedgerLocationError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// An account's client order id (`clOrdId`).
public struct ClientOrderKey: Hashable, Sendable {
    public var uid: String
    public var clOrdId: String

    public init(uid: String, clOrdId: String) {
        self.uid = uid
        self.clOrdId = clOrdId
    }
}

/// The first ids a committed write gave its bills and fills (numbered consecutively from them, in the order
/// given); 0 when it wrote none.
public struct LedgerIDs: Sendable, Equatable {
    public var firstBillID: Int64
    public var firstTradeID: Int64

    public init(firstBillID: Int64, firstTradeID: Int64) {
        self.firstBillID = firstBillID
        self.firstTradeID = firstTradeID
    }
}

/// Receives the ledger as it is stored, row by row, at start-up (``LedgerStore/load(only:into:)``). Decimals
/// arrive as the text they are stored as. Accounts arrive in uid order (byte order of the UTF-8), so that the
/// exchange need not sort a million uids to number its accounts deterministically.
public protocol LedgerVisitor {
    mutating func account(_ record: AccountRecord)
    mutating func balance(uid: String, ccy: String, cashBal: String)
    mutating func position(uid: String, instId: String, pos: String, avgPx: String, cTime: Int64, uTime: Int64)
    /// An order still live or partially filled.
    mutating func openOrder(_ order: OrderRecord)
    mutating func interest(uid: String, ccy: String, pending: String, accrued: String)
    /// A per-account setting: `lever:UID:INSTID` or `siu:UID:CCY`.
    mutating func accountSetting(key: String, value: String)
    /// A partition's row of the fund: those of the partitions loaded, unless one account is.
    mutating func insuranceFund(partition: Int, ccy: String, balance: String)
    /// A partition's row of the house: those of the partitions loaded, unless one account is.
    mutating func house(partition: Int, ccy: String, balance: String)
    /// The largest order id stored (0 when none).
    mutating func largestOrderID(_ id: Int64)
}

/// The writes of one transaction (``LedgerStore/write(_:)``). Rows of a table are written in the order given;
/// a store may send them when the transaction ends, so nothing is read back before then.
public protocol LedgerWriter: AnyObject {
    /// Inserts the account or updates it.
    func save(_ account: AccountRecord) throws
    func store(_ balance: BalanceRecord) throws
    /// Inserts or replaces each cash balance of `rows`, then inserts its bills numbered after the largest stored
    /// `billId`, in the order appended: the bulk path of a funding tick, one chunk at a time.
    func write(_ rows: EncodedLedgerRows) throws
    func store(_ position: PositionRecord) throws
    func deletePosition(uid: String, instId: String) throws
    func store(_ interest: InterestRecord) throws
    func store(_ setting: SettingRecord) throws
    func insert(_ key: APIKeyRecord) throws
    /// Inserts the order or replaces every column of the stored one with its `ordId`.
    func store(_ order: OrderRecord) throws
    /// Inserts fills numbered consecutively after the largest stored `tradeId` (their own ids are ignored).
    func insert(fills: [FillRecord]) throws
    /// Inserts bills numbered consecutively after the largest stored `billId` (their own ids are ignored).
    func insert(bills: [BillRecord]) throws
    func store(_ fund: InsuranceFundRecord) throws
    func store(_ house: HouseRecord) throws
}

/// The sandbox's ledger at rest: SQLite through GRDB (``AppDatabase``, the embedded default) or PostgreSQL
/// (`MarginStorePostgres`).
///
/// The exchange keeps every account in memory; the store is read whole at start-up, then written one change set
/// per transaction (``write(_:)``): all of it is stored, or — when it throws — none of it. Reads of history
/// (orders, fills, bills) and of API keys and settings go to the store. Every method blocks its caller until
/// the store has answered (the exchange's actor waits for its commit, as it always has for SQLite's).
public protocol LedgerStore: Sendable {
    /// How the ledger's accounts are partitioned: one partition on SQLite, ``LedgerPartitions/postgres`` on
    /// PostgreSQL.
    var partitions: LedgerPartitions { get }
    /// Hands the accounts of `partitions` (every partition when nil) with those partitions' fund and house rows, or
    /// only account `uid` (one another process created), to `visitor`. Throws for a partition the ledger does not
    /// have.
    func load(only uid: String?, partitions: [Int]?, into visitor: inout some LedgerVisitor) throws
    /// Runs `body`'s writes in one transaction and commits it. Throws, having stored nothing, when any write or
    /// the commit fails. Bill and trade ids are assigned inside the transaction, after the largest stored ones,
    /// so another process writing the same ledger (`pm account create`) never collides with them.
    @discardableResult
    func write(_ body: (any LedgerWriter) throws -> Void) throws -> LedgerIDs
    /// The API key record, or nil.
    func apiKey(_ key: String) throws -> APIKeyRecord?
    /// The settings whose key starts with `prefix`.
    func settings(prefix: String) throws -> [SettingRecord]
    /// An account's bills, newest first.
    func bills(uid: String, currency: String?, type: String?, limit: Int) throws -> [BillRecord]
    /// Every account's bills of `type` with an id above `billID`, in id order (what a backtest reads after a step).
    func bills(type: BillType, after billID: Int64) throws -> [BillRecord]
    /// Every row of the insurance fund and of the house, of every partition.
    func books() throws -> (fund: [InsuranceFundRecord], house: [HouseRecord])
    /// Which of `keys` name an order already stored (an account's client order id is used once: a retried order is
    /// refused rather than placed twice).
    func storedClientOrderIDs(_ keys: [ClientOrderKey]) throws -> Set<ClientOrderKey>
    /// An account's order on `instId` with this ordId (or, when nil, the newest with this clOrdId).
    func order(uid: String, instId: String, ordId: Int64?, clOrdId: String?) throws -> OrderRecord?
    /// An account's filled and cancelled orders, newest first.
    func closedOrders(uid: String, instId: String?, limit: Int) throws -> [OrderRecord]
    /// An account's fills, newest first.
    func fills(uid: String, instId: String?, ordId: Int64?, limit: Int) throws -> [FillRecord]
}

extension LedgerStore {
    /// Hands the whole ledger, or only account `uid`, to `visitor`.
    public func load(only uid: String?, into visitor: inout some LedgerVisitor) throws {
        try load(only: uid, partitions: nil, into: &visitor)
    }

    /// Throws unless every one of `partitions` is a partition of this ledger.
    public func checkPartitions(_ partitions: [Int]?) throws {
        guard let partitions else { return }
        guard partitions.allSatisfy({ (0..<self.partitions.count).contains($0) }) else {
            throw LedgerLocationError("partitions \(partitions): this ledger has \(self.partitions) (0..<\(self.partitions.count))")
        }
    }
}
