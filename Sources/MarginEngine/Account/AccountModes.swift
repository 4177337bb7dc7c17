/// OKX's account levels that the engine implements (docs/methodology/03-account.md §5).
public enum AccountLevel: String, Sendable, Hashable, CaseIterable {
    /// Multi-currency margin, "classic".
    case classic = "3"
    /// Portfolio margin.
    case portfolioMargin = "4"

    public var name: String { self == .classic ? "classic margin" : "portfolio margin" }
}

/// The headline figures of an account in one mode.
public struct ModeFigures: Sendable, Equatable {
    public var level: AccountLevel
    public var adjustedEquityUSD: Double
    public var totalMmrUSD: Double
    public var totalImrUSD: Double
    /// `adjEq / totalMmr`; nil when nothing is required.
    public var marginRatio: Double?
    /// `adjEq − totalImr` (docs/methodology/03-account.md §3).
    public var availableEquityUSD: Double
    /// Σ equity in USD, undiscounted: the net equity of PM eligibility.
    public var netEquityUSD: Double

    /// The figures of `portfolio` under `level`.
    public static func compute(
        _ portfolio: Portfolio, level: AccountLevel, market: MarketSnapshot, parameters: MarginParameters
    ) throws(EngineError) -> ModeFigures {
        switch level {
        case .portfolioMargin:
            let result = try PortfolioMargin.compute(portfolio, market: market, parameters: parameters)
            return ModeFigures(
                level: level, adjustedEquityUSD: result.adjustedEquityUSD, totalMmrUSD: result.totalMmrUSD,
                totalImrUSD: result.totalImrUSD, marginRatio: result.marginRatio,
                availableEquityUSD: result.adjustedEquityUSD - result.totalImrUSD, netEquityUSD: result.equityUSD)
        case .classic:
            let result = try ClassicMargin.compute(portfolio, market: market, parameters: parameters)
            return ModeFigures(
                level: level, adjustedEquityUSD: result.adjustedEquityUSD, totalMmrUSD: result.totalMmrUSD,
                totalImrUSD: result.totalImrUSD, marginRatio: result.marginRatio,
                availableEquityUSD: result.adjustedEquityUSD - result.totalImrUSD, netEquityUSD: result.equityUSD)
        }
    }
}

/// A position that the target mode's tiers would not accept as it stands.
public struct FailingPosition: Sendable, Equatable {
    public var instrumentID: String
    public var reason: String
}

/// The answer of a mode switch pre-check (docs/methodology/03-account.md §5, OKX `set-account-switch-precheck`):
/// nothing changes.
public struct SwitchPrecheck: Sendable, Equatable {
    public var from: AccountLevel
    public var to: AccountLevel
    /// True when the switch would be accepted.
    public var allowed: Bool
    /// Every reason the switch is refused, each a full sentence with the figures.
    public var reasons: [String]
    public var before: ModeFigures
    public var after: ModeFigures
    public var failingPositions: [FailingPosition]
}

/// Eligibility for portfolio margin and switching between modes, as pure functions.
public enum AccountModes {
    /// Whether an account may enter portfolio margin, with every failing reason:
    /// net equity ≥ the minimum (10,000 USD), the risk acknowledgement recorded, and the PM initial margin
    /// covered (`adjEq ≥ totalImr` under PM).
    public static func portfolioMarginEligibility(
        _ portfolio: Portfolio, acknowledged: Bool, market: MarketSnapshot, parameters: MarginParameters
    ) throws(EngineError) -> (allowed: Bool, reasons: [String], figures: ModeFigures) {
        let figures = try ModeFigures.compute(portfolio, level: .portfolioMargin, market: market, parameters: parameters)
        var reasons: [String] = []
        if figures.netEquityUSD < parameters.pmMinimumNetEquityUSD {
            reasons.append(
                "net equity \(MoneyText.usd(figures.netEquityUSD)) USD is below the \(MoneyText.usd(parameters.pmMinimumNetEquityUSD)) USD minimum for portfolio margin"
            )
        }
        if !acknowledged {
            reasons.append("the portfolio-margin risk acknowledgement has not been recorded")
        }
        if figures.adjustedEquityUSD < figures.totalImrUSD {
            reasons.append(
                "adjusted equity \(MoneyText.usd(figures.adjustedEquityUSD)) USD would not cover the total IMR \(MoneyText.usd(figures.totalImrUSD)) USD under portfolio margin"
            )
        }
        return (reasons.isEmpty, reasons, figures)
    }

