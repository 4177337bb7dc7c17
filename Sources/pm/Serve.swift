import ArgumentParser
import Foundation
import Hummingbird
import Logging
import MarginDefaults
import MarginEngine
import MarginStore
import MarginStorePostgres
import MarketFeed
import MarketFeedHTTP
import Sandbox
import Synchronization

/// Options naming the sandbox database (and the key and admin-token files beside it).
struct DatabaseOption: ParsableArguments {
    @Option(
        name: .customLong("db"),
        help: ArgumentHelp(
            "The sandbox's ledger: a SQLite file (a path, or sqlite:PATH) or a PostgreSQL database (postgres://USER@HOST:PORT/DB, ?sslmode=verify-full&sslrootcert=PATH for TLS).",
            valueName: "FILE|URL"))
    var path = "pm-sandbox.sqlite"
    @Option(
        name: .customLong("files"),
        help: ArgumentHelp(
            "Prefix of the secret key (PREFIX.key) and admin token (PREFIX.admin-token) files; default: the SQLite file, or pm-sandbox-DB in the working directory for PostgreSQL. Every node of one PostgreSQL ledger needs the same key file.",
            valueName: "PREFIX"))
    var files: String?

    func validate() throws {
        do { _ = try LedgerLocation(parsing: path) } catch { throw ValidationError("--db \(error)") }
    }

    var location: LedgerLocation { (try? LedgerLocation(parsing: path)) ?? .sqlite(path: path) }

    /// Where the key and admin token files are.
    var filesPrefix: String {
        if let files { return files }
        switch location {
        case .sqlite(let path): return path
        case .postgres(let address): return "pm-sandbox-\(address.database)"
        }
    }

    /// The sandbox's configuration for this database: the SQLite file, or the files prefix beside a PostgreSQL one.
    func configuration() -> SandboxConfiguration {
        var configuration: SandboxConfiguration
        switch location {
        case .sqlite(let path): configuration = SandboxConfiguration(databasePath: path)
        case .postgres: configuration = SandboxConfiguration(databasePath: "")
        }
        configuration.filesPrefix = filesPrefix
        return configuration
    }

    /// The PostgreSQL store (connected and migrated), or nil for SQLite, which ``Sandbox/open`` opens itself.
    func openStore() throws -> (any LedgerStore)? {
        switch location {
        case .sqlite: return nil
        case .postgres(let address): return try PostgresLedger(address)
        }
    }

    /// What a serving node (pm serve) opens: on SQLite nothing (``Sandbox/open`` opens the file, one partition, the
    /// market its own); on PostgreSQL the ledger holding the leases of `partitions` (all when nil), advertising
    /// `url` to the nodes that forward to it, the shared market's log (a moving market: random, replay) and the
    /// forwarder to the owners of the other partitions.
    func openServing(
        partitions: [Int]?, url: String, sharedMarket: Bool
    ) throws -> (store: (any LedgerStore)?, log: (any MarketTickLog)?, forwarder: (any RequestForwarder)?, leases: (any PartitionLeases)?) {
        switch location {
        case .sqlite: return (nil, nil, nil, nil)
        case .postgres(let address):
            let node = "\(ProcessInfo.processInfo.hostName)/\(ProcessInfo.processInfo.processIdentifier)/\(UUID().uuidString.prefix(8))"
            let ledger = try PostgresLedger(address, servingAs: node, partitions: partitions, advertising: url)
            return (ledger, sharedMarket ? PostgresMarketLog(address) : nil, OwnerForwarder(ledger: ledger, node: node), ledger)
        }
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the API sandbox: an OKX v5-compatible exchange on loopback (REST), margined by the engine.",
        discussion: """
            With no arguments: 127.0.0.1:8080, the database pm-sandbox.sqlite (created if missing), the shipped catalog, \
            calm-2025-12-30 market and okx-2025-01 parameters, a static market. On an empty database a demo account \
            with test money is created and its API key, secret and passphrase are printed.
            Market modes: --market-mode static | random [--seed N] | replay FILE [--replay-coin BTC] | \
            follow URL [--coins BTC,ETH]: marks, indices and vols polled every --tick seconds from an OKX v5 \
            endpoint (https://www.okx.com, or another pm serve), whose catalog replaces the shipped one unless --catalog \
            is given; an upstream that stops answering freezes the market (logged, and GET /api/v5/system/status).
            Operations: the server listens at once; GET /ready answers 503 until the database and the market are loaded, \
            then 200 (GET /live: 200 while serving); GET /metrics is Prometheus's text format, for loopback clients \
            unless --metrics-access any; SIGTERM or SIGINT drains the requests in flight, then exits 0.
            """)

    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on.") var port = 8080
    @Option(
        help: ArgumentHelp(
            "PostgreSQL only: the partitions this node serves, e.g. 0-5 or 0,3,7 (default: all 16), or auto: its share of the nodes alive, rebalanced as nodes join and leave. Another node's partitions are forwarded to it.",
            valueName: "LIST"))
    var partitions: String?
    @Option(
        help: ArgumentHelp(
            "PostgreSQL only: the URL other nodes forward requests for this node's partitions to (default: http://HOST:PORT).",
            valueName: "URL"))
    var advertise: String?
    @OptionGroup var database: DatabaseOption

