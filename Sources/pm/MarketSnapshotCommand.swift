import ArgumentParser
import Foundation
import MarginEngine
import MarketFeed
import MarketFeedHTTP

struct Market: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Market data from an OKX v5 endpoint (https://www.okx.com, or any OKX v5-compatible server such as pm serve).",
        subcommands: [MarketSnapshotCommand.self])
}

struct MarketSnapshotCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshot",
        abstract: "Build a market snapshot and an instrument catalog from an OKX v5 endpoint's public REST API.",
        discussion: """
            Calls GET /api/v5/public/instruments (SPOT, SWAP, FUTURES; OPTION per family of public/underlying), \
            public/mark-price, market/tickers (SPOT), market/index-tickers (USD, USDT, USDC quotes and the USDT-USD and \
            USDC-USD indices), public/opt-summary (markVol, fwdPx) and public/funding-rate, within OKX's documented rate \
            limits. Writes the snapshot (the engine's format, as the shipped ones) to FILE and the catalog (the \
            public/instruments response) to --catalog-out, by default FILE with .instruments.json for .json: \
            pm build --snapshot FILE --catalog CATALOG and pm serve --snapshot FILE --catalog CATALOG use them. \
            Whatever fails validation (a bound, an expiry, an option with neither mark nor volatility) is named on \
            stderr and left out; the exit status is non-zero only when nothing usable remains.
            """)

    @Option(
        name: .customLong("from"),
        help: ArgumentHelp("The OKX v5 endpoint, e.g. https://www.okx.com or http://127.0.0.1:8080.", valueName: "URL"))
    var upstream: String

    @Option(help: ArgumentHelp("Coins to keep, comma-separated (default: every coin the endpoint lists).", valueName: "BTC,ETH,…"))
    var coins: String?

    @Option(name: .shortAndLong, help: ArgumentHelp("The snapshot file to write.", valueName: "FILE"))
    var output: String

    @Option(
        name: .customLong("catalog-out"),
        help: ArgumentHelp("The catalog file to write (default: FILE.instruments.json).", valueName: "FILE"))
    var catalogOutput: String?

    @Option(help: "Seconds a request may take.") var timeout: Double = 10

    func validate() throws {
        guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
        if let coins, parseCoins(coins) == nil {
            throw ValidationError("--coins \(coins): expected coin names separated by commas, e.g. BTC,ETH")
        }
    }

    func run() async throws {
        let client: OKXClient
        do { client = try OKXClient(baseURL: upstream, timeoutSeconds: timeout) } catch {
            fail("--from \(error.description)")
        }
        let coinSet = coins.flatMap(parseCoins)
        let progress = ProgressLine()
        let answers = await MarketFetcher(client: client, progress: progress.show).fetchAll(coins: coinSet, fundingRates: true)
        progress.finish()
        let fetchedAt = Date()
        let source = """
            OKX v5 public REST at \(client.baseURL) (public/instruments, public/mark-price, market/tickers, market/index-tickers, \
            public/opt-summary, public/funding-rate)\(coinSet.map { " for \($0.sorted().joined(separator: ","))" } ?? ""), \
            fetched \(OKXCredentials.timestamp(fetchedAt)) by pm market snapshot; rates.USD is not published by OKX (0, the default)
            """
        var assembled = MarketAssembler.assemble(answers, coins: coinSet, source: source)
        assembled.problems.append(FeedProblem("rates.USD", "OKX v5 publishes no USD discount rate; 0 is written (the engine's default)"))
        reportProblems(assembled.problems)
        guard assembled.isUsable, let snapshot = assembled.snapshot, let document = assembled.snapshotDocument else {
            fail("nothing usable from \(client.baseURL): no index price and no instrument passed validation (the reasons are above)")
        }
        let catalogPath = catalogOutput ?? Self.catalogPath(for: output)
        let snapshotText = JSONWriter.serialize(document, pretty: true) + "\n"
        let catalogText = JSONWriter.serialize(assembled.catalogDocument, pretty: true) + "\n"
        // What is written is what the engine reads back: the same validation as the shipped files.
        do {
            _ = try MarketSnapshot(bytes: Array(snapshotText.utf8))
            _ = try InstrumentCatalog(bytes: Array(catalogText.utf8))
        } catch {
            fail("the assembled files do not read back: \(error.description)")
        }
        do {
            try Data(snapshotText.utf8).write(to: URL(fileURLWithPath: output), options: .atomic)
            try Data(catalogText.utf8).write(to: URL(fileURLWithPath: catalogPath), options: .atomic)
        } catch {
            fail("cannot write \(output) or \(catalogPath): \(error.localizedDescription)")
        }
        let options = snapshot.marks.keys.filter { InstrumentID($0)?.kind == .option }.count
        print(
            """
            wrote \(output): market at \(snapshot.valuationTime.iso8601), \(snapshot.indices.count) indices, \
            \(snapshot.marks.count) marks (\(options) options)
            wrote \(catalogPath): \(assembled.catalogEntries.count) instruments
            use: pm build REQUEST.json --snapshot \(output) --catalog \(catalogPath)
                 pm serve --snapshot \(output) --catalog \(catalogPath)
            """)
    }

    /// `market.json` → `market.instruments.json`; any other name gets `.instruments.json` appended.
    static func catalogPath(for snapshotPath: String) -> String {
        snapshotPath.hasSuffix(".json") ? String(snapshotPath.dropLast(5)) + ".instruments.json" : snapshotPath + ".instruments.json"
    }
}

/// `BTC,eth, SOL` → {BTC, ETH, SOL}; nil when a name is empty or not letters and digits.
func parseCoins(_ text: String) -> Set<String>? {
    let names = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces).uppercased() }
    guard !names.isEmpty, names.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) } }) else {
        return nil
    }
    return Set(names)
}

/// One line of progress on standard error, rewritten in place, only when standard error is a terminal.
final class ProgressLine: Sendable {
    let enabled = isatty(2) == 1

    func show(_ number: Int, _ request: String) {
        guard enabled else { return }
        let line = "[\(number)] \(request)"
        FileHandle.standardError.write(Data("\r\u{1B}[K\(line.prefix(150))".utf8))
    }

    func finish() {
        guard enabled else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }
}

/// Every problem on standard error, one line each, after a count.
func reportProblems(_ problems: [FeedProblem], only subjects: Set<String>? = nil) {
    let shown = subjects.map { wanted in problems.filter { wanted.contains($0.subject) || $0.subject.hasPrefix("GET ") } } ?? problems
    guard !shown.isEmpty else { return }
    var text =
        "pm: \(shown.count) field\(shown.count == 1 ? "" : "s") or instrument\(shown.count == 1 ? "" : "s") could not be used as given:\n"
    for problem in shown { text += "  \(problem.description)\n" }
    if let subjects, shown.count < problems.count {
        text += "  (and \(problems.count - shown.count) about instruments and indices other than \(subjects.count) of interest)\n"
    }
    FileHandle.standardError.write(Data(text.utf8))
}

/// Ends the command with one line on standard error and status 1.
func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("pm: error: \(message)\n".utf8))
    Foundation.exit(1)
}
