extension MarginParameters {
    /// Parses and validates a parameter-set document.
    ///
    /// Every key of the format is required (a risk team must state every value, none is defaulted in code);
    /// unknown keys are rejected so that a misspelt key cannot silently fall back. A missing, non-numeric or
    /// non-finite value is an error naming its key path (`params.derivatives.tier2.perpBasis`).
    public init(bytes: some Sequence<UInt8>) throws(EngineError) {
        let json: JSONValue
        do { json = try JSONParser.parse(bytes) } catch { throw .malformedDocument(document: "params", detail: error.description) }
        try self.init(json: json)
    }

    /// Parses and validates a parameter set already read as JSON.
    public init(json: JSONValue) throws(EngineError) {
        let root = FieldReader(json, path: "params")
        try root.rejectUnknownKeys([
            "id", "description", "tiers", "derivatives", "mr7Bands", "mr2HorizonDays", "mr3Factor", "mr5RateShift",
            "volatilityFloor", "spotHedgeAggregation", "volatilityShock", "mr9", "collateral",
            "liquidationPenaltyMinimum", "liquidationPenaltyMaximum", "borrowing", "interest", "classic", "account", "liquidation",
            "sandbox", "limits",
        ])
        id = try root.required("id").string()

        let tiers = try root.required("tiers")
        try tiers.rejectUnknownKeys(["tier1", "tier2", "otherCoins"])
        var tierOfCoin: [String: RiskTier] = [:]
        for tier in [RiskTier.tier1, .tier2] {
            for coin in try tiers.required(tier.rawValue).elements() {
                let name = try coin.string()
                guard tierOfCoin.updateValue(tier, forKey: name) == nil else {
                    throw .invalidField(path: coin.path, value: "\"\(name)\"", reason: "is listed in two tiers")
                }
            }
        }
        self.tierOfCoin = tierOfCoin
        tierOfOtherCoins = try Self.tier(tiers.required("otherCoins"))

        let derivativesReader = try root.required("derivatives")
        try derivativesReader.rejectUnknownKeys(Set(RiskTier.allCases.map(\.rawValue)))
        var derivatives: [RiskTier: TierParameters] = [:]
        for tier in RiskTier.allCases {
            let entry = try derivativesReader.required(tier.rawValue)
            try entry.rejectUnknownKeys([
                "mr1SpotMoves", "mr6ExtremeMove", "mr6LossFactor", "perpBasis", "annualBasis", "spotBasis",
                "mr7RateLinear", "mr7RateOption", "mr7BandDivisor", "imrFactor",
            ])
            var moves: [Double] = []
            for move in try entry.required("mr1SpotMoves").elements() {
                let value = try move.double(in: 0.000_001...0.99)
                if let previous = moves.last, value <= previous {
                    throw .invalidField(path: move.path, value: move.value.excerpt, reason: "must be larger than the move before it")
                }
                moves.append(value)
            }
            guard moves.count == 3 else {
                throw .invalidField(
                    path: "\(entry.path).mr1SpotMoves", value: "", reason: "must hold exactly 3 positive moves (the grid is 0, ±each)")
            }
            derivatives[tier] = TierParameters(
                mr1SpotMoves: moves,
                mr6ExtremeMove: try entry.required("mr6ExtremeMove").double(in: 0.000_001...0.99),
                mr6LossFactor: try entry.required("mr6LossFactor").double(in: 0...10),
                perpBasis: try Self.basisMove(entry.required("perpBasis")),
                annualBasis: try entry.required("annualBasis").double(in: 0...10),
                spotBasis: try Self.basisMove(entry.required("spotBasis")),
                mr7RateLinear: try entry.required("mr7RateLinear").double(in: 0...1),
                mr7RateOption: try entry.required("mr7RateOption").double(in: 0...1),
                mr7BandDivisor: try entry.required("mr7BandDivisor").positiveDouble(),
                imrFactor: try entry.required("imrFactor").double(in: 1...100))
        }
        self.derivatives = derivatives

        mr7Bands = try Self.bands(root.required("mr7Bands"), boundKey: "upToUsd", rateKey: "multiplier", rateRange: 0...1000)
        mr2HorizonDays = try root.required("mr2HorizonDays").double(in: 0...365)
        mr3Factor = try root.required("mr3Factor").double(in: 0...10)
        mr5RateShift = try root.required("mr5RateShift").double(in: 0...1)
        volatilityFloor = try root.required("volatilityFloor").double(in: 0.000_1...1)
        let aggregation = try root.required("spotHedgeAggregation")
        spotHedgeAggregation = SpotHedgeAggregation(rawValue: try aggregation.oneOf(["hedged", "conservativeMax"])) ?? .hedged

        var shockRows: [VolatilityShockRow] = []
        for row in try root.required("volatilityShock").elements() {
            try row.rejectUnknownKeys(["days", "upPoints", "upPercent", "downPoints", "downPercent"])
            let parsed = VolatilityShockRow(
                days: try row.required("days").double(in: 0...36_500),
                upPoints: try row.required("upPoints").double(in: 0...1000),
                upPercent: try row.required("upPercent").double(in: 0...100),
                downPoints: try row.required("downPoints").double(in: 0...1000),
                downPercent: try row.required("downPercent").double(in: 0...1))
            if let previous = shockRows.last, parsed.days <= previous.days {
                throw .invalidField(
                    path: "\(row.path).days", value: DecimalText.format(parsed.days), reason: "must be larger than the row before")
            }
            shockRows.append(parsed)
        }
        guard !shockRows.isEmpty else { throw .missingField(path: "params.volatilityShock[0]") }
        volatilityShock = shockRows

        let mr9Reader = try root.required("mr9")
        try mr9Reader.rejectUnknownKeys(["deviationBounds", "bands"])
        var deviationBounds: [Double] = []
        for bound in try mr9Reader.required("deviationBounds").elements() {
            let value = try bound.double(in: 0...1)
            if let previous = deviationBounds.last, value <= previous {
                throw .invalidField(path: bound.path, value: bound.value.excerpt, reason: "must be larger than the bound before it")
            }
            deviationBounds.append(value)
        }
        var bandUpTo: [Double?] = []
        var rates: [[Double]] = []
        let mr9Bands = try mr9Reader.required("bands").elements()
        for (position, band) in mr9Bands.enumerated() {
            try band.rejectUnknownKeys(["upToUsd", "rates"])
            bandUpTo.append(try Self.bound(band, key: "upToUsd", isLast: position == mr9Bands.count - 1, previous: bandUpTo.last ?? nil))
            let row = try band.required("rates").elements()
            guard row.count == deviationBounds.count + 1 else {
                throw .invalidField(
                    path: "\(band.path).rates", value: "", reason: "must hold \(deviationBounds.count + 1) rates, one per deviation column")
            }
            var parsedRow: [Double] = []
            for rate in row { parsedRow.append(try rate.double(in: 0...1)) }
            rates.append(parsedRow)
        }
        guard !rates.isEmpty else { throw .missingField(path: "params.mr9.bands[0]") }
        mr9 = StablecoinDepegTable(deviationBounds: deviationBounds, bandUpTo: bandUpTo, rates: rates)

        var collateral: [String: [ProgressiveBand]] = [:]
        let collateralReader = try root.required("collateral")
        for currency in try collateralReader.objectKeys() {
            collateral[currency] = try Self.bands(collateralReader.required(currency), boundKey: "upTo", rateKey: "rate", rateRange: 0...1)
        }
        collateralTiers = collateral
        liquidationPenaltyMinimum = try root.required("liquidationPenaltyMinimum").double(in: 0...1)
        let penaltyMaximum = try root.required("liquidationPenaltyMaximum")
        liquidationPenaltyMaximum = try penaltyMaximum.double(in: 0...1)
        guard liquidationPenaltyMaximum >= liquidationPenaltyMinimum else {
            throw .invalidField(
                path: penaltyMaximum.path, value: penaltyMaximum.value.excerpt,
                reason: "must be at least liquidationPenaltyMinimum \(DecimalText.format(liquidationPenaltyMinimum))")
        }

        let borrowing = try root.required("borrowing")
        try borrowing.rejectUnknownKeys(["bands", "limits", "otherLimitUsd"])
        var borrowingBands: [BorrowingBand] = []
        let borrowingBandReaders = try borrowing.required("bands").elements()
        for (position, band) in borrowingBandReaders.enumerated() {
            try band.rejectUnknownKeys(["upToUsd", "mmr", "imr"])
            borrowingBands.append(
                BorrowingBand(
                    upToUSD: try Self.bound(
                        band, key: "upToUsd", isLast: position == borrowingBandReaders.count - 1,
                        previous: borrowingBands.last?.upToUSD),
                    mmrRate: try band.required("mmr").double(in: 0...1),
                    imrRate: try band.required("imr").double(in: 0...1)))
        }
        guard !borrowingBands.isEmpty else { throw .missingField(path: "params.borrowing.bands[0]") }
        self.borrowingBands = borrowingBands
        let limits = try borrowing.required("limits")
        var borrowLimits: [String: Double] = [:]
        for currency in try limits.objectKeys() { borrowLimits[currency] = try limits.required(currency).positiveDouble() }
        self.borrowLimits = borrowLimits
        borrowLimitOtherUSD = try borrowing.required("otherLimitUsd").positiveDouble()

        let interest = try root.required("interest")
        try interest.rejectUnknownKeys(["quotas", "rates", "otherRate"])
        var quotas: [String: InterestFreeQuota] = [:]
        let quotaReader = try interest.required("quotas")
        for currency in try quotaReader.objectKeys() {
            let entry = try quotaReader.required(currency)
            try entry.rejectUnknownKeys(["base", "plusEquityOf"])
            quotas[currency] = InterestFreeQuota(
                base: try entry.required("base").double(in: 0...1e15), plusEquityOf: try entry.optional("plusEquityOf")?.string())
        }
        interestFreeQuotas = quotas
        var curves: [String: InterestRateCurve] = [:]
        let rateReader = try interest.required("rates")
        for currency in try rateReader.objectKeys() { curves[currency] = try Self.curve(rateReader.required(currency)) }
        interestRates = curves
        interestRateOther = try Self.curve(interest.required("otherRate"))

        let classic = try root.required("classic")
        try classic.rejectUnknownKeys(["positionTiers", "options", "otherOptions", "optionMarginFactor", "defaultLeverage"])
        let tierReader = try classic.required("positionTiers")
        var classicTiers: [RiskTier: [ClassicPositionTier]] = [:]
        for tier in RiskTier.allCases {
            var rows: [ClassicPositionTier] = []
            let readers = try tierReader.required(tier.rawValue).elements()
            for (position, row) in readers.enumerated() {
                try row.rejectUnknownKeys(["upToUsd", "mmr", "maxLeverage"])
                rows.append(
                    ClassicPositionTier(
                        upToUSD: try Self.bound(row, key: "upToUsd", isLast: position == readers.count - 1, previous: rows.last?.upToUSD),
                        mmrRate: try row.required("mmr").double(in: 0...1),
                        maxLeverage: try row.required("maxLeverage").double(in: 1...1000)))
            }
            guard !rows.isEmpty else { throw .missingField(path: "\(tierReader.path).\(tier.rawValue)[0]") }
            classicTiers[tier] = rows
        }
        classicPositionTiers = classicTiers
        var classicOptions: [String: ClassicOptionCoefficients] = [:]
        let optionReader = try classic.required("options")
        for coin in try optionReader.objectKeys() { classicOptions[coin] = try Self.coefficients(optionReader.required(coin)) }
        self.classicOptions = classicOptions
        classicOptionOther = try Self.coefficients(classic.required("otherOptions"))
        classicOptionMarginFactor = try classic.required("optionMarginFactor").positiveDouble()
        classicDefaultLeverage = try classic.required("defaultLeverage").double(in: 1...1000)

        let account = try root.required("account")
        try account.rejectUnknownKeys(["pmMinimumNetEquityUsd", "liquidationTrigger", "liquidationStop", "warnRatio"])
        pmMinimumNetEquityUSD = try account.required("pmMinimumNetEquityUsd").double(in: 0...1e12)
        liquidationTriggerRatio = try account.required("liquidationTrigger").positiveDouble()
        liquidationStopRatio = try account.required("liquidationStop").positiveDouble()
        warningRatio = try account.required("warnRatio").positiveDouble()
        guard liquidationStopRatio > liquidationTriggerRatio else {
            throw .invalidField(
                path: "params.account.liquidationStop", value: DecimalText.format(liquidationStopRatio),
                reason: "must be above liquidationTrigger")
        }

        let liquidation = try root.required("liquidation")
        try liquidation.rejectUnknownKeys(["slippage", "feeRate", "hedgePerpetualSettle", "sliceBuffer"])
        liquidationSlippage = try Self.perTier(liquidation.required("slippage"), range: 0...0.5)
        liquidationFeeRate = try Self.perTier(liquidation.required("feeRate"), range: 0...0.5)
        hedgePerpetualSettleCurrency = try liquidation.required("hedgePerpetualSettle").oneOf(["USDT", "USDC", "USD"])
        liquidationSliceBuffer = try liquidation.required("sliceBuffer").double(in: 0...1)

        let sandbox = try root.required("sandbox")
        try sandbox.rejectUnknownKeys(["fees", "halfSpread", "fundingHoursUtc", "funding", "settlementFeeRate"])
        let fundingReader = try sandbox.required("funding")
        try fundingReader.rejectUnknownKeys(["interestRate", "interestClamp", "cap"])
        funding = FundingFormula(
            interestRate: try fundingReader.required("interestRate").double(in: -0.01...0.01),
            interestClamp: try fundingReader.required("interestClamp").double(in: 0...0.01),
            cap: try fundingReader.required("cap").double(in: 0...0.1))
        settlementFeeRate = try sandbox.required("settlementFeeRate").double(in: 0...0.01)
        let feeReader = try sandbox.required("fees")
        let feeKeys = ["spotMaker", "spotTaker", "derivativesMaker", "derivativesTaker", "optionRate", "optionPremiumCap"]
        try feeReader.rejectUnknownKeys(Set(feeKeys))
        var fees: [String: Double] = [:]
        for key in feeKeys { fees[key] = try feeReader.required(key).double(in: -0.01...1) }
        self.fees = fees
        halfSpread = try Self.perTier(sandbox.required("halfSpread"), range: 0...0.5)
        var hours: [Int] = []
        for hour in try sandbox.required("fundingHoursUtc").elements() {
            let value = try hour.int64()
            guard (0...23).contains(value) else {
                throw .invalidField(path: hour.path, value: hour.value.excerpt, reason: "must be an hour 0–23")
            }
            hours.append(Int(value))
        }
        fundingHoursUTC = hours

        let limitsReader = try root.required("limits")
        try limitsReader.rejectUnknownKeys(["maxPositions", "maxTenorYears"])
        let maximum = try limitsReader.required("maxPositions").int64()
        guard (1...100_000).contains(maximum) else {
            throw .invalidField(path: "params.limits.maxPositions", value: String(maximum), reason: "must be between 1 and 100000")
        }
        maximumPositions = Int(maximum)
        maximumTenorYears = try limitsReader.required("maxTenorYears").double(in: 0.01...100)
        // MR4's curve-down move of a future or option expiry is max(perpBasis, annualBasis × τ) of its price,
        // τ at most maxTenorYears: at 100 % or more the price would reach zero (then ±∞ or NaN).
        for tier in RiskTier.allCases {
            guard let annual = derivatives[tier]?.annualBasis, annual * maximumTenorYears >= 1 else { continue }
            throw .invalidField(
                path: "params.derivatives.\(tier.rawValue).annualBasis", value: DecimalText.format(annual),
                reason: "times limits.maxTenorYears \(DecimalText.format(maximumTenorYears)) moves a price by 100 % or more in "
                    + "MR4's curve-down scenario (to zero or below): it must stay below 1")
        }
    }

