import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdWebSocket
import Logging
import MarginDefaults
import MarginEngine
import MarginStore
import MarketFeed
import NIOConcurrencyHelpers
import NIOCore
import ServiceLifecycle

/// The request context: Hummingbird's core storage plus the client address (admin routes are loopback
/// only) and a 1 MiB body limit.
package struct SandboxRequestContext: RequestContext, RemoteAddressRequestContext {
    package var coreContext: CoreRequestContextStorage
    package let remoteAddress: SocketAddress?

    package init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }

    package var maxUploadSize: Int { 1 << 20 }
}

/// Everything `pm serve` needs to start.
public struct SandboxConfiguration: Sendable {
    package var host = "127.0.0.1"
    package var port = 8080
    /// The SQLite database file (when no other ``LedgerStore`` is given to ``Sandbox/open(_:store:catalog:market:parameters:clock:upstream:logger:)``).
    package var databasePath: String
    /// Where the secret key (`PREFIX.key`) and the admin token (`PREFIX.admin-token`) are kept: beside the SQLite
    /// database unless set. Every node serving one PostgreSQL ledger needs the same key file.
    package var filesPrefix: String
    package var mode: MarketMode = .staticSnapshot
    /// Wall seconds between market ticks (random and replay modes).
    package var tickInterval: Double = 1
    /// Market seconds per tick in random mode.
    package var stepSeconds: Double = 1
    package var timestampWindowSeconds = 30
    package var rateLimitPerSecond: Double = 500
    /// Seconds a connection may stay silent (no body bytes, no request after the last response) before the server
    /// closes it, and the time a new connection has to send its first complete request head
    /// (``FirstRequestGuardedChannel``). A client trickling body bytes keeps its connection (each byte is activity).
    package var idleTimeoutSeconds: Double = 30
    /// Exchange events a WebSocket connection may fall behind before it is closed.
    package var webSocketQueueCapacity = WebSocketTransport.defaultCapacity
    /// Who may read `GET /metrics` (loopback only by default, like the sandbox control API).
    package var metricsAccess: MetricsAccess = .loopback

    public init(databasePath: String) {
        self.databasePath = databasePath
        filesPrefix = databasePath
    }
}

/// Who may read `GET /metrics`: loopback clients only (the default, the sandbox control API's rule), any client,
/// or nobody (404).
package enum MetricsAccess: String, Sendable, CaseIterable {
    case loopback
    case any
    case off
}

/// The sandbox once it has started. Empty while the database is migrated and loaded and the market restored: meanwhile
/// `GET /live` answers 200, `GET /ready` 503, `GET /metrics` as usual, and every other request 503 (OKX 50001).
package final class SandboxGate: Sendable {
    private let opened = NIOLockedValueBox<Sandbox?>(nil)

    package init() {}

    /// The sandbox, nil until it is ready.
    package var sandbox: Sandbox? { opened.withLockedValue { $0 } }

    func open(_ sandbox: Sandbox) { opened.withLockedValue { $0 = sandbox } }
}

