/// One position's figures in a margin result.
public struct PositionResult: Sendable {
    public var position: Position
    public var market: InstrumentMarket
    /// Unrealised P&L in the settlement currency (an option's `(markPx − avgPx)` value in coins).
    public var floatingPnL: Double
    public var uplUSD: Double
    /// What the position adds to its settlement currency's equity (see ``PositionValuation``).
    public var equityContribution: Double
    public var notionalUSD: Double
    /// The position's Greeks (`size × per-contract`).
    public var greeks: ContractGreeks
    /// Its P&L in the unit's worst MR1 cell; these sum (in ``RiskUnitResult/positions`` order, spot in use
    /// last) exactly to the unit's worst-cell P&L.
    public var worstCellPnLUSD: Double
    /// The unit's MMR minus the unit's MMR without this position (spot in use re-derived).
    public var marginalMmrUSD: Double
}

/// A unit's spot in use in a margin result.
public struct SpotInUseResult: Sendable {
    public var coin: String
    /// Coins used as hedge (sign of the balance).
    public var coins: Double
    /// The most the balance could hedge.
    public var maximumCoins: Double
    public var indexUSD: Double
    public var greeks: ContractGreeks
    public var worstCellPnLUSD: Double
    /// The unit's MMR minus its MMR with no spot in use.
    public var marginalMmrUSD: Double
}

/// One risk unit's result (docs/methodology/02-margin.md §12).
public struct RiskUnitResult: Sendable {
    public var coin: String
    public var tier: RiskTier
    public var layout: ScenarioLayout
    /// Positions in canonical order (instrument id, size, entry price).
    public var positions: [PositionResult]
    public var spotInUse: SpotInUseResult?
    public var components: RiskUnitComponents
    /// The unit's scenario P&L vector (USD) with spot in use as applied.
    public var scenarioPnLUSD: [Double]
    public var uplUSD: Double
    public var greeks: ContractGreeks
}

/// One currency's equity and borrowing (docs/methodology/03-account.md §1–§4).
public struct CurrencyResult: Sendable {
    public var currency: String
    public var cashBalance: Double
    /// `cashBal + unrealised P&L + option value`, in the currency.
    public var equity: Double
    public var indexUSD: Double
    public var equityUSD: Double
    /// Equity after the discount tiers, in USD (liabilities count at 100 %).
    public var discountedEquityUSD: Double
    public var liabilityUSD: Double
    public var borrowMmrUSD: Double
    public var borrowImrUSD: Double
    /// The currency's part of the account totals.
    public var valuation: CurrencyValuation {
        CurrencyValuation(
            equityUSD: equityUSD, discountedEquityUSD: discountedEquityUSD, liabilityUSD: liabilityUSD, borrowMmrUSD: borrowMmrUSD,
            borrowImrUSD: borrowImrUSD)
    }
    /// Spot in use of this coin (0 for stablecoins and coins without a risk unit).
    public var spotInUse: Double
    /// Equity not used as spot in use, in the currency.
    public var availableEquity: Double
}

/// The portfolio-margin figures of an account (docs/methodology/02-margin.md, 03-account.md §1–§4).
public struct PortfolioMarginResult: Sendable {
    public var parametersID: String
    public var marketTime: UnixMillis
    /// Risk units sorted by coin.
    public var units: [RiskUnitResult]
    /// Currencies sorted by code.
    public var currencies: [CurrencyResult]
    /// The account roll-up (``AccountRollup``): equity, adjusted equity, requirements and the ratio.
    public var figures: AccountFigures
    public var uplUSD: Double
    /// Σ equity in USD, undiscounted (the response's `eqUsd`; the net equity of PM eligibility).
    public var equityUSD: Double { figures.equityUSD }
    /// Σ discounted equity in USD (OKX `eq` and `adjEq` of the Position Builder).
    public var adjustedEquityUSD: Double { figures.adjustedEquityUSD }
    public var derivativesMmrUSD: Double { figures.derivativesMmrUSD }
    public var derivativesImrUSD: Double { figures.derivativesImrUSD }
    public var borrowMmrUSD: Double { figures.borrowMmrUSD }
    public var borrowImrUSD: Double { figures.borrowImrUSD }
    public var totalMmrUSD: Double { figures.totalMmrUSD }
    public var totalImrUSD: Double { figures.totalImrUSD }
    /// `adjEq / totalMmr`; nil when nothing is required.
    public var marginRatio: Double? { figures.marginRatio }
    /// `Σ notionalUsd / adjEq` (OKX `acctLever`, over its `eq`); nil when adjusted equity is zero.
    public var accountLeverage: Double?
    public var notionalUSD: Double
}

