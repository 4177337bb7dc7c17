import MarginEngine
import MarginStore

/// Sandbox control (our extension): loopback only, and the admin token in `X-Sandbox-Admin-Token`.
extension SandboxAPI {
    /// The sandbox control paths (for the metrics' route labels).
    static let adminPaths: Set<String> = [
        "/api/v5/sandbox/account/create", "/api/v5/sandbox/key/create", "/api/v5/sandbox/deposit", "/api/v5/sandbox/acknowledge",
        "/api/v5/sandbox/market/shock", "/api/v5/sandbox/market/step", "/api/v5/sandbox/state",
    ]

    func admin(_ request: inout APIRequest) async throws -> APIResponse {
        guard request.remoteIsLoopback else {
            throw OKXError(.noPermission, "Sandbox control is available on loopback only", httpStatus: 403)
        }
        guard let token = request.headers["x-sandbox-admin-token"],
            constantTimeEqual(Array(token.utf8), Array(adminToken.utf8))
        else { throw OKXError(.invalidSignature, "Invalid or missing X-Sandbox-Admin-Token") }
        let fields = request.method == "POST" ? try BodyFields(try request.jsonBody()) : nil
        switch (request.method, request.path) {
        case ("POST", "/api/v5/sandbox/account/create"):
            var deposits: [(String, ExactDecimal)] = []
            if let list = try fields?.reader.optional("deposits") {
                for item in try list.elements() {
                    let entry = try BodyFields(item.value, path: item.path)
                    guard let amount = try entry.decimal("amt") else { throw OKXError.empty("\(item.path).amt") }
                    deposits.append((try entry.required("ccy"), amount))
                }
            }
            let created = try await exchange.createAccount(label: try fields?.string("label") ?? "", deposits: deposits)
            return .data(
                .array([
                    .object([
                        ("uid", .string(created.uid)), ("apiKey", .string(created.apiKey)), ("secretKey", .string(created.secretKey)),
                        ("passphrase", .string(created.passphrase)),
                    ])
                ]))
        case ("POST", "/api/v5/sandbox/key/create"):
            guard let fields else { throw OKXError.empty("uid") }
            let key = try await exchange.createKey(
                uid: try served(fields.required("uid")), permissions: try fields.string("perm") ?? "read,trade")
            return .data(
                .array([
                    .object([
                        ("apiKey", .string(key.apiKey)), ("secretKey", .string(key.secretKey)), ("passphrase", .string(key.passphrase)),
                    ])
                ]))
        case ("POST", "/api/v5/sandbox/deposit"):
            guard let fields else { throw OKXError.empty("uid") }
            guard let amount = try fields.decimal("amt") else { throw OKXError.empty("amt") }
            try await exchange.deposit(uid: try served(fields.required("uid")), currency: try fields.required("ccy"), amount: amount)
            return .data(.array([]))
        case ("POST", "/api/v5/sandbox/acknowledge"):
            guard let fields else { throw OKXError.empty("uid") }
            try await exchange.acknowledgePortfolioMargin(uid: try served(fields.required("uid")))
            return .data(.array([]))
        case ("POST", "/api/v5/sandbox/market/shock"):
            guard let simulator else { throw OKXError(.internalError, "no market simulator is running") }
            var moves: [String: Double] = [:]
            if let object = try fields?.reader.optional("moves") {
                for coin in try object.objectKeys() {
                    guard let move = try BodyFields(object.value).decimal(coin) else { throw OKXError.empty("moves.\(coin)") }
                    moves[coin] = move.doubleValue
                }
            }
            let seconds = try fields?.decimal("advanceSeconds")?.doubleValue ?? 0
            let report = try await simulator.shock(moves, advanceSeconds: seconds)
            return .data(.array([Self.tickJSON(report)]))
        case ("POST", "/api/v5/sandbox/market/step"):
            guard let simulator else { throw OKXError(.internalError, "no market simulator is running") }
            let report = try await simulator.step()
            return .data(.array(report.map { [Self.tickJSON($0)] } ?? []))
        case ("GET", "/api/v5/sandbox/state"):
            var fund = await exchange.insuranceFundBalances()
            var house = await exchange.houseBalances()
            if exchange.heldPartitions.count < exchange.partitions.count {
                // Other nodes hold some partitions: the ledger's totals, every partition's rows summed.
                let books = try exchange.database.books()
                fund = Dictionary(books.fund.map { ($0.ccy, ExactDecimal($0.balance) ?? .zero) }, uniquingKeysWith: +)
                house = Dictionary(books.house.map { ($0.ccy, ExactDecimal($0.balance) ?? .zero) }, uniquingKeysWith: +)
            }
            let market = await exchange.market
            return .data(
                .array([
                    .object([
                        ("accounts", .string(String(await exchange.accountIDs.count))),
                        ("marketTs", .string(String(market.valuationTime.rawValue))),
                        ("insuranceFund", .object(fund.keys.sorted().map { ($0, .string(fund[$0]?.description ?? "0")) })),
                        ("house", .object(house.keys.sorted().map { ($0, .string(house[$0]?.description ?? "0")) })),
                    ])
                ]))
        default:
            throw OKXError(.notFound, "Not Found: \(request.path)")
        }
    }

    /// `uid` when this node serves it; with several nodes, an account another node serves is refused with 50001
    /// (its node changes it), not reported unknown.
    func served(_ uid: String) throws -> String {
        guard exchange.holds(uid) else {
            throw OKXError(.serviceUnavailable, "Service temporarily unavailable: account \(uid) is served by another node; call that node")
        }
        return uid
    }

    static func tickJSON(_ report: TickReport) -> JSONValue {
        .object([
            ("marketTs", .string(String(report.marketTime.rawValue))), ("restingFills", .string(String(report.restingFills))),
            ("fundingPayments", .string(String(report.fundingPayments))), ("settlements", .string(String(report.settlements))),
            ("interestBills", .string(String(report.interestBills))), ("remarginedAccounts", .string(String(report.remarginedAccounts))),
            ("liquidated", .array(report.liquidatedAccounts.map(JSONValue.string))),
        ])
    }
}
