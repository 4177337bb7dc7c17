/// The Greeks convention of a Position Builder response.
public enum GreeksType: String, Sendable, CaseIterable {
    case blackScholes = "BS"
    case priceAdjusted = "PA"
    case cash = "CASH"
}

/// A Position Builder request: OKX's `POST /api/v5/account/position-builder` body plus our additions
/// (docs/methodology/05-position-builder.md). Parsing checks every field's form; ``PositionBuilder`` checks it against
/// the catalog, market and parameters.
public struct PositionBuilderRequest: Sendable {
    /// One simulated position (`simPos[]`).
    public struct SimulatedPosition: Sendable, Equatable {
        public var instrumentID: String
        /// Signed size in contracts.
        public var sizeContracts: Double
        /// Entry price in the instrument's quote; nil when not given (the mark is used).
        public var averagePrice: Double?
        /// Leverage for classic mode; ignored by portfolio margin.
        public var leverage: Double?
        /// The request path of this entry (`simPos[2]`).
        public var path: String
    }

    /// One simulated balance (`simAsset[]`).
    public struct SimulatedAsset: Sendable, Equatable {
        public var currency: String
        public var amount: Double
        public var path: String
    }

    /// `"4"` portfolio margin, `"3"` classic.
    public var accountLevel: String
    /// Whether the request stated `acctLv` (the pre-check then starts from it).
    public var accountLevelGiven: Bool
    /// Top-level `lever`: the classic leverage of every position that sets none.
    public var defaultLeverage: Double?
    /// The classic leverage of a simulated position when neither it nor the request sets one: OKX documents
    /// "the default is 1; if the allowed leverage is exceeded, set according to the maximum".
    public static let okxDefaultLeverage = 1.0
    public var includeRealPositions: Bool
    /// Whether the request stated `inclRealPosAndEq` (a server includes real holdings when it did not).
    public var includeRealPositionsGiven: Bool
    public var positions: [SimulatedPosition]
    public var assets: [SimulatedAsset]
    public var greeksType: GreeksType
    /// `idxVol`: a spot move applied to every coin index before computing.
    public var indexShock: Double?
    /// Our addition: chosen spot in use per coin (magnitude, coins).
    public var spotInUse: [String: Double]
    /// Our addition: the parameter set the request expects.
    public var parametersID: String?
    /// Our addition, offline only: an inline market snapshot.
    public var market: JSONValue?

    /// Fields OKX defines or we add; anything else is rejected so that typos are not ignored.
    static let knownFields: Set<String> = [
        "acctLv", "inclRealPosAndEq", "lever", "simPos", "simAsset", "greeksType", "idxVol", "spotInUse", "paramsId", "market",
    ]

    public init(
        accountLevel: String = "4", includeRealPositions: Bool = false, positions: [SimulatedPosition] = [],
        assets: [SimulatedAsset] = [], greeksType: GreeksType = .blackScholes, indexShock: Double? = nil,
        spotInUse: [String: Double] = [:], parametersID: String? = nil, market: JSONValue? = nil
    ) {
        self.accountLevel = accountLevel
        self.accountLevelGiven = true
        self.defaultLeverage = nil
        self.includeRealPositions = includeRealPositions
        self.includeRealPositionsGiven = true
        self.positions = positions
        self.assets = assets
        self.greeksType = greeksType
        self.indexShock = indexShock
        self.spotInUse = spotInUse
        self.parametersID = parametersID
        self.market = market
    }

    /// Parses request bytes.
    public init(bytes: some Sequence<UInt8>) throws(EngineError) {
        let json: JSONValue
        do { json = try JSONParser.parse(bytes) } catch { throw .malformedDocument(document: "request", detail: error.description) }
        try self.init(json: json)
    }

