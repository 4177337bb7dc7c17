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
    public static let calmMarket: MarketSnapshot = {
        do { return try ShippedData.market(named: "calm-2025-12-30") } catch { fatalError("calm market: \(error)") }
    }()
    public static let selloffMarket: MarketSnapshot = {
        do { return try ShippedData.market(named: "selloff-2026-02-05") } catch { fatalError("sell-off market: \(error)") }
    }()
}
