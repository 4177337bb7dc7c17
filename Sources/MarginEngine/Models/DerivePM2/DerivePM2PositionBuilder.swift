/// The Position Builder under Derive PM2: an OKX-format request mapped to Derive portfolios, margined, and
/// rendered in the Position Builder's response shape (with Derive's own components).
///
/// Mapping (docs/methodology/07-derive-pm2.md; `docs/models.md`):
/// - `BTC-USDC-SWAP`, `ETH-USDC-SWAP` (USDC-margined perpetuals) → Derive's perp of that coin:
///   `pos × ctVal` coins at the snapshot's mark; `avgPx` gives the unrealised P&L in the mark-to-market.
/// - OKX options (`BTC-USD-YYMMDD-K-C|P`) → a Derive option of the same strike, expiry and size
///   (`pos × ctVal × ctMult` coins), valued by its USD payoff: Derive's options settle `max(±(S − K), 0)` in
///   USDC, OKX's pay the same USD amount in the coin. SVI is replaced by each option's mark volatility, the
///   expiry's forward is the mean of its options' snapshot forwards, the rate is the snapshot's USD rate.
/// - Refused, naming the instrument: inverse (coin-margined) perpetuals and futures, USDT-margined
///   contracts, dated futures (Derive PM2 has none), spot pairs.
/// - Balances: USDC is cash (may be negative); a coin with `baseCollateral` haircuts joins its own
///   portfolio as risk-cancelling collateral; other currencies need `otherCollateral` haircuts; a negative
///   non-USDC balance is refused (Derive's collateral balances are unsigned).
/// - Feeds: spot = the snapshot's `COIN-USD` index, stable price = `USDC-USD`, every confidence 1 (a
///   snapshot has none), so the oracle contingency is 0.
/// - One portfolio per underlying (Derive margins each currency's subaccount alone), plus `USDC` for cash and
///   other collateral. Cash and non-risk-cancelling collateral enter Derive's formula additively, so the
///   account totals do not depend on which subaccount holds them.
public enum DerivePM2PositionBuilder {
    /// What one request position became.
    public struct MappedPosition: Sendable {
        public var path: String
        public var instrumentID: String
        public var sizeContracts: Double
        public var underlying: String
        public var coins: Double
        /// `option` or `perp`.
        public var derive: String
    }

    /// A request mapped to Derive portfolios.
    public struct Account: Sendable {
        public var portfolios: [DerivePM2Portfolio]
        public var positions: [MappedPosition]
        /// Request fields that have no meaning under Derive and were ignored.
        public var notes: [String]
    }

    /// The name of the portfolio holding cash and other collateral.
    public static let cashPortfolioName = "USDC"

