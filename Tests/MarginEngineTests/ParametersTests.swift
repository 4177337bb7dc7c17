import MarginDefaults
import MarginEngine
import MarginTestSupport
import Testing

/// The shipped parameter set `okx-2025-01` (docs/methodology/parameters.md) and the loader's validation.
@Suite struct ParametersTests {
    static let shippedID = "okx-2025-01"
    static let shippedResource = "params/okx-2025-01.json"
    static let tier2Coins = ["SOL", "DOGE", "PEPE", "XRP", "BNB", "SHIB", "LTC", "ORDI", "WLD", "BCH", "ADA"]
    static let shockTableDays: [Double] = [1, 3, 7, 14, 30, 60, 90, 180, 365, 730]
    static let maximumPositions = 1000

    static var parameters: MarginParameters { Fixtures.parameters }

    /// The shipped document as JSON, read from the bundle.
    static func shippedJSON() throws -> JSONValue {
        let path = try #require(ShippedData.resourcePath(shippedResource))
        return try JSONParser.parse(try ShippedData.readFile(path))
    }

    // MARK: - The shipped set holds every table of docs/methodology/parameters.md

    @Test func shippedSetLoadsWithItsID() throws {
        #expect(Self.parameters.id == Self.shippedID)
        let reloaded = try MarginParameters(json: try Self.shippedJSON())
        #expect(reloaded.id == Self.shippedID)
    }

