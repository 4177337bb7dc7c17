/// The Position Builder: "what if" margin for any portfolio (docs/methodology/05-position-builder.md), shared by the
/// command line, the REST endpoint and the web page.
///
/// Responses use OKX's `position-builder` field names with every number as a string, plus our additions
/// (`paramsId`, `marketTs`, `adjEq`, `worstCellPnl`, `marginalMmr`, `dominant`). Nothing is returned
/// unless the whole request is valid.
public enum PositionBuilder {
    /// Resolves a request's positions and balances against the catalog, market and parameters.
    ///
    /// Checks: the parameter set matches `paramsId`; at most `parameters.maximumPositions` positions; every
    /// instrument listed, a derivative, and live at the market time; every balance currency priced.
    public static func portfolio(
        for request: PositionBuilderRequest, catalog: InstrumentCatalog, market: MarketSnapshot, parameters: MarginParameters
    ) throws(EngineError) -> Portfolio {
        if let requested = request.parametersID, requested != parameters.id {
            throw .invalidField(
                path: "paramsId", value: "\"\(requested)\"", reason: "does not match the loaded parameter set \"\(parameters.id)\"")
        }
        guard request.positions.count <= parameters.maximumPositions else {
            throw .tooManyPositions(path: "simPos", count: request.positions.count, limit: parameters.maximumPositions)
        }
        var positions: [Position] = []
        positions.reserveCapacity(request.positions.count)
        for simulated in request.positions {
            let instrument = try catalog.instrument(simulated.instrumentID, path: "\(simulated.path).instId")
            guard instrument.isDerivative else {
                throw .invalidField(
                    path: "\(simulated.path).instId", value: "\"\(simulated.instrumentID)\"",
                    reason: "is a spot pair; put spot holdings in simAsset")
            }
            if let expiry = instrument.expiry, expiry <= market.valuationTime {
                throw .expiredInstrument(
                    path: "\(simulated.path).instId", instrumentID: simulated.instrumentID, expiry: expiry, marketTime: market.valuationTime
                )
            }
            let averagePrice: Double
            if let given = simulated.averagePrice {
                averagePrice = given
            } else {
                averagePrice = try market.market(for: instrument, path: simulated.path).markPrice
            }
            positions.append(
                Position(
                    instrument: instrument, sizeContracts: simulated.sizeContracts, averagePrice: averagePrice, source: simulated.path,
                    leverage: simulated.leverage ?? request.defaultLeverage ?? PositionBuilderRequest.okxDefaultLeverage))
        }
        var balances: [String: Double] = [:]
        for asset in request.assets {
            do { _ = try market.indexUSD(asset.currency) } catch {
                throw .invalidField(
                    path: "\(asset.path).ccy", value: "\"\(asset.currency)\"", reason: "has no USD index price in the market snapshot")
            }
            balances[asset.currency] = asset.amount
        }
        return Portfolio(positions: positions, cashBalances: balances, chosenSpotInUse: request.spotInUse)
    }

    /// The response's `data[0]` object for a request, in the request's mode (`acctLv` 4 or 3).
    ///
    /// `realPortfolio` (a server's account holdings) is added to the simulated positions and balances when
    /// given; offline there is none and `inclRealPosAndEq: true` is an error.
    public static func build(
        _ request: PositionBuilderRequest, catalog: InstrumentCatalog, market: MarketSnapshot, parameters: MarginParameters,
        realPortfolio: Portfolio? = nil
    ) throws(EngineError) -> JSONValue {
        try validateMode(request, hasRealPortfolio: realPortfolio != nil)
        let portfolio = try combined(request, realPortfolio, catalog: catalog, market: market, parameters: parameters)
        if request.accountLevel == "3" {
            let base = try ClassicMargin.compute(portfolio, market: market, parameters: parameters)
            guard let shock = request.indexShock, shock != 0 else { return classicResponse(base, before: nil) }
            return classicResponse(
                try ClassicMargin.compute(portfolio, market: market.shocked(by: shock), parameters: parameters), before: base)
        }
        let shock = try PortfolioShock(portfolio, market: market, parameters: parameters)
        let base = try shock.result(move: 0)
        let move = request.indexShock ?? 0
        let result = move == 0 ? base : try shock.result(move: move)
        // Liquidation distances are measured from the market the figures describe.
        let figuresShock = move == 0 ? shock : try PortfolioShock(portfolio, market: market.shocked(by: move), parameters: parameters)
        var liquidationMoves: [String: (down: Double?, up: Double?)] = [:]
        for unit in result.units {
            liquidationMoves[unit.coin] = try LiquidationDistance.moves(
                figuresShock.portfolio, coin: unit.coin, market: figuresShock.market, parameters: parameters)
        }
        return response(result, before: move == 0 ? nil : base, greeksType: request.greeksType, liquidationMoves: liquidationMoves)
    }

