/// One of Derive's PM2 golden portfolio cases (`test/risk-managers/unit-tests/PMRM_2/portfolio_cases/test_*.json`
/// in derivexyz/v2-core), read the way Derive's harness `TestPMRM_2_PortfolioCasesNEW.t.sol` reads it, with
/// the figures the harness asserts.
///
/// The harness, and so this reader:
/// - reads numbers written as JSON numbers or as strings (`".2381"`, `"-0.0035"`), truncated to 18 decimals;
/// - prices every option at its expiry's SVI volatility (`feed.setUseSVI(true)`), not the case's `MarkVol`;
/// - splits the forward of an expiry less than 30 minutes away into fixed and variable parts;
/// - counts the perpetual (price, confidence, unrealised P&L + funding) only when `NumPerps` is nonzero;
/// - arranges options per expiry from the last listed (`PMRM_2._arrangeAssets` fills each expiry backwards).
public struct DerivePM2GoldenCase: Sendable {
    /// The figures the harness asserts.
    public struct Expected: Sendable, Equatable {
        /// `Result.CollateralMTM` (asserted to 1e-8 absolute).
        public var collateralValueUSD: Double
        /// `Result.OptionMTM`.
        public var optionValueUSD: Double
        /// Each scenario's P&L, in the order of `Parameters.Scenarios` (from reg_losses, tail_losses, skew_losses).
        public var scenarioPnLUSD: [Double]
        /// `Result.MM`, `Result.IM` (surpluses).
        public var maintenanceMarginUSD: Double
        public var initialMarginUSD: Double
    }

    /// How a quantity is compared.
    public enum Tolerance: String, Sendable {
        /// |actual − expected| ≤ 1e-8 · |expected| (forge `assertApproxEqRel(…, 1e10)`).
        case relative
        /// |actual − expected| ≤ 1e-8 (forge `assertApproxEqAbs(…, 1e10)`).
        case absolute
    }

    /// One asserted quantity.
    public struct Comparison: Sendable {
        /// `CollateralMTM`, `OptionMTM`, `scenario[3] spot ×1.09, vol up`, `MM`, `IM`.
        public var quantity: String
        public var actual: Double
        public var expected: Double
        public var tolerance: Tolerance
        public var absoluteError: Double { Swift.abs(actual - expected) }
        /// |actual − expected| / |expected|; nil when |expected| < 1e-10.
        public var relativeError: Double? {
            Swift.abs(expected) < DerivePM2GoldenCase.smallValue ? nil : absoluteError / Swift.abs(expected)
        }
        public var passed: Bool {
            switch tolerance {
            case .absolute: absoluteError <= DerivePM2GoldenCase.tolerance
            case .relative: absoluteError <= DerivePM2GoldenCase.tolerance * Swift.abs(expected)
            }
        }
    }

    /// Derive's tolerance, 1e10 in 18-decimal units.
    public static let tolerance = 1e-8
    /// Below this (1e8 in 18-decimal units) a scenario P&L is compared absolutely.
    public static let smallValue = 1e-10
    /// Cases Derive's harness does not run, with its reason.
    public static let harnessSkips: [String: String] = [
        "test_67_misc_skew_scenario_with_spot_move":
            "commented out in Derive's harness (\"Invalid param setup\": a skew scenario with a spot move)"
    ]
    /// The near-expiry window of the harness's forward split (`30 minutes`).
    public static let harnessForwardSplitSeconds: Int64 = 1800

    /// The case name, the file name without `.json`.
    public var name: String
    public var parameters: DerivePM2Parameters
    public var portfolio: DerivePM2Portfolio
    public var expected: Expected

    /// Reads a case document. Throws naming the field when a value is missing or Derive's setters would
    /// refuse it.
    public init(name: String, bytes: some Sequence<UInt8>) throws(EngineError) {
        let json: JSONValue
        do { json = try JSONParser.parse(bytes) } catch { throw .malformedDocument(document: name, detail: error.description) }
        try self.init(name: name, json: json)
    }

