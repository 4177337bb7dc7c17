/// One Derive PM2 portfolio: a subaccount of one currency's manager, arranged as `PMRM_2._arrangePortfolio`
/// arranges it (options grouped by expiry, a perpetual, cash and collateral).
///
/// Money is in Derive's cash unit (USDC at par, which Derive's option and perp marks also use); written
/// `…USD` here. Amounts of coins are signed (long > 0). Every element carries `source`, the path of the
/// input it came from, for error messages and reports.
public struct DerivePM2Portfolio: Sendable, Equatable {
    /// One option holding (`IPMRM_2.StrikeHolding`).
    public struct Option: Sendable, Equatable {
        public var strikeUSD: Double
        public var kind: OptionKind
        /// Signed size in coins of underlying.
        public var amountCoins: Double
        /// The vol feed's volatility at this strike (fraction).
        public var volatility: Double
        /// The vol feed's confidence in [0, 1].
        public var volatilityConfidence: Double
        public var source: String

        public init(
            strikeUSD: Double, kind: OptionKind, amountCoins: Double, volatility: Double, volatilityConfidence: Double, source: String
        ) {
            self.strikeUSD = strikeUSD
            self.kind = kind
            self.amountCoins = amountCoins
            self.volatility = volatility
            self.volatilityConfidence = volatilityConfidence
            self.source = source
        }
    }

    /// The options of one expiry with the feeds' values for it (`IPMRM_2.ExpiryHoldings` before precomputes).
    public struct Expiry: Sendable, Equatable {
        /// Whole seconds from the valuation time to expiry; 0 once expired.
        public var secondsToExpiry: Int64
        /// The part of the forward already fixed by the settlement average (does not move with spot), USD.
        public var forwardFixedUSD: Double
        /// The part of the forward that moves with spot, USD.
        public var forwardVariableUSD: Double
        /// The interest-rate feed's rate for the expiry (Derive floors it at 0).
        public var rate: Double
        public var forwardConfidence: Double
        public var rateConfidence: Double
        /// In Derive's arranged order (the order matters only to the naked-short filter's pairing).
        public var options: [Option]
        public var source: String

        public init(
            secondsToExpiry: Int64, forwardFixedUSD: Double, forwardVariableUSD: Double, rate: Double, forwardConfidence: Double,
            rateConfidence: Double, options: [Option], source: String
        ) {
            self.secondsToExpiry = secondsToExpiry
            self.forwardFixedUSD = forwardFixedUSD
            self.forwardVariableUSD = forwardVariableUSD
            self.rate = rate
            self.forwardConfidence = forwardConfidence
            self.rateConfidence = rateConfidence
            self.options = options
            self.source = source
        }

        /// The forward split of Derive's forward feed within `splitSeconds` of expiry (`fixed = F·(split − sec)
        /// / split`, `variable = F·sec / split`); the whole forward is variable further out.
        public static func splitForward(
            _ forwardUSD: Double, secondsToExpiry: Int64, splitSeconds: Int64
        ) -> (fixedUSD: Double, variableUSD: Double) {
            guard secondsToExpiry < splitSeconds, splitSeconds > 0 else { return (0, forwardUSD) }
            let window = Double(splitSeconds)
            let remaining = Double(max(secondsToExpiry, 0))
            return (forwardUSD * (window - remaining) / window, forwardUSD * remaining / window)
        }

        /// The unshocked forward, `fixed + variable`.
        public var forwardUSD: Double { forwardFixedUSD + forwardVariableUSD }
    }

    /// The perpetual position (only present when nonzero, as in Derive).
    public struct Perp: Sendable, Equatable {
        /// Signed size in coins.
        public var positionCoins: Double
        /// The perp's price (USD per coin); scenarios move it by the spot shock.
        public var priceUSD: Double
        public var confidence: Double
        /// Unsettled and unrealised cash (unrealised P&L plus funding), part of the mark-to-market.
        public var unrealisedValueUSD: Double
        public var source: String

        public init(positionCoins: Double, priceUSD: Double, confidence: Double, unrealisedValueUSD: Double, source: String) {
            self.positionCoins = positionCoins
            self.priceUSD = priceUSD
            self.confidence = confidence
            self.unrealisedValueUSD = unrealisedValueUSD
            self.source = source
        }
    }

    /// A collateral holding (a wrapped ERC-20 with its own spot feed).
    public struct Collateral: Sendable, Equatable {
        public var name: String
        /// Units held (≥ 0: Derive's collateral balances are unsigned).
        public var amount: Double
        /// The collateral's spot feed price, USD per unit.
        public var priceUSD: Double
        public var confidence: Double
        public var haircuts: DerivePM2CollateralHaircuts
        public var source: String

        public init(
            name: String, amount: Double, priceUSD: Double, confidence: Double, haircuts: DerivePM2CollateralHaircuts, source: String
        ) {
            self.name = name
            self.amount = amount
            self.priceUSD = priceUSD
            self.confidence = confidence
            self.haircuts = haircuts
            self.source = source
        }
    }

    /// The manager's currency (`BTC`), or a name for a collateral-only portfolio.
    public var underlying: String
    /// The spot feed's price, USD per coin.
    public var spotUSD: Double
    public var spotConfidence: Double
    /// The stable feed's price of the cash unit, USD per USDC; collateral values are divided by it.
    public var stablePriceUSD: Double
    /// The cash balance (negative when borrowing).
    public var cashUSD: Double
    public var perp: Perp?
    /// In Derive's arranged order: by first appearance of each expiry.
    public var expiries: [Expiry]
    public var collaterals: [Collateral]

    public init(
        underlying: String, spotUSD: Double, spotConfidence: Double, stablePriceUSD: Double, cashUSD: Double, perp: Perp? = nil,
        expiries: [Expiry] = [], collaterals: [Collateral] = []
    ) {
        self.underlying = underlying
        self.spotUSD = spotUSD
        self.spotConfidence = spotConfidence
        self.stablePriceUSD = stablePriceUSD
        self.cashUSD = cashUSD
        self.perp = perp
        self.expiries = expiries
        self.collaterals = collaterals
    }
}
