import GRDB

// The closed value sets of orders and fills, as OKX spells them on the wire and as the store writes them.

/// An order's or a fill's side.
public enum OrderSide: String, Codable, Sendable, CaseIterable, DatabaseValueConvertible {
    case buy, sell

    public var isBuy: Bool { self == .buy }
}

/// The order types the sandbox accepts.
public enum OrderType: String, Codable, Sendable, CaseIterable, DatabaseValueConvertible {
    case market, limit, ioc, fok
    case postOnly = "post_only"
    case optimalLimitIOC = "optimal_limit_ioc"

    /// Fills at the book with no limit price (`market`, `optimal_limit_ioc`).
    public var hasNoLimitPrice: Bool { self == .market || self == .optimalLimitIOC }
    /// What is left after crossing rests on the book (`limit`, `post_only`).
    public var rests: Bool { self == .limit || self == .postOnly }
}

/// OKX's trade mode (`tdMode`); the sandbox margins in cross mode only, and accepts `cash` for spot.
public enum TradeMode: String, Codable, Sendable, CaseIterable, DatabaseValueConvertible {
    case cross, cash, isolated
}

/// An order's state.
public enum OrderState: String, Codable, Sendable, CaseIterable, DatabaseValueConvertible {
    case live, filled, canceled
    case partiallyFilled = "partially_filled"

    /// On the book (`live`, `partially_filled`).
    public var isOpen: Bool { self == .live || self == .partiallyFilled }
}

/// Why an order or a fill exists: the account's own order, or the liquidation of the account.
public enum OrderCategory: String, Codable, Sendable, CaseIterable, DatabaseValueConvertible {
    case normal
    case partialLiquidation = "partial_liquidation"
    case fullLiquidation = "full_liquidation"
}

/// A bill's type, with OKX's numbers (`GET /api/v5/account/bills`), plus one of ours.
public enum BillType: String, Codable, Sendable, CaseIterable, DatabaseValueConvertible {
    /// A sandbox deposit (OKX: transfer).
    case deposit = "1"
    case trade = "2"
    /// Settlement of an expired future or option (OKX: delivery).
    case delivery = "3"
    /// A liquidation trade or collateral sale.
    case liquidation = "5"
    case interest = "7"
    case funding = "8"
    /// Ours: the insurance fund covers a negative balance left after a liquidation.
    case deficitCover = "102"
}

/// The sub-types the sandbox writes, with OKX's numbers where OKX has one (they are meaningful per type:
/// OKX reuses numbers across types, so this is a table of names, not a closed enum).
public enum BillSubType {
    public static let buy = "1"
    public static let sell = "2"
    public static let deposit = "1"
    public static let deficitCover = "1"
    /// Interest deduction on a loan.
    public static let interest = "9"
    /// Delivery of an expired contract.
    public static let delivery = "13"
    /// Funding fee paid (OKX 173) and received (174).
    public static let fundingExpense = "173"
    public static let fundingIncome = "174"
    /// Ours: collateral sold in a liquidation.
    public static let collateralSale = "1001"
}
