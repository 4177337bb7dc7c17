import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import Logging
import MarginDefaults
import MarginEngine
import MarginStore
import MarketFeed
import NIOCore
import ServiceLifecycle

/// The request context: Hummingbird's core storage plus the client address (admin routes are loopback
/// only) and a 1 MiB body limit.
public struct SandboxRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }

    public var maxUploadSize: Int { 1 << 20 }
}

/// Everything `pm serve` needs to start.
public struct SandboxConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 8080
    /// The SQLite database file (when no other ``LedgerStore`` is given to ``Sandbox/open(_:store:catalog:market:parameters:clock:upstream:logger:)``).
    public var databasePath: String
    /// Where the secret key (`PREFIX.key`) and the admin token (`PREFIX.admin-token`) are kept: beside the SQLite
    /// database unless set. Every node serving one PostgreSQL ledger needs the same key file.
    public var filesPrefix: String
    public var mode: MarketMode = .staticSnapshot
    /// Wall seconds between market ticks (random and replay modes).
    public var tickInterval: Double = 1
    /// Market seconds per tick in random mode.
    public var stepSeconds: Double = 1
    public var timestampWindowSeconds = 30
    public var rateLimitPerSecond: Double = 500
    /// Seconds a connection may stay silent (no body bytes, no request after the last response) before the server
    /// closes it, and the time a new connection has to send its first complete request head
    /// (``FirstRequestGuardedChannel``). A client trickling body bytes keeps its connection (each byte is activity).
    public var idleTimeoutSeconds: Double = 30
    /// Exchange events a WebSocket connection may fall behind before it is closed.
    public var webSocketQueueCapacity = WebSocketTransport.defaultCapacity

    public init(databasePath: String) {
        self.databasePath = databasePath
        filesPrefix = databasePath
    }
}

/// The running pieces of a sandbox.
public struct Sandbox: Sendable {
    public let exchange: Exchange
    public let simulator: MarketSimulator
    public let api: SandboxAPI
    public let database: any LedgerStore
    /// The followed upstream in `--market-mode follow URL` mode.
    public let upstream: UpstreamMarket?