    /// The pre-check of a switch from `from` to `to`.
    ///
    /// Blocking reasons: for portfolio margin, every eligibility failure; for classic, `adjEq < totalImr`
    /// under classic rules; in both directions, each entry of `blockingOrders` (open orders or settings the
    /// target mode does not support, described by the caller). `failingPositions` lists perpetual and future
    /// positions whose leverage exceeds the classic tier maximum for their notional (they would be reduced
    /// to it); portfolio margin has no position tiers.
    public static func precheck(
        _ portfolio: Portfolio, from: AccountLevel, to: AccountLevel, acknowledged: Bool, blockingOrders: [String] = [],
        market: MarketSnapshot, parameters: MarginParameters
    ) throws(EngineError) -> SwitchPrecheck {
        let before = try ModeFigures.compute(portfolio, level: from, market: market, parameters: parameters)
        var reasons: [String] = []
        let after: ModeFigures
        var failing: [FailingPosition] = []
        if from == to {
            reasons.append("the account is already in \(to.name)")
            after = before
        } else if to == .portfolioMargin {
            let eligibility = try portfolioMarginEligibility(portfolio, acknowledged: acknowledged, market: market, parameters: parameters)
            reasons += eligibility.reasons
            after = eligibility.figures
        } else {
            after = try ModeFigures.compute(portfolio, level: .classic, market: market, parameters: parameters)
            if after.adjustedEquityUSD < after.totalImrUSD {
                reasons.append(
                    "adjusted equity \(MoneyText.usd(after.adjustedEquityUSD)) USD would not cover the total IMR \(MoneyText.usd(after.totalImrUSD)) USD under classic margin"
                )
            }
            let classic = try ClassicMargin.compute(portfolio, market: market, parameters: parameters)
            for position in classic.positions where position.leverageCapped {
                let requested = position.position.leverage ?? parameters.classicDefaultLeverage
                failing.append(
                    FailingPosition(
                        instrumentID: position.position.instrument.id.rawValue,
                        reason:
                            "leverage \(DecimalText.format(requested))x exceeds the \(DecimalText.format(position.maximumLeverage ?? 0))x maximum of its \(MoneyText.usd(position.valuation.notionalUSD)) USD notional tier"
                    ))
            }
        }
        reasons += blockingOrders
        return SwitchPrecheck(
            from: from, to: to, allowed: reasons.isEmpty, reasons: reasons, before: before, after: after, failingPositions: failing)
    }
}

/// An account's mode and holdings, switched only through ``switched(to:acknowledged:market:parameters:)``.
public struct AccountModeState: Sendable {
    public private(set) var level: AccountLevel
    public private(set) var portfolio: Portfolio
    public private(set) var acknowledged: Bool

    public init(level: AccountLevel, portfolio: Portfolio, acknowledged: Bool = false) {
        self.level = level
        self.portfolio = portfolio
        self.acknowledged = acknowledged
    }

    /// Records the PM risk acknowledgement.
    public func acknowledgingRisks() -> AccountModeState {
        AccountModeState(level: level, portfolio: portfolio, acknowledged: true)
    }

    /// The account in `target` mode, or the pre-check that refused the switch. Switching is free: holdings
    /// do not change, only the rules that margin them.
    public func switched(
        to target: AccountLevel, market: MarketSnapshot, parameters: MarginParameters
    ) throws(EngineError) -> Result<AccountModeState, SwitchRefusal> {
        let check = try AccountModes.precheck(
            portfolio, from: level, to: target, acknowledged: acknowledged, market: market, parameters: parameters)
        guard check.allowed else { return .failure(SwitchRefusal(precheck: check)) }
        return .success(AccountModeState(level: target, portfolio: portfolio, acknowledged: acknowledged))
    }
}

/// A refused mode switch, with the pre-check that explains it (OKX error 51070 for portfolio margin).
public struct SwitchRefusal: Error, Sendable, Equatable {
    public var precheck: SwitchPrecheck
}
