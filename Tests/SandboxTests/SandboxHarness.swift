import Foundation
import GRDB
import MarginDefaults
import MarginEngine
import MarginStore
import MarginTestSupport
import Testing

@testable import Sandbox

/// A sandbox on an in-memory database with a controllable clock, driven through ``SandboxAPI/handle(_:)``.
final class SandboxHarness: @unchecked Sendable {
    /// 2026-11-27T00:00:00Z.
    static let startTime: Int64 = 1_795_737_600_000
    let clock = ManualClock(startTime)
    /// The ledger: SQLite in memory unless a test gives another store.
    let store: any LedgerStore
    /// The SQLite ledger, for the tests that read its tables directly (every harness but a PostgreSQL one).
    var database: AppDatabase { store as! AppDatabase }
    let exchange: Exchange
    let simulator: MarketSimulator
    let api: SandboxAPI

    init(
        market: MarketSnapshot = Fixtures.calmMarket, rateLimit: Double = 10_000, timestampWindowSeconds: Int = 30,
        database: AppDatabase? = nil,
        store: (any LedgerStore)? = nil, metrics: SandboxMetrics = SandboxMetrics()
    ) throws {
        self.store = try store ?? database ?? AppDatabase.inMemory()
        let clock = clock
        exchange = try Exchange(
            database: self.store, secrets: SecretBox(keyBytes: Array(repeating: 7, count: 32)), catalog: Fixtures.catalog,
            parameters: Fixtures.parameters, market: market, clock: { clock.now }, metrics: metrics)
        simulator = try MarketSimulator(exchange: exchange, base: market, mode: .staticSnapshot, database: self.store)
        api = SandboxAPI(
            exchange: exchange, adminToken: "admin-token", simulator: simulator, timestampWindowSeconds: timestampWindowSeconds,
            rateLimitPerSecond: rateLimit, clock: { clock.now })
    }

    struct Credentials {
        var uid, apiKey, secret, passphrase: String
    }

    func account(_ deposits: [(String, String)] = [("USDT", "100000")]) async throws -> Credentials {
        let created = try await exchange.createAccount(deposits: deposits.map { ($0.0, ExactDecimal($0.1) ?? .zero) })
        return Credentials(uid: created.uid, apiKey: created.apiKey, secret: created.secretKey, passphrase: created.passphrase)
    }

    static func isoTimestamp(_ milliseconds: Int64) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date(timeIntervalSince1970: Double(milliseconds) / 1000))
    }

    /// A signed request as an OKX client sends it.
    func request(
        _ method: String, _ target: String, body: String = "", as credentials: Credentials?, timestamp: Int64? = nil,
        headers overrides: [String: String] = [:], loopback: Bool = true
    ) -> APIRequest {
        var headers: [String: String] = [:]
        if let credentials {
            let stamp = Self.isoTimestamp(timestamp ?? clock.now)
            headers["ok-access-key"] = credentials.apiKey
            headers["ok-access-passphrase"] = credentials.passphrase
            headers["ok-access-timestamp"] = stamp
            headers["ok-access-sign"] = okxSignature(
                secret: credentials.secret, timestamp: stamp, method: method, requestPath: target, body: Array(body.utf8))
        }
        for (name, value) in overrides { headers[name.lowercased()] = value }
        return APIRequest(method: method, target: target, body: Array(body.utf8), headers: headers, remoteIsLoopback: loopback)
    }

    func call(_ method: String, _ target: String, body: String = "", as credentials: Credentials?) async -> APIResponse {
        clock.advance(1)
        return await api.handle(request(method, target, body: body, as: credentials))
    }

    /// Every bill of an account summed per currency equals its balance (the ledger balances).
    func ledgerBalances(_ uid: String) async throws -> Bool {
        let bills = try await database.writer.read { db in try BillRecord.filter(Column("uid") == uid).fetchAll(db) }
        var sums: [String: ExactDecimal] = [:]
        for bill in bills { sums[bill.ccy, default: .zero] += ExactDecimal(bill.balChg) ?? .zero }
        let balances = try await database.writer.read { db in try BalanceRecord.filter(Column("uid") == uid).fetchAll(db) }
        for balance in balances where (ExactDecimal(balance.cashBal) ?? .zero) != (sums[balance.ccy] ?? .zero) { return false }
        return true
    }
}

extension SandboxHarness {
    /// Per currency, what the stored ledger misses to conserve cash: Σ account balances + insurance fund + house
    /// − Σ deposits (bill type 1), for every currency where that is not exactly zero; and the same for the
    /// exchange's in-memory fund and house against the stored ones. Empty when cash is conserved.
    func cashImbalances() async throws -> [String] {
        let (balances, fund, house, deposits) = try await database.writer.read { db in
            (
                try BalanceRecord.fetchAll(db), try InsuranceFundRecord.fetchAll(db), try HouseRecord.fetchAll(db),
                try BillRecord.filter(Column("type") == "1").fetchAll(db)
            )
        }
        var total: [String: ExactDecimal] = [:]
        for row in balances { total[row.ccy, default: .zero] += ExactDecimal(row.cashBal) ?? .zero }
        for row in fund { total[row.ccy, default: .zero] += ExactDecimal(row.balance) ?? .zero }
        for row in house { total[row.ccy, default: .zero] += ExactDecimal(row.balance) ?? .zero }
        for bill in deposits { total[bill.ccy, default: .zero] -= ExactDecimal(bill.balChg) ?? .zero }
        var problems = total.filter { !$0.value.isZero }.sorted { $0.key < $1.key }.map { "\($0.key) off by \($0.value)" }
        let memoryFund = await exchange.insuranceFundBalances().filter { !$0.value.isZero }
        let memoryHouse = await exchange.houseBalances().filter { !$0.value.isZero }
        // The fund and the house are the sums of their rows (one per partition and currency).
        let storedFund = Dictionary(fund.map { ($0.ccy, ExactDecimal($0.balance) ?? .zero) }, uniquingKeysWith: +).filter {
            !$0.value.isZero
        }
        let storedHouse = Dictionary(house.map { ($0.ccy, ExactDecimal($0.balance) ?? .zero) }, uniquingKeysWith: +).filter {
            !$0.value.isZero
        }
        if memoryFund != storedFund { problems.append("insurance fund in memory \(memoryFund) != stored \(storedFund)") }
        if memoryHouse != storedHouse { problems.append("house in memory \(memoryHouse) != stored \(storedHouse)") }
        return problems
    }
}

/// A clock that only moves when told to.
final class ManualClock: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Int64
    init(_ start: Int64) { value = start }
    var now: Int64 { lock.withLock { value } }
    func advance(_ milliseconds: Int64) { lock.withLock { value += milliseconds } }
}

extension APIResponse {
    var code: String? { envelope[member: "code"]?.scalarText }
    var message: String { envelope[member: "msg"]?.scalarText ?? "" }
    var data: [JSONValue] { envelope[member: "data"]?.arrayItems ?? [] }
    var first: JSONValue? { data.first }
}
