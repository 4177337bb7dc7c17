import Foundation
import MarginEngine
import MarginStore

/// The result of one API call: OKX's envelope and the HTTP status.
public struct APIResponse: Sendable {
    public var status: Int
    public var envelope: JSONValue

    public init(status: Int, envelope: JSONValue) {
        self.status = status
        self.envelope = envelope
    }

    package static func data(_ data: JSONValue, code: String = "0", msg: String = "") -> APIResponse {
        APIResponse(status: 200, envelope: .object([("code", .string(code)), ("msg", .string(msg)), ("data", data)]))
    }

    public static func error(_ error: OKXError) -> APIResponse {
        APIResponse(
            status: error.httpStatus,
            envelope: .object([("code", .string(error.code.rawValue)), ("msg", .string(error.message)), ("data", .array([]))]))
    }
}

/// Routes OKX v5 paths to the exchange. Every answer is an OKX envelope; no request can crash the server.
public struct SandboxAPI: Sendable {
    package let exchange: Exchange
    /// Wall-clock Unix milliseconds: the one clock of authentication (REST and WebSocket), the rate limiter
    /// and `GET /api/v5/public/time`, so a client that sets its clock from the server's time lands inside
    /// the timestamp window.
    let clock: @Sendable () -> Int64
    /// The one authenticator of REST requests and WebSocket logins (``WebSocketSession``).
    let authenticator: Authenticator
    let rateLimiter: RateLimiter
    /// The admin token of the sandbox control endpoints (loopback only).
    package let adminToken: String
    let simulator: MarketSimulator?
    /// The route tables, built once (they were rebuilt on every request).
    let publicRoutes: [String: Handler]
    let publicPostRoutes: [String: Handler]
    let privateRoutes: [String: (trade: Bool, handler: Handler)]
    /// The paths of ``privateRoutes`` (whatever the method).
    let privatePaths: Set<String>
    /// Sends a request for an account of a partition another node holds to that node (nil: the exchange holds every
    /// partition).
    let forwarder: (any RequestForwarder)?

    /// The API of `exchange`. `clock` (Unix milliseconds) defaults to the exchange's own, so that by default
    /// one clock stamps records, checks signatures and answers `public/time`.
    public init(
        exchange: Exchange, adminToken: String, simulator: MarketSimulator? = nil, timestampWindowSeconds: Int = 30,
        rateLimitPerSecond: Double = 500, clock: (@Sendable () -> Int64)? = nil, upstream: UpstreamMarket? = nil,
        forwarder: (any RequestForwarder)? = nil
    ) {
        self.forwarder = forwarder
        let clock = clock ?? exchange.clock
        self.exchange = exchange
        self.adminToken = adminToken
        self.simulator = simulator
        self.clock = clock
        authenticator = Authenticator(exchange: exchange, windowMilliseconds: Int64(timestampWindowSeconds) * 1000, clock: clock)
        rateLimiter = RateLimiter(capacity: rateLimitPerSecond, perSecond: rateLimitPerSecond, clock: clock)
        var routes = Self.publicRoutes(exchange, clock: clock)
        // OKX's maintenance events; a followed upstream that stopped answering is one (``UpstreamMarket``).
        routes["/api/v5/system/status"] = { request in .data(await upstream?.statusView(state: request.parameter("state")) ?? .array([])) }
        publicRoutes = routes
        publicPostRoutes = Self.publicPostRoutes(exchange)
        privateRoutes = Self.privateRoutes(exchange)
        privatePaths = Set(privateRoutes.keys.compactMap { $0.split(separator: " ", maxSplits: 1).last.map(String.init) })
    }

    typealias Handler = @Sendable (inout APIRequest) async throws -> APIResponse

