/// One request margined under several models, side by side, with the components that drive each model's
/// requirement (`pm compare --models`, the web page's model comparison).
public enum ModelComparison {
    /// `{models: [{model, paramsId, eqUsd, adjEq, totalMmr, totalImr, marginRatio, availEq, riskUnits: [{riskUnit, mmr,
    /// imr, dominant, drivers: [{name, usd}]}]}], difference, notes, marketTs}`.
    ///
    /// Every model margins the same positions and balances in portfolio-margin terms (okx-pm in mode 4); the
    /// request's `paramsId` is ignored, each model using its own set. `difference` is each model minus the
    /// first. With `idxVol` every model sees the same shocked market. All figures in USD. A request a model cannot margin (an instrument Derive has no counterpart
    /// for) fails with that model's error, prefixed with its name.
    public static func compare(
        _ request: PositionBuilderRequest, catalog: InstrumentCatalog, market: MarketSnapshot, models: [ModelParameters]
    ) throws(EngineError) -> JSONValue {
        var plain = request
        plain.parametersID = nil
        plain.accountLevel = "4"
        plain.accountLevelGiven = false
        let move = request.indexShock ?? 0
        var columns: [JSONValue] = []
        var totals: [(mmr: Double, imr: Double)] = []
        var notes: [String] = []
        for parameters in models {
            do {
                switch parameters {
                case .okxPM(let okx):
                    try PositionBuilder.validateMode(plain)
                    let portfolio = try PositionBuilder.portfolio(for: plain, catalog: catalog, market: market, parameters: okx)
                    let result = try PortfolioShock(portfolio, market: market, parameters: okx).result(move: move)
                    let units: [JSONValue] = result.units.map { unit in
                        let c = unit.components
                        let parts: [(String, Double)] = [
                            ("MR1 spot × vol grid", c.mr1), ("MR2 time decay", c.mr2), ("MR3 vega terms", c.mr3), ("MR4 basis", c.mr4),
                            ("MR5 interest rate", c.mr5), ("MR6 extreme move", c.mr6), ("MR7 minimum charge", c.mr7),
                            ("MR9 stablecoin depeg", c.mr9),
                        ]
                        return unitJSON(coin: unit.coin, mmr: c.mmr, imr: c.imr, dominant: c.dominant?.rawValue ?? "", drivers: parts)
                    }
                    var accountUnits = units
                    if result.borrowMmrUSD != 0 {
                        accountUnits.append(
                            unitJSON(
                                coin: "borrowing", mmr: result.borrowMmrUSD, imr: result.borrowImrUSD, dominant: "MR8",
                                drivers: [("MR8 borrowing", result.borrowMmrUSD)]))
                    }
                    columns.append(
                        column(
                            model: .okxPM, id: okx.id, equity: result.equityUSD, adjusted: result.adjustedEquityUSD,
                            mmr: result.totalMmrUSD,
                            imr: result.totalImrUSD, ratio: result.marginRatio, units: accountUnits))
                    totals.append((result.totalMmrUSD, result.totalImrUSD))
                case .derivePM2(let derive):
                    let account = try DerivePM2PositionBuilder.account(
                        for: plain, catalog: catalog, market: market, parameters: derive, move: move)
                    let results = try DerivePM2PositionBuilder.results(account, parameters: derive)
                    let figures = DerivePM2PositionBuilder.AccountFigures(results)
                    let units: [JSONValue] = results.map { result in
                        let drivers = DerivePM2PositionBuilder.drivers(result)
                        return unitJSON(
                            coin: result.underlying, mmr: result.maintenanceRequirementUSD, imr: result.initialRequirementUSD,
                            dominant: drivers.first?.name ?? "", drivers: drivers.map { ($0.name, $0.usd) })
                    }
                    columns.append(
                        column(
                            model: .derivePM2, id: derive.id, equity: figures.equityUSD, adjusted: figures.equityUSD,
                            mmr: figures.maintenanceRequirementUSD, imr: figures.initialRequirementUSD, ratio: figures.marginRatio,
                            units: units))
                    totals.append((figures.maintenanceRequirementUSD, figures.initialRequirementUSD))
                    notes += account.notes.map { "derive-pm2: \($0)" }
                }
            } catch {
                throw prefixed(error, with: parameters.model.rawValue)
            }
        }
        let first = totals.first ?? (0, 0)
        let differences: [JSONValue] = zip(models, totals).dropFirst().map { parameters, total in
            .object([
                ("model", .string(parameters.model.rawValue)), ("totalMmr", .decimal(total.mmr - first.mmr)),
                ("totalImr", .decimal(total.imr - first.imr)),
            ])
        }
        return .object([
            ("models", .array(columns)),
            ("difference", .array(differences)),
            ("notes", .array(notes.map(JSONValue.string))),
            ("marketTs", .string(String(market.valuationTime.rawValue))),
        ])
    }

    static func unitJSON(coin: String, mmr: Double, imr: Double, dominant: String, drivers: [(String, Double)]) -> JSONValue {
        .object([
            ("riskUnit", .string(coin)), ("mmr", .decimal(mmr)), ("imr", .decimal(imr)), ("dominant", .string(dominant)),
            ("drivers", .array(drivers.filter { $0.1 != 0 }.map { .object([("name", .string($0.0)), ("usd", .decimal($0.1))]) })),
        ])
    }

    static func column(
        model: MarginModelID, id: String, equity: Double, adjusted: Double, mmr: Double, imr: Double, ratio: Double?, units: [JSONValue]
    ) -> JSONValue {
        .object([
            ("model", .string(model.rawValue)),
            ("paramsId", .string(id)),
            ("eqUsd", .decimal(equity)),
            ("adjEq", .decimal(adjusted)),
            ("totalMmr", .decimal(mmr)),
            ("totalImr", .decimal(imr)),
            ("marginRatio", ratio.map(JSONValue.decimal) ?? .string("")),
            ("availEq", .decimal(adjusted - imr)),
            ("riskUnits", .array(units)),
        ])
    }

    /// The error with `model: ` in front of its path, so the user knows which model refused.
    static func prefixed(_ error: EngineError, with model: String) -> EngineError {
        switch error {
        case .invalidField(let path, let value, let reason): .invalidField(path: "\(model): \(path)", value: value, reason: reason)
        case .unsupported(let path, let value, let reason): .unsupported(path: "\(model): \(path)", value: value, reason: reason)
        case .unknownInstrument(let path, let id): .unknownInstrument(path: "\(model): \(path)", instrumentID: id)
        case .missingField(let path): .missingField(path: "\(model): \(path)")
        case .tooManyPositions(let path, let count, let limit): .tooManyPositions(path: "\(model): \(path)", count: count, limit: limit)
        case .expiredInstrument(let path, let id, let expiry, let time):
            .expiredInstrument(path: "\(model): \(path)", instrumentID: id, expiry: expiry, marketTime: time)
        case .malformedDocument, .missingMarketData, .badMarketData: error
        }
    }
}
