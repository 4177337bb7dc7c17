import RealModule

/// The precomputed risk of one expiry (`PMRMLib_2.addPrecomputes` per expiry): its value, basis
/// contingency, vol-shock multipliers, static discounts and contingency inputs.
public struct DerivePM2ExpiryRisk: Sendable {
    public var expiry: DerivePM2Portfolio.Expiry
    /// `max(rate, 0)`: Derive assumes rates are never negative.
    public var rate: Double
    /// `D = e^{−rate·sec/365d}`.
    public var discountFactor: Double
    public var timeToExpiryYears: Double
    /// min(portfolio confidence, forward, rate and every option's vol confidence).
    public var minimumConfidence: Double
    /// Σ |amount| of the expiry's options, coins.
    public var netOptionsCoins: Double
    /// Σ amount × Black-76 value at the unshocked forward and volatilities, USD.
    public var markToMarketUSD: Double
    /// The expiry's value with the forward × `scenarioSpotUp` / `scenarioSpotDown`, volatilities unchanged.
    public var basisUpValueUSD: Double
    public var basisDownValueUSD: Double
    /// `min(up − MtM, down − MtM, 0) · (addFactor + multFactor·τ)` (≤ 0).
    public var basisContingencyUSD: Double
    /// `m = (30 d / max(sec, dteFloor))^p`, p short- or long-term; up = 1 + volRangeUp·m, down = max(0, 1 − volRangeDown·m).
    public var volShockUp: Double
    public var volShockDown: Double
    /// Applied to a shocked expiry value ≥ 0: `longBase · e^{−τ(rate·longMult + longAdd)}`.
    public var staticDiscountPositive: Double
    /// Applied to a shocked value < 0: `min(1/D, shortBase / e^{−τ(rate·shortMult + shortAdd)})`.
    public var staticDiscountNegative: Double
    /// Short options not offset by a long at the same strike (Derive's same-strike filter), coins.
    public var nakedShortCoins: Double
}

/// Where each contingency comes from (all ≥ 0, in USD); MM uses the `mm` terms, IM adds the `im` terms.
public struct DerivePM2Contingencies: Sendable, Equatable {
    /// |perp| · spot · MMPerpPercent.
    public var perpMM: Double = 0
    /// |perp| · spot · IMPerpPercent.
    public var perpIM: Double = 0
    /// Naked short coins · spot · MMOptionPercent, summed over expiries.
    public var optionMM: Double = 0
    public var optionIM: Double = 0
    /// Σ collateral value · MMHaircut.
    public var collateralMM: Double = 0
    /// Σ collateral value · IMHaircut.
    public var collateralIM: Double = 0
    /// Oracle add-on (IM only): (1 − confidence) · confMargin · notional for every perp, expiry and collateral
    /// whose lowest confidence is below confThreshold.
    public var oracleIM: Double = 0

    /// Derive's `MMContingency`.
    public var maintenanceUSD: Double { perpMM + optionMM + collateralMM }
    /// Derive's `IMContingency` (charged on top of ``maintenanceUSD``).
    public var initialAdditionalUSD: Double { perpIM + optionIM + collateralIM + oracleIM }
}

/// One scenario's P&L and its parts.
public struct DerivePM2ScenarioResult: Sendable {
    public var scenario: DerivePM2Scenario
    /// The scenario's P&L against the mark-to-market, USD (Derive's `getScenarioPnL`).
    public var pnlUSD: Double
    public var perpPnLUSD: Double
    /// Per expiry (in ``DerivePM2Result/expiries`` order): `(V'·staticDiscount − MtM)·damp`, −|·| in skew scenarios.
    public var expiryPnLUSD: [Double]
    /// Risk-cancelling collateral: `value · (spotShock − 1) · damp`.
    public var collateralPnLUSD: Double
}