    /// Public GET routes; `public/time` answers `clock`, the clock that checks signatures.
    static func publicRoutes(_ exchange: Exchange, clock: @escaping @Sendable () -> Int64) -> [String: Handler] {
        [
            "/api/v5/public/time": { _ in .data(.array([.object([("ts", .string(String(clock())))])])) },
            "/api/v5/public/instruments": { request in
                guard let type = request.parameter("instType") else { throw OKXError.empty("instType") }
                return .data(
                    try await exchange.instrumentsView(
                        instType: type, uly: request.parameter("uly"), instFamily: request.parameter("instFamily"),
                        instId: request.parameter("instId")))
            },
            "/api/v5/public/underlying": { request in
                let type = request.parameter("instType") ?? "SWAP"
                let families = Set(try await exchange.instruments(type: type, family: nil, id: nil).map(\.id.family)).sorted()
                return .data(.array([.array(families.map(JSONValue.string))]))
            },
            "/api/v5/public/mark-price": { request in
                .data(
                    try await exchange.markPriceView(
                        instType: request.parameter("instType"), family: request.parameter("instFamily") ?? request.parameter("uly"),
                        instId: request.parameter("instId")))
            },
            "/api/v5/public/opt-summary": { request in
                guard let family = request.parameter("instFamily") ?? request.parameter("uly") else { throw OKXError.empty("instFamily") }
                return .data(try await exchange.optionSummaryView(family: family, expiryDate: request.parameter("expTime")))
            },
            "/api/v5/public/funding-rate": { request in
                guard let id = request.parameter("instId") else { throw OKXError.empty("instId") }
                return .data(try await exchange.fundingRateView(instId: id))
            },
            "/api/v5/public/discount-rate-interest-free-quota": { request in
                .data(await exchange.discountView(currency: request.parameter("ccy")))
            },
            "/api/v5/public/position-tiers": { request in
                guard let type = request.parameter("instType") else { throw OKXError.empty("instType") }
                return .data(
                    try await exchange.positionTiersView(
                        instType: type, family: request.parameter("instFamily") ?? request.parameter("uly"),
                        instId: request.parameter("instId")))
            },
            "/api/v5/public/pm-risk-parameters": { _ in .data(await exchange.riskParametersView()) },
            "/api/v5/market/ticker": { request in
                guard let id = request.parameter("instId") else { throw OKXError.empty("instId") }
                return .data(try await exchange.tickerView(instId: id))
            },
            "/api/v5/market/tickers": { request in
                guard let type = request.parameter("instType") else { throw OKXError.empty("instType") }
                return .data(
                    try await exchange.tickersView(instType: type, family: request.parameter("instFamily") ?? request.parameter("uly")))
            },
            "/api/v5/market/books": { request in try await Self.books(request, exchange) },
            "/api/v5/market/books-full": { request in try await Self.books(request, exchange) },
            "/api/v5/market/index-tickers": { request in
                .data(
                    try await exchange.indexTickersView(instId: request.parameter("instId"), quoteCurrency: request.parameter("quoteCcy")))
            },
        ]
    }

    /// Public position-builder routes (ours): simulated portfolios only, for the web page and tools.
    static func publicPostRoutes(_ exchange: Exchange) -> [String: Handler] {
        [
            "/api/v5/public/position-builder": { request in
                .data(try await exchange.publicPositionBuilder(body: try request.jsonBody(), kind: .build))
            },
            "/api/v5/public/position-builder-graph": { request in
                .data(try await exchange.publicPositionBuilder(body: try request.jsonBody(), kind: .graph))
            },
            "/api/v5/public/position-builder-compare": { request in
                .data(try await exchange.publicPositionBuilder(body: try request.jsonBody(), kind: .compare))
            },
        ]
    }

    static func books(_ request: APIRequest, _ exchange: Exchange) async throws -> APIResponse {
        guard let id = request.parameter("instId") else { throw OKXError.empty("instId") }
        var depth = 1
        if let text = request.parameter("sz") {
            guard let value = Int(text), value >= 1, value <= 5000 else {
                throw OKXError.parameter("sz \(text) must be a whole number 1–5000")
            }
            depth = value
        }
        return .data(try await exchange.bookView(instId: id, depth: depth))
    }

    static func limit(_ request: APIRequest) throws -> Int {
        guard let text = request.parameter("limit") else { return 100 }
        guard let value = Int(text), value >= 1 else { throw OKXError.parameter("limit \(text) must be a positive whole number") }
        return min(value, 100)
    }

