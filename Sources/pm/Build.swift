import ArgumentParser
import MarginEngine

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case table, json
}

struct Build: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Position Builder: margin a what-if portfolio (OKX position-builder request format).",
        discussion: """
            REQUEST.json holds an OKX position-builder body: simPos [{instId, pos, avgPx}], simAsset [{ccy, amt}], \
            greeksType (BS|PA|CASH), idxVol, and our additions spotInUse [{ccy, amt}], paramsId and an inline market. \
            Use - to read the request from standard input. The parameter set picks the margin model: okx-pm (default) \
            or derive-pm2 (--params derive-pm2: USDC-margined perpetuals and options mapped to Derive PM2; see docs/models.md). \
            With --account URL the account's real positions and balances \
            (signed GET account/positions and account/balance; credentials from --key/--secret/--passphrase or \
            PM_OKX_KEY/PM_OKX_SECRET/PM_OKX_PASSPHRASE) are margined with simPos/simAsset on top, at that endpoint's \
            market unless --snapshot is given.
            """)

    @Argument(help: ArgumentHelp("The request file, or - for standard input.", valueName: "REQUEST.json"))
    var request: String

    @OptionGroup var data: DataOptions

    @OptionGroup var account: AccountOptions

    @Option(help: "Output format (default: table on a terminal, json otherwise).")
    var format: OutputFormat?

    @Flag(help: "Print the MMR and margin ratio against a spot move (mmrData of position-builder-graph).")
    var graph = false

    func run() async throws {
        try await runReportingErrorsAsync {
            var inputs = try LoadedInputs(requestPath: request, options: data, models: [.okxPM, .derivePM2])
            let real = try await account.realPortfolio(into: &inputs, data: data)
            let format = self.format ?? (standardOutputIsTerminal() ? .table : .json)
            if case .derivePM2(let derive) = inputs.model {
                if graph {
                    let response = try DerivePM2PositionBuilder.graph(
                        inputs.request, catalog: inputs.catalog, market: inputs.market, parameters: derive)
                    return format == .json ? JSONWriter.serialize(response, pretty: true) + "\n" : TableRenderer.graph(response)
                }
                let response = try DerivePM2PositionBuilder.build(
                    inputs.request, catalog: inputs.catalog, market: inputs.market, parameters: derive)
                return format == .json ? JSONWriter.serialize(response, pretty: true) + "\n" : TableRenderer.deriveBuild(response)
            }
            if graph {
                let response = try PositionBuilder.graph(
                    inputs.request, catalog: inputs.catalog, market: inputs.market, parameters: inputs.parameters, realPortfolio: real
                ).withModel(.okxPM)
                return format == .json ? JSONWriter.serialize(response, pretty: true) + "\n" : TableRenderer.graph(response)
            }
            let response = try PositionBuilder.build(
                inputs.request, catalog: inputs.catalog, market: inputs.market, parameters: inputs.parameters, realPortfolio: real
            ).withModel(.okxPM)
            return format == .json ? JSONWriter.serialize(response, pretty: true) + "\n" : TableRenderer.build(response)
        }
    }
}