    /// Maps a request (see the type's documentation) at `market` after every coin index moves by `spotMove`
    /// (the okx-pm shock: index × (1 + x), marks and forwards + x × index, volatilities held; stablecoins fixed).
    public static func account(
        for request: PositionBuilderRequest, catalog: InstrumentCatalog, market: MarketSnapshot, parameters: DerivePM2Parameters,
        move spotMove: Double = 0
    ) throws(EngineError) -> Account {
        if let requested = request.parametersID, requested != parameters.id {
            throw .invalidField(
                path: "paramsId", value: "\"\(requested)\"", reason: "does not match the loaded parameter set \"\(parameters.id)\"")
        }
        if request.accountLevelGiven, request.accountLevel == "3" {
            throw .unsupported(
                path: "acctLv", value: "3",
                reason: "is OKX's classic mode; the derive-pm2 model margins a Derive portfolio-margin subaccount")
        }
        guard !request.includeRealPositions else {
            throw .unsupported(
                path: "inclRealPosAndEq", value: "true", reason: "needs an account; the derive-pm2 model margins simulated positions only")
        }
        guard request.positions.count <= parameters.maximumPositions else {
            throw .tooManyPositions(path: "simPos", count: request.positions.count, limit: parameters.maximumPositions)
        }
        var notes: [String] = []
        if !request.spotInUse.isEmpty {
            notes.append("spotInUse is an okx-pm choice; Derive treats a coin balance as risk-cancelling collateral of its own portfolio")
        }
        if request.positions.contains(where: { $0.leverage != nil }) || request.defaultLeverage != nil {
            notes.append("lever is an okx-pm classic-mode setting and is ignored")
        }

        // Index prices after the move; instruments are resolved at the snapshot and moved with the engine's shock.
        let indices = try MarketSnapshot(
            valuationTime: market.valuationTime, indices: try market.shockedIndices(by: spotMove), usdRate: market.usdRate, marks: [:])
        let stablePrice = try indices.indexUSD("USDC")
        struct Holdings {
            var perpCoins = 0.0
            var perpUnrealised = 0.0
            var perpPrice = 0.0
            var perpSources: [String] = []
            var options: [UnixMillis: [(id: InstrumentID, option: DerivePM2Portfolio.Option, forward: Double)]] = [:]
            var collaterals: [DerivePM2Portfolio.Collateral] = []
        }
        var byCoin: [String: Holdings] = [:]
        var mapped: [MappedPosition] = []

        let ordered = request.positions.sorted { ($0.instrumentID, $0.path) < ($1.instrumentID, $1.path) }
        for simulated in ordered {
            let path = "\(simulated.path).instId"
            let instrument = try catalog.instrument(simulated.instrumentID, path: path)
            if let expiry = instrument.expiry, expiry <= market.valuationTime {
                throw .expiredInstrument(path: path, instrumentID: simulated.instrumentID, expiry: expiry, marketTime: market.valuationTime)
            }
            let coin = instrument.underlying
            switch (instrument.kind, instrument.margining, instrument.quoteCurrency) {
            case (.perpetual, .linear?, "USDC"):
                let resolved = try market.market(for: instrument, path: simulated.path).shocked(by: spotMove)
                let coins = simulated.sizeContracts * instrument.coinsPerContract
                var holdings = byCoin[coin, default: Holdings()]
                holdings.perpCoins += coins
                holdings.perpPrice = resolved.markPrice
                if let entry = simulated.averagePrice { holdings.perpUnrealised += coins * (resolved.markPrice - entry) }
                holdings.perpSources.append(simulated.path)
                byCoin[coin] = holdings
                mapped.append(
                    MappedPosition(
                        path: simulated.path, instrumentID: simulated.instrumentID, sizeContracts: simulated.sizeContracts,
                        underlying: coin,
                        coins: coins, derive: "perp"))
            case (.option, _, _):
                let resolved = try market.market(for: instrument, path: simulated.path).shocked(by: spotMove)
                guard let pricing = resolved.option, let strike = instrument.id.strikeUSD, let kind = instrument.id.optionKind,
                    let expiry = instrument.expiry
                else { throw .missingMarketData(name: simulated.instrumentID, detail: "no option market") }
                let coins = simulated.sizeContracts * instrument.coinsPerContract
                let option = DerivePM2Portfolio.Option(
                    strikeUSD: strike, kind: kind, amountCoins: coins, volatility: pricing.volatility, volatilityConfidence: 1,
                    source: simulated.path)
                byCoin[coin, default: Holdings()].options[expiry, default: []].append((instrument.id, option, pricing.forwardUSD))
                mapped.append(
                    MappedPosition(
                        path: simulated.path, instrumentID: simulated.instrumentID, sizeContracts: simulated.sizeContracts,
                        underlying: coin,
                        coins: coins, derive: "option"))
            default:
                throw .unsupported(path: path, value: "\"\(simulated.instrumentID)\"", reason: refusal(instrument))
            }
        }

        var cash = 0.0
        var otherCollateral: [DerivePM2Portfolio.Collateral] = []
        for asset in request.assets.sorted(by: { $0.currency < $1.currency }) where asset.amount != 0 {
            if asset.currency == "USDC" {
                cash += asset.amount
                continue
            }
            guard asset.amount > 0 else {
                throw .unsupported(
                    path: "\(asset.path).amt", value: DecimalText.format(asset.amount),
                    reason: "is a \(asset.currency) borrowing; Derive's collateral balances cannot be negative (only USDC cash can)")
            }
            let price: Double
            do { price = try indices.indexUSD(asset.currency) } catch {
                throw .invalidField(
                    path: "\(asset.path).ccy", value: "\"\(asset.currency)\"", reason: "has no USD index price in the market snapshot")
            }
            if let haircuts = parameters.baseCollateral[asset.currency] {
                byCoin[asset.currency, default: Holdings()].collaterals.append(
                    DerivePM2Portfolio.Collateral(
                        name: asset.currency, amount: asset.amount, priceUSD: price, confidence: 1, haircuts: haircuts, source: asset.path))
            } else if let haircuts = parameters.otherCollateral[asset.currency] {
                otherCollateral.append(
                    DerivePM2Portfolio.Collateral(
                        name: asset.currency, amount: asset.amount, priceUSD: price, confidence: 1, haircuts: haircuts, source: asset.path))
            } else {
                let known = (Set(parameters.baseCollateral.keys).union(parameters.otherCollateral.keys)).sorted()
                throw .unsupported(
                    path: "\(asset.path).ccy", value: "\"\(asset.currency)\"",
                    reason:
                        "has no Derive PM2 collateral haircuts in parameter set \(parameters.id) (it has USDC cash and \(known.joined(separator: ", ")))"
                )
            }
        }

        var portfolios: [DerivePM2Portfolio] = []
        for coin in byCoin.keys.sorted() {
            guard let holdings = byCoin[coin] else { continue }
            var expiries: [DerivePM2Portfolio.Expiry] = []
            for expiry in holdings.options.keys.sorted() {
                let options = holdings.options[expiry] ?? []
                let forward = options.reduce(0) { $0 + $1.forward } / Double(options.count)
                let seconds = (expiry.rawValue - market.valuationTime.rawValue) / 1000
                let split = DerivePM2Portfolio.Expiry.splitForward(
                    forward, secondsToExpiry: seconds, splitSeconds: parameters.forwardSplitSeconds)
                expiries.append(
                    DerivePM2Portfolio.Expiry(
                        secondsToExpiry: seconds, forwardFixedUSD: split.fixedUSD, forwardVariableUSD: split.variableUSD,
                        rate: market.usdRate,
                        forwardConfidence: 1, rateConfidence: 1, options: options.map(\.option), source: "\(coin) \(expiry.iso8601)"))
            }
            var perp: DerivePM2Portfolio.Perp?
            if holdings.perpCoins != 0 {
                perp = DerivePM2Portfolio.Perp(
                    positionCoins: holdings.perpCoins, priceUSD: holdings.perpPrice, confidence: 1,
                    unrealisedValueUSD: holdings.perpUnrealised,
                    source: holdings.perpSources.joined(separator: ", "))
            }
            portfolios.append(
                DerivePM2Portfolio(
                    underlying: coin, spotUSD: try indices.indexUSD(coin), spotConfidence: 1, stablePriceUSD: stablePrice, cashUSD: 0,
                    perp: perp,
                    expiries: expiries, collaterals: holdings.collaterals))
        }
        if cash != 0 || !otherCollateral.isEmpty || portfolios.isEmpty {
            portfolios.append(
                DerivePM2Portfolio(
                    underlying: cashPortfolioName, spotUSD: 1, spotConfidence: 1, stablePriceUSD: stablePrice, cashUSD: cash,
                    collaterals: otherCollateral))
        }
        return Account(portfolios: portfolios, positions: mapped, notes: notes)
    }