    /// A basis move of MR4 (a fraction of the price), below 1 so that the curve-down price stays above zero.
    private static func basisMove(_ reader: FieldReader) throws(EngineError) -> Double {
        let value = try reader.double(in: 0...1)
        guard value < 1 else {
            throw .invalidField(
                path: reader.path, value: reader.value.excerpt,
                reason: "moves a price by 100 % in MR4's curve-down scenario (to zero): it must be below 1")
        }
        return value
    }

    private static func tier(_ reader: FieldReader) throws(EngineError) -> RiskTier {
        RiskTier(rawValue: try reader.oneOf(RiskTier.allCases.map(\.rawValue))) ?? .tier3
    }

    private static func perTier(_ reader: FieldReader, range: ClosedRange<Double>) throws(EngineError) -> [RiskTier: Double] {
        try reader.rejectUnknownKeys(Set(RiskTier.allCases.map(\.rawValue)))
        var values: [RiskTier: Double] = [:]
        for tier in RiskTier.allCases { values[tier] = try reader.required(tier.rawValue).double(in: range) }
        return values
    }

    /// An ascending band bound; the last band may be open (`null`).
    private static func bound(_ band: FieldReader, key: String, isLast: Bool, previous: Double?) throws(EngineError) -> Double? {
        guard let field = try band.optional(key) else {
            if isLast { return nil }
            throw .missingField(path: "\(band.path).\(key)")
        }
        let value = try field.positiveDouble()
        if let previous, value <= previous {
            throw .invalidField(path: field.path, value: field.value.excerpt, reason: "must be larger than the bound before it")
        }
        return value
    }