    public init(name: String, json: JSONValue) throws(EngineError) {
        self.name = name
        let root = FieldReader(json, path: name)
        parameters = try Self.parameters(root.required("Parameters"))
        portfolio = try Self.portfolio(root.required("Scenario"))
        expected = try Self.expected(root.required("Result"), scenarioCount: parameters.scenarios.count)
    }

    /// Computes the case and compares every asserted quantity.
    public func check() throws(EngineError) -> (result: DerivePM2Result, comparisons: [Comparison]) {
        let result = try DerivePM2Margin.compute(portfolio, parameters: parameters)
        var comparisons = [
            Comparison(
                quantity: "CollateralMTM", actual: result.collateralValueUSD, expected: expected.collateralValueUSD, tolerance: .absolute),
            Comparison(quantity: "OptionMTM", actual: result.optionValueUSD, expected: expected.optionValueUSD, tolerance: .relative),
        ]
        for (index, (scenario, expectedPnL)) in zip(result.scenarios, expected.scenarioPnLUSD).enumerated() {
            let small = Swift.abs(scenario.pnlUSD) < Self.smallValue || Swift.abs(expectedPnL) < Self.smallValue
            comparisons.append(
                Comparison(
                    quantity: "scenario[\(index)] \(scenario.scenario.label)", actual: scenario.pnlUSD, expected: expectedPnL,
                    tolerance: small ? .absolute : .relative))
        }
        // forge's assertApproxEqRel demands equality when the expected value is 0; a Double cannot, so a
        // figure below 1e-10 is compared absolutely, as the scenario P&Ls are.
        for (quantity, actual, expectedValue) in [
            ("MM", result.maintenanceMarginUSD, expected.maintenanceMarginUSD), ("IM", result.initialMarginUSD, expected.initialMarginUSD),
        ] {
            comparisons.append(
                Comparison(
                    quantity: quantity, actual: actual, expected: expectedValue,
                    tolerance: Swift.abs(expectedValue) < Self.smallValue ? .absolute : .relative))
        }
        if Swift.abs(expected.optionValueUSD) < Self.smallValue { comparisons[1].tolerance = .absolute }
        return (result, comparisons)
    }

    // MARK: - Reading

