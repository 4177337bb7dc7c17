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
        "Parameter set: a JSON file, or a shipped id (\(ShippedData.parameterSetIDs.joined(separator: ", "))).",
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
    var parameters: MarginParameters

    init(requestPath: String, options: DataOptions) throws(CommandFailure) {
        do {
            let requestBytes = try Self.read(requestPath)
            request = try PositionBuilderRequest(bytes: requestBytes)
            if let catalogPath = options.catalog {
                catalog = try InstrumentCatalog(bytes: try ShippedData.readFile(catalogPath))
            } else {
                catalog = try ShippedData.catalog()
            }
            if let inline = request.market {
                guard options.market == nil else {
                    throw CommandFailure(description: "market: the request holds an inline market and --market was also given; use one")
                }
                market = try MarketSnapshot(json: inline)
            } else if let name = options.market {
                market = ShippedData.marketNames.contains(name)
                    ? try ShippedData.market(named: name) : try MarketSnapshot(bytes: try ShippedData.readFile(name))
            } else {
                market = try ShippedData.market(named: ShippedData.defaultMarketName)
            }
            if let source = options.params {
                parameters = ShippedData.parameterSetIDs.contains(source)
                    ? try ShippedData.parameters(id: source) : try MarginParameters(bytes: try ShippedData.readFile(source))
            } else if let id = request.parametersID, ShippedData.parameterSetIDs.contains(id) {
                parameters = try ShippedData.parameters(id: id)
            } else {
                parameters = try ShippedData.parameters()
            }
        } catch let error as CommandFailure {
            throw error
        } catch let error as EngineError {
            throw CommandFailure(description: error.description)
        } catch let error as ShippedData.LoadError {
            throw CommandFailure(description: error.description)
        } catch {
            throw CommandFailure(description: "\(error)")
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