    @Option(
        name: .customLong("market-mode"), parsing: .upToNextOption,
        help: ArgumentHelp(
            "How the market moves: static (default), random, replay FILE (a CSV with timestamp_utc and close), or follow URL (an OKX v5 endpoint).",
            valueName: "MODE [FILE|URL]"))
    var marketMode: [String] = []

    /// `--market`, the old name of `--market-mode` (renamed because `pm build --snapshot` and `pm serve --snapshot`
    /// name a snapshot); still accepted, with a note on standard error.
    @Option(name: .customLong("market"), parsing: .upToNextOption, help: .hidden)
    var deprecatedMarket: [String] = []

    @Option(help: "Seed of the random market.") var seed: UInt64 = 42
    @Option(help: "Coin a replay moves.") var replayCoin = "BTC"
    @Option(help: "Wall seconds between market ticks (random and replay), or between polls of a followed upstream.") var tick: Double = 1
    @Option(help: ArgumentHelp("Coins a followed market keeps, comma-separated (default: all).", valueName: "BTC,ETH,…")) var coins: String?
    @Option(help: "Market seconds per tick in random mode.") var step: Double = 1
    @Option(help: ArgumentHelp("Base market snapshot: a shipped name or a file.", valueName: "NAME|FILE"))
    var snapshot = ShippedData.defaultMarketName
    @Option(help: ArgumentHelp("Parameter set: a shipped id or a file.", valueName: "ID|FILE"))
    var params = ShippedData.defaultParameterSetID
    @Option(help: ArgumentHelp("Instrument catalog file (default: shipped).", valueName: "FILE")) var catalog: String?
    @Option(help: "Allowed clock difference of signed requests, seconds.") var timestampWindow = 30
    @Option(help: "Requests per second per API key (burst the same).") var rateLimit: Double = 500
    @Option(help: "Seconds a connection may stay silent before the server closes it (slow clients).") var idleTimeout: Double = 30
    @Option(
        help: ArgumentHelp(
            "Who may read GET /metrics (Prometheus): loopback clients only (default, like the sandbox control API), any client, or nobody.",
            valueName: "loopback|any|off"))
    var metricsAccess: MetricsAccess = .loopback