    /// Why an instrument has no Derive PM2 counterpart.
    static func refusal(_ instrument: Instrument) -> String {
        let scope = "derive-pm2 maps USDC-margined perpetuals and options only"
        let dated = instrument.kind == .future ? ", a dated future" : ""
        switch (instrument.kind, instrument.margining) {
        case (.spot, _): return "is a spot pair; put spot holdings in simAsset"
        case (_, .inverse?): return "is coin-margined (inverse\(dated)); \(scope)"
        case (.future, _) where instrument.settleCurrency == "USDC": return "is a dated future; Derive PM2 has none (\(scope))"
        default: return "settles in \(instrument.settleCurrency)\(dated); \(scope)"
        }
    }

    /// The account's Derive margin: every portfolio's result.
    public static func results(_ account: Account, parameters: DerivePM2Parameters) throws(EngineError) -> [DerivePM2Result] {
        var results: [DerivePM2Result] = []
        for portfolio in account.portfolios { results.append(try DerivePM2Margin.compute(portfolio, parameters: parameters)) }
        return results
    }

    /// The Position Builder response (`data[0]`) under Derive PM2; with `idxVol` the market is shocked first,
    /// as for okx-pm, and `totalMmrBf`/`totalImrBf` hold the unshocked figures.
    public static func build(
        _ request: PositionBuilderRequest, catalog: InstrumentCatalog, market: MarketSnapshot, parameters: DerivePM2Parameters
    ) throws(EngineError) -> JSONValue {
        let move = request.indexShock ?? 0
        let before =
            move == 0
            ? nil : try results(account(for: request, catalog: catalog, market: market, parameters: parameters), parameters: parameters)
        let mapped = try account(for: request, catalog: catalog, market: market, parameters: parameters, move: move)
        return response(
            try results(mapped, parameters: parameters), account: mapped, before: before, parameters: parameters, market: market)
    }