    /// The graph (`position-builder-graph`): account MMR and margin ratio for every shock factor from
    /// `lowest` to 1 in steps of `step`, ascending. The default lowest is −0.99: at −1 every coin price is
    /// zero and neither figure is defined.
    public static func graph(
        _ request: PositionBuilderRequest, catalog: InstrumentCatalog, market: MarketSnapshot, parameters: MarginParameters,
        lowest: Double = -0.99, step: Double = 0.01, realPortfolio: Portfolio? = nil
    ) throws(EngineError) -> JSONValue {
        try validateMode(request, hasRealPortfolio: realPortfolio != nil)
        let portfolio = try combined(request, realPortfolio, catalog: catalog, market: market, parameters: parameters)
        let lowestStep = Int((lowest / step).rounded())
        let highestStep = Int((1 / step).rounded())
        var points: [JSONValue] = []
        let shock = try PortfolioShock(portfolio, market: market, parameters: parameters)
        for stepIndex in lowestStep...highestStep {
            let factor = Double(stepIndex) * step
            let (mmr, ratio): (Double, Double?)
            if request.accountLevel == "3" {
                let result = try ClassicMargin.compute(portfolio, market: market.shocked(by: factor), parameters: parameters)
                (mmr, ratio) = (result.totalMmrUSD, result.marginRatio)
            } else {
                let result = try shock.result(move: factor)
                (mmr, ratio) = (result.totalMmrUSD, result.marginRatio)
            }
            points.append(
                .object([
                    ("shockFactor", .decimal(factor)),
                    ("mmr", .decimal(mmr)),
                    ("mmrRatio", ratio.map(JSONValue.decimal) ?? .string("")),
                ]))
        }
        return .object([
            ("type", .string("mmr")), ("mmrData", .array(points)), ("paramsId", .string(parameters.id)),
            ("marketTs", .string(String(market.valuationTime.rawValue))),
        ])
    }

    /// The simulated portfolio, plus the real one when given and the request does not exclude it.
    static func combined(
        _ request: PositionBuilderRequest, _ realPortfolio: Portfolio?, catalog: InstrumentCatalog, market: MarketSnapshot,
        parameters: MarginParameters
    ) throws(EngineError) -> Portfolio {
        var simulated = try portfolio(for: request, catalog: catalog, market: market, parameters: parameters)
        let includeReal = request.includeRealPositionsGiven ? request.includeRealPositions : true
        guard let realPortfolio, includeReal else { return simulated }
        simulated.positions = realPortfolio.positions + simulated.positions
        for (currency, amount) in realPortfolio.cashBalances { simulated.cashBalances[currency, default: 0] += amount }
        for (currency, amount) in realPortfolio.chosenSpotInUse where simulated.chosenSpotInUse[currency] == nil {
            simulated.chosenSpotInUse[currency] = amount
        }
        guard simulated.positions.count <= parameters.maximumPositions else {
            throw .tooManyPositions(path: "simPos", count: simulated.positions.count, limit: parameters.maximumPositions)
        }
        return simulated
    }

    static func validateMode(_ request: PositionBuilderRequest, hasRealPortfolio: Bool = false) throws(EngineError) {
        guard hasRealPortfolio || !request.includeRealPositions else {
            throw .unsupported(
                path: "inclRealPosAndEq", value: "true", reason: "needs an account; offline requests hold only simulated positions")
        }
    }

