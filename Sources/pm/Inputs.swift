import ArgumentParser
import Foundation
import MarginDefaults
import MarginEngine

/// Options that pick the catalog, market and parameter set; each replaces the shipped default of its kind.
struct DataOptions: ParsableArguments {
    @Option(name: .customLong("market"), help: ArgumentHelp(
        "Market snapshot: a JSON file, or a shipped name (\(ShippedData.marketNames.joined(separator: ", "))).",
        valueName: "FILE|NAME"))
    var market: String?

    @Option(name: .customLong("params"), help: ArgumentHelp(
        "Parameter set, which also picks the margin model: a JSON file, or a shipped id (\(ShippedData.modelParameterSetIDs.joined(separator: ", "))).",
        valueName: "FILE|ID"))
    var params: String?

    @Option(name: .customLong("catalog"), help: ArgumentHelp("Instrument catalog in the OKX instruments schema.", valueName: "FILE"))
    var catalog: String?
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
        request = try Self.load(requestPath == "-" ? "request (stdin)" : requestPath) {
            try PositionBuilderRequest(bytes: try Self.read(requestPath))
        }
        if let catalogPath = options.catalog {
            catalog = try Self.load("--catalog \(catalogPath)") { try InstrumentCatalog(bytes: try ShippedData.readFile(catalogPath)) }
        } else {
            catalog = try Self.load("shipped catalog") { try ShippedData.catalog() }
        }
        if let inline = request.market {
            guard options.market == nil else {
                throw CommandFailure(description: "market: the request holds an inline market and --market was also given; use one")
            }
            market = try Self.load("request") { try MarketSnapshot(json: inline) }
        } else if let source = options.market {
            market = try Self.load("--market \(source)") {
                try Self.isShippedName(source, ShippedData.marketNames)
                    ? ShippedData.market(named: source)
                    : MarketSnapshot(bytes: try Self.readUserFile(source, shipped: ShippedData.marketNames))
            }
        } else {
            market = try Self.load("shipped market") { try ShippedData.market(named: ShippedData.defaultMarketName) }
        }
        let origin: String
        if let source = options.params {
            origin = "--params \(source)"
            model = try Self.load(origin) {
                try Self.isShippedName(source, ShippedData.modelParameterSetIDs)
                    ? ShippedData.modelParameters(id: source)
                    : ModelParameters(bytes: try Self.readUserFile(source, shipped: ShippedData.modelParameterSetIDs))
            }
        } else if let id = request.parametersID, ShippedData.modelParameterSetIDs.contains(id) {
            origin = "paramsId \(id)"
            model = try Self.load(origin) { try ShippedData.modelParameters(id: id) }
        } else {
            origin = "shipped parameters"
            model = .okxPM(try Self.load(origin) { try ShippedData.parameters() })
        }
        guard models.contains(model.model) else {
            throw CommandFailure(description: "\(origin): the \(model.model.rawValue) model is available in pm build and pm compare --models only")
        }
        switch model {
        case .okxPM(let okx): parameters = okx
        case .derivePM2: parameters = try Self.load("shipped parameters") { try ShippedData.parameters() }
        }
    }

    /// The parameter set `model` uses: the chosen one when it is of that model, else the model's shipped default.
    func parameters(for model: MarginModelID) throws(CommandFailure) -> ModelParameters {
        if self.model.model == model { return self.model }
        return try Self.load("shipped parameters") { try ShippedData.modelParameters(id: ShippedData.defaultParameterSetID(for: model)) }
    }

    /// A user file; a missing one is reported with the shipped names the option also accepts.
    static func readUserFile(_ path: String, shipped: [String]) throws -> [UInt8] {
        guard FileManager.default.fileExists(atPath: path) else {
            throw ShippedData.LoadError.unreadable(path: path, reason: "no such file, and not a shipped name (\(shipped.joined(separator: ", ")))")
        }
        return try ShippedData.readFile(path)
    }

    /// A shipped name is used only when no file of that name exists, so a local file always wins.
    static func isShippedName(_ source: String, _ names: [String]) -> Bool {
        names.contains(source) && !FileManager.default.fileExists(atPath: source)
    }

    /// Runs a loader, prefixing a failure with where the document came from (`--market FILE: market: …`).
    static func load<T>(_ origin: String, _ body: () throws -> T) throws(CommandFailure) -> T {
        do {
            return try body()
        } catch let error as EngineError {
            switch error {
            case .malformedDocument, .missingField, .invalidField, .unknownInstrument, .expiredInstrument, .tooManyPositions, .unsupported:
                // Field errors already name their document path (`params.mr3Factor`, `simPos[0].pos`).
                if origin.hasPrefix("--") || origin.hasPrefix("shipped") { throw CommandFailure(description: "\(origin): \(error.description)") }
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
