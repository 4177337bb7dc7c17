import ArgumentParser
import Foundation
import MarginDefaults
import MarginEngine

/// Options that pick the catalog, market snapshot and parameter set; each replaces the shipped default of its kind.
struct DataOptions: ParsableArguments {
    @Option(
        name: .customLong("snapshot"),
        help: ArgumentHelp(
            "Market snapshot: a JSON file, or a shipped name (\(ShippedData.marketNames.joined(separator: ", "))).",
            valueName: "FILE|NAME"))
    var snapshot: String?

    /// `--market`, the old name of `--snapshot` (renamed because `pm serve --market-mode` picks how the market
    /// moves); still accepted, with a note on standard error.
    @Option(name: .customLong("market"), help: .hidden)
    var deprecatedMarket: String?

    @Option(
        name: .customLong("params"),
        help: ArgumentHelp(
            "Parameter set, which also picks the margin model: a JSON file, or a shipped id (\(ShippedData.modelParameterSetIDs.joined(separator: ", "))).",
            valueName: "FILE|ID"))
    var params: String?

    @Option(name: .customLong("catalog"), help: ArgumentHelp("Instrument catalog in the OKX instruments schema.", valueName: "FILE"))
    var catalog: String?

    mutating func validate() throws {
        if let old = deprecatedMarket {
            guard snapshot == nil else { throw ValidationError("--market is the old name of --snapshot: give one of them") }
            snapshot = try renamedOption("--market", to: "--snapshot", value: old)
            deprecatedMarket = nil
        }
    }
}

/// Accepts a renamed option's old spelling, with one line on standard error naming the new one.
func renamedOption<Value>(_ old: String, to new: String, value: Value) throws -> Value {
    FileHandle.standardError.write(Data("pm: warning: \(old) is deprecated here; use \(new) (same value)\n".utf8))
    return value
}

/// A failure that ends the command with one line on stderr and a non-zero status.
struct CommandFailure: Error, CustomStringConvertible {
    var description: String
}

/// Everything a Position Builder command needs, loaded and validated before any output is written.
struct LoadedInputs {
    var request: PositionBuilderRequest
    var catalog: InstrumentCatalog
    var market: MarketSnapshot
    /// The okx-pm parameter set: the chosen one, or the shipped default when another model was chosen.
    var parameters: MarginParameters
    /// The chosen parameter set (`--params`, else the request's `paramsId`, else okx-pm's default); it picks
    /// the model.
    var model: ModelParameters

    /// Loads everything; `models` are the margin models the command supports (a set of another model is
    /// refused, naming the commands that take it).
    init(requestPath: String, options: DataOptions, models: Set<MarginModelID> = [.okxPM]) throws(CommandFailure) {
        request = try InputDocuments.load(requestPath == "-" ? "request (stdin)" : requestPath) {
            try PositionBuilderRequest(bytes: try InputDocuments.read(requestPath))
        }
        catalog = try InputDocuments.catalog(options.catalog)
        if let inline = request.market {
            guard options.snapshot == nil else {
                throw CommandFailure(description: "market: the request holds an inline market and --snapshot was also given; use one")
            }
            market = try InputDocuments.load("request") { try MarketSnapshot(json: inline) }
        } else {
            market = try InputDocuments.market(options.snapshot)
        }
        let origin: String
        if let source = options.params {
            origin = "--params \(source)"
            model = try InputDocuments.modelParameters(source)
        } else if let id = request.parametersID, ShippedData.modelParameterSetIDs.contains(id) {
            origin = "paramsId \(id)"
            model = try InputDocuments.load(origin) { try ShippedData.modelParameters(id: id) }
        } else {
            origin = "shipped parameters"
            model = .okxPM(try InputDocuments.load(origin) { try ShippedData.parameters() })
        }
        guard models.contains(model.model) else {
            throw CommandFailure(
                description: "\(origin): the \(model.model.rawValue) model is available in pm build and pm compare --models only")
        }
        switch model {
        case .okxPM(let okx): parameters = okx
        case .derivePM2: parameters = try InputDocuments.load("shipped parameters") { try ShippedData.parameters() }
        }
    }

    /// The parameter set `model` uses: the chosen one when it is of that model, else the model's shipped default.
    func parameters(for model: MarginModelID) throws(CommandFailure) -> ModelParameters {
        if self.model.model == model { return self.model }
        return try InputDocuments.load("shipped parameters") {
            try ShippedData.modelParameters(id: ShippedData.defaultParameterSetID(for: model))
        }
    }
}

/// The one way every command reads its documents — the catalog, a market snapshot, a parameter set — from a file
/// or a shipped name, validated, a failure naming the option it came from (`--snapshot FILE: market: …`).
/// ``LoadedInputs`` (`pm build`, `compare`, `precheck`, `liquidate`) and ``SandboxInputs`` (`pm serve`,
/// `pm account create`) are built from it.
enum InputDocuments {
    /// The catalog file at `path`, or the shipped catalog.
    static func catalog(_ path: String?) throws(CommandFailure) -> InstrumentCatalog {
        guard let path else { return try load("shipped catalog") { try ShippedData.catalog() } }
        return try load("--catalog \(path)") { try InstrumentCatalog(bytes: try ShippedData.readFile(path)) }
    }

