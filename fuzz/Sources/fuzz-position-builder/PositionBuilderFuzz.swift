import FuzzSupport
import MarginDefaults
import MarginEngine

// The Position Builder as `pm build` runs it: the request bytes parsed by PositionBuilderRequest, the
// shipped catalog, the request's inline market or the shipped default, the request's shipped `paramsId`
// or the default set; then the build in the request's mode (portfolio margin or classic), and one of the
// other views of the same request (a coarse graph, the mode comparison, the switch pre-check), chosen by
// the input's length so that each input always takes the same path. Every response is written, read back
// and scanned: no NaN, no infinity, no negative total MMR or IMR. Invalid input must end in an EngineError.

enum Shipped {
    static let catalog: InstrumentCatalog = load { try ShippedData.catalog() }
    static let market: MarketSnapshot = load { try ShippedData.market(named: ShippedData.defaultMarketName) }
    static let parameters: MarginParameters = load { try ShippedData.parameters() }

    static func load<T>(_ body: () throws -> T) -> T {
        do { return try body() } catch { fatalError("the shipped data does not load: \(error)") }
    }
}

func run(_ bytes: UnsafeBufferPointer<UInt8>) {
    let request: PositionBuilderRequest
    do {
        request = try PositionBuilderRequest(bytes: bytes)
    } catch {
        OutputCheck.check(error)
        return
    }
    do {
        // LoadedInputs in Sources/pm: an inline market replaces the default, a shipped paramsId selects its set.
        // (okx-2025-01 is the only shipped set, so the default and any shipped paramsId are the same set.)
        var market = Shipped.market
        if let inline = request.market { market = try MarketSnapshot(json: inline) }
        let parameters = Shipped.parameters
        let built = try PositionBuilder.build(request, catalog: Shipped.catalog, market: market, parameters: parameters)
        OutputCheck.check(built, "build")
        OutputCheck.requireNonNegative(built, ["totalMmr", "totalImr", "borrowMmr", "borrowImr", "derivMmr", "derivImr"], "build")
        switch bytes.count % 3 {
        case 0:
            // A coarse graph (−0.99, −0.66 … 0.99): the same shocks the full graph steps through, 7 of 199.
            let graph = try PositionBuilder.graph(request, catalog: Shipped.catalog, market: market, parameters: parameters, step: 0.33)
            OutputCheck.check(graph, "graph")
        case 1:
            let compared = try PositionBuilder.compare(request, catalog: Shipped.catalog, market: market, parameters: parameters)
            OutputCheck.check(compared, "compare")
        default:
            let target: AccountLevel = request.accountLevel == "3" ? .portfolioMargin : .classic
            let check = try PositionBuilder.precheck(
                request, to: target, acknowledged: bytes.count % 2 == 0, catalog: Shipped.catalog, market: market, parameters: parameters)
            OutputCheck.check(check, "precheck")
        }
    } catch {
        OutputCheck.check(error)
    }
}

@main enum FuzzMain {
    static func main() {
        FuzzDriver.run(initialize: { _ = (Shipped.catalog, Shipped.market, Shipped.parameters) }, fuzzTestOneInput)
    }
}

/// The target's one-input function, exported under libFuzzer's conventional name.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    run(UnsafeBufferPointer(start: data, count: size))
    return 0
}