/// Derive PM2's margin of one portfolio, with everything that drives it.
///
/// Derive reports margins as surpluses: ``maintenanceMarginUSD`` is what `getMargin(…, false)` returns,
/// `MM = MtM + cash + mmFactor · min(basis contingency, min_s P&L_s) − MM contingencies`, and the account is
/// healthy while it is ≥ 0. ``maintenanceRequirementUSD`` = equity − MM is the same figure as a requirement.
public struct DerivePM2Result: Sendable {
    public var underlying: String
    public var expiries: [DerivePM2ExpiryRisk]
    public var scenarios: [DerivePM2ScenarioResult]
    public var cashUSD: Double
    /// Σ expiry mark-to-market.
    public var optionValueUSD: Double
    /// The perpetual's unsettled cash (its mark value is zero).
    public var perpValueUSD: Double
    /// Σ collateral `amount · price / stablePrice`.
    public var collateralValueUSD: Double
    /// Derive's `totalMtM` = perp value + option value + collateral value (cash excluded).
    public var markToMarketUSD: Double
    /// Σ expiry basis contingencies (≤ 0); the worst loss starts from it.
    public var basisContingencyUSD: Double
    /// `min(basis contingency, min_s P&L_s)` (≤ 0).
    public var worstLossUSD: Double
    /// The scenario that gave ``worstLossUSD``; nil when it is the basis contingency.
    public var worstScenarioIndex: Int?
    public var maintenanceFactor: Double
    /// imFactor plus the peg-loss add-on `(pegLossThreshold − stablePrice) · pegLossFactor` when the stable is below the threshold.
    public var initialFactor: Double
    public var contingencies: DerivePM2Contingencies
    /// Derive's MM (a surplus: ≥ 0 is healthy).
    public var maintenanceMarginUSD: Double
    /// Derive's IM (a surplus: ≥ 0 allows risk-adding trades).
    public var initialMarginUSD: Double

    /// `MtM + cash`: what Derive's `getMarginAndMarkToMarket` returns as the mark-to-market.
    public var equityUSD: Double { markToMarketUSD + cashUSD }
    /// `equity − MM` = `−mmFactor · worst loss + MM contingencies` (≥ 0).
    public var maintenanceRequirementUSD: Double { equityUSD - maintenanceMarginUSD }
    /// `equity − IM`.
    public var initialRequirementUSD: Double { equityUSD - initialMarginUSD }
}

/// Derive PM2 (derivexyz/v2-core `PMRMLib_2.sol` and `PMRM_2.sol`) in Double precision.
///
/// ```
/// per expiry   MtM = Σ q·B76(F, K, σ, D),  F = fixed + variable,  D = e^{−max(r,0)·τ}
/// scenario s   P&L = q_perp·(s−1)·perpPrice·damp
///                  + Σ_expiry (V_s·SD(V_s) − MtM)·damp          (−|·| per expiry in skew scenarios)
///                  + Σ_risk-cancelling value·(s−1)·damp
///              V_s = Σ q·B76(variable·s + fixed, K, σ·shock, D)  (σ ≥ minVolUpShock in vol-up scenarios)
/// worst loss   L = min(Σ basis contingencies, min_s P&L_s)
/// MM = MtM + cash + mmFactor·L − MMcont,   IM = MtM + cash + imFactor'·L − MMcont − IMcont
/// ```
/// Pricing is the engine's ``Black76`` with Derive's limits (`σ√T ≥ 24` prices the call at `F·D` and the put
/// at `K·D`; a call is at most `F·D`, a put at most `K·D`). Derive's 18-decimal fixed point and Hart's
/// normal CDF are not emulated: Double with `erfc` agrees with Derive's golden cases to about 1e-11.
public enum DerivePM2Margin {
    static let secondsPerYear = 31_536_000.0
    static let thirtyDaysSeconds: Int64 = 30 * 86_400
    /// `Black76.MAX_TOTAL_VOL`: at σ√T ≥ 24 the standard call price is taken as 1.
    static let maximumTotalVolatility = 24.0

