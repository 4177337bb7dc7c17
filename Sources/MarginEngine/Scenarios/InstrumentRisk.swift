import RealModule

/// The stablecoin leg a cash delta belongs to, for MR9 (docs/methodology/02-margin.md §11).
public enum SettlementLeg: Int, Sendable, CaseIterable {
    /// USDT-margined linear contracts.
    case usdt = 0
    /// USDC-margined linear contracts.
    case usdc = 1
    /// Inverse contracts, options and spot in use.
    case usd = 2
}

/// Greeks of one contract in the three conventions of the Position Builder.
public struct ContractGreeks: Sendable, Equatable {
    /// Black–Scholes: delta in coins, gamma in coins per USD, vega in USD per vol point, theta in USD per day.
    public var deltaBS: Double
    public var gammaBS: Double
    public var vegaBS: Double
    public var thetaBS: Double
    /// Price-adjusted (coin-denominated): option delta minus the coin premium; gamma as BS; vega and theta
    /// in coins (USD figures divided by the index). Non-options as BS.
    public var deltaPA: Double
    public var gammaPA: Double
    public var vegaPA: Double
    public var thetaPA: Double
    /// Cash: delta in USD (docs/methodology/01-instruments-market.md §1.3), gamma in USD of delta per 1 % move
    /// (`Γ·S²/100`), vega in USD per vol point, theta in USD per day.
    public var deltaCash: Double
    public var gammaCash: Double
    public var vegaCash: Double
    public var thetaCash: Double

    public static let zero = ContractGreeks(
        deltaBS: 0, gammaBS: 0, vegaBS: 0, thetaBS: 0, deltaPA: 0, gammaPA: 0, vegaPA: 0, thetaPA: 0, deltaCash: 0,
        gammaCash: 0, vegaCash: 0, thetaCash: 0)
}

/// One instrument priced once under every scenario of its tier — the per-contract "scenario vector".
///
/// Every figure is per contract (per coin for spot in use); a position's figure is `size × figure`, which
/// keeps the account-level work a sparse dot product (docs/methodology/02-margin.md, docs/conventions.md §11).
///
/// Immutable, and a class so that the many places holding one (tables, units, position results) share
/// it instead of copying some 300 bytes and a dozen references each time.
public final class InstrumentRisk: Sendable {
    /// The instrument's market (nil for spot in use).
    public let market: InstrumentMarket?
    /// P&L in USD per contract under each scenario of ``ScenarioLayout``.
    public let scenarioPnLUSD: [Double]
    /// Coins of delta per contract, for spot in use (`ctVal`, `ctVal/F`, `ctVal·ctMult·Δ`).
    public let coinDelta: Double
    /// Cash delta in USD per contract, for MR9.
    public let cashDeltaUSD: Double
    public let leg: SettlementLeg
    /// Unscaled MR7 charge per contract in USD, before the long-option cap.
    public let minimumChargeUSD: Double
    /// The option's value in USD per contract (markPx × index × coins), the cap of a long option's MR7.
    public let optionValueUSD: Double
    /// Option expiry (nil otherwise) and its cash vega × MR3 shock in USD per contract.
    public let optionExpiry: UnixMillis?
    public let vegaShockUSD: Double
    /// Gross notional in USD per contract (docs/methodology/03-account.md §3).
    public let notionalUSD: Double
    public let greeks: ContractGreeks