    static func parameters(_ root: FieldReader) throws(EngineError) -> DerivePM2Parameters {
        var scenarios: [DerivePM2Scenario] = []
        for entry in try root.required("Scenarios").elements() {
            let direction = try entry.required("VolShockDirection").oneOf(DerivePM2VolShock.allCases.map(\.deriveName))
            scenarios.append(
                DerivePM2Scenario(
                    spotShock: try number(entry.required("SpotShock")),
                    volShock: DerivePM2VolShock.allCases.first { $0.deriveName == direction } ?? .none,
                    dampeningFactor: try number(entry.required("DampeningFactor"))))
        }
        let vol = try root.required("VolShock")
        let skew = try root.required("SkewShock")
        let margin = try root.required("Margin")
        let basis = try root.required("BasisContingency")
        let other = try root.required("OtherContingency")
        return try DerivePM2Parameters(
            id: "derive-golden-case", scenarios: scenarios,
            volShock: .init(
                volRangeUp: try number(vol.required("VOLRANGEUP")), volRangeDown: try number(vol.required("VOLRANGEDOWN")),
                shortTermPower: try number(vol.required("SHORTTERMPOWER")), longTermPower: try number(vol.required("LONGTERMPOWER")),
                dteFloorSeconds: try daysInSeconds(vol.required("DTE_FLOOR")),
                minVolUpShock: try number(vol.required("MIN_VOL_EVAL_SHOCKED"))),
            skewShock: .init(
                linearBaseCap: try number(skew.required("LINEAR_SCALE_CAP")), absBaseCap: try number(skew.required("ABS_SCALE_CAP")),
                linearCBase: try number(skew.required("LINEAR_CBASE")), absCBase: try number(skew.required("ABS_CBASE")),
                minKStar: try number(skew.required("MIN_K_STAR")), widthScale: try number(skew.required("MIN_WIDTH_SCALE")),
                volParamStatic: try number(skew.required("VOL_PARAM_STATIC")), volParamScale: try number(skew.required("VOL_PARAM_SCALE"))),
            margin: .init(
                imFactor: try number(margin.required("IM_LOSS_FACTOR")), mmFactor: try number(margin.required("MM_LOSS_FACTOR")),
                shortRateMultScale: try number(margin.required("SHORT_RATE_MULTSCALE")),
                longRateMultScale: try number(margin.required("LONG_RATE_MULTSCALE")),
                shortRateAddScale: try number(margin.required("SHORT_RATE_ADDSCALE")),
                longRateAddScale: try number(margin.required("LONG_RATE_ADDSCALE")),
                shortBaseStaticDiscount: try number(margin.required("BASE_STATIC_DISCOUNT_NEG")),
                longBaseStaticDiscount: try number(margin.required("BASE_STATIC_DISCOUNT"))),
            basisContingency: .init(
                scenarioSpotUp: try number(basis.required("SCENARIO_SPOT_UP")),
                scenarioSpotDown: try number(basis.required("SCENARIO_SPOT_DOWN")),
                basisContAddFactor: try number(basis.required("BASIS_CONT_ADD_FACTOR")),
                basisContMultFactor: try number(basis.required("BASIS_CONT_MULT_FACTOR"))),
            otherContingency: .init(
                pegLossThreshold: try number(other.required("PEG_LOSS_THRESHOLD")),
                pegLossFactor: try number(other.required("PEG_LOSS_FACTOR")),
                confThreshold: try number(other.required("CONF_THRESHOLD")), confMargin: try number(other.required("CONF_MARGIN")),
                mmPerpPercent: try number(other.required("MM_PERP_PERCENT")), imPerpPercent: try number(other.required("IM_PERP_PERCENT")),
                mmOptionPercent: try number(other.required("MM_OPTION_PERCENT")),
                imOptionPercent: try number(other.required("IM_OPTION_PERCENT"))),
            forwardSplitSeconds: harnessForwardSplitSeconds, path: root.path)
    }