    /// MMR and margin ratio against a move of every index (the `position-builder-graph` shape).
    public static func graph(
        _ request: PositionBuilderRequest, catalog: InstrumentCatalog, market: MarketSnapshot, parameters: DerivePM2Parameters,
        lowest: Double = -0.99, step: Double = 0.01
    ) throws(EngineError) -> JSONValue {
        let lowestStep = Int((lowest / step).rounded())
        let highestStep = Int((1 / step).rounded())
        var points: [JSONValue] = []
        for stepIndex in lowestStep...highestStep {
            let factor = Double(stepIndex) * step
            let figures = try AccountFigures(
                results(
                    account(for: request, catalog: catalog, market: market, parameters: parameters, move: factor), parameters: parameters))
            points.append(
                .object([
                    ("shockFactor", .decimal(factor)), ("mmr", .decimal(figures.maintenanceRequirementUSD)),
                    ("mmrRatio", figures.marginRatio.map(JSONValue.decimal) ?? .string("")),
                ]))
        }
        return .object([
            ("type", .string("mmr")), ("mmrData", .array(points)), ("paramsId", .string(parameters.id)),
            ("model", .string(MarginModelID.derivePM2.rawValue)), ("marketTs", .string(String(market.valuationTime.rawValue))),
        ])
    }

    /// Account totals over portfolios.
    public struct AccountFigures: Sendable {
        public var equityUSD = 0.0
        public var maintenanceRequirementUSD = 0.0
        public var initialRequirementUSD = 0.0
        public var maintenanceMarginUSD = 0.0
        public var initialMarginUSD = 0.0
        public var unrealisedUSD = 0.0

        public init(_ results: [DerivePM2Result]) {
            for result in results {
                equityUSD += result.equityUSD
                maintenanceRequirementUSD += result.maintenanceRequirementUSD
                initialRequirementUSD += result.initialRequirementUSD
                maintenanceMarginUSD += result.maintenanceMarginUSD
                initialMarginUSD += result.initialMarginUSD
                unrealisedUSD += result.perpValueUSD
            }
        }