    @Test func tiersOfUnderlyings() {
        let parameters = Self.parameters
        #expect(parameters.tier(of: "BTC") == .tier1)
        #expect(parameters.tier(of: "ETH") == .tier1)
        for coin in Self.tier2Coins { #expect(parameters.tier(of: coin) == .tier2, "\(coin)") }
        #expect(parameters.tier(of: "SOL") == .tier2)
        #expect(parameters.tier(of: "AVAX") == .tier3)
        #expect(parameters.tier(of: "UNLISTED") == .tier3)
        #expect(parameters.tierOfOtherCoins == .tier3)
        #expect(parameters.tierOfCoin.count == 2 + Self.tier2Coins.count)
    }

    struct TierRow: Sendable, CustomTestStringConvertible {
        var tier: RiskTier
        var moves: [Double]
        var extreme: Double
        var perpBasis: Double
        var annualBasis: Double
        var rateLinear: Double
        var divisor: Double
        var testDescription: String { tier.rawValue }
    }

    @Test(arguments: [
        TierRow(
            tier: .tier1, moves: [0.04, 0.08, 0.12], extreme: 0.24, perpBasis: 0.002, annualBasis: 0.05, rateLinear: 0.0045, divisor: 1),
        TierRow(
            tier: .tier2, moves: [0.06, 0.12, 0.18], extreme: 0.36, perpBasis: 0.008, annualBasis: 0.15, rateLinear: 0.007, divisor: 5),
        TierRow(tier: .tier3, moves: [0.08, 0.16, 0.25], extreme: 0.50, perpBasis: 0.016, annualBasis: 0.30, rateLinear: 0.01, divisor: 5),
    ])
    func derivativesParametersPerTier(_ row: TierRow) throws {
        let tier = try #require(Self.parameters.derivatives[row.tier])
        #expect(tier.mr1SpotMoves == row.moves)
        #expect(tier.mr6ExtremeMove == row.extreme)
        #expect(tier.mr6LossFactor == 0.5)
        #expect(tier.perpBasis == row.perpBasis)
        #expect(tier.annualBasis == row.annualBasis)
        #expect(tier.spotBasis == 0)
        #expect(tier.mr7RateLinear == row.rateLinear)
        #expect(tier.mr7RateOption == 0.003)
        #expect(tier.mr7BandDivisor == row.divisor)
        #expect(tier.imrFactor == 1.3)
    }

    @Test func derivativeParametersFollowTheCoinsTier() {
        #expect(Self.parameters.derivativeParameters(for: "SOL").mr1SpotMoves == [0.06, 0.12, 0.18])
        #expect(Self.parameters.derivativeParameters(for: "AVAX").mr1SpotMoves == [0.08, 0.16, 0.25])
    }

    @Test func mr7BandsAndScalars() {
        let parameters = Self.parameters
        #expect(parameters.mr7Bands.map(\.upTo) == [250_000, 500_000, 1_000_000, 2_000_000, 3_000_000, 4_000_000, nil])
        #expect(parameters.mr7Bands.map(\.rate) == [1, 2, 4, 6, 8, 10, 12])
        let tier2 = parameters.mr7Bands(for: .tier2)
        #expect(isClose(tier2[0].upTo ?? 0, 50_000))
        #expect(isClose(tier2[5].upTo ?? 0, 800_000))
        #expect(tier2[6].upTo == nil)
        #expect(parameters.mr2HorizonDays == 1)
        #expect(parameters.mr3Factor == 0.30)
        #expect(parameters.mr5RateShift == 0.03)
        #expect(parameters.volatilityFloor == 0.05)
        #expect(parameters.spotHedgeAggregation == .hedged)
    }

    @Test func volatilityShockTable() {
        let rows = Self.parameters.volatilityShock
        #expect(rows.map(\.days) == Self.shockTableDays)
        #expect(rows.map(\.upPoints) == [30.0, 21.6, 16.7, 13.6, 10.8, 9.9, 9.4, 8.6, 7.8, 7.1])
        #expect(rows.map(\.upPercent) == [1.387, 0.998, 0.774, 0.628, 0.500, 0.457, 0.433, 0.396, 0.361, 0.330])
        #expect(rows.map(\.downPoints) == [15.0, 10.8, 8.4, 6.8, 5.4, 4.9, 4.7, 4.3, 3.9, 3.6])
        #expect(rows.map(\.downPercent) == [0.500, 0.499, 0.387, 0.314, 0.250, 0.228, 0.217, 0.198, 0.181, 0.165])
    }

    @Test func mr9Table() {
        let table = Self.parameters.mr9
        #expect(table.deviationBounds == [0.005, 0.01, 0.02, 0.05, 0.10, 0.20])
        #expect(table.bandUpTo == [1_000_000, 5_000_000, 20_000_000, 50_000_000, 120_000_000, nil])
        #expect(table.rates.count == 6)
        #expect(table.rates.allSatisfy { $0.count == 7 })
        #expect(table.rates[0][0] == 0.0075)
        #expect(table.rates[0] == [0.0075, 0.015, 0.03, 0.06, 0.12, 0.25, 0.40])
        #expect(table.rates[5] == [0.075, 0.085, 0.10, 0.18, 0.30, 0.50, 0.60])
        #expect(table.rates.map(\.[0]) == [0.0075, 0.0175, 0.025, 0.035, 0.05, 0.075])
        #expect(table.schedule(deviation: 0.003).map(\.rate) == table.rates.map(\.[0]))
        #expect(table.schedule(deviation: 0.005).map(\.rate) == table.rates.map(\.[0]))
        #expect(table.schedule(deviation: 0.015).map(\.rate) == table.rates.map(\.[2]))
        #expect(table.schedule(deviation: 0.25).map(\.rate) == table.rates.map(\.[6]))
        #expect(table.schedule(deviation: 0.25).last?.upTo == nil)
    }

    @Test func collateralTiers() {
        let tiers = Self.parameters.collateralTiers
        #expect(Set(tiers.keys) == ["USDT", "USDC", "BTC", "ETH", "SOL", "LTC", "XRP", "DOGE", "BNB", "BCH", "ADA"])
        #expect(
            tiers["BTC"] == [
                ProgressiveBand(upTo: 100, rate: 0.98), ProgressiveBand(upTo: 500, rate: 0.95), ProgressiveBand(upTo: 1000, rate: 0.90),
                ProgressiveBand(upTo: 2000, rate: 0.80), ProgressiveBand(upTo: nil, rate: 0.60),
            ])
        #expect(tiers["USDT"] == tiers["USDC"])
        #expect(tiers["USDT"]?.map(\.rate) == [1.0, 0.975, 0.95, 0.90])
        #expect(tiers["ETH"]?.map(\.upTo) == [1000, 5000, 20000, nil])
        #expect(tiers["SOL"]?.map(\.rate) == [0.95, 0.90, 0.70])
        #expect(tiers["ADA"] == [ProgressiveBand(upTo: 1_500_000, rate: 0.90), ProgressiveBand(upTo: nil, rate: 0.70)])
        #expect(Self.parameters.liquidationPenaltyMinimum == 0.02)
        #expect(Self.parameters.liquidationPenaltyMaximum == 0.20)
    }