    static func portfolio(_ root: FieldReader) throws(EngineError) -> DerivePM2Portfolio {
        // Feeds by seconds to expiry.
        struct Feed {
            var forward: Double
            var forwardConfidence: Double
            var rate: Double
            var rateConfidence: Double
            var svi: DeriveSVI
            var volatilityConfidence: Double
            var path: String
        }
        var feeds: [Int64: Feed] = [:]
        if let list = try root.optional("OptionFeeds") {
            for entry in try list.elements() {
                let seconds = try entry.required("FeedExpiry").int64()
                let svi = try entry.required("SVIparam").elements()
                guard svi.count == 7 else {
                    throw .invalidField(
                        path: "\(entry.path).SVIparam", value: entry.value.excerpt,
                        reason: "must hold 7 values [a, b, rho, m, sigma, forward, tau]")
                }
                feeds[seconds] = Feed(
                    forward: try number(entry.required("Forward")), forwardConfidence: try number(entry.required("ForwardConfidence")),
                    rate: try number(entry.required("Rate")), rateConfidence: try number(entry.required("RateConfidence")),
                    svi: DeriveSVI(
                        a: try number(svi[0]), b: try number(svi[1]), rho: try number(svi[2]), m: try number(svi[3]),
                        sigma: try number(svi[4]), forwardUSD: try number(svi[5]), timeToExpiryYears: try number(svi[6])),
                    volatilityConfidence: try number(entry.required("OptionVolConfidences")), path: entry.path)
            }
        }

        var expiries: [DerivePM2Portfolio.Expiry] = []
        var expiryIndex: [Int64: Int] = [:]
        if let list = try root.optional("Options") {
            for entry in try list.elements() {
                let seconds = try entry.required("Expiry").int64()
                guard let feed = feeds[seconds] else {
                    throw .missingMarketData(name: "\(entry.path).Expiry \(seconds)", detail: "no OptionFeeds entry with that FeedExpiry")
                }
                let strike = try number(entry.required("Strike"))
                let option = DerivePM2Portfolio.Option(
                    strikeUSD: strike, kind: try flag(entry.required("IsCall")) ? .call : .put,
                    amountCoins: try number(entry.required("Amount")),
                    volatility: try feed.svi.volatility(strike: strike, path: "\(feed.path).SVIparam"),
                    volatilityConfidence: feed.volatilityConfidence, source: entry.path)
                if let index = expiryIndex[seconds] {
                    expiries[index].options.insert(option, at: 0)
                } else {
                    let split = DerivePM2Portfolio.Expiry.splitForward(
                        feed.forward, secondsToExpiry: seconds, splitSeconds: harnessForwardSplitSeconds)
                    expiryIndex[seconds] = expiries.count
                    expiries.append(
                        DerivePM2Portfolio.Expiry(
                            secondsToExpiry: seconds, forwardFixedUSD: split.fixedUSD, forwardVariableUSD: split.variableUSD,
                            rate: feed.rate,
                            forwardConfidence: feed.forwardConfidence, rateConfidence: feed.rateConfidence, options: [option],
                            source: feed.path))
                }
            }
        }

        var collaterals: [DerivePM2Portfolio.Collateral] = []
        if let list = try root.optional("Collaterals") {
            for entry in try list.elements() {
                let haircuts = DerivePM2CollateralHaircuts(
                    isRiskCancelling: try flag(entry.required("IsRiskCancelling")), mmHaircut: try number(entry.required("MMHaircut")),
                    imHaircut: try number(entry.required("IMHaircut")))
                guard haircuts.mmHaircut >= 0, haircuts.imHaircut >= 0, haircuts.mmHaircut <= 1,
                    haircuts.mmHaircut + haircuts.imHaircut <= 1
                else {
                    throw .invalidField(
                        path: entry.path, value: "", reason: "haircuts must satisfy 0 ≤ MMHaircut ≤ 1 and MMHaircut + IMHaircut ≤ 1")
                }
                collaterals.append(
                    DerivePM2Portfolio.Collateral(
                        name: try entry.required("Name").string(), amount: try number(entry.required("Amount")),
                        priceUSD: try number(entry.required("Price")), confidence: try number(entry.required("Confidence")),
                        haircuts: haircuts,
                        source: entry.path))
            }
        }
        // PMRM_2 fills collateral from the last, as it does options.
        collaterals.reverse()

        var perp: DerivePM2Portfolio.Perp?
        let perpCoins = try number(root.required("NumPerps"))
        if perpCoins != 0 {
            perp = DerivePM2Portfolio.Perp(
                positionCoins: perpCoins, priceUSD: try number(root.required("PerpPrice")),
                confidence: try number(root.required("PerpConfidence")),
                unrealisedValueUSD: try number(root.required("UnrealisedPerpPNL")) + number(root.required("UnrealisedFunding")),
                source: "\(root.path).NumPerps")
        }
        return DerivePM2Portfolio(
            underlying: root.path, spotUSD: try number(root.required("SpotPrice")),
            spotConfidence: try number(root.required("SpotConfidence")),
            stablePriceUSD: try number(root.required("StablePrice")), cashUSD: try number(root.required("Cash")), perp: perp,
            expiries: expiries, collaterals: collaterals)
    }

    static func expected(_ root: FieldReader, scenarioCount: Int) throws(EngineError) -> Expected {
        let regular = try root.optional("reg_losses")?.elements() ?? []
        let tail = try root.optional("tail_losses")?.elements() ?? []
        let skew = try root.optional("skew_losses")?.elements() ?? []
        // The harness's lookup: scenario i is reg_losses[i], else tail_losses[i − regular], else
        // skew_losses[i − tail − regular]; the P&L is element 2 (element 1 for skews).
        var pnls: [Double] = []
        var regularCount = 0
        var tailCount = 0
        for index in 0..<scenarioCount {
            if index < regular.count {
                regularCount += 1
                pnls.append(try number(element(regular[index], 2)))
            } else if index - regularCount < tail.count {
                tailCount += 1
                pnls.append(try number(element(tail[index - regularCount], 2)))
            } else if index - tailCount - regularCount < skew.count {
                pnls.append(try number(element(skew[index - tailCount - regularCount], 1)))
            } else {
                throw .missingField(path: "\(root.path): no loss data for scenario \(index)")
            }
        }
        return Expected(
            collateralValueUSD: try number(root.required("CollateralMTM")), optionValueUSD: try number(root.required("OptionMTM")),
            scenarioPnLUSD: pnls, maintenanceMarginUSD: try number(root.required("MM")), initialMarginUSD: try number(root.required("IM")))
    }

