/// How a Derive PM2 scenario moves volatility (`IPMRM_2.VolShockDirection`).
public enum DerivePM2VolShock: String, Sendable, Hashable, CaseIterable {
    /// Volatilities unchanged.
    case none
    /// Every volatility × the expiry's up multiplier, floored at ``DerivePM2Parameters/VolShock/minVolUpShock``.
    case up
    /// Every volatility × the expiry's down multiplier.
    case down
    /// Skew scenario: the wings rise or fall linearly in log-moneyness (spot unchanged).
    case linear
    /// Skew scenario: both wings rise with |log-moneyness| (spot unchanged).
    case abs

    /// Whether this is one of the two skew scenarios, whose per-expiry P&L is forced to −|P&L|.
    public var isSkew: Bool { self == .linear || self == .abs }

    /// The spelling of Derive's golden cases (`Up`, `Down`, `None`, `LINEAR`, `ABS`).
    public var deriveName: String {
        switch self {
        case .none: "None"
        case .up: "Up"
        case .down: "Down"
        case .linear: "LINEAR"
        case .abs: "ABS"
        }
    }
}

/// One Derive PM2 margin scenario (`IPMRM_2.Scenario`): a spot multiple, a volatility shock and a dampening
/// factor applied to the scenario's P&L.
public struct DerivePM2Scenario: Sendable, Equatable {
    /// The spot (and forward) multiple: 0.82 is a 18 % fall.
    public var spotShock: Double
    public var volShock: DerivePM2VolShock
    /// The scenario's P&L is multiplied by this (tail scenarios are dampened, e.g. 0.0545 at spot × 0.34).
    public var dampeningFactor: Double

    public init(spotShock: Double, volShock: DerivePM2VolShock, dampeningFactor: Double) {
        self.spotShock = spotShock
        self.volShock = volShock
        self.dampeningFactor = dampeningFactor
    }

    /// A short label such as `spot ×0.82, vol up` or `LINEAR skew`.
    public var label: String {
        if volShock.isSkew { return "\(volShock.deriveName) skew" }
        let damp = dampeningFactor == 1 ? "" : ", damp \(DecimalText.format(dampeningFactor))"
        return "spot ×\(DecimalText.format(spotShock)), vol \(volShock.rawValue)\(damp)"
    }
}

/// Derive's haircuts of one collateral asset (`IPMRMLib_2.CollateralParameters`).
public struct DerivePM2CollateralHaircuts: Sendable, Equatable {
    /// Whether the asset's value moves with the portfolio's spot shocks (the base asset of its manager).
    public var isRiskCancelling: Bool
    /// Fraction of the collateral's value charged to maintenance margin.
    public var mmHaircut: Double
    /// Fraction of the value charged to initial margin on top of ``mmHaircut``.
    public var imHaircut: Double

    public init(isRiskCancelling: Bool, mmHaircut: Double, imHaircut: Double) {
        self.isRiskCancelling = isRiskCancelling
        self.mmHaircut = mmHaircut
        self.imHaircut = imHaircut
    }
}

/// A complete Derive PM2 parameter set: the arguments of `PMRMLib_2`'s five setters, the manager's
/// scenarios (`PMRM_2.setScenarios`), collateral haircuts, and the near-expiry forward split of Derive's
/// forward feed. Field names follow the Solidity structs so each value can be traced to its source.
///
/// Construction validates exactly what Derive's setters `require` (a set Derive's contracts would refuse is
/// refused here, naming the field), plus what Double arithmetic needs (finite values).
public struct DerivePM2Parameters: Sendable, Equatable {
    /// `IPMRMLib_2.VolShockParameters`.
    public struct VolShock: Sendable, Equatable {
        /// Up multiplier = 1 + volRangeUp · m, with m the DTE-scaled shock (≤ 10).
        public var volRangeUp: Double
        /// Down multiplier = max(0, 1 − volRangeDown · m) (≤ 10).
        public var volRangeDown: Double
        /// Power of `30 days / max(sec, dteFloor)` for expiries within 30 days.
        public var shortTermPower: Double
        /// The power beyond 30 days.
        public var longTermPower: Double
        /// Floor of the seconds to expiry in the DTE scaling, whole seconds (≤ 400 days).
        public var dteFloorSeconds: Int64
        /// In vol-up scenarios every volatility is at least this (≤ 20).
        public var minVolUpShock: Double
    }