    @Test func borrowingBandsAndLimits() {
        let bands = Self.parameters.borrowingBands
        #expect(bands.map(\.upToUSD) == [1_000_000, 5_000_000, 20_000_000, nil])
        #expect(bands.map(\.mmrRate) == [0.02, 0.03, 0.05, 0.10])
        #expect(bands.map(\.imrRate) == [0.10, 0.125, 0.20, 0.333])
        #expect(Self.parameters.borrowLimits == ["USDT": 10_000_000, "USDC": 10_000_000, "BTC": 200, "ETH": 3000])
        #expect(Self.parameters.borrowLimitOtherUSD == 1_000_000)
    }

    @Test func interestQuotasAndRates() throws {
        let quotas = Self.parameters.interestFreeQuotas
        #expect(quotas["USDT"]?.base == 20_000)
        #expect(quotas["USDT"]?.plusEquityOf == "USDC")
        #expect(quotas["USDC"]?.base == 5000)
        #expect(quotas["USDC"]?.plusEquityOf == "USDT")
        #expect(quotas["BTC"]?.base == 1)
        #expect(quotas["BTC"].map { $0.plusEquityOf == nil } == true)
        #expect(quotas["ETH"]?.base == 5)
        #expect(quotas["LTC"]?.base == 10)
        #expect(quotas["XRP"]?.base == 5000)
        #expect(quotas["SOL"]?.base == 50)
        #expect(quotas["DOGE"]?.base == 10_000)
        #expect(quotas["AVAX"] == nil)
        let usdt = try #require(Self.parameters.interestRates["USDT"])
        #expect([usdt.base, usdt.slope1, usdt.kink, usdt.slope2] == [0.02, 0.08, 0.80, 1.00])
        #expect(usdt.lendingPool == 50_000_000)
        #expect(Self.parameters.interestRates["BTC"]?.lendingPool == 1000)
        #expect(Self.parameters.interestRates["ETH"]?.lendingPool == 20_000)
        let other = Self.parameters.interestRateOther
        #expect([other.base, other.slope1, other.kink, other.slope2] == [0.02, 0.10, 0.70, 1.50])
        #expect(other.lendingPool == nil)
        #expect(other.lendingPoolUSD == 1_000_000)
    }

    @Test func classicTiersAndOptions() throws {
        let tiers = Self.parameters.classicPositionTiers
        let tier1 = try #require(tiers[.tier1])
        #expect(tier1.map(\.upToUSD) == [500_000, 2_000_000, 5_000_000, 20_000_000, 50_000_000, nil])
        #expect(tier1.map(\.mmrRate) == [0.004, 0.006, 0.01, 0.02, 0.05, 0.10])
        #expect(tier1.map(\.maxLeverage) == [100, 50, 33, 20, 10, 5])
        #expect(tiers[.tier2]?.map(\.upToUSD) == [100_000, 500_000, 2_000_000, nil])
        #expect(tiers[.tier2]?.map(\.mmrRate) == [0.01, 0.02, 0.05, 0.10])
        #expect(tiers[.tier3]?.map(\.maxLeverage) == [20, 10, 5])
        #expect(Self.parameters.classicOptions["BTC"] == ClassicOptionCoefficients(a: 0.1, b: 0.15, c: 0.03))
        #expect(Self.parameters.classicOptions["ETH"] == ClassicOptionCoefficients(a: 0.1, b: 0.15, c: 0.05))
        #expect(Self.parameters.classicOptionOther == ClassicOptionCoefficients(a: 0.15, b: 0.2, c: 0.05))
        #expect(Self.parameters.classicOptionMarginFactor == 1)
    }