    /// Computes the margin of one portfolio.
    /// - Throws: ``EngineError/invalidField(path:value:reason:)`` naming the input Derive's contracts would
    ///   revert on (negative price, confidence outside [0, 1], no positive forward, a zero k* …).
    /// - Complexity: O(scenarios × options).
    public static func compute(_ portfolio: DerivePM2Portfolio, parameters: DerivePM2Parameters) throws(EngineError) -> DerivePM2Result {
        try validate(portfolio)
        // Portfolio confidence: spot, then (after collateral is arranged) the perp's.
        let collateralBaseConfidence = portfolio.spotConfidence
        var portfolioConfidence = portfolio.spotConfidence
        if let perp = portfolio.perp { portfolioConfidence = min(portfolioConfidence, perp.confidence) }

        var contingencies = DerivePM2Contingencies()
        let perpPositionCoins = portfolio.perp?.positionCoins ?? 0
        let perpNotionalUSD = Swift.abs(perpPositionCoins) * portfolio.spotUSD
        contingencies.perpMM = perpNotionalUSD * parameters.otherContingency.mmPerpPercent
        contingencies.perpIM = perpNotionalUSD * parameters.otherContingency.imPerpPercent
        contingencies.oracleIM += confidenceContingency(portfolioConfidence, notionalUSD: perpNotionalUSD, parameters)

        var expiries: [DerivePM2ExpiryRisk] = []
        var basisContingency = 0.0
        var optionValue = 0.0
        for expiry in portfolio.expiries {
            let risk = try precompute(expiry, portfolioConfidence: portfolioConfidence, parameters: parameters)
            optionValue += risk.markToMarketUSD
            basisContingency += risk.basisContingencyUSD
            let notionalShortsUSD = risk.nakedShortCoins * portfolio.spotUSD
            contingencies.optionMM += notionalShortsUSD * parameters.otherContingency.mmOptionPercent
            contingencies.optionIM += notionalShortsUSD * parameters.otherContingency.imOptionPercent
            contingencies.oracleIM += confidenceContingency(
                risk.minimumConfidence, notionalUSD: risk.netOptionsCoins * portfolio.spotUSD, parameters)
            expiries.append(risk)
        }

        var collateralValue = 0.0
        var collateralValues: [Double] = []
        for collateral in portfolio.collaterals {
            let value = collateral.amount * collateral.priceUSD / portfolio.stablePriceUSD
            collateralValues.append(value)
            collateralValue += value
            contingencies.collateralMM += value * collateral.haircuts.mmHaircut
            contingencies.collateralIM += value * collateral.haircuts.imHaircut
            contingencies.oracleIM += confidenceContingency(
                min(collateral.confidence, collateralBaseConfidence), notionalUSD: value, parameters)
        }
        let perpValue = portfolio.perp?.unrealisedValueUSD ?? 0
        let markToMarket = perpValue + optionValue + collateralValue

        var scenarioResults: [DerivePM2ScenarioResult] = []
        var worstLoss = basisContingency
        var worstIndex: Int?
        for (index, scenario) in parameters.scenarios.enumerated() {
            let result = try scenarioPnL(
                scenario, portfolio: portfolio, expiries: expiries, collateralValues: collateralValues, parameters: parameters)
            if result.pnlUSD < worstLoss {
                worstLoss = result.pnlUSD
                worstIndex = index
            }
            scenarioResults.append(result)
        }

        let maintenanceFactor = parameters.margin.mmFactor
        var initialFactor = parameters.margin.imFactor
        let other = parameters.otherContingency
        if portfolio.stablePriceUSD < other.pegLossThreshold {
            initialFactor += (other.pegLossThreshold - portfolio.stablePriceUSD) * other.pegLossFactor
        }
        let equity = markToMarket + portfolio.cashUSD
        let maintenance = worstLoss * maintenanceFactor - contingencies.maintenanceUSD + equity
        let initial = worstLoss * initialFactor - contingencies.initialAdditionalUSD - contingencies.maintenanceUSD + equity
        let result = DerivePM2Result(
            underlying: portfolio.underlying, expiries: expiries, scenarios: scenarioResults, cashUSD: portfolio.cashUSD,
            optionValueUSD: optionValue, perpValueUSD: perpValue, collateralValueUSD: collateralValue, markToMarketUSD: markToMarket,
            basisContingencyUSD: basisContingency, worstLossUSD: worstLoss, worstScenarioIndex: worstIndex,
            maintenanceFactor: maintenanceFactor, initialFactor: initialFactor, contingencies: contingencies,
            maintenanceMarginUSD: maintenance, initialMarginUSD: initial)
        guard maintenance.isFinite, initial.isFinite else {
            throw .invalidField(path: portfolio.underlying, value: "", reason: "has a margin outside the Double range (inputs too large)")
        }
        return result
    }