    /// Renders a result in OKX's response format.
    public static func response(
        _ result: PortfolioMarginResult, before: PortfolioMarginResult?, greeksType: GreeksType,
        liquidationMoves: [String: (down: Double?, up: Double?)] = [:]
    ) -> JSONValue {
        let beforeUnits = Dictionary(uniqueKeysWithValues: (before?.units ?? []).map { ($0.coin, $0) })
        let assets = result.currencies.map(assetJSON)
        let units: [JSONValue] = result.units.map { unit in
            unitJSON(
                unit, before: beforeUnits[unit.coin], borrowMmr: result.borrowMmrUSD, greeksType: greeksType,
                liquidationMoves: liquidationMoves[unit.coin])
        }
        return .object(
            accountFields(
                equity: result.equityUSD, adjusted: result.adjustedEquityUSD, totalMmr: result.totalMmrUSD, totalImr: result.totalImrUSD,
                borrowMmr: result.borrowMmrUSD, borrowImr: result.borrowImrUSD, derivativesMmr: result.derivativesMmrUSD,
                derivativesImr: result.derivativesImrUSD, marginRatio: result.marginRatio, upl: result.uplUSD,
                leverage: result.accountLeverage, before: before.map { ($0.totalMmrUSD, $0.totalImrUSD) }, time: result.marketTime) + [
                    ("assets", .array(assets)),
                    ("riskUnitData", .array(units)),
                    ("positions", .array([])),
                    ("acctLv", .string("4")),
                    ("greeksType", .string(greeksType.rawValue)),
                    ("paramsId", .string(result.parametersID)),
                    ("marketTs", .string(String(result.marketTime.rawValue))),
                ])
    }

    /// Renders a classic-mode result: OKX's account fields, per-coin sums in `riskUnitData` and the
    /// per-position requirements in `positions[]`.
    public static func classicResponse(_ result: ClassicMarginResult, before: ClassicMarginResult?) -> JSONValue {
        let beforeByCoin = Dictionary(uniqueKeysWithValues: (before?.byCoin ?? []).map { ($0.coin, $0) })
        let units: [JSONValue] = result.byCoin.map { unit in
            .object([
                ("riskUnit", .string(unit.coin)),
                ("mmrBf", beforeByCoin[unit.coin].map { .decimal($0.mmrUSD) } ?? .string("")),
                ("mmr", .decimal(unit.mmrUSD)),
                ("imrBf", beforeByCoin[unit.coin].map { .decimal($0.imrUSD) } ?? .string("")),
                ("imr", .decimal(unit.imrUSD)),
                ("upl", .decimal(unit.uplUSD)),
            ])
        }
        let positions: [JSONValue] = result.positions.map { position in
            .object([
                ("instId", .string(position.position.instrument.id.rawValue)),
                ("instType", .string(position.position.instrument.kind.rawValue)),
                ("pos", .decimal(position.position.sizeContracts)),
                ("posSide", .string("net")),
                ("avgPx", .decimal(position.position.averagePrice)),
                ("markPx", .decimal(position.market.markPrice)),
                ("notionalUsd", .decimal(position.valuation.notionalUSD)),
                ("floatPnl", .decimal(position.valuation.floatingPnL)),
                ("upl", .decimal(position.uplUSD)),
                ("lever", optionalDecimal(position.leverage)),
                ("maxLever", optionalDecimal(position.maximumLeverage)),
                ("imr", .decimal(position.imrUSD)),
                ("mmr", .decimal(position.mmrUSD)),
                ("mgnRatio", optionalDecimal(result.marginRatio)),
            ])
        }
        return .object(
            accountFields(
                equity: result.equityUSD, adjusted: result.adjustedEquityUSD, totalMmr: result.totalMmrUSD, totalImr: result.totalImrUSD,
                borrowMmr: result.borrowMmrUSD, borrowImr: result.borrowImrUSD, derivativesMmr: result.positionMmrUSD,
                derivativesImr: result.positionImrUSD, marginRatio: result.marginRatio, upl: result.uplUSD,
                leverage: result.accountLeverage, before: before.map { ($0.totalMmrUSD, $0.totalImrUSD) }, time: result.marketTime) + [
                    ("assets", .array(result.currencies.map(assetJSON))),
                    ("riskUnitData", .array(units)),
                    ("positions", .array(positions)),
                    ("acctLv", .string("3")),
                    ("paramsId", .string(result.parametersID)),
                    ("marketTs", .string(String(result.marketTime.rawValue))),
                ])
    }