    @Test func accountLiquidationSandboxAndLimits() {
        let parameters = Self.parameters
        #expect(parameters.pmMinimumNetEquityUSD == 10_000)
        #expect(parameters.liquidationTriggerRatio == 1.0)
        #expect(parameters.liquidationStopRatio == 1.1)
        #expect(parameters.warningRatio == 3.0)
        #expect(parameters.liquidationSlippage == [.tier1: 0.001, .tier2: 0.003, .tier3: 0.005])
        #expect(parameters.liquidationFeeRate == [.tier1: 0.001, .tier2: 0.002, .tier3: 0.003])
        #expect(parameters.hedgePerpetualSettleCurrency == "USDT")
        #expect(
            parameters.fees == [
                "spotMaker": 0.0008, "spotTaker": 0.001, "derivativesMaker": 0.0002, "derivativesTaker": 0.0005,
                "optionRate": 0.0002, "optionPremiumCap": 0.125,
            ])
        #expect(parameters.halfSpread == [.tier1: 0.0001, .tier2: 0.0003, .tier3: 0.0005])
        #expect(parameters.fundingHoursUTC == [0, 8, 16])
        #expect(parameters.maximumPositions == Self.maximumPositions)
    }

    // MARK: - Volatility shock interpolation

    @Test func volatilityShockAtTwoDaysIsTheMeanOfTheOneAndThreeDayRows() {
        let shock = Self.parameters.volatilityShock(days: 2)
        #expect(shock.days == 2)
        #expect(isClose(shock.upPoints, (30.0 + 21.6) / 2))
        #expect(isClose(shock.upPercent, (1.387 + 0.998) / 2))
        #expect(isClose(shock.downPoints, (15.0 + 10.8) / 2))
        #expect(isClose(shock.downPercent, (0.500 + 0.499) / 2))
    }

    @Test func volatilityShockInterpolatesLinearlyInDays() {
        let shock = Self.parameters.volatilityShock(days: 10)  // 3/7 of the way from 7 to 14 days
        #expect(isClose(shock.upPoints, 16.7 + (13.6 - 16.7) * 3 / 7))
        #expect(isClose(shock.downPercent, 0.387 + (0.314 - 0.387) * 3 / 7))
    }

    @Test(arguments: [1.0, 0.5, 0, -3])
    func volatilityShockIsFlatAtAndBelowOneDay(_ days: Double) {
        let shock = Self.parameters.volatilityShock(days: days)
        #expect([shock.upPoints, shock.upPercent, shock.downPoints, shock.downPercent] == [30.0, 1.387, 15.0, 0.500])
    }

    @Test(arguments: [730.0, 731, 1000, 1e6])
    func volatilityShockIsFlatAtAndAbove730Days(_ days: Double) {
        let shock = Self.parameters.volatilityShock(days: days)
        #expect([shock.upPoints, shock.upPercent, shock.downPoints, shock.downPercent] == [7.1, 0.330, 3.6, 0.165])
    }

    @Test func volatilityShockHitsEveryRowAndNeverIncreasesWithTime() {
        let parameters = Self.parameters
        for row in parameters.volatilityShock {
            #expect(isClose(parameters.volatilityShock(days: row.days).upPoints, row.upPoints), "\(row.days) days")
        }
        var previous = parameters.volatilityShock(days: 0)
        for day in stride(from: 0.25, through: 800, by: 0.25) {
            let shock = parameters.volatilityShock(days: day)
            #expect(shock.upPoints <= previous.upPoints + 1e-12 && shock.upPercent <= previous.upPercent + 1e-12, "\(day) days")
            previous = shock
        }
    }

    // MARK: - Progressive charges

    static let openBands = [
        ProgressiveBand(upTo: 100, rate: 0.1), ProgressiveBand(upTo: 300, rate: 0.2), ProgressiveBand(upTo: nil, rate: 0.5),
    ]
    static let closedBands = [ProgressiveBand(upTo: 100, rate: 0.1), ProgressiveBand(upTo: 300, rate: 0.2)]

    struct ChargeCase: Sendable, CustomTestStringConvertible {
        var name: String
        var amount: Double
        var bands: [ProgressiveBand]
        var expected: Double
        var testDescription: String { name }
    }

    @Test(arguments: [
        ChargeCase(name: "zero", amount: 0, bands: openBands, expected: 0),
        ChargeCase(name: "negative", amount: -50, bands: openBands, expected: 0),
        ChargeCase(name: "inside the first band", amount: 50, bands: openBands, expected: 5),
        ChargeCase(name: "at the first bound", amount: 100, bands: openBands, expected: 10),
        ChargeCase(name: "across two bands", amount: 200, bands: openBands, expected: 10 + 20),
        ChargeCase(name: "into the open band", amount: 1000, bands: openBands, expected: 10 + 40 + 350),
        ChargeCase(name: "beyond a closed last band", amount: 1000, bands: closedBands, expected: 10 + 900 * 0.2),
        ChargeCase(
            name: "shipped BTC collateral at 150 coins", amount: 150, bands: Fixtures.parameters.collateralTiers["BTC"] ?? [],
            expected: 100 * 0.98 + 50 * 0.95),
        ChargeCase(
            name: "shipped MR7 bands at 600k", amount: 600_000, bands: Fixtures.parameters.mr7Bands,
            expected: 250_000 * 1 + 250_000 * 2 + 100_000 * 4),
    ])
    func progressiveChargeIsChargedBandByBand(_ testCase: ChargeCase) {
        let charge = progressiveCharge(testCase.amount, bands: testCase.bands)
        #expect(isClose(charge, testCase.expected, absolute: 1e-12), "\(charge) vs \(testCase.expected)")
    }

    // MARK: - Validation of edited documents

    enum Step: Sendable {
        case key(String)
        case index(Int)
    }

    /// `a.b[2].c` as steps.
    static func steps(_ path: String) -> [Step] {
        var steps: [Step] = []
        for segment in path.split(separator: ".") {
            var rest = segment[...]
            if let bracket = rest.firstIndex(of: "[") {
                steps.append(.key(String(rest[..<bracket])))
                rest = rest[bracket...]
                while rest.first == "[", let close = rest.firstIndex(of: "]") {
                    steps.append(.index(Int(rest[rest.index(after: rest.startIndex)..<close]) ?? -1))
                    rest = rest[rest.index(after: close)...]
                }
            } else {
                steps.append(.key(String(rest)))
            }
        }
        return steps
    }

    /// `value` with the member at `steps` replaced by `newValue` (removed when nil, added when missing).
    static func edited(_ value: JSONValue, _ steps: ArraySlice<Step>, _ newValue: JSONValue?) -> JSONValue {
        guard let step = steps.first else { return newValue ?? .null }
        let rest = steps.dropFirst()
        switch (value, step) {
        case (.object(var object), .key(let key)):
            object[key] = rest.isEmpty ? newValue : edited(object[key] ?? .null, rest, newValue)
            return .object(object)
        case (.array(var items), .index(let index)) where items.indices.contains(index):
            if rest.isEmpty {
                if let newValue { items[index] = newValue } else { items.remove(at: index) }
            } else {
                items[index] = edited(items[index], rest, newValue)
            }
            return .array(items)
        default:
            Issue.record("cannot follow \(step) in \(value.excerpt)")
            return value
        }
    }

    static func shippedJSON(editing path: String, to newValue: JSONValue?) throws -> JSONValue {
        edited(try shippedJSON(), steps(path)[...], newValue)
    }

    @Test func editingHelperReachesNestedValues() throws {
        let json = try Self.shippedJSON(editing: "mr9.bands[1].rates[3]", to: .number("0.0801"))
        let parameters = try MarginParameters(json: json)
        #expect(parameters.mr9.rates[1][3] == 0.0801)
        #expect(parameters.mr9.rates[1][2] == 0.04)
    }

    @Test func shippedDocumentRoundTripsThroughTheWriter() throws {
        let text = JSONWriter.serialize(try Self.shippedJSON(), pretty: true)
        let parameters = try MarginParameters(bytes: Array(text.utf8))
        #expect(parameters.id == Self.shippedID)
        #expect(parameters.mr9 == Self.parameters.mr9)
        #expect(parameters.volatilityShock == Self.parameters.volatilityShock)
        #expect(parameters.collateralTiers == Self.parameters.collateralTiers)
    }

    @Test(arguments: [
        "id", "tiers", "tiers.otherCoins", "derivatives.tier3", "derivatives.tier2.perpBasis", "derivatives.tier1.mr1SpotMoves",
        "mr7Bands", "mr7Bands[2].upToUsd", "mr3Factor", "volatilityFloor", "spotHedgeAggregation", "volatilityShock",
        "volatilityShock[3].upPercent", "mr9.deviationBounds", "mr9.bands[2].rates", "collateral", "liquidationPenaltyMinimum",
        "borrowing.bands[0].mmr", "borrowing.otherLimitUsd", "interest.quotas.USDT.base", "interest.otherRate.kink",
        "classic.positionTiers.tier2", "classic.optionMarginFactor", "account.warnRatio", "liquidation.slippage.tier3",
        "liquidation.hedgePerpetualSettle", "sandbox.fees.optionRate", "sandbox.fundingHoursUtc", "limits",
        "limits.maxPositions", "limits.maxTenorYears", "liquidationPenaltyMaximum",
    ])
    func missingRequiredKeyIsNamed(_ path: String) throws {
        let json = try Self.shippedJSON(editing: path, to: nil)
        let error = #expect(throws: EngineError.self) { try MarginParameters(json: json) }
        #expect(error == .missingField(path: "params.\(path)"))
        #expect(error?.description == "params.\(path): required field is missing or empty")
    }

    struct BadValue: Sendable, CustomTestStringConvertible {
        var path: String
        var value: JSONValue
        var testDescription: String { "\(path) = \(value.excerpt)" }
    }

    @Test(arguments: [
        BadValue(path: "mr3Factor", value: .string("NaN")),
        BadValue(path: "mr3Factor", value: .string("1e999")),
        BadValue(path: "derivatives.tier1.imrFactor", value: .number("1e999")),
        BadValue(path: "derivatives.tier2.mr1SpotMoves[0]", value: .string("NaN")),
        BadValue(path: "mr7Bands[0].upToUsd", value: .string("1e999")),
        BadValue(path: "mr7Bands[6].multiplier", value: .string("NaN")),
        BadValue(path: "volatilityShock[0].days", value: .string("NaN")),
        BadValue(path: "mr9.bands[1].rates[3]", value: .string("NaN")),
        BadValue(path: "mr9.deviationBounds[0]", value: .number("1e999")),
        BadValue(path: "collateral.BTC[0].rate", value: .string("1e999")),
        BadValue(path: "borrowing.limits.BTC", value: .string("NaN")),
        BadValue(path: "interest.rates.ETH.lendingPool", value: .string("NaN")),
        BadValue(path: "classic.otherOptions.b", value: .string("1e999")),
        BadValue(path: "account.liquidationTrigger", value: .string("1e999")),
        BadValue(path: "sandbox.fees.spotTaker", value: .string("NaN")),
        BadValue(path: "sandbox.fundingHoursUtc[1]", value: .string("1e999")),
        BadValue(path: "limits.maxPositions", value: .string("NaN")),
    ])
    func nonFiniteValueIsNamed(_ testCase: BadValue) throws {
        let json = try Self.shippedJSON(editing: testCase.path, to: testCase.value)
        let error = #expect(throws: EngineError.self) { try MarginParameters(json: json) }
        guard case .invalidField(let path, let value, _) = error else {
            Issue.record("expected invalidField, got \(String(describing: error))")
            return
        }
        #expect(path == "params.\(testCase.path)")
        #expect(value == testCase.value.excerpt)
        #expect(error?.description.hasPrefix("params.\(testCase.path): \(testCase.value.excerpt)") == true)
    }

    @Test(arguments: [
        "mr3Factr", "tiers.tier4", "derivatives.tier4", "derivatives.tier1.mr8Rate", "volatilityShock[2].upPoint",
        "mr9.bands[0].extra", "mr7Bands[1].rate", "borrowing.bands[1].note", "interest.quotas.BTC.plusEquity",
        "interest.otherRate.lendingPoolUSD", "classic.options.BTC.d", "account.foo", "liquidation.feeRate.tier0",
        "sandbox.fees.makerFee", "limits.maxOrders",
    ])
    func unknownKeyIsNamed(_ path: String) throws {
        let json = try Self.shippedJSON(editing: path, to: .number("1"))
        let error = #expect(throws: EngineError.self) { try MarginParameters(json: json) }
        #expect(error == .invalidField(path: "params.\(path)", value: "", reason: "is not a known field"))
    }

    struct BadEdit: Sendable, CustomTestStringConvertible {
        var name: String
        var path: String
        var value: JSONValue
        /// The path the error message starts with.
        var errorPath: String
        var mentions: [String]
        var testDescription: String { name }
    }

    @Test(arguments: [
        BadEdit(
            name: "descending MR7 bound", path: "mr7Bands[1].upToUsd", value: .number("100000"),
            errorPath: "params.mr7Bands[1].upToUsd", mentions: ["100000", "larger"]),
        BadEdit(
            name: "repeated collateral bound", path: "collateral.BTC[1].upTo", value: .number("100"),
            errorPath: "params.collateral.BTC[1].upTo", mentions: ["100", "larger"]),
        BadEdit(
            name: "descending borrowing bound", path: "borrowing.bands[2].upToUsd", value: .number("1000"),
            errorPath: "params.borrowing.bands[2].upToUsd", mentions: ["1000"]),
        BadEdit(
            name: "descending MR9 band", path: "mr9.bands[1].upToUsd", value: .number("10"),
            errorPath: "params.mr9.bands[1].upToUsd", mentions: ["10"]),
        BadEdit(
            name: "repeated classic tier bound", path: "classic.positionTiers.tier2[1].upToUsd", value: .number("100000"),
            errorPath: "params.classic.positionTiers.tier2[1].upToUsd", mentions: ["100000"]),
        BadEdit(
            name: "descending MR1 move", path: "derivatives.tier1.mr1SpotMoves[1]", value: .number("0.03"),
            errorPath: "params.derivatives.tier1.mr1SpotMoves[1]", mentions: ["0.03"]),
        BadEdit(
            name: "descending deviation bound", path: "mr9.deviationBounds[2]", value: .number("0.01"),
            errorPath: "params.mr9.deviationBounds[2]", mentions: ["0.01"]),
        BadEdit(
            name: "repeated shock row", path: "volatilityShock[1].days", value: .number("1"),
            errorPath: "params.volatilityShock[1].days", mentions: ["1"]),
        BadEdit(
            name: "open band before the last", path: "mr7Bands[3].upToUsd", value: .null,
            errorPath: "params.mr7Bands[3].upToUsd", mentions: ["missing"]),
        BadEdit(
            name: "coin in two tiers", path: "tiers.tier2", value: .array([.string("SOL"), .string("BTC")]),
            errorPath: "params.tiers.tier2[1]", mentions: ["BTC", "two tiers"]),
        BadEdit(
            name: "two MR1 moves", path: "derivatives.tier3.mr1SpotMoves", value: .array([.number("0.08"), .number("0.16")]),
            errorPath: "params.derivatives.tier3.mr1SpotMoves", mentions: ["3"]),
        BadEdit(
            name: "MR9 row of the wrong width", path: "mr9.bands[0].rates", value: .array([.number("0.0075")]),
            errorPath: "params.mr9.bands[0].rates", mentions: ["7 rates"]),
        BadEdit(
            name: "stop below trigger", path: "account.liquidationStop", value: .number("0.9"),
            errorPath: "params.account.liquidationStop", mentions: ["0.9"]),
        BadEdit(
            name: "funding hour 24", path: "sandbox.fundingHoursUtc[0]", value: .number("24"),
            errorPath: "params.sandbox.fundingHoursUtc[0]", mentions: ["24"]),
        BadEdit(
            name: "funding hour with a fraction", path: "sandbox.fundingHoursUtc[0]", value: .number("0.5"),
            errorPath: "params.sandbox.fundingHoursUtc[0]", mentions: ["0.5"]),
        BadEdit(
            name: "zero positions allowed", path: "limits.maxPositions", value: .number("0"),
            errorPath: "params.limits.maxPositions", mentions: ["0"]),
        BadEdit(
            name: "both lending pools", path: "interest.rates.BTC.lendingPoolUsd", value: .number("1000000"),
            errorPath: "params.interest.rates.BTC", mentions: ["lendingPool"]),
        BadEdit(
            name: "unknown aggregation", path: "spotHedgeAggregation", value: .string("average"),
            errorPath: "params.spotHedgeAggregation", mentions: ["average"]),
        BadEdit(
            name: "unknown tier of other coins", path: "tiers.otherCoins", value: .string("tier4"),
            errorPath: "params.tiers.otherCoins", mentions: ["tier4"]),
        BadEdit(
            name: "IMR factor below 1", path: "derivatives.tier2.imrFactor", value: .number("0.5"),
            errorPath: "params.derivatives.tier2.imrFactor", mentions: ["0.5"]),
        BadEdit(
            name: "negative rate", path: "collateral.ETH[0].rate", value: .number("-0.1"),
            errorPath: "params.collateral.ETH[0].rate", mentions: ["-0.1"]),
        BadEdit(
            name: "empty MR7 bands", path: "mr7Bands", value: .array([]),
            errorPath: "params.mr7Bands[0]", mentions: []),
        BadEdit(
            name: "id not a string", path: "id", value: .number("1"),
            errorPath: "params.id", mentions: ["string"]),
        BadEdit(
            name: "perpetual basis of 100 % (the curve-down move reaches zero)", path: "derivatives.tier1.perpBasis",
            value: .number("1"), errorPath: "params.derivatives.tier1.perpBasis", mentions: ["1", "zero"]),
        BadEdit(
            name: "spot basis of 150 %", path: "derivatives.tier2.spotBasis", value: .number("1.5"),
            errorPath: "params.derivatives.tier2.spotBasis", mentions: ["1.5"]),
        BadEdit(
            name: "annual basis that reaches 100 % within the longest tenor", path: "derivatives.tier3.annualBasis",
            value: .number("0.4"), errorPath: "params.derivatives.tier3.annualBasis", mentions: ["0.4", "maxTenorYears"]),
        BadEdit(
            name: "penalty maximum below the minimum", path: "liquidationPenaltyMaximum", value: .number("0.01"),
            errorPath: "params.liquidationPenaltyMaximum", mentions: ["0.01"]),
        BadEdit(
            name: "hedge perpetual in an unknown currency", path: "liquidation.hedgePerpetualSettle", value: .string("EUR"),
            errorPath: "params.liquidation.hedgePerpetualSettle", mentions: ["EUR"]),
    ])
    func invalidValueIsNamed(_ testCase: BadEdit) throws {
        let json = try Self.shippedJSON(editing: testCase.path, to: testCase.value)
        let error = #expect(throws: EngineError.self) { try MarginParameters(json: json) }
        guard let error else { return }
        #expect(error.description.hasPrefix(testCase.errorPath + ":") || error.description.hasPrefix(testCase.errorPath + " "), "\(error)")
        for fragment in testCase.mentions {
            #expect(error.description.contains(fragment), "\(error) should mention \(fragment)")
        }
    }

    @Test func malformedParameterDocumentIsNamed() {
        let error = #expect(throws: EngineError.self) { try MarginParameters(bytes: Array(#"{"id": "x",}"#.utf8)) }
        guard case .malformedDocument(let document, _) = error else {
            Issue.record("expected malformedDocument, got \(String(describing: error))")
            return
        }
        #expect(document == "params")
    }
}