/// Portfolio margin of a whole account.
public enum PortfolioMargin {
    /// Margins `portfolio` at `market` under `parameters`.
    ///
    /// Lines of one instrument are netted first (``Portfolio/nettedByInstrument()``): positions are net, as
    /// OKX's are in net mode, so a long and a short of the same contract never pay MR7 twice.
    /// Each instrument is priced once under every scenario (``InstrumentRisk``); a unit's scenario P&L is
    /// the sum of `size × vector` over its positions, in canonical order, plus spot in use last.
    /// `risks`, when given, supplies precomputed scenario vectors by instrument id (they must come from the
    /// same market and parameters); missing ones are computed.
    /// - Complexity: O(positions × scenarios) after pricing; pricing is 32 Black-76 evaluations per option
    ///   instrument not supplied in `risks`.
    public static func compute(
        _ portfolio: Portfolio, market: MarketSnapshot, parameters: MarginParameters,
        risks: [String: InstrumentRisk] = [:]
    ) throws(EngineError) -> PortfolioMarginResult {
        try compute(portfolio, market: market, parameters: parameters, risks: risks, context: nil)
    }

    /// ``compute(_:market:parameters:risks:)`` with the market's component context when the caller keeps one
    /// (the liquidation planner computes many portfolios of one market).
    static func compute(
        _ portfolio: Portfolio, market: MarketSnapshot, parameters: MarginParameters, risks: [String: InstrumentRisk],
        context known: ComponentContext?
    ) throws(EngineError) -> PortfolioMarginResult {
        let groups = portfolio.canonicalGroups()
        // Net mode: lines of one instrument are one position (their locked-in P&L stays in cash).
        if groups.contains(where: { $0.slots.count > 1 }) {
            return try compute(portfolio.nettedByInstrument(), market: market, parameters: parameters, risks: risks, context: known)
        }
        var positionsByCoin: [String: [(Position, InstrumentRisk)]] = [:]
        for group in groups {
            guard let first = group.slots.first else { continue }
            let instrument = portfolio.positions[first].instrument
            let path = portfolio.positions[first].source
            guard instrument.isDerivative else {
                throw .invalidField(path: path, value: "\"\(instrument.id)\"", reason: "is spot; hold spot as a balance")
            }
            let risk: InstrumentRisk
            if let known = risks[group.instrumentID] {
                risk = known
            } else {
                risk = InstrumentRisk(try market.market(for: instrument, path: path), parameters: parameters)
            }
            var unit = positionsByCoin.removeValue(forKey: instrument.underlying) ?? []
            for slot in group.slots { unit.append((portfolio.positions[slot], risk)) }
            positionsByCoin[instrument.underlying] = unit
        }
        let context = known ?? ComponentContext(parameters: parameters, market: market)

        var units: [RiskUnitResult] = []
        for coin in positionsByCoin.keys.sorted() {
            units.append(
                try unitResult(
                    coin: coin, positions: positionsByCoin[coin] ?? [], portfolio: portfolio, market: market, context: context))
        }

        let spotInUseByCoin = Dictionary(uniqueKeysWithValues: units.compactMap { unit in unit.spotInUse.map { (unit.coin, $0.coins) } })
        let contributions = units.flatMap { unit in
            unit.positions.map { (currency: $0.position.instrument.settleCurrency, amount: $0.equityContribution) }
        }
        let currencies = try AccountEquity.currencies(
            cashBalances: portfolio.cashBalances, contributions: contributions, spotInUse: spotInUseByCoin, market: market,
            parameters: parameters)

        var rollup = AccountRollup()
        for currency in currencies {
            rollup.add(
                currency.valuation, owedCoins: -currency.equity, quotaBaseCoins: parameters.interestFreeQuotas[currency.currency]?.base ?? 0
            )
        }
        let figures = rollup.figures(
            derivativesMmrUSD: units.reduce(0) { $0 + $1.components.mmr }, derivativesImrUSD: units.reduce(0) { $0 + $1.components.imr })
        let notional = units.reduce(0) { total, unit in unit.positions.reduce(total) { $0 + $1.notionalUSD } }
        let upl = units.reduce(0) { $0 + $1.uplUSD }
        return PortfolioMarginResult(
            parametersID: parameters.id, marketTime: market.valuationTime, units: units, currencies: currencies, figures: figures,
            uplUSD: upl, accountLeverage: reportedRatio(notional, over: figures.adjustedEquityUSD), notionalUSD: notional)
    }