        /// equity / MMR, as okx-pm's margin ratio (Derive's MM surplus is ≥ 0 exactly when this is ≥ 100 %);
        /// nil when nothing is required.
        public var marginRatio: Double? {
            guard maintenanceRequirementUSD > 1e-9 else { return nil }
            let ratio = equityUSD / maintenanceRequirementUSD
            return ratio.isFinite ? ratio : nil
        }
    }

    /// The drivers of one portfolio's maintenance requirement, largest first: the worst loss × mmFactor
    /// (naming the scenario, or the basis contingency) and each contingency.
    public static func drivers(_ result: DerivePM2Result) -> [(name: String, usd: Double)] {
        let worst: String
        if let index = result.worstScenarioIndex {
            worst = "worst scenario (\(result.scenarios[index].scenario.label)) × \(DecimalText.format(result.maintenanceFactor))"
        } else {
            worst = "basis contingency × \(DecimalText.format(result.maintenanceFactor))"
        }
        let contingencies = result.contingencies
        let all: [(String, Double)] = [
            (worst, -result.worstLossUSD * result.maintenanceFactor),
            ("perp contingency", contingencies.perpMM),
            ("naked-short contingency", contingencies.optionMM),
            ("collateral haircuts", contingencies.collateralMM),
        ]
        return all.filter { $0.1 != 0 }.sorted { $0.1 > $1.1 }.map { (name: $0.0, usd: $0.1) }
    }

    /// Renders results in the Position Builder response shape, with Derive's components per portfolio.
    public static func response(
        _ results: [DerivePM2Result], account: Account, before: [DerivePM2Result]?, parameters: DerivePM2Parameters, market: MarketSnapshot
    ) -> JSONValue {
        let figures = AccountFigures(results)
        let beforeFigures = before.map(AccountFigures.init)
        let beforeByUnit = Dictionary((before ?? []).map { ($0.underlying, $0) }, uniquingKeysWith: { first, _ in first })
        let units: [JSONValue] = results.map { unitJSON($0, before: beforeByUnit[$0.underlying], account: account) }
        let positions: [JSONValue] = account.positions.map { position in
            .object([
                ("instId", .string(position.instrumentID)), ("pos", .decimal(position.sizeContracts)),
                ("riskUnit", .string(position.underlying)),
                ("deriveAsset", .string(position.derive)), ("coins", .decimal(position.coins)),
            ])
        }
        return .object([
            // Derive has no adjusted equity (haircuts are contingencies): eq, eqUsd and adjEq are all MtM + cash.
            ("eq", .decimal(figures.equityUSD)),
            ("eqUsd", .decimal(figures.equityUSD)),
            ("adjEq", .decimal(figures.equityUSD)),
            ("totalMmr", .decimal(figures.maintenanceRequirementUSD)),
            ("totalImr", .decimal(figures.initialRequirementUSD)),
            ("marginRatio", figures.marginRatio.map(JSONValue.decimal) ?? .string("")),
            ("mm", .decimal(figures.maintenanceMarginUSD)),
            ("im", .decimal(figures.initialMarginUSD)),
            ("upl", .decimal(figures.unrealisedUSD)),
            ("totalMmrBf", beforeFigures.map { .decimal($0.maintenanceRequirementUSD) } ?? .string("")),
            ("totalImrBf", beforeFigures.map { .decimal($0.initialRequirementUSD) } ?? .string("")),
            ("ts", .string(String(market.valuationTime.rawValue))),
            ("riskUnitData", .array(units)),
            ("positions", .array(positions)),
            ("notes", .array(account.notes.map(JSONValue.string))),
            ("paramsId", .string(parameters.id)),
            ("model", .string(MarginModelID.derivePM2.rawValue)),
            ("marketTs", .string(String(market.valuationTime.rawValue))),
        ])
    }