    // MARK: - Instrument level: one expiry

    /// `addPrecomputes` for one expiry: MtM, basis contingency, vol shocks, static discounts, naked shorts.
    static func precompute(
        _ expiry: DerivePM2Portfolio.Expiry, portfolioConfidence: Double, parameters: DerivePM2Parameters
    ) throws(EngineError) -> DerivePM2ExpiryRisk {
        let rate = max(expiry.rate, 0)
        let seconds = max(expiry.secondsToExpiry, 0)
        let years = Double(seconds) / secondsPerYear
        let discount = Double.exp(-rate * years)
        guard discount > 0 else {
            throw .invalidField(path: "\(expiry.source).rate", value: DecimalText.format(rate), reason: "discounts the expiry to zero")
        }
        var confidence = min(expiry.forwardConfidence, expiry.rateConfidence)
        var netOptions = 0.0
        for option in expiry.options {
            confidence = min(confidence, option.volatilityConfidence)
            netOptions += Swift.abs(option.amountCoins)
        }
        confidence = min(confidence, portfolioConfidence)

        var risk = DerivePM2ExpiryRisk(
            expiry: expiry, rate: rate, discountFactor: discount, timeToExpiryYears: years, minimumConfidence: confidence,
            netOptionsCoins: netOptions, markToMarketUSD: 0, basisUpValueUSD: 0, basisDownValueUSD: 0, basisContingencyUSD: 0,
            volShockUp: 1, volShockDown: 1, staticDiscountPositive: 1, staticDiscountNegative: 1, nakedShortCoins: 0)
        risk.markToMarketUSD = try shockedValue(risk, spotShock: 1, volShock: .none, parameters: parameters)

        let basis = parameters.basisContingency
        risk.basisUpValueUSD = try shockedValue(risk, spotShock: basis.scenarioSpotUp, volShock: .none, parameters: parameters)
        risk.basisDownValueUSD = try shockedValue(risk, spotShock: basis.scenarioSpotDown, volShock: .none, parameters: parameters)
        let basisLoss = min(risk.basisUpValueUSD - risk.markToMarketUSD, risk.basisDownValueUSD - risk.markToMarketUSD, 0)
        risk.basisContingencyUSD = basisLoss * (basis.basisContAddFactor + basis.basisContMultFactor * years)

        let vol = parameters.volShock
        let flooredSeconds = max(seconds, vol.dteFloorSeconds)
        guard flooredSeconds > 0 else {
            throw .invalidField(
                path: "\(expiry.source).secondsToExpiry", value: "0",
                reason: "is expired while the DTE floor is 0 (division by zero in Derive)")
        }
        let dteRatio = Double(thirtyDaysSeconds) / Double(flooredSeconds)
        let power = seconds <= thirtyDaysSeconds ? vol.shortTermPower : vol.longTermPower
        let multiplier = Double.pow(dteRatio, power)
        risk.volShockUp = 1 + vol.volRangeUp * multiplier
        risk.volShockDown = max(0, 1 - vol.volRangeDown * multiplier)

        let margin = parameters.margin
        risk.staticDiscountPositive =
            margin.longBaseStaticDiscount * Double.exp(-years * (rate * margin.longRateMultScale + margin.longRateAddScale))
        risk.staticDiscountNegative = min(
            1 / discount,
            margin.shortBaseStaticDiscount / Double.exp(-years * (rate * margin.shortRateMultScale + margin.shortRateAddScale)))
        risk.nakedShortCoins = nakedShorts(expiry.options)
        return risk
    }

