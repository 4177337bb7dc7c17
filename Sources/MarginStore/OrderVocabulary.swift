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