/// The running pieces of a sandbox.
public struct Sandbox: Sendable {
    public let exchange: Exchange
    package let simulator: MarketSimulator
    package let api: SandboxAPI
    package let database: any LedgerStore
    /// The followed upstream in `--market-mode follow URL` mode.
    package let upstream: UpstreamMarket?
    /// With a shared market (several nodes over one PostgreSQL ledger): what applies its published ticks here.
    package let follower: MarketFollower?
    /// Partitions this node holds that applied an earlier tick than the others (by that tick): adopted by
    /// ``restoreMarket()`` once they have caught up.
    let behind: [(tick: UInt64, partitions: [Int])]
    /// With `pm serve --partitions auto`: what spreads the partitions over the nodes alive.
    package let rebalancer: Rebalancer?
    /// The leases this node holds (PostgreSQL): let go when it stops gracefully.
    let leases: (any PartitionLeases)?

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
        _ configuration: SandboxConfiguration, store: (any LedgerStore)? = nil, catalog: InstrumentCatalog, market: MarketSnapshot,
        parameters: MarginParameters,
        clock: @escaping @Sendable () -> Int64 = wallClock, upstream upstreamClient: (any OKXTransport)? = nil,
        logger: Logger = Logger(label: "pm.sandbox"), metrics: SandboxMetrics = SandboxMetrics(), marketLog: (any MarketTickLog)? = nil,
        partitions: [Int]? = nil, forwarder: (any RequestForwarder)? = nil, leases: (any PartitionLeases)? = nil,
        rebalancing: Bool = false
    ) throws -> Sandbox {
        let database = try store ?? AppDatabase(path: configuration.databasePath)
        let secrets = try SecretBox.load(fromFile: configuration.filesPrefix + ".key")
        let token = try adminToken(path: configuration.filesPrefix + ".admin-token")
        // A shared market: the exchange starts with the partitions that applied the latest tick, at that tick's market;
        // the others catch up and are adopted once the sandbox has started (``restoreMarket()``).
        var start = (tick: UInt64(0), market: market)
        var initial = partitions
        var behind: [(tick: UInt64, partitions: [Int])] = []
        if let marketLog {
            let groups = try MarketFollower.ticks(of: partitions ?? database.partitions.all, in: database)
            // A node that starts with no partitions starts at the newest tick.
            let latest = groups.isEmpty ? try marketLog.latest()?.sequence ?? 0 : groups.keys.max() ?? 0
            start = (latest, try MarketFollower.market(at: latest, log: marketLog, base: market))
            initial = groups[latest] ?? []
            behind = groups.filter { $0.key < latest }.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        }
        let makeExchange: @Sendable ([Int], MarketSnapshot) throws -> Exchange = { held, at in
            try Exchange(
                database: database, secrets: secrets, catalog: catalog, parameters: parameters, market: at, clock: clock,
                metrics: metrics, partitions: held)
        }
        let exchange = try makeExchange(initial ?? database.partitions.all, start.market)
        let follower = marketLog.map {
            MarketFollower(
                exchange: exchange, log: $0, base: market, partitions: initial ?? database.partitions.all, applied: start.tick,
                makeExchange: makeExchange)
        }
        let simulator = try MarketSimulator(
            exchange: exchange, base: market, mode: configuration.mode, database: database, stepSeconds: configuration.stepSeconds,
            follower: follower)
        var upstream: UpstreamMarket?
        if case .follow(let url) = configuration.mode {
            guard let upstreamClient else { throw CredentialError("--market-mode follow \(url): no client for the upstream") }
            upstream = UpstreamMarket(client: upstreamClient, simulator: simulator, catalog: catalog, logger: logger)
        }
        let api = SandboxAPI(
            exchange: exchange, adminToken: token, simulator: simulator, timestampWindowSeconds: configuration.timestampWindowSeconds,
            rateLimitPerSecond: configuration.rateLimitPerSecond, clock: clock, upstream: upstream, forwarder: forwarder)
        var rebalancer: Rebalancer?
        if rebalancing {
            guard let leases, let follower else { throw CredentialError("rebalancing needs a PostgreSQL ledger and its market log") }
            rebalancer = Rebalancer(leases: leases, follower: follower, database: database)
        }
        return Sandbox(
            exchange: exchange, simulator: simulator, api: api, database: database, upstream: upstream, follower: follower, behind: behind,
            rebalancer: rebalancer, leases: leases)
    }

    /// The admin token stored at `path` (created with mode 0600 when missing).
    package static func adminToken(path: String) throws -> String {
        if let data = FileManager.default.contents(atPath: path),
            let token = String(data: data, encoding: .utf8)?
                .trimmingCharacters(in: .whitespacesAndNewlines), !token.isEmpty
        {
            return token
        }
        let token = SecretBox.randomToken(bytes: 24)
        guard FileManager.default.createFile(atPath: path, contents: Data(token.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw CredentialError("cannot create the admin token file \(path)")
        }
        return token
    }

    /// Restores the simulated market a previous run reached; with a shared market, applies the ticks published since
    /// this node's partitions applied theirs.
    package func restoreMarket() async throws {
        if let follower {
            try await follower.catchUp()
            for group in behind { try await follower.adopt(group.partitions, at: group.tick) }
            return
        }
        let market = try await simulator.currentMarket()
        try await exchange.replaceMarket(market)
    }

    /// The HTTP application of this (already open) sandbox: ``application(_:metrics:renderMetrics:logger:start:ready:)``
    /// with nothing left to start.
    package func application(
        _ configuration: SandboxConfiguration, logger: Logger, renderMetrics: (@Sendable () -> [UInt8])? = nil
    )
        -> some ApplicationProtocol
    {
        let gate = SandboxGate()
        gate.open(self)
        return Self.application(configuration, gate: gate, metrics: exchange.metrics, renderMetrics: renderMetrics, logger: logger) { self }
    }

    /// The HTTP application, listening at once while `start` opens the sandbox (migrations, loading, the market):
    /// until it returns, `GET /ready` answers 503 and the API 503 (``SandboxGate``); then `ready` runs (the banner)
    /// and the market moves (ticks, or polls of a followed upstream). Every `/api/v5/…` request goes through
    /// ``SandboxAPI``; `GET /metrics` answers `renderMetrics`' text under ``SandboxConfiguration/metricsAccess``
    /// (404 without a renderer: the library links no metrics backend); `GET /live` answers 200 while the process
    /// serves. Every request is counted in `metrics`.
    ///
    /// On SIGTERM or SIGINT (``ApplicationProtocol/runService(gracefulShutdownSignals:)``) the server drains: it stops
    /// accepting connections, closes idle ones, answers the requests in flight (their group commits included) and
    /// closes theirs, and only then stops the market; `runService` then returns.
    package static func application(
        _ configuration: SandboxConfiguration, gate: SandboxGate = SandboxGate(), metrics: SandboxMetrics,
        renderMetrics: (@Sendable () -> [UInt8])?, logger: Logger, start: @escaping @Sendable () async throws -> Sandbox,
        ready: @escaping @Sendable (Sandbox) async throws -> Void = { _ in }
    ) -> some ApplicationProtocol {
        // Every path and method goes to one responder: the API answers OKX envelopes for all of them (404/405
        // included), so a router would only add a trie lookup per request (~3 % of the CPU under load).
        let operations = Operations(access: configuration.metricsAccess, render: renderMetrics, metrics: metrics)
        let responder = CallbackResponder<SandboxRequestContext> { request, context in
            await Self.respond(request, context: context, gate: gate, operations: operations)
        }
        let services: [any Service] = [StartService(configuration: configuration, gate: gate, start: start, ready: ready)]
        let capacity = configuration.webSocketQueueCapacity
        let idleTimeout = TimeAmount.nanoseconds(Int64(configuration.idleTimeoutSeconds * 1e9))
        return Application(
            responder: responder,
            server: HTTPServerBuilder { responder in
                FirstRequestGuardedChannel(
                    inner: HTTP1WebSocketUpgradeChannel(
                        responder: responder, configuration: .init(http1: .init(idleTimeout: idleTimeout))
                    ) { request, _, _ in
                        // Before the sandbox is ready the upgrade is declined: the request gets the API's 503.
                        guard let endpoint = WebSocketTransport.endpoint(forPath: request.path ?? ""), let api = gate.sandbox?.api else {
                            return .dontUpgrade
                        }
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

    /// What the operations endpoints need: who may read the metrics, their renderer, and the request counters.
    struct Operations: Sendable {
        let access: MetricsAccess
        let render: (@Sendable () -> [UInt8])?
        let metrics: SandboxMetrics
    }

    /// Whether a client address is loopback (127.0.0.0/8, ::1 and its IPv4-mapped 127.x, a Unix socket): the rule of
    /// the sandbox control API and of `/metrics`. No address (a test client) is not loopback. Read from the numeric
    /// address, not `host` (the name an address was made from, empty for one made from an IP string).
    static func isLoopback(_ address: SocketAddress?) -> Bool {
        switch address {
        case .v4?: return address?.ipAddress?.hasPrefix("127.") == true
        case .v6?:
            guard let text = address?.ipAddress?.lowercased() else { return false }
            return text == "::1" || text.hasPrefix("::ffff:127.")
        case .unixDomainSocket?: return true
        case nil: return false
        }
    }

    /// `GET /metrics`: the renderer's text (Prometheus exposition format) to a client `access` admits; 403 (50120, like
    /// the sandbox control API) to one it does not; 404 when the metrics are off or nothing renders them.
    static func metricsResponse(access: MetricsAccess, remote: SocketAddress?, render: (@Sendable () -> [UInt8])?) -> Response {
        guard access != .off, let render else { return encode(.error(OKXError(.notFound, "Not Found: /metrics"))) }
        if access == .loopback, !isLoopback(remote) {
            return encode(
                .error(
                    OKXError(
                        .noPermission, "Metrics are available on loopback only (pm serve --metrics-access any opens them)", httpStatus: 403)
                ))
        }
        return Response(
            status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8", .cacheControl: "no-cache"],
            body: .init(byteBuffer: ByteBuffer(bytes: render())))
    }

    /// `GET /live` and `GET /ready`: a small JSON status.
    static func health(_ status: HTTPResponse.Status, _ state: String) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json", .cacheControl: "no-cache"],
            body: .init(byteBuffer: ByteBuffer(string: #"{"status":"\#(state)"}"#)))
    }

    /// Answers one request and counts it (route template, method, status, time).
    static func respond(_ request: Request, context: SandboxRequestContext, gate: SandboxGate, operations: Operations) async -> Response {
        let start = ContinuousClock.now
        let sandbox = gate.sandbox
        let path = request.uri.path
        let route: String
        let response: Response
        switch (request.method, path) {
        case (.get, "/live"), (.head, "/live"):
            (route, response) = (path, health(.ok, "live"))
        case (.get, "/ready"), (.head, "/ready"):
            (route, response) = (path, sandbox == nil ? health(.serviceUnavailable, "starting") : health(.ok, "ready"))
        case (.get, "/metrics"), (.head, "/metrics"):
            (route, response) = (path, metricsResponse(access: operations.access, remote: context.remoteAddress, render: operations.render))
        default:
            if let sandbox {
                (route, response) = await respond(request, context: context, api: sandbox.api)
            } else {
                route = "other"
                response = encode(
                    .error(
                        OKXError(
                            .serviceUnavailable,
                            "Service temporarily unavailable: the sandbox is starting (GET /ready answers 200 once it has)")))
            }
        }
        operations.metrics.request(
            route: route, method: request.method.rawValue, status: response.status.code, duration: ContinuousClock.now - start)
        return response
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
        return Response(
            status: .ok, headers: [.contentType: type, .cacheControl: "no-cache"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// Reads the raw body (up to the limit) and answers with OKX's envelope; nothing escapes as a crash. Returns the
    /// route template too (the API's path, `/` or `/web` for the page's files, `other`).
    static func respond(_ request: Request, context: SandboxRequestContext, api: SandboxAPI) async -> (route: String, response: Response) {
        if request.method == .get, !request.uri.path.hasPrefix("/api/"), let file = webFile(request.uri.path) {
            return (request.uri.path.hasPrefix("/web/") ? "/web" : "/", file)
        }
        var body: [UInt8] = []
        let target = request.head.path ?? request.uri.string
        let route = api.routeLabel(path: APIRequest.splitTarget(target).path)
        do {
            let buffer = try await request.body.collect(upTo: context.maxUploadSize)
            body = Array(buffer.readableBytesView)
        } catch is NIOTooManyBytesError {
            return (route, encode(.error(OKXError(.bodyTooLarge, "Request body too large: the limit is \(context.maxUploadSize) bytes"))))
        } catch {
            // A body the HTTP decoder cannot read (a bad chunk size, a connection closed mid-body).
            return (route, encode(.error(OKXError(.jsonSyntax, "Request body unreadable: \(error)"))))
        }
        var headers: [String: String] = [:]
        for field in request.headers { headers[field.name.canonicalName] = field.value }
        let apiRequest = APIRequest(
            method: request.method.rawValue, target: target, body: body, headers: headers,
            remoteIsLoopback: isLoopback(context.remoteAddress))
        return (route, encode(await api.handle(apiRequest)))
    }

    static func encode(_ response: APIResponse) -> Response {
        let text = JSONWriter.serialize(response.envelope)
        return Response(
            status: HTTPResponse.Status(code: response.status),
            headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}

/// Starts the sandbox while the server already listens, opens the gate, then moves the market until shutdown:
/// ticks the simulator (random, replay), polls the followed upstream (follow), or only waits (static). It is the
/// first service of the application, so graceful shutdown reaches it last, after the server has drained.
struct StartService: Service {
    let configuration: SandboxConfiguration
    let gate: SandboxGate
    let start: @Sendable () async throws -> Sandbox
    let ready: @Sendable (Sandbox) async throws -> Void

    func run() async throws {
        let sandbox = try await start()
        gate.open(sandbox)
        // A shutdown asked for while the sandbox loaded leaves nothing to announce.
        guard !Task.isShuttingDownGracefully else { return }
        try await ready(sandbox)
        if let follower = sandbox.follower {
            // A shared market: this node drives it whenever no other does, and applies every tick it publishes.
            let interval = configuration.tickInterval
            await cancelWhenGracefulShutdown {
                await withTaskGroup(of: Void.self) { group in
                    group.addTask { await sandbox.simulator.drive(interval: interval, logger: Logger(label: "pm.market")) }
                    group.addTask { await follower.run(interval: min(interval, 1) / 4, logger: Logger(label: "pm.market")) }
                    if let rebalancer = sandbox.rebalancer {
                        group.addTask { await rebalancer.run(interval: 1, logger: Logger(label: "pm.partitions")) }
                    }
                }
            }
            // Drained and stopped: a rebalancing node hands its partitions over now, rather than when its leases expire.
            if sandbox.rebalancer != nil, let leases = sandbox.leases {
                let partitions = leases.heldPartitions
                try? await follower.release(partitions) { try leases.leave() }
            }
        } else if let upstream = sandbox.upstream {
            await cancelWhenGracefulShutdown {
                await upstream.run(interval: configuration.tickInterval)
            }
        } else if configuration.mode != .staticSnapshot {
            await cancelWhenGracefulShutdown {
                await sandbox.simulator.run(interval: configuration.tickInterval)
            }
        } else {
            try? await gracefulShutdown()
        }
    }
}