    /// One unit: exposure, spot in use, components, attribution.
    ///
    /// A position's marginal MMR is the unit's MMR minus the MMR without it (its figures subtracted from
    /// the unit's sums, no repricing), evaluated in reused scratch storage.
    static func unitResult(
        coin: String, positions: [(Position, InstrumentRisk)], portfolio: Portfolio, market: MarketSnapshot,
        context: ComponentContext
    ) throws(EngineError) -> RiskUnitResult {
        let parameters = context.parameters
        let tier = parameters.tier(of: coin)
        let tierParameters = parameters.derivatives[tier] ?? parameters.derivativeParameters(for: coin)
        var derivatives = UnitExposure.empty
        for (position, risk) in positions { derivatives.add(risk, sizeContracts: position.sizeContracts) }

        let balance = portfolio.cashBalances[coin] ?? 0
        let chosen = portfolio.chosenSpotInUse[coin]
        let spotRisk: InstrumentRisk? =
            balance != 0
            ? InstrumentRisk(spotIndexUSD: try market.indexUSD(coin), parameters: tierParameters) : nil
        var hedgedScratch = UnitExposure.empty

        func evaluate(
            _ exposure: UnitExposure, allowSpot: Bool = true
        ) throws(EngineError) -> (charges: ComponentCharges, hedged: Bool, applied: Double, maximum: Double) {
            try unitCharges(
                exposure, allowSpot: allowSpot, balance: balance, chosen: chosen, spotRisk: spotRisk, tier: tier, context: context,
                scratch: &hedgedScratch)
        }

        let chosenCharges = try evaluate(derivatives)
        let spotCoins = chosenCharges.applied
        let spotMaximum = chosenCharges.maximum
        let exposure = chosenCharges.hedged ? hedgedScratch : derivatives
        let components = RiskUnitComponents(chosenCharges.charges, layout: ScenarioLayout(tierParameters), pnl: exposure.scenarioPnLUSD)
        let worstIndex = components.mr1Worst.index

        var results: [PositionResult] = []
        results.reserveCapacity(positions.count)
        var unitGreeks = ContractGreeks.zero
        var unitUPL = 0.0
        var without = derivatives
        var settleIndices: [(currency: String, usd: Double)] = []  // a unit settles in a few currencies
        for (position, risk) in positions {
            guard let instrumentMarket = risk.market else { continue }
            let size = position.sizeContracts
            let instrument = position.instrument
            let valuation = PositionValuation(position, market: instrumentMarket)
            let floating = valuation.floatingPnL
            let settleUSD: Double
            if let cached = settleIndices.first(where: { $0.currency == instrument.settleCurrency }) {
                settleUSD = cached.usd
            } else {
                settleUSD = try market.indexUSD(instrument.settleCurrency)
                settleIndices.append((instrument.settleCurrency, settleUSD))
            }
            without.assign(derivatives, removing: risk, sizeContracts: size)
            let marginal = components.mmr - (try evaluate(without).charges.mmr)
            let greeks = risk.greeks.scaled(by: size)
            unitGreeks.add(greeks)
            unitUPL += floating * settleUSD
            results.append(
                PositionResult(
                    position: position, market: instrumentMarket, floatingPnL: floating, uplUSD: floating * settleUSD,
                    equityContribution: valuation.equityContribution, notionalUSD: valuation.notionalUSD, greeks: greeks,
                    worstCellPnLUSD: size * risk.scenarioPnLUSD[worstIndex], marginalMmrUSD: marginal))
        }
        var spotResult: SpotInUseResult?
        if let spotRisk, spotMaximum != 0 || chosen != nil {
            let greeks = spotRisk.greeks.scaled(by: spotCoins)
            unitGreeks.add(greeks)
            let withoutSpot = try evaluate(derivatives, allowSpot: false).charges.mmr
            spotResult = SpotInUseResult(
                coin: coin, coins: spotCoins, maximumCoins: spotMaximum, indexUSD: try market.indexUSD(coin), greeks: greeks,
                worstCellPnLUSD: spotCoins * spotRisk.scenarioPnLUSD[worstIndex], marginalMmrUSD: components.mmr - withoutSpot)
        }
        return RiskUnitResult(
            coin: coin, tier: tier, layout: ScenarioLayout(tierParameters), positions: results, spotInUse: spotResult,
            components: components, scenarioPnLUSD: exposure.scenarioPnLUSD, uplUSD: unitUPL, greeks: unitGreeks)
    }
}