    static func unitJSON(_ result: DerivePM2Result, before: DerivePM2Result?, account: Account) -> JSONValue {
        let contingencies = result.contingencies
        let worst: String =
            result.worstLossUSD == 0
            ? "" : result.worstScenarioIndex.map { result.scenarios[$0].scenario.label } ?? "basis contingency"
        let drivers = drivers(result)
        let scenarios: [JSONValue] = result.scenarios.map { scenario in
            .object([
                ("spotShock", .decimal(scenario.scenario.spotShock)), ("volShock", .string(scenario.scenario.volShock.rawValue)),
                ("dampening", .decimal(scenario.scenario.dampeningFactor)), ("pnl", .decimal(scenario.pnlUSD)),
            ])
        }
        let expiries: [JSONValue] = result.expiries.map { risk in
            .object([
                ("secondsToExpiry", .string(String(risk.expiry.secondsToExpiry))),
                ("fwd", .decimal(risk.expiry.forwardUSD)),
                ("fwdFixed", .decimal(risk.expiry.forwardFixedUSD)),
                ("rate", .decimal(risk.rate)),
                ("discount", .decimal(risk.discountFactor)),
                ("mtm", .decimal(risk.markToMarketUSD)),
                ("basisContingency", .decimal(risk.basisContingencyUSD)),
                ("volShockUp", .decimal(risk.volShockUp)),
                ("volShockDown", .decimal(risk.volShockDown)),
                ("staticDiscountPos", .decimal(risk.staticDiscountPositive)),
                ("staticDiscountNeg", .decimal(risk.staticDiscountNegative)),
                ("nakedShorts", .decimal(risk.nakedShortCoins)),
                (
                    "options",
                    .array(
                        risk.expiry.options.map { option in
                            .object([
                                ("source", .string(option.source)), ("strike", .decimal(option.strikeUSD)),
                                ("optType", .string(option.kind.rawValue)),
                                ("coins", .decimal(option.amountCoins)), ("vol", .decimal(option.volatility)),
                            ])
                        })
                ),
            ])
        }
        return .object([
            ("riskUnit", .string(result.underlying)),
            ("mmrBf", before.map { .decimal($0.maintenanceRequirementUSD) } ?? .string("")),
            ("mmr", .decimal(result.maintenanceRequirementUSD)),
            ("imrBf", before.map { .decimal($0.initialRequirementUSD) } ?? .string("")),
            ("imr", .decimal(result.initialRequirementUSD)),
            ("mm", .decimal(result.maintenanceMarginUSD)),
            ("im", .decimal(result.initialMarginUSD)),
            ("mtm", .decimal(result.markToMarketUSD)),
            ("cash", .decimal(result.cashUSD)),
            ("optionMtm", .decimal(result.optionValueUSD)),
            ("perpValue", .decimal(result.perpValueUSD)),
            ("collateralValue", .decimal(result.collateralValueUSD)),
            ("worstLoss", .decimal(result.worstLossUSD)),
            ("worstScenario", .string(worst)),
            ("basisContingency", .decimal(result.basisContingencyUSD)),
            ("mmFactor", .decimal(result.maintenanceFactor)),
            ("imFactor", .decimal(result.initialFactor)),
            (
                "contingencies",
                .object([
                    ("perpMm", .decimal(contingencies.perpMM)), ("perpIm", .decimal(contingencies.perpIM)),
                    ("optionMm", .decimal(contingencies.optionMM)), ("optionIm", .decimal(contingencies.optionIM)),
                    ("collateralMm", .decimal(contingencies.collateralMM)), ("collateralIm", .decimal(contingencies.collateralIM)),
                    ("oracleIm", .decimal(contingencies.oracleIM)),
                ])
            ),
            ("dominant", .string(drivers.first?.name ?? "")),
            ("drivers", .array(drivers.map { .object([("name", .string($0.name)), ("usd", .decimal($0.usd))]) })),
            ("scenarios", .array(scenarios)),
            ("expiries", .array(expiries)),
        ])
    }
}
