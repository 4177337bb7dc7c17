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

/// Classic (multi-currency margin, `acctLv 3`) requirements of a whole account (spec 03 §6).
public struct ClassicMarginResult: Sendable {
    public var parametersID: String
    public var marketTime: UnixMillis
    /// Positions in canonical order.
    public var positions: [ClassicPositionResult]
    /// Cross-margin equity by currency: long options, being isolated, add nothing to it.
    public var currencies: [CurrencyResult]
    /// Σ equity in USD, undiscounted, long options included (the net equity of PM eligibility).
    public var equityUSD: Double
    /// The USD value of long options, isolated: part of ``equityUSD``, not of ``adjustedEquityUSD``.
    public var isolatedOptionValueUSD: Double
    /// Σ discounted cross-margin equity in USD: long options excluded.
    public var adjustedEquityUSD: Double
    public var uplUSD: Double
    /// Σ position MMR and IMR (the "derivatives" part).
    public var positionMmrUSD: Double
    public var positionImrUSD: Double
    public var borrowMmrUSD: Double
    public var borrowImrUSD: Double
    public var totalMmrUSD: Double
    public var totalImrUSD: Double
    /// `adjEq / Σ MMR`; nil when nothing is required.
    public var marginRatio: Double?
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

/// Classic margin: every position margined on its own (spec 03 §6).
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
                throw .invalidField(path: position.source, value: "\"\(position.instrument.id)\"", reason: "is spot; hold spot as a balance")
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
        let equityUSD = currencies.reduce(0) { $0 + $1.equityUSD } + isolatedUSD
        let adjusted = currencies.reduce(0) { $0 + $1.discountedEquityUSD }
        let borrowMmr = currencies.reduce(0) { $0 + $1.borrowMmrUSD }
        let borrowImr = currencies.reduce(0) { $0 + $1.borrowImrUSD }
        let positionMmr = results.reduce(0) { $0 + $1.mmrUSD }
        let positionImr = results.reduce(0) { $0 + $1.imrUSD }
        let totalMmr = positionMmr + borrowMmr
        let notional = results.reduce(0) { $0 + $1.valuation.notionalUSD }
        return ClassicMarginResult(
            parametersID: parameters.id, marketTime: market.valuationTime, positions: results, currencies: currencies,
            equityUSD: equityUSD, isolatedOptionValueUSD: isolatedUSD, adjustedEquityUSD: adjusted,
            uplUSD: results.reduce(0) { $0 + $1.uplUSD },
            positionMmrUSD: positionMmr, positionImrUSD: positionImr, borrowMmrUSD: borrowMmr, borrowImrUSD: borrowImr,
            totalMmrUSD: totalMmr, totalImrUSD: positionImr + borrowImr,
            marginRatio: totalMmr > 0 ? reportedRatio(adjusted, over: totalMmr) : nil,
            accountLeverage: reportedRatio(notional, over: adjusted), notionalUSD: notional)
    }

    /// The tier of a perpetual or future of `coin` with this notional.
    public static func tier(notionalUSD: Double, coin: String, parameters: MarginParameters) -> ClassicPositionTier {
        let tiers = parameters.classicPositionTiers[parameters.tier(of: coin)] ?? []
        return tiers.first { $0.upToUSD.map { notionalUSD <= $0 } ?? true } ?? tiers[tiers.count - 1]
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
            guard let option = market.option, let kind = instrument.id.optionKind, let strike = instrument.id.strikeUSD else {
                preconditionFailure("option \(instrument.id) without option market")
            }
            let coefficients = parameters.classicOptions[instrument.underlying] ?? parameters.classicOptionOther
            let isShort = position.sizeContracts < 0
            let coins = abs(position.sizeContracts) * instrument.coinsPerContract
            let imrCoins = ClassicOptionMargin.initialMarginCoins(
                kind, isShort: isShort, strikeUSD: strike, forwardUSD: option.forwardUSD, markCoin: market.markPrice,
                coefficients: coefficients, marginFactor: parameters.classicOptionMarginFactor)
            let mmrCoins = ClassicOptionMargin.maintenanceMarginCoins(
                kind, isShort: isShort, markCoin: market.markPrice, coefficients: coefficients,
                marginFactor: parameters.classicOptionMarginFactor)
            return ClassicPositionResult(
                position: position, market: market, valuation: valuation, uplUSD: uplUSD, leverage: nil, maximumLeverage: nil,
                leverageCapped: false, mmrUSD: mmrCoins * coins * market.indexUSD, imrUSD: imrCoins * coins * market.indexUSD)
        default:
            let tier = tier(notionalUSD: valuation.notionalUSD, coin: instrument.underlying, parameters: parameters)
            let requested = position.leverage ?? parameters.classicDefaultLeverage
            let leverage = min(requested, tier.maxLeverage)
            return ClassicPositionResult(
                position: position, market: market, valuation: valuation, uplUSD: uplUSD, leverage: leverage,
                maximumLeverage: tier.maxLeverage, leverageCapped: requested > tier.maxLeverage,
                mmrUSD: valuation.notionalUSD * tier.mmrRate, imrUSD: valuation.notionalUSD / leverage)
        }
    }
}