    mutating func validate() throws {
        if !deprecatedMarket.isEmpty {
            guard marketMode.isEmpty else { throw ValidationError("--market is the old name of --market-mode: give one of them") }
            marketMode = try renamedOption("--market", to: "--market-mode", value: deprecatedMarket)
            deprecatedMarket = []
        }
        if marketMode.isEmpty { marketMode = ["static"] }
        guard let mode = marketMode.first, ["static", "random", "replay", "follow"].contains(mode) else {
            throw ValidationError("--market-mode must be static, random, replay FILE or follow URL")
        }
        if mode == "replay", marketMode.count != 2 {
            throw ValidationError("--market-mode replay needs a CSV file: --market-mode replay FILE")
        }
        if mode == "follow", marketMode.count != 2 {
            throw ValidationError("--market-mode follow needs an OKX v5 endpoint: --market-mode follow URL")
        }
        if mode != "replay", mode != "follow", marketMode.count != 1 { throw ValidationError("--market-mode \(mode) takes no file") }
        if let coins, parseCoins(coins) == nil {
            throw ValidationError("--coins \(coins): expected coin names separated by commas, e.g. BTC,ETH")
        }
        if coins != nil, mode != "follow" { throw ValidationError("--coins applies to --market-mode follow URL only") }
        guard tick > 0, step > 0 else { throw ValidationError("--tick and --step must be positive") }
        guard idleTimeout >= 0.1, idleTimeout <= 86_400 else { throw ValidationError("--idle-timeout must be 0.1 to 86400 seconds") }
        if let partitions {
            guard case .postgres = database.location else {
                throw ValidationError("--partitions applies to a PostgreSQL ledger (--db postgres://…)")
            }
            guard let parsed = partitions == "auto" ? [] : Self.parsePartitions(partitions) else {
                throw ValidationError("--partitions \(partitions): expected auto, or partitions of 0-15 such as 0-5 or 0,3,7")
            }
            if mode == "follow", parsed.count < 16 {
                throw ValidationError("--market-mode follow serves every partition from one node: it does not take --partitions")
            }
        }
        if advertise != nil, case .sqlite = database.location {
            throw ValidationError("--advertise applies to a PostgreSQL ledger (--db postgres://…)")
        }
    }

