/// The steps of portfolio-margin liquidation, in the order they are tried (docs/methodology/04-liquidation.md).
public enum LiquidationStep: String, Sendable, CaseIterable {
    case cancelOrders = "CANCEL"
    case ddh1 = "DDH1"
    case ddh2 = "DDH2"
    case basis = "BASIS"
    case general = "GENERAL"
    case collateral = "COLLATERAL"
    case deficit = "DEFICIT"
}

/// One logged liquidation action (docs/methodology/04-liquidation.md, "Planner, executor, log").
public struct LiquidationAction: Sendable {
    public enum Status: String, Sendable {
        case executed
        /// Considered and not taken, because it would not raise the margin ratio (or could not be sized).
        case skipped
    }

    public var step: LiquidationStep
    public var status: Status
    public var riskUnit: String
    /// The trades of the action (two for a pair step, none for a cancel, deficit or skipped action).
    public var fills: [TradeFill]
    /// The instrument(s) concerned, for skipped actions too.
    public var instrumentIDs: [String]
    /// Margin ratio and total MMR before and after (after = before for a skipped action). A nil ratio
    /// means nothing is required.
    public var ratioBefore: Double?
    public var ratioAfter: Double?
    public var mmrBeforeUSD: Double
    public var mmrAfterUSD: Double
    public var reason: String
    /// Cash changes of the account by currency (trade P&L, premium, fees, collateral sales, deficit cover).
    public var cashChanges: [String: Double]
    /// Transfers to (+) or from (−) the insurance fund by currency (fees, penalties, deficit cover).
    public var insuranceFundChanges: [String: Double]
}

/// A whole liquidation plan: what the account looked like, every action in order, and the result.
public struct LiquidationPlan: Sendable {
    /// Whether the account was at or below the trigger.
    public var triggered: Bool
    /// One sentence: why the account is safe, or how the plan ended.
    public var summary: String
    public var before: PortfolioMarginResult
    public var after: PortfolioMarginResult
    public var actions: [LiquidationAction]
    public var initialPortfolio: Portfolio
    public var finalPortfolio: Portfolio
    /// Net insurance-fund transfers of the plan by currency.
    public var insuranceFundChanges: [String: Double]

    public var executedActions: [LiquidationAction] { actions.filter { $0.status == .executed } }
}