    /// Prices `market`'s instrument under every scenario of `parameters` for its coin's tier.
    ///
    /// Scenario moves follow docs/methodology/01-instruments-market.md §1.5: an index moves to `S(1 + x)`, every mark
    /// or forward by `x × S_quote` (basis held), options are revalued with Black-76 at the shocked forward and
    /// volatility. A move that would take a price to zero or below (only possible near −100 % with backwardation) moves
    /// that leg proportionally instead, `F(1 + x)`.
    /// - Complexity: 32 Black-76 evaluations for an option, O(1) otherwise.
    public init(_ market: InstrumentMarket, parameters: MarginParameters) {
        let instrument = market.instrument
        let tierParameters = parameters.derivativeParameters(for: instrument.underlying)
        let layout = ScenarioLayout(tierParameters)
        let indexUSD = market.indexUSD
        var pnl = [Double](repeating: 0, count: ScenarioLayout.count)
        self.market = market

        func shiftedPrice(_ price: Double, move: Double, quoteIndex: Double) -> Double {
            let shifted = price + move * quoteIndex
            return shifted > 0 ? shifted : price * (1 + move)
        }

        switch instrument.kind {
        case .spot:
            // Spot holdings are balances, not positions; their risk enters as spot in use.
            preconditionFailure("spot instrument \(instrument.id) cannot be a margined position")
        case .perpetual, .future:
            let markPrice = market.markPrice
            let contractValue = instrument.contractValue
            let basisRate =
                instrument.kind == .future
                ? max(tierParameters.perpBasis, tierParameters.annualBasis * min(market.timeToExpiryYears, parameters.maximumTenorYears))
                : tierParameters.perpBasis
            let linear = instrument.margining == .linear
            func legPnL(newPrice: Double, newIndexUSD: Double) -> Double {
                linear
                    ? contractValue * (newPrice - markPrice) * market.quoteUSD
                    : contractValue * (1 / markPrice - 1 / newPrice) * newIndexUSD
            }
            for state in VolatilityState.allCases {
                for (moveIndex, move) in layout.mr1Moves.enumerated() {
                    pnl[ScenarioLayout.mr1Index(move: moveIndex, state: state)] = legPnL(
                        newPrice: shiftedPrice(markPrice, move: move, quoteIndex: market.quoteIndex), newIndexUSD: indexUSD * (1 + move))
                }
                for (moveIndex, move) in layout.mr6Moves.enumerated() {
                    pnl[ScenarioLayout.mr6Index(move: moveIndex, state: state)] = legPnL(
                        newPrice: shiftedPrice(markPrice, move: move, quoteIndex: market.quoteIndex), newIndexUSD: indexUSD * (1 + move))
                }
            }
            pnl[ScenarioLayout.mr4Up] = legPnL(newPrice: markPrice * (1 + basisRate), newIndexUSD: indexUSD)
            pnl[ScenarioLayout.mr4Down] = legPnL(newPrice: markPrice * (1 - basisRate), newIndexUSD: indexUSD)
            scenarioPnLUSD = pnl
            let cashDelta = linear ? contractValue * markPrice * market.quoteUSD : contractValue
            coinDelta = linear ? contractValue : contractValue / markPrice
            cashDeltaUSD = cashDelta
            leg = linear ? (instrument.quoteCurrency == "USDC" ? .usdc : .usdt) : .usd
            minimumChargeUSD = tierParameters.mr7RateLinear * abs(cashDelta)
            optionValueUSD = 0
            optionExpiry = nil
            vegaShockUSD = 0
            notionalUSD = market.notionalUSDPerContract
            greeks = ContractGreeks(
                deltaBS: coinDelta, gammaBS: 0, vegaBS: 0, thetaBS: 0, deltaPA: coinDelta, gammaPA: 0, vegaPA: 0, thetaPA: 0,
                deltaCash: cashDelta, gammaCash: 0, vegaCash: 0, thetaCash: 0)
        case .option:
            guard let option = market.option, let strike = instrument.id.strikeUSD, let kind = instrument.id.optionKind else {
                preconditionFailure("option \(instrument.id) resolved without option market data")
            }
            let coins = instrument.coinsPerContract
            let forward = option.forwardUSD
            let volatility = option.volatility
            let years = option.timeToExpiryYears
            let discount = option.discountFactor
            func value(
                forward: Double = forward, volatility: Double = volatility, years: Double = years, discount: Double = discount
            ) -> Double {
                Black76.price(
                    kind, forward: forward, strike: strike, volatility: volatility, timeToExpiryYears: years, discountFactor: discount)
            }
            let base = Black76(
                kind, forward: forward, strike: strike, volatility: volatility, timeToExpiryYears: years, discountFactor: discount)
            let baseValue = base.price
            let stateVolatility = parameters.stateVolatilities(volatility, timeToExpiryYears: years)
            for state in VolatilityState.allCases {
                let shockedVolatility = stateVolatility[state.rawValue]
                for (moveIndex, move) in layout.mr1Moves.enumerated() {
                    let shiftedForward = shiftedPrice(forward, move: move, quoteIndex: indexUSD)
                    pnl[ScenarioLayout.mr1Index(move: moveIndex, state: state)] =
                        coins * (value(forward: shiftedForward, volatility: shockedVolatility) - baseValue)
                }
                for (moveIndex, move) in layout.mr6Moves.enumerated() {
                    let shiftedForward = shiftedPrice(forward, move: move, quoteIndex: indexUSD)
                    pnl[ScenarioLayout.mr6Index(move: moveIndex, state: state)] =
                        coins * (value(forward: shiftedForward, volatility: shockedVolatility) - baseValue)
                }
            }
            let basisRate = max(tierParameters.perpBasis, tierParameters.annualBasis * min(years, parameters.maximumTenorYears))
            pnl[ScenarioLayout.mr4Up] = coins * (value(forward: forward * (1 + basisRate)) - baseValue)
            pnl[ScenarioLayout.mr4Down] = coins * (value(forward: forward * (1 - basisRate)) - baseValue)
            let horizonYears = parameters.mr2HorizonDays / 365
            let decayed: Double
            if years > horizonYears {
                decayed = value(years: years - horizonYears, discount: Double.exp(-option.usdRate * (years - horizonYears)))
            } else {
                decayed = max(kind == .call ? forward - strike : strike - forward, 0)
            }
            pnl[ScenarioLayout.mr2] = coins * (decayed - baseValue)
            pnl[ScenarioLayout.mr5Up] =
                coins * (value(discount: Double.exp(-(option.usdRate + parameters.mr5RateShift) * years)) - baseValue)
            pnl[ScenarioLayout.mr5Down] =
                coins * (value(discount: Double.exp(-(option.usdRate - parameters.mr5RateShift) * years)) - baseValue)
            scenarioPnLUSD = pnl
            coinDelta = coins * base.delta
            cashDeltaUSD = coinDelta * indexUSD
            leg = .usd
            minimumChargeUSD = tierParameters.mr7RateOption * coins * indexUSD
            optionValueUSD = coins * market.markPrice * indexUSD
            optionExpiry = instrument.expiry
            vegaShockUSD = coins * base.vegaPerVolPoint * parameters.volatilityShock(days: years * 365).upPoints
            notionalUSD = market.notionalUSDPerContract
            let vegaUSD = coins * base.vegaPerVolPoint
            let thetaUSD = coins * base.thetaPerDay
            greeks = ContractGreeks(
                deltaBS: coinDelta, gammaBS: coins * base.gamma, vegaBS: vegaUSD, thetaBS: thetaUSD,
                deltaPA: coins * (base.delta - market.markPrice), gammaPA: coins * base.gamma,
                vegaPA: vegaUSD / indexUSD, thetaPA: thetaUSD / indexUSD,
                deltaCash: cashDeltaUSD, gammaCash: coins * base.gamma * indexUSD * indexUSD / 100,
                vegaCash: vegaUSD, thetaCash: thetaUSD)
        }
    }