extension PortfolioMargin {
    /// A unit's charges for its derivative exposure, with spot in use derived from it per the aggregation
    /// policy; `hedged` tells whether the spot-hedged exposure (left in `scratch`) was chosen, `applied` the
    /// spot in use it holds. Shared by ``compute(_:market:parameters:risks:)`` and ``MarginFigures``.
    static func unitCharges(
        _ exposure: UnitExposure, allowSpot: Bool = true, balance: Double, chosen: Double?, spotRisk: InstrumentRisk?, tier: RiskTier,
        context: ComponentContext, scratch: inout UnitExposure
    ) throws(EngineError) -> (charges: ComponentCharges, hedged: Bool, applied: Double, maximum: Double) {
        let (amount, maximum) = spotInUse(balanceCoins: balance, derivativeDeltaCoins: exposure.derivativeCoinDelta, chosenCoins: chosen)
        guard allowSpot, amount != 0, let spotRisk else {
            return (try context.charges(exposure, tier: tier), false, 0, maximum)
        }
        scratch.assign(exposure)
        scratch.addSpot(spotRisk, coins: amount)
        let hedged = try context.charges(scratch, tier: tier)
        guard context.parameters.spotHedgeAggregation == .conservativeMax else { return (hedged, true, amount, maximum) }
        let bare = try context.charges(exposure, tier: tier)
        return bare.mmr > hedged.mmr ? (bare, false, 0, maximum) : (hedged, true, amount, maximum)
    }

    /// The account figures of ``compute(_:market:parameters:risks:)`` alone: equity, requirements and the
    /// ratio, without Greeks, marginal MMR or per-position results (see ``MarginFigures``). Bit for bit
    /// `compute(…).figures`.
    public static func figures(
        _ portfolio: Portfolio, market: MarketSnapshot, parameters: MarginParameters, risks: [String: InstrumentRisk] = [:]
    ) throws(EngineError) -> AccountFigures {
        var figures = MarginFigures(market: market, parameters: parameters)
        return try figures.figures(portfolio, risks: risks)
    }
}

