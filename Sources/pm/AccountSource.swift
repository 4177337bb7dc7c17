import ArgumentParser
import Foundation
import MarginEngine
import MarketFeed
import MarketFeedHTTP

/// `pm build --account URL`: a real account's positions and balances, read through OKX's signed
/// `account/positions` and `account/balance`, margined with the request's `simPos`/`simAsset` on top.
struct AccountOptions: ParsableArguments {
    @Option(
        name: .customLong("account"),
        help: ArgumentHelp(
            "An OKX v5 endpoint whose account (the API key's) to margin, e.g. https://www.okx.com; its market too unless --snapshot is given.",
            valueName: "URL"))
    var url: String?

    @Option(name: .customLong("key"), help: ArgumentHelp("API key (default: $PM_OKX_KEY).", valueName: "KEY"))
    var apiKey: String?

    @Option(
        name: .customLong("secret"),
        help: ArgumentHelp("API secret (default: $PM_OKX_SECRET; the variable keeps it out of the process list).", valueName: "SECRET"))
    var secretKey: String?

    @Option(name: .customLong("passphrase"), help: ArgumentHelp("API passphrase (default: $PM_OKX_PASSPHRASE).", valueName: "PASSPHRASE"))
    var passphrase: String?

    /// The environment variables read when an option is not given.
    static let keyVariable = "PM_OKX_KEY", secretVariable = "PM_OKX_SECRET", passphraseVariable = "PM_OKX_PASSPHRASE"

    /// The credentials from the options, else from the environment; a failure names what is missing, never a value.
    func credentials(environment: [String: String] = ProcessInfo.processInfo.environment) throws(CommandFailure) -> OKXCredentials {
        func value(_ given: String?, _ variable: String, _ option: String) throws(CommandFailure) -> String {
            if let given, !given.isEmpty { return given }
            if let fromEnvironment = environment[variable], !fromEnvironment.isEmpty { return fromEnvironment }
            throw CommandFailure(description: "--account needs \(option) or the environment variable \(variable)")
        }
        return OKXCredentials(
            apiKey: try value(apiKey, Self.keyVariable, "--key"), secretKey: try value(secretKey, Self.secretVariable, "--secret"),
            passphrase: try value(passphrase, Self.passphraseVariable, "--passphrase"))
    }

    /// With `--account`: the account's portfolio, after replacing `inputs`' catalog and market with the
    /// endpoint's (for the coins held and simulated) unless `--snapshot`, `--catalog` or an inline market say
    /// otherwise. Nil without `--account`.
    func realPortfolio(into inputs: inout LoadedInputs, data: DataOptions) async throws(CommandFailure) -> Portfolio? {
        guard let url else { return nil }
        let client: OKXClient
        do { client = try OKXClient(baseURL: url, credentials: try credentials()) } catch let error as OKXFeedError {
            throw CommandFailure(description: "--account \(error.description)")
        } catch {
            throw error as? CommandFailure ?? CommandFailure(description: "--account \(url): \(error)")
        }
        let holdings: AccountHoldings
        do { holdings = try await AccountHoldings.fetch(client) } catch {
            throw CommandFailure(description: "--account \(error.description)")
        }
        if data.snapshot == nil, inputs.request.market == nil {
            var coins = holdings.currencies
            for position in inputs.request.positions {
                if let id = InstrumentID(position.instrumentID) { coins.formUnion([id.baseCurrency, id.quoteCurrency]) }
            }
            coins.formUnion(inputs.request.assets.map(\.currency))
            coins.formUnion(["USDT", "USDC"])
            coins.remove("USD")
            let progress = ProgressLine()
            let answers = await MarketFetcher(client: client, progress: progress.show).fetchAll(coins: coins, fundingRates: false)
            progress.finish()
            let assembled = MarketAssembler.assemble(
                answers, coins: coins, source: "OKX v5 REST at \(client.baseURL), fetched by pm build --account",
                knownCatalog: data.catalog == nil ? nil : inputs.catalog)
            var interesting = coins
            for row in holdings.positions {
                if case .object(let entry) = row, case .string(let id)? = entry["instId"] { interesting.insert(id) }
            }
            interesting.formUnion(inputs.request.positions.map(\.instrumentID))
            reportProblems(assembled.problems, only: interesting)
            guard assembled.isUsable, let snapshot = assembled.snapshot else {
                throw CommandFailure(
                    description:
                        "--account \(client.baseURL): no usable market for \(coins.sorted().joined(separator: ",")) (the reasons are above)"
                )
            }
            inputs.market = snapshot
            if data.catalog == nil { inputs.catalog = assembled.catalog }
        }
        do {
            let (portfolio, problems) = try holdings.portfolio(catalog: inputs.catalog, market: inputs.market)
            reportProblems(problems)
            if isatty(2) == 1 {
                FileHandle.standardError.write(
                    Data(
                        "pm: account at \(client.baseURL): \(portfolio.positions.count) positions, \(portfolio.cashBalances.count) balances\n"
                            .utf8))
            }
            return portfolio
        } catch {
            throw CommandFailure(description: "--account \(client.baseURL): \(error.description)")
        }
    }
}

/// ``runReportingErrors(_:)`` for a body that awaits.
func runReportingErrorsAsync(_ body: () async throws -> String) async throws {
    let output: String
    do {
        output = try await body()
    } catch let error as CommandFailure {
        FileHandle.standardError.write(Data("pm: error: \(error.description)\n".utf8))
        throw ExitCode.failure
    } catch let error as EngineError {
        FileHandle.standardError.write(Data("pm: error: \(error.description)\n".utf8))
        throw ExitCode.failure
    }
    FileHandle.standardOutput.write(Data(output.utf8))
}