    /// `IPMRMLib_2.SkewShockParameters`.
    public struct SkewShock: Sendable, Equatable {
        /// LINEAR cap = linearCBase·√τ + linearBaseCap.
        public var linearBaseCap: Double
        /// ABS cap = absCBase·√τ + absBaseCap.
        public var absBaseCap: Double
        public var linearCBase: Double
        public var absCBase: Double
        /// k* = max(minKStar, √τ · widthScale · (volParamStatic + √τ · volParamScale)).
        public var minKStar: Double
        public var widthScale: Double
        public var volParamStatic: Double
        public var volParamScale: Double
    }

    /// `IPMRMLib_2.MarginParameters`.
    public struct Margin: Sendable, Equatable {
        /// IM = MtM + cash + imFactor · worst loss − contingencies (before the peg-loss add-on).
        public var imFactor: Double
        /// MM = MtM + cash + mmFactor · worst loss − MM contingencies.
        public var mmFactor: Double
        /// Static discount of a negative shocked expiry value: shortBase / e^{−τ(r·shortMult + shortAdd)}.
        public var shortRateMultScale: Double
        /// Static discount of a positive shocked expiry value: longBase · e^{−τ(r·longMult + longAdd)}.
        public var longRateMultScale: Double
        public var shortRateAddScale: Double
        public var longRateAddScale: Double
        public var shortBaseStaticDiscount: Double
        public var longBaseStaticDiscount: Double
    }

    /// `IPMRMLib_2.BasisContingencyParameters`.
    public struct BasisContingency: Sendable, Equatable {
        /// Forward multiple of the basis scenario up (> 1, < 3).
        public var scenarioSpotUp: Double
        /// Forward multiple of the basis scenario down (< 1).
        public var scenarioSpotDown: Double
        /// Per expiry, the basis loss × (addFactor + multFactor · τ).
        public var basisContAddFactor: Double
        public var basisContMultFactor: Double
    }

    /// `IPMRMLib_2.OtherContingencyParameters`.
    public struct OtherContingency: Sendable, Equatable {
        /// IM factor += (pegLossThreshold − stable price) · pegLossFactor when the stable price is below it.
        public var pegLossThreshold: Double
        public var pegLossFactor: Double
        /// Oracle add-on (IM): (1 − confidence) · confMargin · notional when confidence < confThreshold.
        public var confThreshold: Double
        public var confMargin: Double
        /// Perpetual contingency: |position| · spot · percent (MM, and IM on top).
        public var mmPerpPercent: Double
        public var imPerpPercent: Double
        /// Naked-short contingency: naked short coins · spot · percent (MM, and IM on top).
        public var mmOptionPercent: Double
        public var imOptionPercent: Double
    }

    /// The parameter set's id (`derive-pm2`), reported as `paramsId`.
    public var id: String
    public var scenarios: [DerivePM2Scenario]
    public var volShock: VolShock
    public var skewShock: SkewShock
    public var margin: Margin
    public var basisContingency: BasisContingency
    public var otherContingency: OtherContingency
    /// Within this many seconds of expiry Derive's forward feed splits the forward into a fixed (settled
    /// TWAP) part and a variable part, and only the variable part moves with spot (1800 = 30 minutes).
    public var forwardSplitSeconds: Int64
    /// Haircuts of a coin held in the portfolio of its own underlying (risk-cancelling), by currency.
    public var baseCollateral: [String: DerivePM2CollateralHaircuts]
    /// Haircuts of other collateral (not risk-cancelling), by currency.
    public var otherCollateral: [String: DerivePM2CollateralHaircuts]
    /// Most derivative positions one request may hold.
    public var maximumPositions: Int

