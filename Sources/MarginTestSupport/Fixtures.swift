import MarginDefaults
import MarginEngine

/// Shared fixtures: the shipped data, loaded once per process.
public enum Fixtures {
    public static let catalog: InstrumentCatalog = {
        do { return try ShippedData.catalog() } catch { fatalError("shipped catalog: \(error)") }
    }()
    public static let parameters: MarginParameters = {
        do { return try ShippedData.parameters() } catch { fatalError("shipped parameters: \(error)") }
    }()
    /// The shipped Derive PM2 parameter set (`derive-pm2`).
    public static let derivePM2Parameters: DerivePM2Parameters = {
        do {
            guard case .derivePM2(let parameters) = try ShippedData.modelParameters(id: "derive-pm2") else {
                fatalError("derive-pm2 is not a derive-pm2 set")
            }
            return parameters
        } catch { fatalError("shipped derive-pm2 parameters: \(error)") }
    }()
    /// A shipped parameter document as JSON (any model).
    public static func parameterDocument(_ id: String) -> JSONValue {
        do {
            guard let path = ShippedData.resourcePath("params/\(id).json") else { fatalError("no shipped parameter set \(id)") }
            return try JSONParser.parse(try ShippedData.readFile(path))
        } catch { fatalError("shipped parameter set \(id): \(error)") }
    }
    public static let calmMarket: MarketSnapshot = {
        do { return try ShippedData.market(named: "calm-2025-12-30") } catch { fatalError("calm market: \(error)") }
    }()
    public static let selloffMarket: MarketSnapshot = {
        do { return try ShippedData.market(named: "selloff-2026-02-05") } catch { fatalError("sell-off market: \(error)") }
    }()
}