    /// `0-5`, `0,3,7`, `0-3,8`: distinct partitions of the PostgreSQL ledger, sorted; nil when malformed.
    static func parsePartitions(_ text: String) -> [Int]? {
        var chosen = Set<Int>()
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            let bounds = item.split(separator: "-", omittingEmptySubsequences: false).map { Int($0) }
            guard (1...2).contains(bounds.count), let low = bounds.first ?? nil, let high = bounds.last ?? nil, low <= high,
                low >= 0, high < LedgerPartitions.postgres.count
            else { return nil }
            chosen.formUnion(low...high)
        }
        return chosen.isEmpty ? nil : chosen.sorted()
    }

    func run() async throws {
        var data: SandboxInputs
        do { data = try SandboxInputs(snapshot: snapshot, params: params, catalog: catalog) } catch { fail(error.description) }
        var logger = Logger(label: "pm.sandbox") { LazyMetadataLogHandler(label: $0) }
        logger.logLevel = .warning
        var configuration = database.configuration()
        configuration.host = host
        configuration.port = port
        configuration.tickInterval = tick
        configuration.stepSeconds = step
        configuration.timestampWindowSeconds = timestampWindow
        configuration.rateLimitPerSecond = rateLimit
        configuration.idleTimeoutSeconds = idleTimeout
        configuration.metricsAccess = metricsAccess
        switch marketMode.first {
        case "random": configuration.mode = .random(seed: seed)
        case "replay": configuration.mode = .replay(path: marketMode[1], coin: replayCoin)
        case "follow": configuration.mode = .follow(url: marketMode[1])
        default: configuration.mode = .staticSnapshot
        }
        // The metrics backend, once per process and before the sandbox makes its metrics (SandboxMetrics reads the factory).
        let renderMetrics = PrometheusBackend.bootstrap()
        let metrics = SandboxMetrics()
        let (followed, coinsKept, tickSeconds) = (configuration.mode, coins.flatMap(parseCoins), tick)
        let givenCatalog = catalog != nil
        let banner = ServeBanner(
            host: host, port: port, database: "\(database.location)", filesPrefix: database.filesPrefix, metricsAccess: metricsAccess,
            parametersID: data.parameters.id,
            market: marketMode.joined(separator: " "), snapshot: snapshot)
        // The server listens at once (GET /live, GET /ready: 503); the sandbox opens behind it, off the cooperative
        // threads: migrations, every account, the followed upstream's catalog and market, the market reached.
        let (baseConfiguration, inputs, sandboxLogger) = (configuration, data, logger)
        let rebalancing = partitions == "auto"
        let held = rebalancing ? [] : partitions.flatMap(Self.parsePartitions)
        let advertised = advertise ?? "http://\(host.contains(":") ? "[\(host)]" : host):\(port)"
        let application = Sandbox.application(
            configuration, metrics: metrics, renderMetrics: renderMetrics, logger: logger,
            start: {
                var configuration = baseConfiguration
                var data = inputs
                let logger = sandboxLogger
                var upstream: OKXClient?
                if case .follow(let url) = followed {
                    let found = await followedMarket(
                        url: url, coins: coinsKept, catalog: givenCatalog ? data.catalog : nil, timeout: max(1, min(tickSeconds * 5, 10)))
                    (upstream, data.catalog, data.market) = (found.client, found.catalog, found.market)
                    configuration.mode = .follow(url: found.client.baseURL)
                }
                do {
                    let sandbox = try await offCooperativeThreads { [configuration, data, upstream] in
                        // A followed market is read by its one node; any other mode is shared through the ledger.
                        var shared = true
                        if case .follow = configuration.mode { shared = false }
                        let serving = try database.openServing(partitions: held, url: advertised, sharedMarket: shared)
                        return try Sandbox.open(
                            configuration, store: serving.store, catalog: data.catalog, market: data.market,
                            parameters: data.parameters, upstream: upstream,
                            logger: logger, metrics: metrics, marketLog: serving.log, partitions: held, forwarder: serving.forwarder,
                            leases: serving.leases, rebalancing: rebalancing)
                    }
                    try await sandbox.restoreMarket()
                    // Part of starting: ready means the demo account exists too.
                    try await banner.createDemoAccountIfEmpty(sandbox)
                    return sandbox
                } catch {
                    // One line and status 1 at once, as before the server listened (a thrown error would also make
                    // the server log its cancellation).
                    fail("\(error)")
                }
            },
            ready: { sandbox in await banner.print(sandbox) })
        try await application.runService()
    }
}

/// The block `pm serve` prints on standard output once it is ready: where everything is, then the demo account it
/// created on an empty database (or how many accounts it restored). No test parses it; people read it.
final class ServeBanner: Sendable {
    let host: String
    let port: Int
    let database: String
    let filesPrefix: String
    let metricsAccess: MetricsAccess
    let parametersID: String
    let market: String
    let snapshot: String
    /// The demo account's lines, when starting created one.
    private let demo = Mutex<String?>(nil)

    init(
        host: String, port: Int, database: String, filesPrefix: String, metricsAccess: MetricsAccess, parametersID: String, market: String,
        snapshot: String
    ) {
        (self.host, self.port, self.database, self.filesPrefix, self.metricsAccess) = (host, port, database, filesPrefix, metricsAccess)
        (self.parametersID, self.market, self.snapshot) = (parametersID, market, snapshot)
    }

    var address: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// On an empty database: a demo account with test money, remembered for the banner.
    func createDemoAccountIfEmpty(_ sandbox: Sandbox) async throws {
        // Only the node of the whole ledger: a node holding some partitions (or none yet) creates no demo account.
        guard sandbox.exchange.heldPartitions.count == sandbox.database.partitions.count, await sandbox.exchange.accountIDs.isEmpty
        else { return }
        let created = try await sandbox.exchange.createAccount(
            label: "demo", deposits: [("USDT", ExactDecimal(100_000)), ("BTC", ExactDecimal(2)), ("ETH", ExactDecimal(20))])
        let base = "http://\(address)"
        let text = """
            Demo account \(created.uid) created with 100000 USDT, 2 BTC, 20 ETH:
              apiKey     \(created.apiKey)
              secretKey  \(created.secretKey)
              passphrase \(created.passphrase)
            ccxt:       ex = ccxt.okx({'apiKey': KEY, 'secret': SECRET, 'password': PASSPHRASE}); ex.urls['api']['rest'] = '\(base)'
            python-okx: okx.Account.AccountAPI(KEY, SECRET, PASSPHRASE, False, '0', domain='\(base)')

            """
        demo.withLock { $0 = text }
    }