    /// Short options not offset by a long of the same strike, in Derive's pairing order
    /// (`PMRMLib_2._addOptionContingency`, calls and puts alike).
    static func nakedShorts(_ options: [DerivePM2Portfolio.Option]) -> Double {
        var seen = [Bool](repeating: false, count: options.count)
        var naked = 0.0
        for i in options.indices where !seen[i] {
            let first = options[i].amountCoins
            var found = false
            for j in (i + 1)..<options.count where options[i].strikeUSD == options[j].strikeUSD {
                seen[j] = true
                let second = options[j].amountCoins
                if first * second < 0 {
                    naked += first < 0 ? Swift.abs(first) - min(-first, second) : Swift.abs(second) - min(first, -second)
                } else if first < 0 {
                    naked += Swift.abs(first) + Swift.abs(second)
                }
                found = true
            }
            if !found && first < 0 { naked += Swift.abs(first) }
        }
        return naked
    }

    /// `_getExpiryShockedMTM`: the expiry's value with the variable forward × `spotShock` and every volatility
    /// × the expiry's up or down multiplier (floored at `minVolUpShock` when up).
    static func shockedValue(
        _ risk: DerivePM2ExpiryRisk, spotShock: Double, volShock: DerivePM2VolShock, parameters: DerivePM2Parameters
    ) throws(EngineError) -> Double {
        var multiplier = 1.0
        var minimumVolatility = 0.0
        switch volShock {
        case .up:
            multiplier = risk.volShockUp
            minimumVolatility = parameters.volShock.minVolUpShock
        case .down:
            multiplier = risk.volShockDown
        case .none, .linear, .abs:
            break
        }
        let forward = risk.expiry.forwardVariableUSD * spotShock + risk.expiry.forwardFixedUSD
        var total = 0.0
        for option in risk.expiry.options {
            let volatility = max(minimumVolatility, option.volatility * multiplier)
            total +=
                optionValue(
                    option.kind, forwardUSD: forward, strikeUSD: option.strikeUSD, volatility: volatility, years: risk.timeToExpiryYears,
                    discountFactor: risk.discountFactor) * option.amountCoins
        }
        return total
    }

    /// `_getExpirySkewedShockedMTM`: every volatility × `1 + clamp(k·cap/k*, ±cap)` at the unshocked forward,
    /// `k = ln(K/F)` (|k| for ABS), `cap = cBase·√τ + baseCap`, multiplier floored at 0.
    static func skewedValue(_ risk: DerivePM2ExpiryRisk, linear: Bool, parameters: DerivePM2Parameters) throws(EngineError) -> Double {
        let skew = parameters.skewShock
        let forward = risk.expiry.forwardUSD
        let sqrtTau = risk.timeToExpiryYears.squareRoot()
        let cap = linear ? skew.linearCBase * sqrtTau + skew.linearBaseCap : skew.absCBase * sqrtTau + skew.absBaseCap
        let kStar = max(skew.minKStar, sqrtTau * skew.widthScale * (skew.volParamStatic + sqrtTau * skew.volParamScale))
        guard kStar != 0 else {
            throw .invalidField(
                path: "\(risk.expiry.source)", value: "", reason: "has k* = 0 in the skew scenario (division by zero in Derive)")
        }
        var total = 0.0
        for option in risk.expiry.options {
            let moneyness = option.strikeUSD / forward
            guard moneyness >= 1e-18 else {
                throw .invalidField(
                    path: "\(option.source).strike", value: DecimalText.format(option.strikeUSD),
                    reason: "has no log-moneyness (Derive reverts on ln(0))")
            }
            var k = Double.log(moneyness)
            if !linear { k = Swift.abs(k) }
            let shift = k >= 0 ? min(cap, k * cap / kStar) : max(-cap, k * cap / kStar)
            let multiplier = max(1 + shift, 0)
            total +=
                optionValue(
                    option.kind, forwardUSD: forward, strikeUSD: option.strikeUSD, volatility: option.volatility * multiplier,
                    years: risk.timeToExpiryYears, discountFactor: risk.discountFactor) * option.amountCoins
        }
        return total
    }

