import ArgumentParser
import Foundation
import MarginEngine

struct Liquidate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Plan the liquidation of a position-builder portfolio (DDH1, DDH2, basis, general, collateral, deficit).",
        discussion: """
            At or below a 100 % margin ratio the plan acts step by step, recomputing the account after every action, \
            and stops above 110 %. Above the trigger it says the account is safe and why. Use --snapshot with a \
            stressed snapshot (e.g. selloff-2026-02-05) or idxVol-free requests built to be under-margined.
            """)

    @Argument(help: ArgumentHelp("The request file, or - for standard input.", valueName: "REQUEST.json"))
    var request: String

    @OptionGroup var data: DataOptions

    @Option(help: "Output format (default: table on a terminal, json otherwise).")
    var format: OutputFormat?

    func run() throws {
        try runReportingErrors {
            let inputs = try LoadedInputs(requestPath: request, options: data)
            let portfolio = try PositionBuilder.portfolio(
                for: inputs.request, catalog: inputs.catalog, market: inputs.market, parameters: inputs.parameters)
            let plan = try LiquidationPlanner.plan(portfolio, catalog: inputs.catalog, market: inputs.market, parameters: inputs.parameters)
            let report = plan.json(parameters: inputs.parameters).withModel(.okxPM)
            let format = self.format ?? (standardOutputIsTerminal() ? .table : .json)
            return format == .json ? JSONWriter.serialize(report, pretty: true) + "\n" : TableRenderer.liquidation(report)
        }
    }
}