    /// A number, or OKX's empty string when there is none.
    static func optionalDecimal(_ value: Double?) -> JSONValue { value.map(JSONValue.decimal) ?? .string("") }

    /// The account-level fields both modes report, in OKX's order.
    static func accountFields(
        equity: Double, adjusted: Double, totalMmr: Double, totalImr: Double, borrowMmr: Double, borrowImr: Double,
        derivativesMmr: Double, derivativesImr: Double, marginRatio: Double?, upl: Double, leverage: Double?,
        before: (totalMmr: Double, totalImr: Double)?, time: UnixMillis
    ) -> [(String, JSONValue)] {
        [
            ("eq", .decimal(adjusted)),
            ("eqUsd", .decimal(equity)),
            ("adjEq", .decimal(adjusted)),
            ("totalMmr", .decimal(totalMmr)),
            ("totalImr", .decimal(totalImr)),
            ("borrowMmr", .decimal(borrowMmr)),
            ("borrowImr", .decimal(borrowImr)),
            ("derivMmr", .decimal(derivativesMmr)),
            ("derivImr", .decimal(derivativesImr)),
            ("marginRatio", optionalDecimal(marginRatio)),
            ("upl", .decimal(upl)),
            ("acctLever", optionalDecimal(leverage)),
            ("totalMmrBf", optionalDecimal(before?.totalMmr)),
            ("totalImrBf", optionalDecimal(before?.totalImr)),
            ("ts", .string(String(time.rawValue))),
        ]
    }

    static func assetJSON(_ currency: CurrencyResult) -> JSONValue {
        .object([
            ("ccy", .string(currency.currency)),
            ("availEq", .decimal(currency.availableEquity)),
            ("spotInUse", .decimal(currency.spotInUse)),
            ("borrowImr", .decimal(currency.borrowImrUSD)),
            ("borrowMmr", .decimal(currency.borrowMmrUSD)),
            ("eq", .decimal(currency.equity)),
            ("eqUsd", .decimal(currency.equityUSD)),
            ("disEq", .decimal(currency.discountedEquityUSD)),
        ])
    }