    private static func bands(
        _ reader: FieldReader, boundKey: String, rateKey: String, rateRange: ClosedRange<Double>
    ) throws(EngineError) -> [ProgressiveBand] {
        var bands: [ProgressiveBand] = []
        let readers = try reader.elements()
        for (position, band) in readers.enumerated() {
            try band.rejectUnknownKeys([boundKey, rateKey])
            bands.append(
                ProgressiveBand(
                    upTo: try bound(band, key: boundKey, isLast: position == readers.count - 1, previous: bands.last?.upTo),
                    rate: try band.required(rateKey).double(in: rateRange)))
        }
        guard !bands.isEmpty else { throw .missingField(path: "\(reader.path)[0]") }
        return bands
    }

    private static func curve(_ reader: FieldReader) throws(EngineError) -> InterestRateCurve {
        try reader.rejectUnknownKeys(["base", "slope1", "kink", "slope2", "lendingPool", "lendingPoolUsd"])
        let curve = InterestRateCurve(
            base: try reader.required("base").double(in: 0...10),
            slope1: try reader.required("slope1").double(in: 0...100),
            kink: try reader.required("kink").double(in: 0...1),
            slope2: try reader.required("slope2").double(in: 0...100),
            lendingPool: try reader.optional("lendingPool")?.positiveDouble(),
            lendingPoolUSD: try reader.optional("lendingPoolUsd")?.positiveDouble())
        guard (curve.lendingPool == nil) != (curve.lendingPoolUSD == nil) else {
            throw .invalidField(path: reader.path, value: "", reason: "needs exactly one of lendingPool and lendingPoolUsd")
        }
        return curve
    }

    private static func coefficients(_ reader: FieldReader) throws(EngineError) -> ClassicOptionCoefficients {
        try reader.rejectUnknownKeys(["a", "b", "c"])
        return ClassicOptionCoefficients(
            a: try reader.required("a").double(in: 0...10), b: try reader.required("b").double(in: 0...10),
            c: try reader.required("c").double(in: 0...10))
    }
}