    /// A validated set; throws naming the first field Derive's setters would refuse.
    public init(
        id: String, scenarios: [DerivePM2Scenario], volShock: VolShock, skewShock: SkewShock, margin: Margin,
        basisContingency: BasisContingency, otherContingency: OtherContingency, forwardSplitSeconds: Int64 = 1800,
        baseCollateral: [String: DerivePM2CollateralHaircuts] = [:], otherCollateral: [String: DerivePM2CollateralHaircuts] = [:],
        maximumPositions: Int = 1000, path: String = "params"
    ) throws(EngineError) {
        self.id = id
        self.scenarios = scenarios
        self.volShock = volShock
        self.skewShock = skewShock
        self.margin = margin
        self.basisContingency = basisContingency
        self.otherContingency = otherContingency
        self.forwardSplitSeconds = forwardSplitSeconds
        self.baseCollateral = baseCollateral
        self.otherCollateral = otherCollateral
        self.maximumPositions = maximumPositions
        try validate(path: path)
    }

    /// Derive's setter checks (PMRMLib_2 `set…Params`, `setCollateralParameters`, PMRM_2 `setScenarios`).
    func validate(path: String) throws(EngineError) {
        func check(_ ok: Bool, _ field: String, _ value: Double, _ rule: String) throws(EngineError) {
            guard value.isFinite else { throw .invalidField(path: "\(path).\(field)", value: "\(value)", reason: "must be finite") }
            guard ok else { throw .invalidField(path: "\(path).\(field)", value: DecimalText.format(value), reason: rule) }
        }
        let basis = basisContingency
        try check(
            basis.scenarioSpotUp > 1 && basis.scenarioSpotUp < 3, "basisContingency.scenarioSpotUp", basis.scenarioSpotUp,
            "must be above 1 and below 3")
        try check(
            basis.scenarioSpotDown >= 0 && basis.scenarioSpotDown < 1, "basisContingency.scenarioSpotDown", basis.scenarioSpotDown,
            "must be at least 0 and below 1")
        try check(
            (0...20).contains(basis.basisContMultFactor), "basisContingency.basisContMultFactor", basis.basisContMultFactor,
            "must be between 0 and 20")
        try check(
            (0...20).contains(basis.basisContAddFactor), "basisContingency.basisContAddFactor", basis.basisContAddFactor,
            "must be between 0 and 20")

        let other = otherContingency
        try check(
            (0...100).contains(other.pegLossThreshold), "otherContingency.pegLossThreshold", other.pegLossThreshold,
            "must be between 0 and 100")
        try check((0...10).contains(other.pegLossFactor), "otherContingency.pegLossFactor", other.pegLossFactor, "must be between 0 and 10")
        try check((0...1).contains(other.confThreshold), "otherContingency.confThreshold", other.confThreshold, "must be between 0 and 1")
        try check((0...20).contains(other.confMargin), "otherContingency.confMargin", other.confMargin, "must be between 0 and 20")
        try check((0...3).contains(other.mmPerpPercent), "otherContingency.MMPerpPercent", other.mmPerpPercent, "must be between 0 and 3")
        try check((0...3).contains(other.imPerpPercent), "otherContingency.IMPerpPercent", other.imPerpPercent, "must be between 0 and 3")
        try check(
            (0...2).contains(other.mmOptionPercent), "otherContingency.MMOptionPercent", other.mmOptionPercent, "must be between 0 and 2")
        try check(
            (0...2).contains(other.imOptionPercent), "otherContingency.IMOptionPercent", other.imOptionPercent, "must be between 0 and 2")

        let m = margin
        try check((0.5...10).contains(m.imFactor), "margin.imFactor", m.imFactor, "must be between 0.5 and 10")
        try check((0.1...10).contains(m.mmFactor), "margin.mmFactor", m.mmFactor, "must be between 0.1 and 10")
        try check((0...10).contains(m.shortRateMultScale), "margin.shortRateMultScale", m.shortRateMultScale, "must be between 0 and 10")
        try check((0...10).contains(m.longRateMultScale), "margin.longRateMultScale", m.longRateMultScale, "must be between 0 and 10")
        try check((0...10).contains(m.shortRateAddScale), "margin.shortRateAddScale", m.shortRateAddScale, "must be between 0 and 10")
        try check((0...10).contains(m.longRateAddScale), "margin.longRateAddScale", m.longRateAddScale, "must be between 0 and 10")
        try check(
            (0...4).contains(m.shortBaseStaticDiscount), "margin.shortBaseStaticDiscount", m.shortBaseStaticDiscount,
            "must be between 0 and 4")
        try check(
            (0...4).contains(m.longBaseStaticDiscount), "margin.longBaseStaticDiscount", m.longBaseStaticDiscount, "must be between 0 and 4"
        )

        let v = volShock
        try check((0...10).contains(v.volRangeUp), "volShock.volRangeUp", v.volRangeUp, "must be between 0 and 10")
        try check((0...10).contains(v.volRangeDown), "volShock.volRangeDown", v.volRangeDown, "must be between 0 and 10")
        try check(v.shortTermPower <= 10, "volShock.shortTermPower", v.shortTermPower, "must be at most 10")
        try check(v.longTermPower <= 10, "volShock.longTermPower", v.longTermPower, "must be at most 10")
        try check(
            (0...400 * 86_400).contains(v.dteFloorSeconds), "volShock.dteFloor", Double(v.dteFloorSeconds), "must be between 0 and 400 days"
        )
        try check((0...20).contains(v.minVolUpShock), "volShock.minVolUpShock", v.minVolUpShock, "must be between 0 and 20")

        let s = skewShock
        try check((0...10).contains(s.linearBaseCap), "skewShock.linearBaseCap", s.linearBaseCap, "must be between 0 and 10")
        try check((0...10).contains(s.absBaseCap), "skewShock.absBaseCap", s.absBaseCap, "must be between 0 and 10")
        try check((-10...10).contains(s.linearCBase), "skewShock.linearCBase", s.linearCBase, "must be between -10 and 10")
        try check((-10...10).contains(s.absCBase), "skewShock.absCBase", s.absCBase, "must be between -10 and 10")
        try check((0...10).contains(s.minKStar), "skewShock.minKStar", s.minKStar, "must be between 0 and 10")
        try check((0...10).contains(s.widthScale), "skewShock.widthScale", s.widthScale, "must be between 0 and 10")
        try check((0...10).contains(s.volParamStatic), "skewShock.volParamStatic", s.volParamStatic, "must be between 0 and 10")
        try check((-20...20).contains(s.volParamScale), "skewShock.volParamScale", s.volParamScale, "must be between -20 and 20")

        guard (1...40).contains(scenarios.count) else {
            throw .invalidField(path: "\(path).scenarios", value: String(scenarios.count), reason: "must hold between 1 and 40 scenarios")
        }
        var seenSkew = Set<DerivePM2VolShock>()
        for (index, scenario) in scenarios.enumerated() {
            let field = "scenarios[\(index)]"
            try check(
                scenario.spotShock >= 0 && scenario.spotShock <= 100, "\(field).spotShock", scenario.spotShock,
                "must be between 0 and 100 (ours: Derive's bound is the uint range)")
            try check(
                scenario.dampeningFactor >= 0 && scenario.dampeningFactor <= 100, "\(field).dampeningFactor", scenario.dampeningFactor,
                "must be between 0 and 100 (ours: Derive's bound is the uint range)")
            if scenario.volShock.isSkew {
                guard seenSkew.insert(scenario.volShock).inserted else {
                    throw .invalidField(
                        path: "\(path).\(field).volShock", value: scenario.volShock.rawValue,
                        reason: "appears twice (Derive allows one of each skew scenario)")
                }
                try check(scenario.spotShock == 1, "\(field).spotShock", scenario.spotShock, "must be 1 in a skew scenario")
            }
        }
        guard forwardSplitSeconds >= 0, forwardSplitSeconds <= 86_400 else {
            throw .invalidField(
                path: "\(path).forwardSplitSeconds", value: String(forwardSplitSeconds), reason: "must be between 0 and 86400")
        }
        for (kind, table) in [("baseCollateral", baseCollateral), ("otherCollateral", otherCollateral)] {
            for (currency, haircuts) in table.sorted(by: { $0.key < $1.key }) {
                let field = "\(kind).\(currency)"
                try check(
                    haircuts.mmHaircut >= 0 && haircuts.mmHaircut <= 1, "\(field).mmHaircut", haircuts.mmHaircut, "must be between 0 and 1")
                try check(
                    haircuts.imHaircut >= 0 && haircuts.mmHaircut + haircuts.imHaircut <= 1, "\(field).imHaircut", haircuts.imHaircut,
                    "must be at least 0 with mmHaircut + imHaircut at most 1")
            }
        }
        guard (1...100_000).contains(maximumPositions) else {
            throw .invalidField(path: "\(path).maxPositions", value: String(maximumPositions), reason: "must be between 1 and 100000")
        }
    }
}