    static func unitJSON(
        _ unit: RiskUnitResult, before: RiskUnitResult?, borrowMmr: Double, greeksType: GreeksType,
        liquidationMoves: (down: Double?, up: Double?)?
    ) -> JSONValue {
        let components = unit.components
        var scenarios: [(String, JSONValue)] = []
        for state in [VolatilityState.same, .up, .down] {
            let cells: [(String, JSONValue)] = unit.layout.mr1Moves.enumerated().map { move, spotMove in
                (DecimalText.format(spotMove), .decimal(unit.scenarioPnLUSD[ScenarioLayout.mr1Index(move: move, state: state)]))
            }
            scenarios.append((state.scenarioKey, .object(cells)))
        }
        let (delta, gamma, vega, theta) = unit.greeks.select(greeksType)
        var portfolios: [JSONValue] = unit.positions.map { positionJSON($0, greeksType: greeksType) }
        if let spot = unit.spotInUse {
            let (spotDelta, spotGamma, spotVega, spotTheta) = spot.greeks.select(greeksType)
            portfolios.append(
                .object([
                    ("instId", .string(spot.coin)),
                    ("instType", .string("SPOT")),
                    ("amt", .decimal(spot.coins)),
                    ("posSide", .string("net")),
                    ("avgPx", .string("")),
                    ("markPx", .decimal(spot.indexUSD)),
                    ("floatPnl", .string("")),
                    ("notionalUsd", .decimal(abs(spot.coins) * spot.indexUSD)),
                    ("delta", .decimal(spotDelta)),
                    ("gamma", .decimal(spotGamma)),
                    ("vega", .decimal(spotVega)),
                    ("theta", .decimal(spotTheta)),
                    ("isRealPos", .bool(false)),
                    ("maxSpotInUse", .decimal(spot.maximumCoins)),
                    ("worstCellPnl", .decimal(spot.worstCellPnLUSD)),
                    ("marginalMmr", .decimal(spot.marginalMmrUSD)),
                ]))
        }
        return .object([
            ("riskUnit", .string(unit.coin)),
            ("tier", .string(unit.tier.rawValue)),
            ("mmrBf", before.map { .decimal($0.components.mmr) } ?? .string("")),
            ("mmr", .decimal(components.mmr)),
            ("imrBf", before.map { .decimal($0.components.imr) } ?? .string("")),
            ("imr", .decimal(components.imr)),
            ("upl", .decimal(unit.uplUSD)),
            ("mr1", .decimal(components.mr1)),
            ("mr2", .decimal(components.mr2)),
            ("mr3", .decimal(components.mr3)),
            ("mr4", .decimal(components.mr4)),
            ("mr5", .decimal(components.mr5)),
            ("mr6", .decimal(components.mr6)),
            ("mr7", .decimal(components.mr7)),
            ("mr8", .decimal(borrowMmr)),
            ("mr9", .decimal(components.mr9)),
            ("mr1Scenarios", .object(scenarios)),
            (
                "mr1FinalResult",
                .object([
                    ("pnl", .decimal(components.mr1Worst.pnlUSD)),
                    ("spotShock", .string(DecimalText.format(components.mr1Worst.spotMove))),
                    ("volShock", .string(components.mr1Worst.volatilityState.okxName)),
                ])
            ),
            (
                "mr6FinalResult",
                .object([
                    ("pnl", .decimal(components.mr6Worst.pnlUSD)),
                    ("spotShock", .string(DecimalText.format(components.mr6Worst.spotMove))),
                ])
            ),
            ("dominant", .string(components.dominant?.rawValue ?? "")),
            (
                "liqMoves",
                .object([
                    ("down", liquidationMoves?.down.map(JSONValue.decimal) ?? .string("")),
                    ("up", liquidationMoves?.up.map(JSONValue.decimal) ?? .string("")),
                ])
            ),
            ("delta", .decimal(delta)),
            ("gamma", .decimal(gamma)),
            ("vega", .decimal(vega)),
            ("theta", .decimal(theta)),
            ("portfolios", .array(portfolios)),
        ])
    }

    static func positionJSON(_ result: PositionResult, greeksType: GreeksType) -> JSONValue {
        let (delta, gamma, vega, theta) = result.greeks.select(greeksType)
        return .object([
            ("instId", .string(result.position.instrument.id.rawValue)),
            ("instType", .string(result.position.instrument.kind.rawValue)),
            ("amt", .decimal(result.position.sizeContracts)),
            ("posSide", .string("net")),
            ("avgPx", .decimal(result.position.averagePrice)),
            ("markPx", .decimal(result.market.markPrice)),
            ("floatPnl", .decimal(result.floatingPnL)),
            ("notionalUsd", .decimal(result.notionalUSD)),
            ("delta", .decimal(delta)),
            ("gamma", .decimal(gamma)),
            ("vega", .decimal(vega)),
            ("theta", .decimal(theta)),
            ("isRealPos", .bool(false)),
            ("worstCellPnl", .decimal(result.worstCellPnLUSD)),
            ("marginalMmr", .decimal(result.marginalMmrUSD)),
        ])
    }
}

extension ContractGreeks {
    /// (delta, gamma, vega, theta) in the requested convention.
    func select(_ type: GreeksType) -> (Double, Double, Double, Double) {
        switch type {
        case .blackScholes: (deltaBS, gammaBS, vegaBS, thetaBS)
        case .priceAdjusted: (deltaPA, gammaPA, vegaPA, thetaPA)
        case .cash: (deltaCash, gammaCash, vegaCash, thetaCash)
        }
    }
}