    /// Black-76 value per coin with Derive's limits (lyra-utils `Black76.prices`): a zero strike is worth `F·D`
    /// (call) and 0 (put); a zero forward 0 (call) and `K·D` (put); `σ√T ≥ 24` gives `F·D` and `K·D`; a call
    /// is at most `F·D` and a put at most `K·D`.
    public static func optionValue(
        _ kind: OptionKind, forwardUSD: Double, strikeUSD: Double, volatility: Double, years: Double, discountFactor: Double
    ) -> Double {
        let forwardDiscounted = forwardUSD * discountFactor
        let strikeDiscounted = strikeUSD * discountFactor
        if strikeUSD == 0 { return kind == .call ? forwardDiscounted : 0 }
        if forwardUSD == 0 { return kind == .call ? 0 : strikeDiscounted }
        if volatility * years.squareRoot() >= maximumTotalVolatility { return kind == .call ? forwardDiscounted : strikeDiscounted }
        let value = Black76.price(
            kind, forward: forwardUSD, strike: strikeUSD, volatility: volatility, timeToExpiryYears: years, discountFactor: discountFactor)
        return min(value, kind == .call ? forwardDiscounted : strikeDiscounted)
    }

    // MARK: - Account level: one scenario

    /// `getScenarioPnL`: the scenario's P&L against the mark-to-market.
    static func scenarioPnL(
        _ scenario: DerivePM2Scenario, portfolio: DerivePM2Portfolio, expiries: [DerivePM2ExpiryRisk], collateralValues: [Double],
        parameters: DerivePM2Parameters
    ) throws(EngineError) -> DerivePM2ScenarioResult {
        let damp = scenario.dampeningFactor
        var perpPnL = 0.0
        if let perp = portfolio.perp, perp.positionCoins != 0 {
            perpPnL = perp.positionCoins * ((scenario.spotShock - 1) * perp.priceUSD) * damp
        }
        var expiryPnLs: [Double] = []
        var total = perpPnL
        for risk in expiries {
            var shocked: Double
            switch scenario.volShock {
            case .linear, .abs:
                shocked = try skewedValue(risk, linear: scenario.volShock == .linear, parameters: parameters)
            case .none where scenario.spotShock == 1:
                shocked = risk.markToMarketUSD
            case .none, .up, .down:
                shocked = try shockedValue(risk, spotShock: scenario.spotShock, volShock: scenario.volShock, parameters: parameters)
            }
            shocked *= shocked >= 0 ? risk.staticDiscountPositive : risk.staticDiscountNegative
            var pnl = (shocked - risk.markToMarketUSD) * damp
            if scenario.volShock.isSkew && pnl > 0 { pnl = -pnl }
            expiryPnLs.append(pnl)
            total += pnl
        }
        var collateralPnL = 0.0
        for (collateral, value) in zip(portfolio.collaterals, collateralValues) where collateral.haircuts.isRiskCancelling {
            collateralPnL += value * (scenario.spotShock - 1) * damp
        }
        total += collateralPnL
        return DerivePM2ScenarioResult(
            scenario: scenario, pnlUSD: total, perpPnLUSD: perpPnL, expiryPnLUSD: expiryPnLs, collateralPnLUSD: collateralPnL)
    }