extension DerivePM2Parameters {
    /// The keys of a `derive-pm2` parameter document (besides `model`, read by ``ModelParameters``).
    static let documentKeys: Set<String> = [
        "id", "model", "description", "source", "scenarios", "volShock", "skewShock", "margin", "basisContingency",
        "otherContingency", "forwardSplitSeconds", "baseCollateral", "otherCollateral", "maxPositions",
    ]

    /// Parses and validates a `derive-pm2` parameter document (the shipped `params/derive-pm2.json` format).
    ///
    /// Every key is required and unknown keys are rejected, as for the okx-pm sets; numbers may be JSON
    /// numbers or numeric strings. Field names are the Solidity struct fields; `volShock.dteFloorSeconds` is
    /// given in whole seconds, as Derive's configuration gives it (`1 days`).
    public init(json: JSONValue) throws(EngineError) {
        let root = FieldReader(json, path: "params")
        try root.rejectUnknownKeys(Self.documentKeys)
        let id = try root.required("id").string()

        var scenarios: [DerivePM2Scenario] = []
        for entry in try root.required("scenarios").elements() {
            try entry.rejectUnknownKeys(["spotShock", "volShock", "dampeningFactor"])
            let shock = try entry.required("volShock").oneOf(DerivePM2VolShock.allCases.map(\.rawValue))
            scenarios.append(
                DerivePM2Scenario(
                    spotShock: try entry.required("spotShock").double(), volShock: DerivePM2VolShock(rawValue: shock) ?? .none,
                    dampeningFactor: try entry.required("dampeningFactor").double()))
        }

        func group(_ key: String, _ fields: [String], integers: Set<String> = []) throws(EngineError) -> [String: Double] {
            let reader = try root.required(key)
            try reader.rejectUnknownKeys(Set(fields).union(integers))
            var values: [String: Double] = [:]
            for field in fields { values[field] = try reader.required(field).double() }
            for field in integers { values[field] = Double(try reader.required(field).int64()) }
            return values
        }
        let vol = try group(
            "volShock", ["volRangeUp", "volRangeDown", "shortTermPower", "longTermPower", "minVolUpShock"], integers: ["dteFloorSeconds"])
        let skew = try group(
            "skewShock",
            [
                "linearBaseCap", "absBaseCap", "linearCBase", "absCBase", "minKStar", "widthScale", "volParamStatic", "volParamScale",
            ])
        let margin = try group(
            "margin",
            [
                "imFactor", "mmFactor", "shortRateMultScale", "longRateMultScale", "shortRateAddScale", "longRateAddScale",
                "shortBaseStaticDiscount", "longBaseStaticDiscount",
            ])
        let basis = try group("basisContingency", ["scenarioSpotUp", "scenarioSpotDown", "basisContAddFactor", "basisContMultFactor"])
        let other = try group(
            "otherContingency",
            [
                "pegLossThreshold", "pegLossFactor", "confThreshold", "confMargin", "MMPerpPercent", "IMPerpPercent", "MMOptionPercent",
                "IMOptionPercent",
            ])
        func collateral(_ key: String, riskCancelling: Bool) throws(EngineError) -> [String: DerivePM2CollateralHaircuts] {
            let reader = try root.required(key)
            var table: [String: DerivePM2CollateralHaircuts] = [:]
            for currency in try reader.objectKeys() {
                let entry = try reader.required(currency)
                try entry.rejectUnknownKeys(["mmHaircut", "imHaircut"])
                table[currency] = DerivePM2CollateralHaircuts(
                    isRiskCancelling: riskCancelling, mmHaircut: try entry.required("mmHaircut").double(),
                    imHaircut: try entry.required("imHaircut").double())
            }
            return table
        }
        let split = try root.required("forwardSplitSeconds").int64()
        let maximum = try root.required("maxPositions").int64()
        guard (1...100_000).contains(maximum) else {
            throw .invalidField(path: "params.maxPositions", value: String(maximum), reason: "must be between 1 and 100000")
        }
        try self.init(
            id: id, scenarios: scenarios,
            volShock: VolShock(
                volRangeUp: vol["volRangeUp", default: 0], volRangeDown: vol["volRangeDown", default: 0],
                shortTermPower: vol["shortTermPower", default: 0], longTermPower: vol["longTermPower", default: 0],
                dteFloorSeconds: Int64(vol["dteFloorSeconds", default: 0]), minVolUpShock: vol["minVolUpShock", default: 0]),
            skewShock: SkewShock(
                linearBaseCap: skew["linearBaseCap", default: 0], absBaseCap: skew["absBaseCap", default: 0],
                linearCBase: skew["linearCBase", default: 0], absCBase: skew["absCBase", default: 0],
                minKStar: skew["minKStar", default: 0],
                widthScale: skew["widthScale", default: 0], volParamStatic: skew["volParamStatic", default: 0],
                volParamScale: skew["volParamScale", default: 0]),
            margin: Margin(
                imFactor: margin["imFactor", default: 0], mmFactor: margin["mmFactor", default: 0],
                shortRateMultScale: margin["shortRateMultScale", default: 0], longRateMultScale: margin["longRateMultScale", default: 0],
                shortRateAddScale: margin["shortRateAddScale", default: 0], longRateAddScale: margin["longRateAddScale", default: 0],
                shortBaseStaticDiscount: margin["shortBaseStaticDiscount", default: 0],
                longBaseStaticDiscount: margin["longBaseStaticDiscount", default: 0]),
            basisContingency: BasisContingency(
                scenarioSpotUp: basis["scenarioSpotUp", default: 0], scenarioSpotDown: basis["scenarioSpotDown", default: 0],
                basisContAddFactor: basis["basisContAddFactor", default: 0], basisContMultFactor: basis["basisContMultFactor", default: 0]),
            otherContingency: OtherContingency(
                pegLossThreshold: other["pegLossThreshold", default: 0], pegLossFactor: other["pegLossFactor", default: 0],
                confThreshold: other["confThreshold", default: 0], confMargin: other["confMargin", default: 0],
                mmPerpPercent: other["MMPerpPercent", default: 0], imPerpPercent: other["IMPerpPercent", default: 0],
                mmOptionPercent: other["MMOptionPercent", default: 0], imOptionPercent: other["IMOptionPercent", default: 0]),
            forwardSplitSeconds: split,
            baseCollateral: try collateral("baseCollateral", riskCancelling: true),
            otherCollateral: try collateral("otherCollateral", riskCancelling: false),
            maximumPositions: Int(maximum))
    }
}
