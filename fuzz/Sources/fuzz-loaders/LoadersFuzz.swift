import FuzzSupport
import MarginDefaults
import MarginEngine

// The document loaders a user can feed files to (`--snapshot FILE`, `--params FILE`, `--catalog FILE`, an
// inline market): the first byte selects the loader (0 market snapshot, 1 parameter set, 2 instrument
// catalog, modulo 3), the rest is the document. A document that loads must be usable: the harness then
// margins a small portfolio with it (the other two inputs shipped) in both modes and scans the responses —
// no NaN, no infinity, no negative total MMR or IMR. A document that does not load must end in an EngineError.

enum Shipped {
    static let catalog: InstrumentCatalog = load { try ShippedData.catalog() }
    static let market: MarketSnapshot = load { try ShippedData.market(named: ShippedData.defaultMarketName) }
    static let parameters: MarginParameters = load { try ShippedData.parameters() }

    static func load<T>(_ body: () throws -> T) -> T {
        do { return try body() } catch { fatalError("the shipped data does not load: \(error)") }
    }

    /// Portfolios the shipped market prices, for a fuzzed parameter set or catalog: a hedged BTC book with
    /// options and futures (examples/btc-hedged.json), and a multi-coin book with both stablecoins (MR9).
    static let requests: [JSONValue] = [
        portfolio(
            [("BTC-USDT-SWAP", "-50"), ("BTC-USD-260327-90000-C", "-100"), ("BTC-USD-260327-80000-P", "100"), ("BTC-USD-260626", "200")],
            assets: [("USDT", "60000"), ("BTC", "0.8")]),
        portfolio(
            [
                ("ETH-USDT-260327", "500"), ("ETH-USDC-SWAP", "-300"), ("SOL-USD-SWAP", "40"), ("AVAX-USDT-SWAP", "-900"),
                ("BTC-USD-260327-80000-P", "-20"),
            ],
            assets: [("USDC", "40000"), ("USDT", "-5000"), ("ETH", "3")]),
    ]

    static func portfolio(_ positions: [(String, String)], assets: [(String, String)], idxVol: String? = nil) -> JSONValue {
        var members: [(String, JSONValue)] = [
            ("simPos", .array(positions.map { .object([("instId", .string($0.0)), ("pos", .string($0.1))]) })),
            ("simAsset", .array(assets.map { .object([("ccy", .string($0.0)), ("amt", .string($0.1))]) })),
        ]
        if let idxVol { members.append(("idxVol", .string(idxVol))) }
        return .object(members)
    }
}

/// Builds `request` in portfolio margin and in classic margin and checks both responses.
func margin(_ request: JSONValue, catalog: InstrumentCatalog, market: MarketSnapshot, parameters: MarginParameters, _ context: String) {
    for level in ["4", "3"] {
        guard case .object(var object) = request else { return }
        object["acctLv"] = .string(level)
        do {
            let parsed = try PositionBuilderRequest(json: .object(object))
            let built = try PositionBuilder.build(parsed, catalog: catalog, market: market, parameters: parameters)
            OutputCheck.check(built, "\(context) acctLv \(level)")
            OutputCheck.requireNonNegative(built, ["totalMmr", "totalImr", "borrowMmr", "borrowImr", "derivMmr", "derivImr"], context)
        } catch {
            OutputCheck.check(error)
        }
    }
}

func run(_ bytes: UnsafeBufferPointer<UInt8>) {
    guard let selector = bytes.first else { return }
    let document = UnsafeBufferPointer(rebasing: bytes[1...])
    switch selector % 3 {
    case 0:
        let market: MarketSnapshot
        do { market = try MarketSnapshot(bytes: document) } catch {
            OutputCheck.check(error)
            return
        }
        // Positions on the first instruments the snapshot marks that the shipped catalog lists, alternately
        // long and short; balances in the stablecoins and the first coin it prices.
        var positions: [(String, String)] = []
        for id in market.marks.keys.sorted() where Shipped.catalog.instrument(id) != nil {
            positions.append((id, positions.count % 2 == 0 ? "10" : "-7"))
            if positions.count == 4 { break }
        }
        var assets: [(String, String)] = []
        for pair in market.indices.keys.sorted() {
            let coin = String(pair.prefix { $0 != "-" })
            guard !assets.contains(where: { $0.0 == coin }), (try? market.indexUSD(coin)) != nil else { continue }
            assets.append((coin, assets.isEmpty ? "2500" : "-1.5"))
            if assets.count == 3 { break }
        }
        let shock = selector / 3 % 2 == 1 ? "-0.5" : nil
        margin(
            Shipped.portfolio(positions, assets: assets, idxVol: shock), catalog: Shipped.catalog, market: market,
            parameters: Shipped.parameters, "fuzzed market")
    case 1:
        let parameters: MarginParameters
        do { parameters = try MarginParameters(bytes: document) } catch {
            OutputCheck.check(error)
            return
        }
        var request = Shipped.requests[Int(selector / 3) % Shipped.requests.count]
        if case .object(var object) = request, object["paramsId"] == nil {
            object["paramsId"] = .string(parameters.id)
            request = .object(object)
        }
        margin(request, catalog: Shipped.catalog, market: Shipped.market, parameters: parameters, "fuzzed parameters")
    default:
        let catalog: InstrumentCatalog
        do { catalog = try InstrumentCatalog(bytes: document) } catch {
            OutputCheck.check(error)
            return
        }
        // Positions on the first derivatives of the catalog that the shipped market marks.
        var positions: [(String, String)] = []
        for instrument in catalog.instruments where instrument.isDerivative && Shipped.market.marks[instrument.id.rawValue] != nil {
            positions.append((instrument.id.rawValue, positions.count % 2 == 0 ? "3" : "-2"))
            if positions.count == 4 { break }
        }
        margin(
            Shipped.portfolio(positions, assets: [("USDT", "20000")]), catalog: catalog, market: Shipped.market,
            parameters: Shipped.parameters, "fuzzed catalog")
    }
}

@main enum FuzzMain {
    static func main() {
        FuzzDriver.run(initialize: { _ = (Shipped.catalog, Shipped.market, Shipped.parameters, Shipped.requests) }, fuzzTestOneInput)
    }
}

/// The target's one-input function, exported under libFuzzer's conventional name.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    run(UnsafeBufferPointer(start: data, count: size))
    return 0
}