    /// The snapshot `source` names (a file, else a shipped name), or the shipped default.
    static func market(_ source: String?) throws(CommandFailure) -> MarketSnapshot {
        guard let source else { return try load("shipped market") { try ShippedData.market(named: ShippedData.defaultMarketName) } }
        return try load("--snapshot \(source)") {
            try isShippedName(source, ShippedData.marketNames)
                ? ShippedData.market(named: source)
                : MarketSnapshot(bytes: try readUserFile(source, shipped: ShippedData.marketNames))
        }
    }

    /// The parameter set of any model that `source` names (a file, else a shipped id).
    static func modelParameters(_ source: String) throws(CommandFailure) -> ModelParameters {
        try load("--params \(source)") {
            try isShippedName(source, ShippedData.modelParameterSetIDs)
                ? ShippedData.modelParameters(id: source)
                : ModelParameters(bytes: try readUserFile(source, shipped: ShippedData.modelParameterSetIDs))
        }
    }

    /// A user file; a missing one is reported with the shipped names the option also accepts.
    static func readUserFile(_ path: String, shipped: [String]) throws -> [UInt8] {
        guard FileManager.default.fileExists(atPath: path) else {
            throw ShippedData.LoadError.unreadable(
                path: path, reason: "no such file, and not a shipped name (\(shipped.joined(separator: ", ")))")
        }
        return try ShippedData.readFile(path)
    }

    /// A shipped name is used only when no file of that name exists, so a local file always wins.
    static func isShippedName(_ source: String, _ names: [String]) -> Bool {
        names.contains(source) && !FileManager.default.fileExists(atPath: source)
    }

    /// Runs a loader, prefixing a failure with where the document came from (`--snapshot FILE: market: …`).
    static func load<T>(_ origin: String, _ body: () throws -> T) throws(CommandFailure) -> T {
        do {
            return try body()
        } catch let error as EngineError {
            switch error {
            case .malformedDocument, .missingField, .invalidField, .unknownInstrument, .expiredInstrument, .tooManyPositions, .unsupported:
                // Field errors already name their document path (`params.mr3Factor`, `simPos[0].pos`).
                if origin.hasPrefix("--") || origin.hasPrefix("shipped") {
                    throw CommandFailure(description: "\(origin): \(error.description)")
                }
                throw CommandFailure(description: error.description)
            default:
                throw CommandFailure(description: error.description)
            }
        } catch let error as ShippedData.LoadError {
            let option = origin.hasPrefix("--") ? "\(origin.split(separator: " ").first ?? ""): " : ""
            throw CommandFailure(description: option + error.description)
        } catch {
            throw CommandFailure(description: "\(origin): \(error)")
        }
    }

    /// A file's bytes, or standard input for `-`.
    static func read(_ path: String) throws -> [UInt8] {
        if path == "-" { return [UInt8](FileHandle.standardInput.readDataToEndOfFile()) }
        return try ShippedData.readFile(path)
    }
}

/// The catalog, market snapshot and parameter set of the sandbox (`pm serve`, `pm account create`): shipped
/// names or files, read by ``InputDocuments``. The sandbox margins with OKX portfolio margin only.
struct SandboxInputs {
    var catalog: InstrumentCatalog
    var market: MarketSnapshot
    var parameters: MarginParameters

    init(snapshot: String?, params: String?, catalog catalogPath: String?) throws(CommandFailure) {
        catalog = try InputDocuments.catalog(catalogPath)
        market = try InputDocuments.market(snapshot)
        guard let params else {
            parameters = try InputDocuments.load("shipped parameters") { try ShippedData.parameters() }
            return
        }
        switch try InputDocuments.modelParameters(params) {
        case .okxPM(let okx): parameters = okx
        case .derivePM2(let other):
            throw CommandFailure(
                description:
                    "--params \(params): \(other.id) is a derive-pm2 parameter set; the sandbox margins with okx-pm (pm build and pm compare --models take derive-pm2)"
            )
        }
    }
}

/// Runs `body`, turning any failure into one line on stderr and exit status 1, so no partial output is
/// ever printed.
func runReportingErrors(_ body: () throws -> String) throws {
    let output: String
    do {
        output = try body()
    } catch let error as CommandFailure {
        FileHandle.standardError.write(Data("pm: error: \(error.description)\n".utf8))
        throw ExitCode.failure
    } catch let error as EngineError {
        FileHandle.standardError.write(Data("pm: error: \(error.description)\n".utf8))
        throw ExitCode.failure
    }
    FileHandle.standardOutput.write(Data(output.utf8))
}

/// Whether standard output is a terminal (for the default format).
func standardOutputIsTerminal() -> Bool { isatty(1) == 1 }
