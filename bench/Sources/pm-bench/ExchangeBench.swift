import ArgumentParser
import Dispatch
import Foundation
import GRDB
import MarginDefaults
import MarginEngine
import MarginStore
import Sandbox

/// `pm-bench exchange`: the sandbox exchange holding many accounts, in memory with its SQLite store.
///
/// The population is a group of 25 real accounts that trade through the API (USDT collateral, a perpetual
/// each, a third with 2–4 options, 6 classic, 2 fragile enough for a −8 % BTC shock), cloned in SQL with
/// every table (accounts, keys, balances, positions, orders, fills, bills, interest, settings) and the cash
/// identity kept (balances + insurance fund + house = deposits). Then it measures, in this order: start-up
/// (loading the database and margining every account), the engine's batch sweep of the same accounts,
/// a full tick (every coin moves and an hour passes: every account revalued, none liquidated), an ETH-only
/// tick, p99 of signed REST requests sent during a full tick, a tick that pays funding, and a BTC shock that
/// liquidates the fragile accounts.
struct ExchangeBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exchange",
        abstract: "Measure the sandbox exchange's ticks, requests during a tick, funding, liquidation and start-up (release build).",
        discussion: "Ends with one JSON line. Sizes are account counts, rounded down to whole groups of 25.")

    @Option(help: "Account counts to measure (comma-separated).") var accounts = "100000,1000000"
    @Option(help: "Directory for the databases (default: a temporary directory, removed at the end).") var directory: String?

    static let groupSize = 25

    func run() async throws {
        let sizes = accounts.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !sizes.isEmpty, sizes.allSatisfy({ $0 >= Self.groupSize }) else {
            throw ValidationError("--accounts takes counts of at least \(Self.groupSize)")
        }
        let base =
            directory.map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.temporaryDirectory
            .appendingPathComponent("pm-bench-\(ProcessInfo.processInfo.processIdentifier)")
        try FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        defer { if directory == nil { try? FileManager.default.removeItem(at: base) } }
        var fields: [(String, JSONValue)] = [("cores", .number(String(ProcessInfo.processInfo.activeProcessorCount)))]
        for size in sizes {
            let groups = size / Self.groupSize
            let path = base.appendingPathComponent("exchange-\(size).sqlite").path
            fields += try await measure(groups: groups, path: path)
        }
        fields.append(("peakMemoryMB", .number(String(Int(EngineBench.peakMemoryMB())))))
        print(JSONWriter.serialize(.object(fields)))
    }

    func measure(groups: Int, path: String) async throws -> [(String, JSONValue)] {
        let count = groups * Self.groupSize
        let label = count >= 1_000_000 ? "\(count / 1_000_000)M" : "\(count / 1_000)k"
        let catalog = try ShippedData.catalog()
        let parameters = try ShippedData.parameters()
        let market = try ShippedData.market(named: ShippedData.defaultMarketName)
        let secrets = SecretBox(keyBytes: Array(repeating: 9, count: 32))
        EngineBench.log("== \(count) accounts (\(groups) groups of \(Self.groupSize))")

        // The group, through the API, on the database that will hold the population.
        let clock = BenchClock(market.valuationTime.rawValue)
        let user = try await Population.group(
            path: path, secrets: secrets, catalog: catalog, parameters: parameters, market: market, clock: clock)
        let cloneSeconds = try EngineBench.timeThrowing { try Population.clone(path: path, groups: groups) }
        EngineBench.log(String(format: "population cloned in SQL: %.1f s", cloneSeconds))

        // Start-up: the database loaded and every account margined.
        let startupStart = DispatchTime.now().uptimeNanoseconds
        let database = try AppDatabase(path: path)
        let exchange = try Exchange(
            database: database, secrets: secrets, catalog: catalog, parameters: parameters, market: market, clock: { clock.now })
        let startup = Double(DispatchTime.now().uptimeNanoseconds - startupStart) / 1e9
        let held = await exchange.accountIDs.count
        EngineBench.log(String(format: "start-up: %.2f s for %d accounts", startup, held))

        // The engine's batch sweep of the same accounts (its figures, over both cores).
        let (book, kernel) = await exchange.riskBookSnapshot()
        var sweep = Double.infinity
        for _ in 0..<3 {
            sweep = min(sweep, EngineBench.time { _ = BatchRemargin.run(book, kernel: kernel) })
        }
        EngineBench.log(String(format: "engine batch sweep: %.3f s (%d accounts, %d lines)", sweep, book.count, book.instrument.count))

        // A full tick: every coin up 0.5 %, an hour of market time (no funding hour crossed), nobody liquidated.
        let api = SandboxAPI(exchange: exchange, adminToken: "bench", rateLimitPerSecond: 1e9, clock: { clock.now })
        let start = market.valuationTime.rawValue
        let hour: Int64 = 3_600_000
        var time = start
        var current = market
        func next(_ move: Double, only coin: String? = nil, advance: Int64) throws -> MarketSnapshot {
            time += advance
            let moved = try current.shocked(by: move, onlyCoin: coin)
            // Instruments expired by then leave the market (the population holds none of them).
            let live = moved.marks.filter { id, _ in (InstrumentID(id)?.expiry).map { $0 > UnixMillis(time) } ?? true }
            current = try MarketSnapshot(valuationTime: UnixMillis(time), indices: moved.indices, usdRate: moved.usdRate, marks: live)
            return current
        }
        // Stay clear of funding hours for the first ticks: the shipped market is at 17:31, the next funding at 00:00.
        let full = try next(0.005, advance: hour)
        var report = try await exchange.advance(to: market)
        let fullTick = try await EngineBench.timeAsync { report = try await exchange.advance(to: full) }
        EngineBench.log(
            String(
                format: "full tick: %.3f s, %d accounts re-margined, %d liquidated", fullTick, report.remarginedAccounts,
                report.liquidatedAccounts.count) + Self.phases(report))

        let ethOnly = try next(-0.01, only: "ETH", advance: 0)
        let ethTick = try await EngineBench.timeAsync { report = try await exchange.replaceMarket(ethOnly) }
        EngineBench.log(
            String(format: "ETH-only tick: %.3f s, %d accounts re-margined", ethTick, report.remarginedAccounts) + Self.phases(report))

        // Signed requests during a full tick: a client sends them back to back while the tick runs.
        let during = try next(0.004, advance: hour)
        let done = BenchClock(0)
        let running = Task {
            let result = try await exchange.advance(to: during)
            done.advance(1)
            return result
        }
        var latencies: [Double] = []
        let requestStart = DispatchTime.now().uptimeNanoseconds
        while done.now == 0 && latencies.count < 1_000_000 {
            let sent = DispatchTime.now().uptimeNanoseconds
            clock.advance(1)
            let response = await api.handle(user.signed("GET", "/api/v5/account/balance", now: clock.now))
            precondition(response.status == 200, "balance request failed: \(response.status)")
            latencies.append(Double(DispatchTime.now().uptimeNanoseconds - sent) / 1e6)
        }
        let tickWithRequests = Double(DispatchTime.now().uptimeNanoseconds - requestStart) / 1e9
        _ = try await running.value
        let p99 = latencies.sorted()[min(latencies.count - 1, Int(Double(latencies.count) * 0.99))]
        EngineBench.log(
            String(
                format: "requests during a tick: %d answered in %.2f s, p99 %.2f ms, max %.2f ms", latencies.count, tickWithRequests,
                p99, latencies.max() ?? 0))

        // A tick that crosses a funding hour: every holder of a perpetual pays or receives funding.
        let toFunding = (time / (8 * hour) + 1) * (8 * hour) + 60_000 - time
        let funding = try next(0.001, advance: toFunding)
        let fundingTick = try await EngineBench.timeAsync { report = try await exchange.advance(to: funding) }
        EngineBench.log(String(format: "funding tick: %.2f s, %d payments", fundingTick, report.fundingPayments) + Self.phases(report))
        // The next one, 8 hours on: what a running server pays every funding hour. The first funding tick after
        // start-up also grows the writer's page cache and the WAL file to their working size (the kernel zeroes
        // every new page), which later ones reuse.
        let nextFunding = try next(0.001, advance: 8 * hour)
        let steadyFundingTick = try await EngineBench.timeAsync { report = try await exchange.advance(to: nextFunding) }
        EngineBench.log(
            String(format: "next funding tick: %.2f s, %d payments", steadyFundingTick, report.fundingPayments) + Self.phases(report))

        // A BTC shock that liquidates the fragile accounts.
        let crash = try next(-0.08, only: "BTC", advance: 0)
        let crashTick = try await EngineBench.timeAsync { report = try await exchange.replaceMarket(crash) }
        EngineBench.log(
            String(format: "BTC −8 %% shock: %.2f s, %d accounts liquidated", crashTick, report.liquidatedAccounts.count)
                + Self.phases(report))

        func seconds(_ value: Double) -> JSONValue { .number(DecimalText.format((value * 1000).rounded() / 1000)) }
        return [
            ("accounts\(label)", .number(String(held))),
            ("startup\(label)S", seconds(startup)),
            ("sweep\(label)S", seconds(sweep)),
            ("fullTick\(label)S", seconds(fullTick)),
            ("fullTickOverSweep\(label)", seconds(fullTick / sweep)),
            ("ethTick\(label)S", seconds(ethTick)),
            ("requestP99DuringTick\(label)Ms", seconds(p99)),
            ("requestsDuringTick\(label)", .number(String(latencies.count))),
            ("fundingTick\(label)S", seconds(fundingTick)),
            ("nextFundingTick\(label)S", seconds(steadyFundingTick)),
            ("shockLiquidations\(label)", .number(String(report.liquidatedAccounts.count))),
            ("shockTick\(label)S", seconds(crashTick)),
        ]
    }
}

extension ExchangeBench {
    /// The tick's phases, for the log.
    static func phases(_ report: TickReport) -> String {
        "\n    " + report.phaseSeconds.map { String(format: "%@ %.3f", $0.phase, $0.seconds) }.joined(separator: ", ")
    }
}

/// A clock that moves only when told to (the benchmark signs requests with it).
final class BenchClock: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Int64
    init(_ start: Int64) { value = start }
    var now: Int64 { lock.withLock { value } }
    func advance(_ milliseconds: Int64) { lock.withLock { value += milliseconds } }
}

extension EngineBench {
    static func timeAsync(_ body: () async throws -> Void) async throws -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        try await body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }
}