    /// `_getConfidenceContingency`: `(1 − confidence) · confMargin · notional` below the threshold, else 0.
    static func confidenceContingency(_ confidence: Double, notionalUSD: Double, _ parameters: DerivePM2Parameters) -> Double {
        let other = parameters.otherContingency
        return confidence < other.confThreshold ? (1 - confidence) * other.confMargin * notionalUSD : 0
    }

    // MARK: - Validation

    /// What Derive's types and reverts rule out, checked up front so that no NaN or infinity can appear.
    static func validate(_ portfolio: DerivePM2Portfolio) throws(EngineError) {
        func finite(
            _ value: Double, _ path: String, nonNegative: Bool = false, positive: Bool = false, unit: Bool = false
        ) throws(EngineError) {
            guard value.isFinite, Swift.abs(value) <= 1e15 else {
                throw .invalidField(
                    path: path, value: DecimalText.formatLenient(value), reason: "must be a finite number of magnitude at most 1e15")
            }
            if positive, value <= 0 { throw .invalidField(path: path, value: DecimalText.format(value), reason: "must be greater than 0") }
            if nonNegative, value < 0 { throw .invalidField(path: path, value: DecimalText.format(value), reason: "must not be negative") }
            if unit, !(0...1).contains(value) {
                throw .invalidField(path: path, value: DecimalText.format(value), reason: "must be a confidence between 0 and 1")
            }
        }
        let name = portfolio.underlying
        try finite(portfolio.spotUSD, "\(name).spot", nonNegative: true)
        try finite(portfolio.spotConfidence, "\(name).spotConfidence", unit: true)
        try finite(portfolio.stablePriceUSD, "\(name).stablePrice", positive: true)
        try finite(portfolio.cashUSD, "\(name).cash")
        if let perp = portfolio.perp {
            try finite(perp.positionCoins, "\(perp.source).position")
            try finite(perp.priceUSD, "\(perp.source).price", nonNegative: true)
            try finite(perp.confidence, "\(perp.source).confidence", unit: true)
            try finite(perp.unrealisedValueUSD, "\(perp.source).unrealisedValue")
        }
        for expiry in portfolio.expiries {
            guard expiry.secondsToExpiry >= 0 else {
                throw .invalidField(
                    path: "\(expiry.source).secondsToExpiry", value: String(expiry.secondsToExpiry), reason: "must not be negative")
            }
            try finite(expiry.forwardFixedUSD, "\(expiry.source).forwardFixed", nonNegative: true)
            try finite(expiry.forwardVariableUSD, "\(expiry.source).forwardVariable", nonNegative: true)
            guard expiry.forwardUSD > 0 else {
                throw .invalidField(
                    path: "\(expiry.source).forward", value: DecimalText.format(expiry.forwardUSD), reason: "must be greater than 0")
            }
            guard expiry.rate.isFinite, Swift.abs(expiry.rate) <= 1000 else {
                throw .invalidField(
                    path: "\(expiry.source).rate", value: DecimalText.formatLenient(expiry.rate),
                    reason: "must be a finite rate of magnitude at most 1000")
            }
            try finite(expiry.forwardConfidence, "\(expiry.source).forwardConfidence", unit: true)
            try finite(expiry.rateConfidence, "\(expiry.source).rateConfidence", unit: true)
            for option in expiry.options {
                try finite(option.strikeUSD, "\(option.source).strike", nonNegative: true)
                try finite(option.amountCoins, "\(option.source).amount")
                try finite(option.volatility, "\(option.source).volatility", nonNegative: true)
                try finite(option.volatilityConfidence, "\(option.source).volatilityConfidence", unit: true)
            }
        }
        for collateral in portfolio.collaterals {
            try finite(collateral.amount, "\(collateral.source).amount", nonNegative: true)
            try finite(collateral.priceUSD, "\(collateral.source).price", nonNegative: true)
            try finite(collateral.confidence, "\(collateral.source).confidence", unit: true)
        }
    }
}
