import ArgumentParser
import MarginEngine

struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The same portfolio side by side: portfolio vs classic margin, or several margin models (--models).",
        discussion: """
            REQUEST.json is a position-builder request; simPos lever (or a top-level lever) sets classic leverage. \
            With --models okx-pm,derive-pm2 the portfolio is margined under each model, each with its own parameter set \
            (--params replaces the set of its model), and the components that drive each requirement are listed.
            """)

    @Argument(help: ArgumentHelp("The request file, or - for standard input.", valueName: "REQUEST.json"))
    var request: String

    @OptionGroup var data: DataOptions

    @Option(
        help: ArgumentHelp(
            "Compare margin models instead of modes (comma-separated: \(MarginModelID.allCases.map(\.rawValue).joined(separator: ",")))).",
            valueName: "MODEL,MODEL"))
    var models: String?

    @Option(help: "Output format (default: table on a terminal, json otherwise).")
    var format: OutputFormat?

    func validate() throws {
        guard let models else { return }
        let names = models.split(separator: ",").map(String.init)
        guard !names.isEmpty else { throw ValidationError("--models needs at least one model") }
        for name in names where MarginModelID(rawValue: name) == nil {
            throw ValidationError(
                "--models: unknown model \"\(name)\" (models: \(MarginModelID.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        guard Set(names).count == names.count else { throw ValidationError("--models lists a model twice") }
    }

    func run() throws {
        try runReportingErrors {
            let format = self.format ?? (standardOutputIsTerminal() ? .table : .json)
            if let models {
                let inputs = try LoadedInputs(requestPath: request, options: data, models: Set(MarginModelID.allCases))
                var sets: [ModelParameters] = []
                for name in models.split(separator: ",") {
                    sets.append(try inputs.parameters(for: MarginModelID(rawValue: String(name)) ?? .okxPM))
                }
                let report = try ModelComparison.compare(inputs.request, catalog: inputs.catalog, market: inputs.market, models: sets)
                return format == .json ? JSONWriter.serialize(report, pretty: true) + "\n" : TableRenderer.models(report)
            }
            let inputs = try LoadedInputs(requestPath: request, options: data)
            let report = try PositionBuilder.compare(
                inputs.request, catalog: inputs.catalog, market: inputs.market, parameters: inputs.parameters
            ).withModel(.okxPM)
            return format == .json ? JSONWriter.serialize(report, pretty: true) + "\n" : TableRenderer.compare(report)
        }
    }
}

struct Precheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Pre-check a switch between classic (3) and portfolio margin (4) without changing anything.",
        discussion: """
            The request's acctLv is the current mode (when absent, the mode other than --to). The answer lists \
            every blocking reason, the margin ratio and available equity before and after, and positions that fail \
            the target mode's tiers. Exit status 0 whether or not the switch is allowed.
            """)

    @Argument(help: ArgumentHelp("The request file, or - for standard input.", valueName: "REQUEST.json"))
    var request: String

    @Option(name: .customLong("to"), help: "Target account level: 3 (classic) or 4 (portfolio margin).")
    var target: String

    @Flag(help: "The portfolio-margin risk acknowledgement has been recorded.")
    var acknowledged = false

    @OptionGroup var data: DataOptions

    @Option(help: "Output format (default: table on a terminal, json otherwise).")
    var format: OutputFormat?

    func validate() throws {
        guard AccountLevel(rawValue: target) != nil else { throw ValidationError("--to must be 3 or 4, not \"\(target)\"") }
    }

    func run() throws {
        try runReportingErrors {
            let inputs = try LoadedInputs(requestPath: request, options: data)
            let report = try PositionBuilder.precheck(
                inputs.request, to: AccountLevel(rawValue: target) ?? .portfolioMargin, acknowledged: acknowledged,
                catalog: inputs.catalog, market: inputs.market, parameters: inputs.parameters
            ).withModel(.okxPM)
            let format = self.format ?? (standardOutputIsTerminal() ? .table : .json)
            return format == .json ? JSONWriter.serialize(report, pretty: true) + "\n" : TableRenderer.precheck(report)
        }
    }
}