    /// Wall-clock Unix milliseconds, the server's clock unless a caller injects another.
    public static let wallClock: @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) }

    /// Opens the database (creating it) — `store` when given (PostgreSQL), else the SQLite file of
    /// `configuration` — the secret key and admin token files, the exchange and the simulator, restoring whatever
    /// a previous run stored.
    ///
    /// `clock` (Unix milliseconds) is the one clock of the sandbox: the exchange stamps records with it, and the
    /// API checks REST and WebSocket timestamps, refills rate limits and answers `public/time` with it.
    /// In follow mode `upstream` is the client of the followed endpoint (`logger` reports its freezes).
    public static func open(
        _ configuration: SandboxConfiguration, store: (any LedgerStore)? = nil, catalog: InstrumentCatalog, market: MarketSnapshot, parameters: MarginParameters,
        clock: @escaping @Sendable () -> Int64 = wallClock, upstream upstreamClient: (any OKXTransport)? = nil,
        logger: Logger = Logger(label: "pm.sandbox")
    ) throws -> Sandbox {
        let database = try store ?? AppDatabase(path: configuration.databasePath)
        let secrets = try SecretBox.load(fromFile: configuration.filesPrefix + ".key")
        let token = try adminToken(path: configuration.filesPrefix + ".admin-token")
        let exchange = try Exchange(database: database, secrets: secrets, catalog: catalog, parameters: parameters, market: market, clock: clock)
        let simulator = try MarketSimulator(
            exchange: exchange, base: market, mode: configuration.mode, database: database, stepSeconds: configuration.stepSeconds)
        var upstream: UpstreamMarket?
        if case .follow(let url) = configuration.mode {
            guard let upstreamClient else { throw CredentialError("--market-mode follow \(url): no client for the upstream") }
            upstream = UpstreamMarket(client: upstreamClient, simulator: simulator, catalog: catalog, logger: logger)
        }
        let api = SandboxAPI(
            exchange: exchange, adminToken: token, simulator: simulator, timestampWindowSeconds: configuration.timestampWindowSeconds,
            rateLimitPerSecond: configuration.rateLimitPerSecond, clock: clock, upstream: upstream)
        return Sandbox(exchange: exchange, simulator: simulator, api: api, database: database, upstream: upstream)
    }

    /// The admin token stored at `path` (created with mode 0600 when missing).
    public static func adminToken(path: String) throws -> String {
        if let data = FileManager.default.contents(atPath: path), let token = String(data: data, encoding: .utf8)?
            .trimmingCharacters(in: .whitespacesAndNewlines), !token.isEmpty {
            return token
        }
        let token = SecretBox.randomToken(bytes: 24)
        guard FileManager.default.createFile(atPath: path, contents: Data(token.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw CredentialError("cannot create the admin token file \(path)")
        }
        return token
    }

    /// Restores the simulated market a previous run reached.
    public func restoreMarket() async throws {
        let market = try await simulator.currentMarket()
        try await exchange.replaceMarket(market)
    }

    /// The HTTP application: every `/api/v5/…` request goes through ``SandboxAPI``.
    public func application(_ configuration: SandboxConfiguration, logger: Logger) -> some ApplicationProtocol {
        // Every path and method goes to one responder: the API answers OKX envelopes for all of them (404/405
        // included), so a router would only add a trie lookup per request (~3 % of the CPU under load).
        let api = api
        let responder = CallbackResponder<SandboxRequestContext> { request, context in
            await Self.respond(request, context: context, api: api)
        }
        var services: [any Service] = []
        if let upstream {
            services.append(UpstreamMarketService(upstream: upstream, interval: configuration.tickInterval))
        } else if configuration.mode != .staticSnapshot {
            services.append(SimulatorService(simulator: simulator, interval: configuration.tickInterval))
        }
        let capacity = configuration.webSocketQueueCapacity
        let idleTimeout = TimeAmount.nanoseconds(Int64(configuration.idleTimeoutSeconds * 1e9))
        return Application(
            responder: responder,
            server: HTTPServerBuilder { responder in
                FirstRequestGuardedChannel(
                    inner: HTTP1WebSocketUpgradeChannel(
                        responder: responder, configuration: .init(http1: .init(idleTimeout: idleTimeout))
                    ) { request, _, _ in
                        guard let endpoint = WebSocketTransport.endpoint(forPath: request.path ?? "") else { return .dontUpgrade }
                        return .upgrade([:]) { inbound, outbound, _ in
                            // Logins go through the API's authenticator: REST's window, clock and replay guard.
                            try await WebSocketTransport.serve(inbound, outbound, endpoint: endpoint, api: api, capacity: capacity)
                        }
                    },
                    timeout: idleTimeout)
            },
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "pm-sandbox"),
            services: services, logger: logger)
    }

    /// The web Position Builder's files, served from the bundle (no CDN, no network at run time).
    static func webFile(_ path: String) -> Response? {
        let name = path == "/" || path == "/index.html" ? "index.html" : (path.hasPrefix("/web/") ? String(path.dropFirst(5)) : "")
        guard !name.isEmpty, !name.contains(".."), !name.contains("/"),
            let url = Bundle.module.url(forResource: "Web/\(name)", withExtension: nil),
            let data = FileManager.default.contents(atPath: url.path)
        else { return nil }
        let type: String
        switch url.pathExtension {
        case "html": type = "text/html; charset=utf-8"
        case "css": type = "text/css; charset=utf-8"
        case "js": type = "text/javascript; charset=utf-8"
        case "svg": type = "image/svg+xml"
        default: type = "application/octet-stream"
        }
        return Response(status: .ok, headers: [.contentType: type, .cacheControl: "no-cache"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// Reads the raw body (up to the limit) and answers with OKX's envelope; nothing escapes as a crash.
    static func respond(_ request: Request, context: SandboxRequestContext, api: SandboxAPI) async -> Response {
        if request.method == .get, !request.uri.path.hasPrefix("/api/"), let file = webFile(request.uri.path) { return file }
        var body: [UInt8] = []
        do {
            let buffer = try await request.body.collect(upTo: context.maxUploadSize)
            body = Array(buffer.readableBytesView)
        } catch is NIOTooManyBytesError {
            return encode(.error(OKXError("50006", "Request body too large: the limit is \(context.maxUploadSize) bytes", httpStatus: 413)))
        } catch {
            // A body the HTTP decoder cannot read (a bad chunk size, a connection closed mid-body).
            return encode(.error(OKXError("50002", "Request body unreadable: \(error)", httpStatus: 400)))
        }
        let target = request.head.path ?? request.uri.string
        var headers: [String: String] = [:]
        for field in request.headers { headers[field.name.canonicalName] = field.value }
        let loopback: Bool
        switch context.remoteAddress {
        case .v4(let address)?: loopback = address.host.hasPrefix("127.")
        case .v6(let address)?: loopback = address.host == "::1"
        case .unixDomainSocket?: loopback = true
        case nil: loopback = false
        }
        let apiRequest = APIRequest(
            method: request.method.rawValue, target: target, body: body, headers: headers, remoteIsLoopback: loopback)
        return encode(await api.handle(apiRequest))
    }

    static func encode(_ response: APIResponse) -> Response {
        let text = JSONWriter.serialize(response.envelope)
        return Response(
            status: HTTPResponse.Status(code: response.status),
            headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}

/// Ticks the simulator while the server runs.
struct SimulatorService: Service {
    let simulator: MarketSimulator
    let interval: Double

    func run() async throws {
        try await cancelWhenGracefulShutdown {
            await simulator.run(interval: interval)
        }
    }
}

/// Polls the followed upstream while the server runs.
struct UpstreamMarketService: Service {
    let upstream: UpstreamMarket
    let interval: Double

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await upstream.run(interval: interval)
        }
    }
}