/// Portfolio-margin figures without attribution, for many portfolios of one market and parameter set (the
/// liquidation planner's candidate actions).
///
/// The arithmetic of ``PortfolioMargin/compute(_:market:parameters:risks:)`` in the same order — units by
/// coin, each unit's exposure summed over its positions in canonical order, spot in use by
/// ``PortfolioMargin/unitCharges(_:allowSpot:balance:chosen:spotRisk:tier:context:scratch:)``, equity
/// contributions in unit then position order, currencies in code order through ``AccountRollup`` — so its
/// figures equal `compute(…).figures` bit for bit (a test checks this on random portfolios). What compute
/// spends on attribution (a unit re-evaluated without each position, Greeks, results per position and
/// currency) is skipped, and the component context, borrowing schedule, spot vectors and scratch exposures
/// are kept across calls. A portfolio with several lines of one instrument, a spot line, or any error is
/// handed to compute itself, so errors are compute's.
struct MarginFigures {
    let market: MarketSnapshot
    let parameters: MarginParameters
    let context: ComponentContext
    let borrowing: BorrowingSchedule
    /// Per coin met so far: its tier and, once a balance needed it, its spot vector.
    private var coinConstants: [(coin: String, tier: RiskTier, spotRisk: InstrumentRisk?)] = []
    /// Per currency met so far: its index, discount tiers and interest-free quota base.
    private var currencyConstants: [(currency: String, indexUSD: Double, tiers: [ProgressiveBand], quotaBase: Double)] = []
    private var derivatives = UnitExposure.empty
    private var hedged = UnitExposure.empty
    private var order: [Int] = []
    private var resolved: [InstrumentRisk] = []
    private var coins: [String] = []
    private var equity: [(currency: String, amount: Double)] = []

    init(market: MarketSnapshot, parameters: MarginParameters) {
        self.market = market
        self.parameters = parameters
        context = ComponentContext(parameters: parameters, market: market)
        borrowing = BorrowingSchedule(parameters)
    }

    /// `PortfolioMargin.compute(portfolio, market:, parameters:, risks:).figures`.
    mutating func figures(_ portfolio: Portfolio, risks: [String: InstrumentRisk]) throws(EngineError) -> AccountFigures {
        do {
            if let figures = try direct(portfolio, risks: risks) { return figures }
        } catch {}
        return try PortfolioMargin.compute(portfolio, market: market, parameters: parameters, risks: risks, context: context).figures
    }