    /// Private routes: (method, path) → (needs trade permission, handler).
    static func privateRoutes(_ exchange: Exchange) -> [String: (trade: Bool, handler: Handler)] {
        @Sendable func body(_ request: APIRequest) throws -> BodyFields { try BodyFields(try request.jsonBody()) }
        return [
            "GET /api/v5/account/balance": (
                false,
                { request in
                    let filter = request.parameter("ccy").map { Set($0.split(separator: ",").map(String.init)) }
                    return .data(await exchange.balanceView(uid: request.uid, currencies: filter))
                }
            ),
            "GET /api/v5/account/positions": (
                false,
                { request in
                    let ids = request.parameter("instId").map { Set($0.split(separator: ",").map(String.init)) }
                    return .data(await exchange.positionsView(uid: request.uid, instType: request.parameter("instType"), instIds: ids))
                }
            ),
            "GET /api/v5/account/config": (
                false, { request in .data(await exchange.configView(uid: request.uid, permissions: request.permissions)) }
            ),
            "GET /api/v5/account/bills": (
                false,
                { request in
                    .data(
                        try await exchange.billsView(
                            uid: request.uid, currency: request.parameter("ccy"), type: request.parameter("type"),
                            limit: try Self.limit(request)))
                }
            ),
            "GET /api/v5/account/bills-archive": (
                false,
                { request in
                    .data(
                        try await exchange.billsView(
                            uid: request.uid, currency: request.parameter("ccy"), type: request.parameter("type"),
                            limit: try Self.limit(request)))
                }
            ),
            "GET /api/v5/account/risk-state": (false, { request in .data(await exchange.riskStateView(uid: request.uid)) }),
            "GET /api/v5/account/interest-accrued": (false, { request in .data(try await exchange.interestAccruedView(uid: request.uid)) }),
            "GET /api/v5/account/interest-rate": (
                false, { request in .data(await exchange.interestRateView(currency: request.parameter("ccy"))) }
            ),
            "GET /api/v5/account/leverage-info": (
                false,
                { request in
                    guard let ids = request.parameter("instId") else { throw OKXError.empty("instId") }
                    return .data(try await exchange.leverageView(uid: request.uid, instIds: ids.split(separator: ",").map(String.init)))
                }
            ),
            "GET /api/v5/account/max-size": (
                false,
                { request in
                    guard let id = request.parameter("instId") else { throw OKXError.empty("instId") }
                    return .data(try await exchange.maxSizeView(uid: request.uid, instId: id))
                }
            ),
            "GET /api/v5/account/max-withdrawal": (
                false,
                { request in
                    .data(try await exchange.maxWithdrawalView(uid: request.uid, currency: request.parameter("ccy")))
                }
            ),
            "GET /api/v5/account/set-account-switch-precheck": (
                false,
                { request in
                    guard let level = request.parameter("acctLv") else { throw OKXError.empty("acctLv") }
                    return .data(try await exchange.switchPrecheckView(uid: request.uid, target: level))
                }
            ),
            "POST /api/v5/account/set-account-level": (
                true,
                { request in
                    .data(try await exchange.setAccountLevel(uid: request.uid, target: try body(request).required("acctLv")))
                }
            ),
            "POST /api/v5/account/position-builder": (
                false,
                { request in
                    .data(try await exchange.positionBuilder(uid: request.uid, body: try request.jsonBody(), graph: false))
                }
            ),
            "POST /api/v5/account/position-builder-graph": (
                false,
                { request in
                    .data(try await exchange.positionBuilder(uid: request.uid, body: try request.jsonBody(), graph: true))
                }
            ),
            "POST /api/v5/account/set-leverage": (
                true,
                { request in
                    let fields = try body(request)
                    guard let lever = try fields.decimal("lever") else { throw OKXError.empty("lever") }
                    let mode = try fields.string("mgnMode") ?? "cross"
                    guard mode == "cross" else {
                        throw OKXError.parameter("mgnMode \(mode) is not supported: the sandbox margins in cross mode only")
                    }
                    guard let id = try fields.string("instId") else { throw OKXError.empty("instId") }
                    return .data(try await exchange.setLeverage(uid: request.uid, instId: id, lever: lever))
                }
            ),
            "POST /api/v5/account/set-auto-loan": (
                true,
                { request in
                    guard let flag = try body(request).bool("autoLoan") else { throw OKXError.empty("autoLoan") }
                    return .data(try await exchange.setAutoLoan(uid: request.uid, enabled: flag))
                }
            ),
            "POST /api/v5/account/set-riskOffset-amt": (
                true,
                { request in
                    let fields = try body(request)
                    guard let amount = try fields.decimal("clSpotInUseAmt") else { throw OKXError.empty("clSpotInUseAmt") }
                    return .data(try await exchange.setSpotInUse(uid: request.uid, currency: try fields.required("ccy"), amount: amount))
                }
            ),
            "POST /api/v5/trade/order": (
                true,
                { request in
                    let result = await Self.place([try request.jsonBody()], uid: request.uid, exchange)[0]
                    return .data(.array([result.item]), code: result.ok ? "0" : "1", msg: result.ok ? "" : "All operations failed")
                }
            ),
            "POST /api/v5/trade/batch-orders": (
                true,
                { request in
                    Self.batchAnswer(await Self.place(try Self.batchItems(try request.jsonBody()), uid: request.uid, exchange))
                }
            ),
            "POST /api/v5/trade/cancel-order": (
                true,
                { request in
                    let result = await Self.cancel([try request.jsonBody()], uid: request.uid, exchange)[0]
                    return .data(.array([result.item]), code: result.ok ? "0" : "1", msg: result.ok ? "" : "All operations failed")
                }
            ),
            "POST /api/v5/trade/cancel-batch-orders": (
                true,
                { request in
                    Self.batchAnswer(await Self.cancel(try Self.batchItems(try request.jsonBody()), uid: request.uid, exchange))
                }
            ),
            "GET /api/v5/trade/order": (
                false,
                { request in
                    guard let id = request.parameter("instId") else { throw OKXError.empty("instId") }
                    guard request.parameter("ordId") != nil || request.parameter("clOrdId") != nil else { throw OKXError.empty("ordId") }
                    return .data(
                        try await exchange.orderView(
                            uid: request.uid, instId: id, ordId: request.parameter("ordId"), clOrdId: request.parameter("clOrdId")))
                }
            ),
            "GET /api/v5/trade/orders-pending": (
                false,
                { request in
                    .data(
                        await exchange.pendingOrdersView(
                            uid: request.uid, instType: request.parameter("instType"), instId: request.parameter("instId"),
                            limit: try Self.limit(request)))
                }
            ),
            "GET /api/v5/trade/orders-history": (
                false,
                { request in
                    .data(
                        try await exchange.orderHistoryView(
                            uid: request.uid, instType: request.parameter("instType"), instId: request.parameter("instId"),
                            limit: try Self.limit(request)))
                }
            ),
            "GET /api/v5/trade/orders-history-archive": (
                false,
                { request in
                    .data(
                        try await exchange.orderHistoryView(
                            uid: request.uid, instType: request.parameter("instType"), instId: request.parameter("instId"),
                            limit: try Self.limit(request)))
                }
            ),
            "GET /api/v5/trade/fills": (
                false,
                { request in
                    .data(
                        try await exchange.fillsView(
                            uid: request.uid, instType: request.parameter("instType"), instId: request.parameter("instId"),
                            ordId: request.parameter("ordId"), limit: try Self.limit(request)))
                }
            ),
            "GET /api/v5/trade/fills-history": (
                false,
                { request in
                    .data(
                        try await exchange.fillsView(
                            uid: request.uid, instType: request.parameter("instType"), instId: request.parameter("instId"),
                            ordId: request.parameter("ordId"), limit: try Self.limit(request)))
                }
            ),
            "GET /api/v5/asset/currencies": (false, { _ in .data(await exchange.currenciesView()) }),
            "GET /api/v5/asset/balances": (
                false, { request in .data(await exchange.assetBalancesView(uid: request.uid, currency: request.parameter("ccy"))) }
            ),
        ]
    }

