/// One position under classic (multi-currency) margin.
public struct ClassicPositionResult: Sendable {
    public var position: Position
    public var market: InstrumentMarket
    public var valuation: PositionValuation
    public var uplUSD: Double
    /// The leverage applied (perpetuals and futures): the requested or default leverage, capped by the tier.
    public var leverage: Double?
    /// The tier's maximum leverage for this position's notional (perpetuals and futures).
    public var maximumLeverage: Double?
    /// True when the requested leverage exceeded the tier's maximum and was reduced to it.
    public var leverageCapped: Bool
    public var mmrUSD: Double
    public var imrUSD: Double

    /// A long option: isolated under multi-currency margin, its value is not available as cross margin.
    public var isIsolatedLongOption: Bool { position.instrument.kind == .option && position.sizeContracts > 0 }
}

/// Classic (multi-currency margin, `acctLv 3`) requirements of a whole account (docs/methodology/03-account.md §6).
public struct ClassicMarginResult: Sendable {
    public var parametersID: String
    public var marketTime: UnixMillis
    /// Positions in canonical order.
    public var positions: [ClassicPositionResult]
    /// Cross-margin equity by currency: long options, being isolated, add nothing to it.
    public var currencies: [CurrencyResult]
    /// The account roll-up (``AccountRollup``); its derivatives part is Σ position MMR and IMR.
    public var figures: AccountFigures
    /// The USD value of long options, isolated: part of ``equityUSD``, not of ``adjustedEquityUSD``.
    public var isolatedOptionValueUSD: Double
    public var uplUSD: Double
    /// Σ equity in USD, undiscounted, long options included (the net equity of PM eligibility).
    public var equityUSD: Double { figures.equityUSD }
    /// Σ discounted cross-margin equity in USD: long options excluded.
    public var adjustedEquityUSD: Double { figures.adjustedEquityUSD }
    /// Σ position MMR and IMR (the "derivatives" part).
    public var positionMmrUSD: Double { figures.derivativesMmrUSD }
    public var positionImrUSD: Double { figures.derivativesImrUSD }
    public var borrowMmrUSD: Double { figures.borrowMmrUSD }
    public var borrowImrUSD: Double { figures.borrowImrUSD }
    public var totalMmrUSD: Double { figures.totalMmrUSD }
    public var totalImrUSD: Double { figures.totalImrUSD }
    /// `adjEq / Σ MMR`; nil when nothing is required.
    public var marginRatio: Double? { figures.marginRatio }
    public var accountLeverage: Double?
    public var notionalUSD: Double

    /// Position MMR, IMR and UPL summed by underlying coin, for side-by-side comparison with risk units.
    public var byCoin: [(coin: String, mmrUSD: Double, imrUSD: Double, uplUSD: Double)] {
        var sums: [String: (Double, Double, Double)] = [:]
        for result in positions {
            let coin = result.position.instrument.underlying
            let current = sums[coin] ?? (0, 0, 0)
            sums[coin] = (current.0 + result.mmrUSD, current.1 + result.imrUSD, current.2 + result.uplUSD)
        }
        return sums.keys.sorted().map { coin in
            let value = sums[coin] ?? (0, 0, 0)
            return (coin, value.0, value.1, value.2)
        }
    }
}

/// Classic margin: every position margined on its own (docs/methodology/03-account.md §6).
///
/// - Perpetuals and futures: the tier is chosen by the position's notional and applies to all of it;
///   `MMR = notionalUsd × mmr(tier)`, `IMR = notionalUsd / lever`, with `lever` the position's leverage (or
///   the parameter set's default) capped at the tier's maximum.
/// - Options (coin-margined): short positions per ``ClassicOptionMargin`` times `|pos|·ctVal·ctMult`, in
///   coins, converted at the coin's index; long options need nothing.
/// - Balances, discounts and borrowing exactly as under portfolio margin; spot never offsets derivatives.
/// - Long options are isolated (OKX multi-currency margin): their value counts in net equity but not in the
///   cross-margin equity, adjusted equity, available equity or margin ratio.
public enum ClassicMargin {
    public static func compute(
        _ portfolio: Portfolio, market: MarketSnapshot, parameters: MarginParameters
    ) throws(EngineError) -> ClassicMarginResult {
        if portfolio.canonicalGroups().contains(where: { $0.slots.count > 1 }) {
            return try compute(portfolio.nettedByInstrument(), market: market, parameters: parameters)
        }
        var results: [ClassicPositionResult] = []
        for position in portfolio.canonicallyOrderedPositions() {
            guard position.instrument.isDerivative else {
                throw .invalidField(
                    path: position.source, value: "\"\(position.instrument.id)\"", reason: "is spot; hold spot as a balance")
            }
            let instrumentMarket = try market.market(for: position.instrument, path: position.source)
            results.append(try positionResult(position, market: instrumentMarket, snapshot: market, parameters: parameters))
        }
        // Long options are isolated under multi-currency margin: their value is not cross margin. They add
        // nothing to their currency's equity (which still appears, at what the rest gives it) and are kept
        // apart for the net equity.
        var isolatedUSD = 0.0
        var contributions: [(currency: String, amount: Double)] = []
        for result in results {
            let currency = result.position.instrument.settleCurrency
            if result.isIsolatedLongOption {
                isolatedUSD += result.valuation.equityContribution * (try market.indexUSD(currency))
                contributions.append((currency, 0))
            } else {
                contributions.append((currency, result.valuation.equityContribution))
            }
        }
        let currencies = try AccountEquity.currencies(
            cashBalances: portfolio.cashBalances, contributions: contributions, spotInUse: [:], market: market, parameters: parameters)
        var rollup = AccountRollup()
        for currency in currencies {
            rollup.add(
                currency.valuation, owedCoins: -currency.equity, quotaBaseCoins: parameters.interestFreeQuotas[currency.currency]?.base ?? 0
            )
        }
        rollup.addIsolated(isolatedUSD)
        let figures = rollup.figures(
            derivativesMmrUSD: results.reduce(0) { $0 + $1.mmrUSD }, derivativesImrUSD: results.reduce(0) { $0 + $1.imrUSD })
        let notional = results.reduce(0) { $0 + $1.valuation.notionalUSD }
        return ClassicMarginResult(
            parametersID: parameters.id, marketTime: market.valuationTime, positions: results, currencies: currencies, figures: figures,
            isolatedOptionValueUSD: isolatedUSD, uplUSD: results.reduce(0) { $0 + $1.uplUSD },
            accountLeverage: reportedRatio(notional, over: figures.adjustedEquityUSD), notionalUSD: notional)
    }

