import Foundation
import MarginEngine

/// The data the project ships: the instrument catalog, the market snapshots built from real Deribit
/// chains, and the parameter sets. This target does the file I/O so that the engine stays pure.
public enum ShippedData {
    /// The named market snapshots, by the name accepted in place of a file path.
    public static let marketNames = ["calm-2025-12-30", "selloff-2026-02-05"]
    /// The snapshot used when no market is given.
    public static let defaultMarketName = "calm-2025-12-30"
    /// The parameter sets shipped, by id.
    public static let parameterSetIDs = ["okx-2025-01"]
    public static let defaultParameterSetID = "okx-2025-01"
    /// Every shipped parameter set of every margin model, by id (``parameterSetIDs`` are the okx-pm ones).
    public static let modelParameterSetIDs = parameterSetIDs + ["derive-pm2"]
    /// The parameter set a model uses when none is given.
    public static func defaultParameterSetID(for model: MarginModelID) -> String {
        switch model {
        case .okxPM: defaultParameterSetID
        case .derivePM2: "derive-pm2"
        }
    }

    /// Why a shipped or user file could not be used.
    public enum LoadError: Error, CustomStringConvertible {
        case unreadable(path: String, reason: String)
        case invalid(EngineError)

        public var description: String {
            switch self {
            case .unreadable(let path, let reason): "\(path): \(reason)"
            case .invalid(let error): error.description
            }
        }
    }

    /// The shipped instrument catalog.
    public static func catalog() throws(LoadError) -> InstrumentCatalog {
        let bytes = try resource("catalog/okx-instruments.json")
        do { return try InstrumentCatalog(bytes: bytes) } catch { throw .invalid(error) }
    }

    /// A shipped market snapshot by name (see ``marketNames``).
    public static func market(named name: String) throws(LoadError) -> MarketSnapshot {
        guard marketNames.contains(name) else {
            throw .unreadable(path: name, reason: "not a shipped snapshot (shipped: \(marketNames.joined(separator: ", ")))")
        }
        let bytes = try resource("market/\(name).json")
        do { return try MarketSnapshot(bytes: bytes) } catch { throw .invalid(error) }
    }

    /// A shipped parameter set by id.
    public static func parameters(id: String = defaultParameterSetID) throws(LoadError) -> MarginParameters {
        guard parameterSetIDs.contains(id) else {
            throw .unreadable(path: id, reason: "not a shipped parameter set (shipped: \(parameterSetIDs.joined(separator: ", ")))")
        }
        let bytes = try resource("params/\(id).json")
        do { return try MarginParameters(bytes: bytes) } catch { throw .invalid(error) }
    }

    /// A shipped parameter set of any model by id (see ``modelParameterSetIDs``).
    public static func modelParameters(id: String) throws(LoadError) -> ModelParameters {
        guard modelParameterSetIDs.contains(id) else {
            throw .unreadable(path: id, reason: "not a shipped parameter set (shipped: \(modelParameterSetIDs.joined(separator: ", ")))")
        }
        let bytes = try resource("params/\(id).json")
        do { return try ModelParameters(bytes: bytes) } catch { throw .invalid(error) }
    }

    /// The bytes of a file given by the user.
    public static func readFile(_ path: String) throws(LoadError) -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .unreadable(path: path, reason: FileManager.default.fileExists(atPath: path) ? "cannot be read" : "no such file")
        }
        return [UInt8](data)
    }

    /// The path of a shipped resource, for documentation and tools.
    public static func resourcePath(_ relativePath: String) -> String? {
        Bundle.module.url(forResource: "Resources/\(relativePath)", withExtension: nil)?.path
    }

    static func resource(_ relativePath: String) throws(LoadError) -> [UInt8] {
        guard let path = resourcePath(relativePath) else {
            throw .unreadable(path: relativePath, reason: "shipped resource is missing from the bundle")
        }
        return try readFile(path)
    }
}
