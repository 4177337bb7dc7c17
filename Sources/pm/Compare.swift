import ArgumentParser
import MarginEngine

struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Portfolio margin and classic margin of the same portfolio, side by side.",
        discussion: "REQUEST.json is a position-builder request; simPos lever (or a top-level lever) sets classic leverage.")

    @Argument(help: ArgumentHelp("The request file, or - for standard input.", valueName: "REQUEST.json"))
    var request: String

    @OptionGroup var data: DataOptions

    @Option(help: "Output format (default: table on a terminal, json otherwise).")
    var format: OutputFormat?

    func run() throws {
        try runReportingErrors {
            let inputs = try LoadedInputs(requestPath: request, options: data)
            let report = try PositionBuilder.compare(
                inputs.request, catalog: inputs.catalog, market: inputs.market, parameters: inputs.parameters)
            let format = self.format ?? (standardOutputIsTerminal() ? .table : .json)
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
                catalog: inputs.catalog, market: inputs.market, parameters: inputs.parameters)
            let format = self.format ?? (standardOutputIsTerminal() ? .table : .json)
            return format == .json ? JSONWriter.serialize(report, pretty: true) + "\n" : TableRenderer.precheck(report)
        }
    }
}