    /// The requirement of a perpetual or future with this notional (docs/methodology/03-account.md §6): the tier its
    /// notional falls in applies to all of it, `MMR = notional × mmr(tier)`, `IMR = notional / min(lever, tier
    /// maximum)`. Shared with the batch kernel.
    public static func linearRequirement(
        notionalUSD: Double, tiers: [ClassicPositionTier], requestedLeverage: Double
    ) -> (mmrUSD: Double, imrUSD: Double, leverage: Double, maximumLeverage: Double) {
        let tier = tiers.first { $0.upToUSD.map { notionalUSD <= $0 } ?? true } ?? tiers[tiers.count - 1]
        let leverage = min(requestedLeverage, tier.maxLeverage)
        return (notionalUSD * tier.mmrRate, notionalUSD / leverage, leverage, tier.maxLeverage)
    }

    /// The requirement of an option position from its per-coin margins (``ClassicOptionMargin``, 0 for a long
    /// option): `coins × |pos|·ctVal·ctMult × index`. Shared with the batch kernel.
    public static func optionRequirement(
        sizeContracts: Double, coinsPerContract: Double, mmrCoins: Double, imrCoins: Double, indexUSD: Double
    ) -> (mmrUSD: Double, imrUSD: Double) {
        let coins = abs(sizeContracts) * coinsPerContract
        return (mmrCoins * coins * indexUSD, imrCoins * coins * indexUSD)
    }

    /// An option's classic margins per coin of underlying, short (long options need nothing).
    public static func shortOptionMarginCoins(
        _ market: InstrumentMarket, parameters: MarginParameters
    ) -> (mmrCoins: Double, imrCoins: Double)? {
        let instrument = market.instrument
        guard let option = market.option, let kind = instrument.id.optionKind, let strike = instrument.id.strikeUSD else { return nil }
        let coefficients = parameters.classicOptions[instrument.underlying] ?? parameters.classicOptionOther
        let imrCoins = ClassicOptionMargin.initialMarginCoins(
            kind, isShort: true, strikeUSD: strike, forwardUSD: option.forwardUSD, markCoin: market.markPrice,
            coefficients: coefficients, marginFactor: parameters.classicOptionMarginFactor)
        let mmrCoins = ClassicOptionMargin.maintenanceMarginCoins(
            kind, isShort: true, markCoin: market.markPrice, coefficients: coefficients, marginFactor: parameters.classicOptionMarginFactor)
        return (mmrCoins, imrCoins)
    }

    static func positionResult(
        _ position: Position, market: InstrumentMarket, snapshot: MarketSnapshot, parameters: MarginParameters
    ) throws(EngineError) -> ClassicPositionResult {
        let valuation = PositionValuation(position, market: market)
        let instrument = position.instrument
        let uplUSD = valuation.floatingPnL * (try snapshot.indexUSD(instrument.settleCurrency))
        if let leverage = position.leverage, !(leverage >= 1 && leverage.isFinite) {
            throw .invalidField(path: "\(position.source).lever", value: DecimalText.formatLenient(leverage), reason: "must be at least 1")
        }
        switch instrument.kind {
        case .option:
            guard let margins = shortOptionMarginCoins(market, parameters: parameters) else {
                preconditionFailure("option \(instrument.id) without option market")
            }
            let isShort = position.sizeContracts < 0
            let requirement = optionRequirement(
                sizeContracts: position.sizeContracts, coinsPerContract: instrument.coinsPerContract,
                mmrCoins: isShort ? margins.mmrCoins : 0,
                imrCoins: isShort ? margins.imrCoins : 0, indexUSD: market.indexUSD)
            return ClassicPositionResult(
                position: position, market: market, valuation: valuation, uplUSD: uplUSD, leverage: nil, maximumLeverage: nil,
                leverageCapped: false, mmrUSD: requirement.mmrUSD, imrUSD: requirement.imrUSD)
        default:
            let requested = position.leverage ?? parameters.classicDefaultLeverage
            let requirement = linearRequirement(
                notionalUSD: valuation.notionalUSD,
                tiers: parameters.classicPositionTiers[parameters.tier(of: instrument.underlying)] ?? [],
                requestedLeverage: requested)
            return ClassicPositionResult(
                position: position, market: market, valuation: valuation, uplUSD: uplUSD, leverage: requirement.leverage,
                maximumLeverage: requirement.maximumLeverage, leverageCapped: requested > requirement.maximumLeverage,
                mmrUSD: requirement.mmrUSD, imrUSD: requirement.imrUSD)
        }
    }
}