    /// The scenario vector of one coin of spot in use: it moves with the index, has zero basis unless
    /// `spotBasis` is set, and counts as a USD leg in MR9 (docs/methodology/02-margin.md §2).
    public init(spotIndexUSD indexUSD: Double, parameters: TierParameters) {
        let layout = ScenarioLayout(parameters)
        var pnl = [Double](repeating: 0, count: ScenarioLayout.count)
        for state in VolatilityState.allCases {
            for (moveIndex, move) in layout.mr1Moves.enumerated() {
                pnl[ScenarioLayout.mr1Index(move: moveIndex, state: state)] = move * indexUSD
            }
            for (moveIndex, move) in layout.mr6Moves.enumerated() {
                pnl[ScenarioLayout.mr6Index(move: moveIndex, state: state)] = move * indexUSD
            }
        }
        pnl[ScenarioLayout.mr4Up] = parameters.spotBasis * indexUSD
        pnl[ScenarioLayout.mr4Down] = -parameters.spotBasis * indexUSD
        market = nil
        scenarioPnLUSD = pnl
        coinDelta = 1
        cashDeltaUSD = indexUSD
        leg = .usd
        minimumChargeUSD = 0
        optionValueUSD = 0
        optionExpiry = nil
        vegaShockUSD = 0
        notionalUSD = indexUSD
        greeks = ContractGreeks(
            deltaBS: 1, gammaBS: 0, vegaBS: 0, thetaBS: 0, deltaPA: 1, gammaPA: 0, vegaPA: 0, thetaPA: 0,
            deltaCash: indexUSD, gammaCash: 0, vegaCash: 0, thetaCash: 0)
    }
}