    /// Parses a request document; every error names the field (`simPos[1].pos`) and the value.
    public init(json: JSONValue) throws(EngineError) {
        let root = FieldReader(json, path: "")
        guard case .object = json else { throw .invalidField(path: "request", value: json.excerpt, reason: "must be a JSON object") }
        try root.rejectUnknownKeys(Self.knownFields)
        let level = try root.optional("acctLv")?.oneOf(["3", "4"])
        accountLevel = level ?? "4"
        accountLevelGiven = level != nil
        defaultLeverage = try root.optional("lever")?.double(in: 1...1000)
        let includeReal = try root.optional("inclRealPosAndEq")?.bool()
        includeRealPositions = includeReal ?? false
        includeRealPositionsGiven = includeReal != nil
        if let type = try root.optional("greeksType") {
            greeksType = GreeksType(rawValue: try type.oneOf(GreeksType.allCases.map(\.rawValue))) ?? .blackScholes
        } else {
            greeksType = .blackScholes
        }
        indexShock = try root.optional("idxVol")?.double(in: -0.99...1)
        parametersID = try root.optional("paramsId")?.string()
        market = try root.optional("market")?.value

        var positions: [SimulatedPosition] = []
        if let list = try root.optional("simPos") {
            for entry in try list.elements() {
                try entry.rejectUnknownKeys(["instId", "pos", "avgPx", "lever"])
                let sizeField = try entry.required("pos")
                let size = try sizeField.double(in: -1e12...1e12)
                guard size != 0 else {
                    throw .invalidField(path: sizeField.path, value: sizeField.value.excerpt, reason: "must not be zero")
                }
                // Bounded below as well as above: a position of 2.65e-320 contracts had a subnormal MMR and an
                // infinite margin ratio (fuzz).
                guard abs(size) >= 1e-12 else {
                    throw .invalidField(
                        path: sizeField.path, value: sizeField.value.excerpt, reason: "must be at least 1e-12 contracts in magnitude")
                }
                positions.append(
                    SimulatedPosition(
                        instrumentID: try entry.required("instId").string(), sizeContracts: size,
                        averagePrice: try entry.optional("avgPx")?.positiveDouble(atMost: 1e12),
                        leverage: try entry.optional("lever")?.double(in: 1...1000), path: entry.path))
            }
        }
        self.positions = positions

        var assets: [SimulatedAsset] = []
        var seenCurrencies = Set<String>()
        if let list = try root.optional("simAsset") {
            for entry in try list.elements() {
                try entry.rejectUnknownKeys(["ccy", "amt"])
                let currency = try entry.required("ccy").string()
                guard seenCurrencies.insert(currency).inserted else {
                    throw .invalidField(path: "\(entry.path).ccy", value: "\"\(currency)\"", reason: "appears twice in simAsset")
                }
                // Bounded so that no amount times a price can overflow a Double (fuzz: amt 1.21e308 BTC reached the
                // output as an infinite USD value).
                // A nonzero amount is at least 1e-18 coins (below any ledger scale): a subnormal balance made the
                // account's leverage (notional / equity) overflow.
                let amountField = try entry.required("amt")
                let amount = try amountField.double(in: -1e15...1e15)
                guard amount == 0 || abs(amount) >= 1e-18 else {
                    throw .invalidField(
                        path: amountField.path, value: amountField.value.excerpt, reason: "must be 0 or at least 1e-18 in magnitude")
                }
                assets.append(SimulatedAsset(currency: currency, amount: amount, path: entry.path))
            }
        }
        self.assets = assets

        var chosen: [String: Double] = [:]
        if let list = try root.optional("spotInUse") {
            for entry in try list.elements() {
                try entry.rejectUnknownKeys(["ccy", "amt"])
                let currency = try entry.required("ccy").string()
                let amount = try entry.required("amt").double()
                guard amount >= 0 else {
                    throw .invalidField(
                        path: "\(entry.path).amt", value: DecimalText.format(amount),
                        reason: "must be 0 or more (coins of the balance to use)")
                }
                guard chosen.updateValue(amount, forKey: currency) == nil else {
                    throw .invalidField(path: "\(entry.path).ccy", value: "\"\(currency)\"", reason: "appears twice in spotInUse")
                }
            }
        }
        spotInUse = chosen
    }
}
