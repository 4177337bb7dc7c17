/// JSON reports comparing the two modes and pre-checking a switch, shared by the command line and the server.
extension PositionBuilder {
    /// Portfolio margin and classic margin of the same request side by side:
    /// `{portfolioMargin: {…}, classic: {…}, difference: {…}, paramsId, marketTs}`, each mode with `totalMmr`,
    /// `totalImr`, `mgnRatio`, `availEq`, `adjEq` and per-coin `riskUnits`; the difference is classic − PM.
    public static func compare(
        _ request: PositionBuilderRequest, catalog: InstrumentCatalog, market: MarketSnapshot, parameters: MarginParameters
    ) throws(EngineError) -> JSONValue {
        try validateMode(request)
        let portfolio = try portfolio(for: request, catalog: catalog, market: market, parameters: parameters)
        let pm = try PortfolioMargin.compute(portfolio, market: market, parameters: parameters)
        let classic = try ClassicMargin.compute(portfolio, market: market, parameters: parameters)
        let pmUnits = pm.units.map { ($0.coin, $0.components.mmr, $0.components.imr) }
        let classicUnits = classic.byCoin.map { ($0.coin, $0.mmrUSD, $0.imrUSD) }
        func mode(_ figures: ModeFigures, _ units: [(String, Double, Double)]) -> JSONValue {
            .object([
                ("acctLv", .string(figures.level.rawValue)),
                ("totalMmr", .decimal(figures.totalMmrUSD)),
                ("totalImr", .decimal(figures.totalImrUSD)),
                ("mgnRatio", figures.marginRatio.map(JSONValue.decimal) ?? .string("")),
                ("availEq", .decimal(figures.availableEquityUSD)),
                ("adjEq", .decimal(figures.adjustedEquityUSD)),
                (
                    "riskUnits",
                    .array(units.map { .object([("riskUnit", .string($0.0)), ("mmr", .decimal($0.1)), ("imr", .decimal($0.2))]) })
                ),
            ])
        }
        let pmFigures = ModeFigures(
            level: .portfolioMargin, adjustedEquityUSD: pm.adjustedEquityUSD, totalMmrUSD: pm.totalMmrUSD, totalImrUSD: pm.totalImrUSD,
            marginRatio: pm.marginRatio, availableEquityUSD: pm.adjustedEquityUSD - pm.totalImrUSD, netEquityUSD: pm.equityUSD)
        let classicFigures = ModeFigures(
            level: .classic, adjustedEquityUSD: classic.adjustedEquityUSD, totalMmrUSD: classic.totalMmrUSD,
            totalImrUSD: classic.totalImrUSD, marginRatio: classic.marginRatio,
            availableEquityUSD: classic.adjustedEquityUSD - classic.totalImrUSD, netEquityUSD: classic.equityUSD)
        return .object([
            ("portfolioMargin", mode(pmFigures, pmUnits)),
            ("classic", mode(classicFigures, classicUnits)),
            (
                "difference",
                .object([
                    ("totalMmr", .decimal(classicFigures.totalMmrUSD - pmFigures.totalMmrUSD)),
                    ("totalImr", .decimal(classicFigures.totalImrUSD - pmFigures.totalImrUSD)),
                    ("availEq", .decimal(classicFigures.availableEquityUSD - pmFigures.availableEquityUSD)),
                ])
            ),
            ("paramsId", .string(parameters.id)),
            ("marketTs", .string(String(market.valuationTime.rawValue))),
        ])
    }

    /// The switch pre-check for a request's portfolio: `{allowed, reasons, from, to, before, after,
    /// failingPositions, paramsId, marketTs}`; `before`/`after` carry `mgnRatio`, `availEq`, `totalMmr`,
    /// `totalImr`, `adjEq`. The request's `acctLv`, when given, is the current mode; otherwise the other mode.
    public static func precheck(
        _ request: PositionBuilderRequest, to target: AccountLevel, acknowledged: Bool, catalog: InstrumentCatalog,
        market: MarketSnapshot, parameters: MarginParameters
    ) throws(EngineError) -> JSONValue {
        try validateMode(request)
        let portfolio = try portfolio(for: request, catalog: catalog, market: market, parameters: parameters)
        let from: AccountLevel =
            request.accountLevelGiven
            ? (AccountLevel(rawValue: request.accountLevel) ?? .portfolioMargin)
            : (target == .classic ? .portfolioMargin : .classic)
        let check = try AccountModes.precheck(
            portfolio, from: from, to: target, acknowledged: acknowledged, market: market, parameters: parameters)
        return precheckJSON(check, parameters: parameters, market: market)
    }

    /// Renders a pre-check.
    public static func precheckJSON(_ check: SwitchPrecheck, parameters: MarginParameters, market: MarketSnapshot) -> JSONValue {
        func figures(_ value: ModeFigures) -> JSONValue {
            .object([
                ("acctLv", .string(value.level.rawValue)),
                ("mgnRatio", value.marginRatio.map(JSONValue.decimal) ?? .string("")),
                ("availEq", .decimal(value.availableEquityUSD)),
                ("totalMmr", .decimal(value.totalMmrUSD)),
                ("totalImr", .decimal(value.totalImrUSD)),
                ("adjEq", .decimal(value.adjustedEquityUSD)),
            ])
        }
        return .object([
            ("allowed", .bool(check.allowed)),
            ("reasons", .array(check.reasons.map(JSONValue.string))),
            ("from", .string(check.from.rawValue)),
            ("to", .string(check.to.rawValue)),
            ("before", figures(check.before)),
            ("after", figures(check.after)),
            (
                "failingPositions",
                .array(
                    check.failingPositions.map {
                        .object([("instId", .string($0.instrumentID)), ("reason", .string($0.reason))])
                    })
            ),
            ("paramsId", .string(parameters.id)),
            ("marketTs", .string(String(market.valuationTime.rawValue))),
        ])
    }
}