    func print(_ sandbox: Sandbox) async {
        let base = "http://\(address)"
        let metrics: String
        switch metricsAccess {
        case .loopback: metrics = "\(base)/metrics (Prometheus; loopback clients only)"
        case .any: metrics = "\(base)/metrics (Prometheus; any client)"
        case .off: metrics = "off (--metrics-access off)"
        }
        var text = """
            pm serve: ready — an OKX v5-compatible sandbox margined by the engine
              Position Builder  \(base)/
              REST API          \(base)/api/v5
              WebSocket         ws://\(address)/ws/v5/public, ws://\(address)/ws/v5/private, ws://\(address)/ws/v5/business
              metrics           \(metrics)
              readiness         \(base)/ready (liveness \(base)/live)
              admin token       \(filesPrefix).admin-token (sandbox control at \(base)/api/v5/sandbox/…, loopback only)
              database          \(database)
              market            \(market), snapshot \(snapshot), parameters \(parametersID)

            """
        if let demo = demo.withLock({ $0 }) {
            text += demo
        } else {
            text +=
                "\(await sandbox.exchange.accountIDs.count) account(s) restored; create more with `pm account create --db \(database)`\n"
        }
        FileHandle.standardOutput.write(Data(text.utf8))
    }
}

/// Runs blocking work (opening the database: migrations, loading every account) on a thread of its own, so that
/// the cooperative threads keep answering `/live` and `/ready` meanwhile.
func offCooperativeThreads<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}

extension MetricsAccess: ExpressibleByArgument {}

struct Account: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Sandbox accounts.", subcommands: [AccountCreate.self])
}

struct AccountCreate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create", abstract: "Create a sandbox account with an API key, directly in the database.",
        discussion: "A running `pm serve` on the same database picks the new key up on its first request.")

    @OptionGroup var database: DatabaseOption
    @Option(name: .customLong("deposit"), help: ArgumentHelp("Test money, e.g. USDT=50000 (repeatable).", valueName: "CCY=AMOUNT"))
    var deposits: [String] = []
    @Option(help: "Output format.") var format: OutputFormat = .table
    @Option(help: "A label for the account.") var label = ""

    func run() async throws {
        var parsed: [(String, ExactDecimal)] = []
        for deposit in deposits {
            let parts = deposit.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty, let amount = ExactDecimal(parts[1]), amount.units > 0 else {
                FileHandle.standardError.write(Data("pm: error: --deposit \(deposit): expected CCY=AMOUNT with a positive amount\n".utf8))
                throw ExitCode.failure
            }
            parsed.append((parts[0], amount))
        }
        let data: SandboxInputs
        do { data = try SandboxInputs(snapshot: nil, params: nil, catalog: nil) } catch { fail(error.description) }
        do {
            let sandbox = try Sandbox.open(
                database.configuration(), store: database.openStore(), catalog: data.catalog, market: data.market,
                parameters: data.parameters)
            let created = try await sandbox.exchange.createAccount(label: label, deposits: parsed)
            if format == .json {
                let json = JSONValue.object([
                    ("uid", .string(created.uid)), ("apiKey", .string(created.apiKey)), ("secretKey", .string(created.secretKey)),
                    ("passphrase", .string(created.passphrase)),
                ])
                print(JSONWriter.serialize(json, pretty: true))
            } else {
                print(
                    "uid        \(created.uid)\napiKey     \(created.apiKey)\nsecretKey  \(created.secretKey)\npassphrase \(created.passphrase)"
                )
            }
        } catch {
            FileHandle.standardError.write(Data("pm: error: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }
}