    /// The fields OKX documents for an order (clients send many of them empty); anything else is refused,
    /// so a misspelt field is an error rather than silently ignored.
    static let orderFields: Set<String> = [
        "instId", "instIdCode", "tdMode", "ccy", "clOrdId", "tag", "side", "posSide", "ordType", "sz", "px", "pxUsd", "pxVol",
        "reduceOnly", "tgtCcy", "banAmend", "quickMgnType", "stpId", "stpMode", "attachAlgoOrds", "tradeQuoteCcy", "pxAmendType",
        "isElpTakerAccess", "algoClOrdId", "brokerId",
    ]
    static let cancelFields: Set<String> = ["instId", "instIdCode", "ordId", "clOrdId"]

    /// The orders of `order` or `batch-orders`, in request order: each one's ack item and whether it succeeded.
    /// Every item is read and validated first; the valid ones go to the exchange in one submission, which is
    /// stored in one transaction, shared with the submissions of other connections arriving meanwhile
    /// (``Exchange/submit(uid:_:)``).
    static func place(_ values: [JSONValue], uid: String, _ exchange: Exchange) async -> [(ok: Bool, item: JSONValue)] {
        let parsed = values.map(orderRequest)
        let outcomes = await submitValid(parsed.map(\.request), uid: uid, exchange, as: Exchange.TradeRequests.place)
        for outcome in outcomes { exchange.metrics.order(code: Self.code(outcome)) }
        return zip(parsed, outcomes).map { entry, outcome in
            switch outcome {
            case .success(let order):
                return (
                    true,
                    .object([
                        ("ordId", .string(String(order.ordId))), ("clOrdId", .string(order.clOrdId)), ("tag", .string(order.tag)),
                        ("ts", .string(String(order.cTime))), ("sCode", .string("0")), ("sMsg", .string("Order placed")),
                    ])
                )
            case .failure(let failure):
                return (
                    false,
                    .object([
                        ("ordId", .string("")), ("clOrdId", .string(entry.clOrdId)), ("tag", .string(entry.tag)), ("ts", .string("")),
                        ("sCode", .string(failure.code.rawValue)), ("sMsg", .string(failure.message)),
                    ])
                )
            }
        }
    }