    /// The figures, or nil for what compute handles differently (several lines of one instrument, spot lines).
    private mutating func direct(_ portfolio: Portfolio, risks: [String: InstrumentRisk]) throws(EngineError) -> AccountFigures? {
        let positions = portfolio.positions
        // Canonical order: instrument ids in byte order, as ``Portfolio/canonicalGroups()`` sorts them.
        order.removeAll(keepingCapacity: true)
        order.append(contentsOf: positions.indices)
        if order.count > 1 {
            order.sort { positions[$0].instrument.id.rawValue.utf8.lexicographicallyPrecedes(positions[$1].instrument.id.rawValue.utf8) }
        }
        resolved.removeAll(keepingCapacity: true)
        coins.removeAll(keepingCapacity: true)
        for (rank, slot) in order.enumerated() {
            let position = positions[slot]
            let instrument = position.instrument
            if rank > 0, positions[order[rank - 1]].instrument.id.rawValue == instrument.id.rawValue { return nil }
            guard instrument.isDerivative else { return nil }
            if let known = risks[instrument.id.rawValue] {
                resolved.append(known)
            } else {
                resolved.append(InstrumentRisk(try market.market(for: instrument, path: position.source), parameters: parameters))
            }
            if !coins.contains(instrument.underlying) { coins.append(instrument.underlying) }
        }
        if coins.count > 1 { coins.sort() }

        var derivativesMmr = 0.0
        var derivativesImr = 0.0
        for coin in coins {
            derivatives.assign(UnitExposure.empty)
            for (rank, slot) in order.enumerated() where positions[slot].instrument.underlying == coin {
                derivatives.add(resolved[rank], sizeContracts: positions[slot].sizeContracts)
            }
            let constants: Int
            if let known = coinConstants.firstIndex(where: { $0.coin == coin }) {
                constants = known
            } else {
                constants = coinConstants.count
                coinConstants.append((coin, parameters.tier(of: coin), nil))
            }
            let tier = coinConstants[constants].tier
            let balance = portfolio.cashBalances[coin] ?? 0
            var spotRisk: InstrumentRisk?
            if balance != 0 {
                if let cached = coinConstants[constants].spotRisk {
                    spotRisk = cached
                } else {
                    let tierParameters = parameters.derivatives[tier] ?? parameters.derivativeParameters(for: coin)
                    let risk = InstrumentRisk(spotIndexUSD: try market.indexUSD(coin), parameters: tierParameters)
                    coinConstants[constants].spotRisk = risk
                    spotRisk = risk
                }
            }
            let charges = try PortfolioMargin.unitCharges(
                derivatives, balance: balance, chosen: portfolio.chosenSpotInUse[coin], spotRisk: spotRisk, tier: tier, context: context,
                scratch: &hedged
            ).charges
            derivativesMmr = derivativesMmr + charges.mmr
            derivativesImr = derivativesImr + charges.imr
        }

        // Equity by currency: cash, then each position's contribution in unit and canonical order.
        equity.removeAll(keepingCapacity: true)
        for (currency, balance) in portfolio.cashBalances { equity.append((currency, balance)) }
        for coin in coins {
            for (rank, slot) in order.enumerated() where positions[slot].instrument.underlying == coin {
                guard let instrumentMarket = resolved[rank].market else { continue }
                let position = positions[slot]
                let contribution = PositionValuation(position, market: instrumentMarket).equityContribution
                let currency = position.instrument.settleCurrency
                if let index = equity.firstIndex(where: { $0.currency == currency }) {
                    equity[index].amount += contribution
                } else {
                    equity.append((currency, 0))
                    equity[equity.count - 1].amount += contribution
                }
            }
        }
        if equity.count > 1 { equity.sort { $0.currency < $1.currency } }
        var rollup = AccountRollup()
        for (currency, amount) in equity {
            let constants: Int
            if let known = currencyConstants.firstIndex(where: { $0.currency == currency }) {
                constants = known
            } else {
                constants = currencyConstants.count
                currencyConstants.append(
                    (
                        currency, try market.indexUSD(currency), parameters.collateralTiers[currency] ?? [],
                        parameters.interestFreeQuotas[currency]?.base ?? 0
                    ))
            }
            let known = currencyConstants[constants]
            let valuation = CurrencyValuation(amount: amount, indexUSD: known.indexUSD, discountTiers: known.tiers, borrowing: borrowing)
            rollup.add(valuation, owedCoins: -amount, quotaBaseCoins: known.quotaBase)
        }
        return rollup.figures(derivativesMmrUSD: derivativesMmr, derivativesImrUSD: derivativesImr)
    }
}

extension ContractGreeks {
    func scaled(by size: Double) -> ContractGreeks {
        ContractGreeks(
            deltaBS: size * deltaBS, gammaBS: size * gammaBS, vegaBS: size * vegaBS, thetaBS: size * thetaBS,
            deltaPA: size * deltaPA, gammaPA: size * gammaPA, vegaPA: size * vegaPA, thetaPA: size * thetaPA,
            deltaCash: size * deltaCash, gammaCash: size * gammaCash, vegaCash: size * vegaCash, thetaCash: size * thetaCash)
    }

    mutating func add(_ other: ContractGreeks) {
        deltaBS += other.deltaBS
        gammaBS += other.gammaBS
        vegaBS += other.vegaBS
        thetaBS += other.thetaBS
        deltaPA += other.deltaPA
        gammaPA += other.gammaPA
        vegaPA += other.vegaPA
        thetaPA += other.thetaPA
        deltaCash += other.deltaCash
        gammaCash += other.gammaCash
        vegaCash += other.vegaCash
        thetaCash += other.thetaCash
    }
}