    static func element(_ reader: FieldReader, _ index: Int) throws(EngineError) -> FieldReader {
        let items = try reader.elements()
        guard index < items.count else { throw .missingField(path: "\(reader.path)[\(index)]") }
        return items[index]
    }

    /// A boolean written as `true`/`false` or `1`/`0`.
    static func flag(_ reader: FieldReader) throws(EngineError) -> Bool {
        switch reader.value {
        case .bool(let value): return value
        case .number("1"): return true
        case .number("0"): return false
        default: throw .invalidField(path: reader.path, value: reader.value.excerpt, reason: "must be true, false, 1 or 0")
        }
    }

    /// A number as Derive's harness reads it (`_toBNInt`): a JSON number, or a string of an optional `-`,
    /// digits and at most one `.` (a leading `.` allowed), with decimals beyond the 18th dropped.
    static func number(_ reader: FieldReader) throws(EngineError) -> Double {
        switch reader.value {
        case .number(let literal):
            guard let value = Double(literal), value.isFinite else {
                throw .invalidField(path: reader.path, value: literal, reason: "is not a finite number")
            }
            return value
        case .string(let text):
            guard let normalised = decimalText(text), let value = Double(normalised), value.isFinite else {
                throw .invalidField(path: reader.path, value: reader.value.excerpt, reason: "is not a decimal number")
            }
            return value
        default:
            throw .invalidField(path: reader.path, value: reader.value.excerpt, reason: "must be a number")
        }
    }

    /// `-?digits[.digits]` with at most 18 decimals kept, or nil when `text` is not of that form.
    static func decimalText(_ text: String) -> String? {
        var body = Substring(text)
        let negative = body.first == "-"
        if negative { body = body.dropFirst() }
        let parts = body.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        let integer = parts[0]
        let fraction = parts.count > 1 ? parts[1].prefix(18) : ""
        let isDigits: (Substring) -> Bool = { $0.utf8.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) } }
        guard !(integer.isEmpty && fraction.isEmpty), isDigits(integer), isDigits(fraction), body.count <= 400 else { return nil }
        return (negative ? "-" : "") + (integer.isEmpty ? "0" : String(integer)) + (fraction.isEmpty ? "" : "." + fraction)
    }

    /// `DTE_FLOOR` days → whole seconds exactly as the harness computes it (`x·1e18 · 1 days / 1e18`, truncated).
    static func daysInSeconds(_ reader: FieldReader) throws(EngineError) -> Int64 {
        let text: String
        switch reader.value {
        case .number(let literal): text = literal
        case .string(let string): text = string
        default: throw .invalidField(path: reader.path, value: reader.value.excerpt, reason: "must be a number")
        }
        guard let normalised = decimalText(text), !normalised.hasPrefix("-") else {
            throw .invalidField(path: reader.path, value: reader.value.excerpt, reason: "must be a non-negative decimal number of days")
        }
        let parts = normalised.split(separator: ".", maxSplits: 1)
        guard let days = Int64(parts[0]), days <= 400 else {
            throw .invalidField(path: reader.path, value: reader.value.excerpt, reason: "must be at most 400 days")
        }
        var seconds = days * 86_400
        if parts.count > 1, let fraction = UInt64(parts[1]) {
            var scale: UInt64 = 1
            for _ in 0..<parts[1].count { scale *= 10 }
            let product = fraction.multipliedFullWidth(by: 86_400)
            seconds += Int64(scale.dividingFullWidth(product).quotient)
        }
        return seconds
    }
}