    /// Sends the requests that could be read to the exchange as one submission, and answers every item in
    /// request order: its refusal when it could not be read, else the exchange's outcome.
    static func submitValid<Request>(
        _ parsed: [Result<Request, OKXError>], uid: String, _ exchange: Exchange, as submission: ([Request]) -> Exchange.TradeRequests
    ) async -> [Result<OrderRecord, OKXError>] {
        let requests = parsed.compactMap { try? $0.get() }
        var answers = [Result<OrderRecord, OKXError>]().makeIterator()
        if !requests.isEmpty {
            exchange.announceSubmission()
            answers = await exchange.submit(uid: uid, submission(requests)).makeIterator()
        }
        return parsed.map { entry in
            entry.flatMap { _ in answers.next() ?? .failure(OKXError(.internalError, "the exchange gave no outcome for this item")) }
        }
    }

    /// One order's fields read into an ``OrderRequest``, or the refusal; the clOrdId and tag as far as they
    /// could be read, for the ack.
    static func orderRequest(_ value: JSONValue) -> (clOrdId: String, tag: String, request: Result<OrderRequest, OKXError>) {
        var clOrdId = ""
        var tag = ""
        do {
            let fields = try BodyFields(value)
            try fields.rejectUnknown(orderFields)
            clOrdId = try fields.string("clOrdId") ?? ""
            tag = try fields.string("tag") ?? ""
            guard clOrdId.count <= 32, clOrdId.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }) else {
                throw OKXError.parameter("clOrdId \(clOrdId.prefix(40)) must be at most 32 letters and digits")
            }
            if let posSide = try fields.string("posSide"), posSide != "net" {
                throw OKXError.parameter("posSide \(posSide): long/short mode is not supported; the sandbox uses net mode")
            }
            guard let size = try fields.decimal("sz") else { throw OKXError.empty("sz") }
            let request = OrderRequest(
                instId: try fields.required("instId"), tdMode: try fields.required("tdMode", as: TradeMode.self),
                side: try fields.required("side", as: OrderSide.self), ordType: try fields.required("ordType", as: OrderType.self),
                size: size, price: try fields.decimal("px"),
                tgtCcy: try fields.string("tgtCcy") ?? "", clOrdId: clOrdId, tag: tag, reduceOnly: try fields.bool("reduceOnly") ?? false)
            return (clOrdId, tag, .success(request))
        } catch {
            return (clOrdId, tag, .failure(Exchange.okxError(error)))
        }
    }

    /// The cancellations of `cancel-order` or `cancel-batch-orders`, in request order, stored in one
    /// transaction like ``place(_:uid:_:)``.
    static func cancel(_ values: [JSONValue], uid: String, _ exchange: Exchange) async -> [(ok: Bool, item: JSONValue)] {
        let parsed = values.map(cancelRequest)
        let outcomes = await submitValid(parsed.map(\.request), uid: uid, exchange, as: Exchange.TradeRequests.cancel)
        for outcome in outcomes { exchange.metrics.cancel(code: Self.code(outcome)) }
        return zip(parsed, outcomes).map { entry, outcome in
            switch outcome {
            case .success(let order):
                return (
                    true,
                    .object([
                        ("ordId", .string(String(order.ordId))), ("clOrdId", .string(order.clOrdId)), ("ts", .string(String(order.uTime))),
                        ("sCode", .string("0")), ("sMsg", .string("")),
                    ])
                )
            case .failure(let failure):
                return (
                    false,
                    .object([
                        ("ordId", .string(entry.ordId)), ("clOrdId", .string(entry.clOrdId)), ("ts", .string("")),
                        ("sCode", .string(failure.code.rawValue)),
                        ("sMsg", .string(failure.message)),
                    ])
                )
            }
        }
    }

    /// An item's `sCode`: 0, or the OKX error code.
    static func code(_ outcome: Result<OrderRecord, OKXError>) -> String {
        switch outcome {
        case .success: return "0"
        case .failure(let failure): return failure.code.rawValue
        }
    }

    static func cancelRequest(_ value: JSONValue) -> (ordId: String, clOrdId: String, request: Result<CancelRequest, OKXError>) {
        var ordId = ""
        var clOrdId = ""
        do {
            let fields = try BodyFields(value)
            try fields.rejectUnknown(cancelFields)
            ordId = try fields.string("ordId") ?? ""
            clOrdId = try fields.string("clOrdId") ?? ""
            let instId = try fields.required("instId")
            guard !ordId.isEmpty || !clOrdId.isEmpty else { throw OKXError.empty("ordId") }
            return (
                ordId, clOrdId,
                .success(CancelRequest(instId: instId, ordId: ordId.isEmpty ? nil : ordId, clOrdId: clOrdId.isEmpty ? nil : clOrdId))
            )
        } catch {
            return (ordId, clOrdId, .failure(Exchange.okxError(error)))
        }
    }

    /// A batch body: a JSON array of 1 to 20 items.
    static func batchItems(_ value: JSONValue) throws -> [JSONValue] {
        guard case .array(let items) = value else { throw OKXError(.jsonSyntax, "JSON syntax error: a batch body must be a JSON array") }
        guard !items.isEmpty else { throw OKXError.empty("data") }
        guard items.count <= 20 else { throw OKXError.parameter("a batch holds at most 20 orders, not \(items.count)") }
        return items
    }

    /// A batch endpoint's answer: code 0 when all succeed, 1 when all fail, 2 otherwise.
    static func batchAnswer(_ results: [(ok: Bool, item: JSONValue)]) -> APIResponse {
        let succeeded = results.filter(\.ok).count
        let code = succeeded == results.count ? "0" : (succeeded == 0 ? "1" : "2")
        return .data(
            .array(results.map(\.item)), code: code,
            msg: code == "0" ? "" : (code == "1" ? "All operations failed" : "Batch operation partially succeeded"))
    }

    // MARK: - Dispatch

    /// Takes a token of `key`'s bucket; a refusal (50011) is counted under `scope`.
    func limit(_ key: String, scope: String) throws {
        do {
            try rateLimiter.take(key)
        } catch {
            exchange.metrics.rateLimitRefused(scope: scope)
            throw error
        }
    }

    /// The route template of a request for the metrics: its path when it is one of the API's (public, private or
    /// sandbox control), else `other` (a label never takes an arbitrary path).
    package func routeLabel(path: String) -> String {
        if publicRoutes[path] != nil || publicPostRoutes[path] != nil || privatePaths.contains(path) || Self.adminPaths.contains(path) {
            return path
        }
        return "other"
    }

    /// Answers one request. Never throws: every failure becomes an OKX envelope.
    public func handle(_ incoming: APIRequest) async -> APIResponse {
        var request = incoming
        do {
            let method = request.method
            let path = request.path
            if path.hasPrefix("/api/v5/sandbox/") { return try await admin(&request) }
            if method == "GET", let handler = publicRoutes[path] {
                try limit("ip:\(request.headers["x-forwarded-for"] ?? "local")", scope: "public")
                return try await handler(&request)
            }
            if method == "POST", let handler = publicPostRoutes[path] {
                try limit("ip:\(request.headers["x-forwarded-for"] ?? "local")", scope: "public")
                return try await handler(&request)
            }
            if let route = privateRoutes["\(method) \(path)"] {
                let (uid, permissions) = try await authenticator.authenticate(request)
                try limit("key:\(request.headers["ok-access-key"] ?? "")", scope: "private")
                if route.trade, !permissions.contains("trade") {
                    throw OKXError(.noPermission, "Your API key has no trade permission: this endpoint needs it")
                }
                request.uid = uid
                request.permissions = permissions
                if !exchange.holds(uid) { return await forward(request, uid: uid) }
                return try await route.handler(&request)
            }
            let known =
                publicRoutes[path] != nil || publicPostRoutes[path] != nil || privateRoutes.keys.contains { $0.hasSuffix(" \(path)") }
            if known { return .error(OKXError(.methodNotAllowed, "Method \(method) is not allowed on \(path)")) }
            return .error(OKXError(.notFound, "Not Found: \(path)"))
        } catch let error as OKXError {
            return .error(error)
        } catch let error as EngineError {
            return .error(.engine(error))
        } catch {
            return .error(OKXError(.internalError, "Internal error: \(error)"))
        }
    }
}
