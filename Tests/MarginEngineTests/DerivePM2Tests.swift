import MarginTestSupport
import RealModule
import Testing

@testable import MarginEngine

/// The Derive PM2 model's parts, checked against identities and hand-derived values (the golden cases, when
/// available, are `DerivePM2GoldenCaseTests`).
@Suite struct DerivePM2Tests {
    static let parameters = Fixtures.derivePM2Parameters
    static let spotUSD = 3000.0
    static let thirtyDaysSeconds: Int64 = 30 * 86_400

    static func option(_ strike: Double, _ kind: OptionKind, _ amount: Double, volatility: Double = 0.6) -> DerivePM2Portfolio.Option {
        DerivePM2Portfolio.Option(
            strikeUSD: strike, kind: kind, amountCoins: amount, volatility: volatility, volatilityConfidence: 1, source: "option")
    }

    static func expiry(
        _ options: [DerivePM2Portfolio.Option], seconds: Int64 = thirtyDaysSeconds, forward: Double = spotUSD, rate: Double = 0.05
    )
        -> DerivePM2Portfolio.Expiry
    {
        let split = DerivePM2Portfolio.Expiry.splitForward(forward, secondsToExpiry: seconds, splitSeconds: 1800)
        return DerivePM2Portfolio.Expiry(
            secondsToExpiry: seconds, forwardFixedUSD: split.fixedUSD, forwardVariableUSD: split.variableUSD, rate: rate,
            forwardConfidence: 1,
            rateConfidence: 1, options: options, source: "expiry")
    }

    static func portfolio(
        cash: Double = 0, expiries: [DerivePM2Portfolio.Expiry] = [], perp: DerivePM2Portfolio.Perp? = nil,
        collaterals: [DerivePM2Portfolio.Collateral] = [], stable: Double = 1
    ) -> DerivePM2Portfolio {
        DerivePM2Portfolio(
            underlying: "ETH", spotUSD: spotUSD, spotConfidence: 1, stablePriceUSD: stable, cashUSD: cash, perp: perp, expiries: expiries,
            collaterals: collaterals)
    }

    // MARK: - Pricing and SVI

    @Test(arguments: [1500.0, 2900.0, 3000.0, 3100.0, 6000.0], [0.05, 0.8, 3.0])
    func putCallParityWithDeriveLimits(strike: Double, volatility: Double) {
        let discount = 0.99
        let call = DerivePM2Margin.optionValue(
            .call, forwardUSD: 3000, strikeUSD: strike, volatility: volatility, years: 0.1, discountFactor: discount)
        let put = DerivePM2Margin.optionValue(
            .put, forwardUSD: 3000, strikeUSD: strike, volatility: volatility, years: 0.1, discountFactor: discount)
        #expect(isClose(call - put, discount * (3000 - strike), relative: 0, absolute: 1e-9 * 3000))
        #expect(call <= 3000 * discount && put <= strike * discount)
    }

    @Test func totalVolatilityAbove24PricesCallAtForwardAndPutAtStrike() {
        // σ√T = 50·√0.25 = 25 ≥ 24: lyra-utils takes the standard call price as 1.
        let call = DerivePM2Margin.optionValue(.call, forwardUSD: 3000, strikeUSD: 2500, volatility: 50, years: 0.25, discountFactor: 0.9)
        let put = DerivePM2Margin.optionValue(.put, forwardUSD: 3000, strikeUSD: 2500, volatility: 50, years: 0.25, discountFactor: 0.9)
        #expect(call == 3000 * 0.9)
        #expect(put == 2500 * 0.9)
    }

    @Test func sviAtTheForwardIsRawSVI() throws {
        let svi = DeriveSVI(a: 0.01, b: 0.1, rho: -0.3, m: 0.05, sigma: 0.2, forwardUSD: 3000, timeToExpiryYears: 0.1)
        let k = 0.0
        let w = 0.01 + 0.1 * (((k - 0.05) * (k - 0.05) + 0.04).squareRoot() - 0.3 * (k - 0.05))
        #expect(isClose(try svi.volatility(strike: 3000, path: "svi"), (w / 0.1).squareRoot(), relative: 1e-14))
    }

    @Test func sviClipsLogMoneynessAndCapsTotalVariance() throws {
        let svi = DeriveSVI(a: 0.01, b: 0.1, rho: -0.3, m: 0.05, sigma: 0.2, forwardUSD: 3000, timeToExpiryYears: 0.1)
        let bound = 4 * (0.01 + 0.1 * 0.2).squareRoot()
        let atBound = try svi.volatility(strike: 3000 * Double.exp(bound), path: "svi")
        #expect(try svi.volatility(strike: 3000 * Double.exp(bound + 2), path: "svi") == atBound)
        #expect(try svi.volatility(strike: 0, path: "svi") == 0)
        let steep = DeriveSVI(a: 200, b: 0.1, rho: 0, m: 0, sigma: 0.2, forwardUSD: 3000, timeToExpiryYears: 2)
        #expect(try steep.volatility(strike: 3000, path: "svi") == (144.0 / 2).squareRoot())
        let negative = DeriveSVI(a: -1, b: 0.1, rho: 0, m: 0, sigma: 0.2, forwardUSD: 3000, timeToExpiryYears: 2)
        #expect(throws: EngineError.self) { try negative.volatility(strike: 3000, path: "svi") }
    }

    @Test(arguments: [0, 1, 600, 1799, 1800, 86_400] as [Int64])
    func forwardSplitKeepsTheForward(seconds: Int64) {
        let split = DerivePM2Portfolio.Expiry.splitForward(3000, secondsToExpiry: seconds, splitSeconds: 1800)
        #expect(isClose(split.fixedUSD + split.variableUSD, 3000, relative: 1e-15))
        #expect(split.variableUSD == (seconds >= 1800 ? 3000 : 3000 * Double(seconds) / 1800))
    }

    // MARK: - Contingencies

    @Test func nakedShortsFollowDerivesSameStrikeFilter() {
        typealias Case = (options: [DerivePM2Portfolio.Option], naked: Double)
        let cases: [Case] = [
            ([Self.option(3000, .call, -2)], 2),
            ([Self.option(3000, .call, 1)], 0),
            // A long at the same strike (call or put) offsets a short.
            ([Self.option(3000, .call, -2), Self.option(3000, .put, 1.5)], 0.5),
            ([Self.option(3000, .call, 3), Self.option(3000, .put, -1)], 0),
            ([Self.option(3000, .call, -1), Self.option(3000, .put, -2)], 3),
            ([Self.option(3000, .call, -1), Self.option(3200, .call, 5)], 1),
        ]
        for testCase in cases {
            #expect(DerivePM2Margin.nakedShorts(testCase.options) == testCase.naked, "\(testCase.options.map(\.amountCoins))")
        }
    }

    @Test func cashOnlyMarginIsTheCash() throws {
        let result = try DerivePM2Margin.compute(Self.portfolio(cash: 1234.5), parameters: Self.parameters)
        #expect(result.maintenanceMarginUSD == 1234.5)
        #expect(result.initialMarginUSD == 1234.5)
        #expect(result.worstLossUSD == 0 && result.worstScenarioIndex == nil)
    }

    @Test func otherCollateralIsHaircutAndStablePriceConverts() throws {
        let haircuts = DerivePM2CollateralHaircuts(isRiskCancelling: false, mmHaircut: 0.1, imHaircut: 0.05)
        let usdt = DerivePM2Portfolio.Collateral(
            name: "USDT", amount: 1000, priceUSD: 0.999, confidence: 1, haircuts: haircuts, source: "usdt")
        let result = try DerivePM2Margin.compute(Self.portfolio(collaterals: [usdt], stable: 0.9999), parameters: Self.parameters)
        let value = 1000 * 0.999 / 0.9999
        #expect(isClose(result.collateralValueUSD, value, relative: 1e-15))
        #expect(isClose(result.maintenanceMarginUSD, value * 0.9, relative: 1e-14))
        #expect(isClose(result.initialMarginUSD, value * 0.85, relative: 1e-14))
        #expect(result.scenarios.allSatisfy { $0.pnlUSD == 0 })
    }

    @Test func perpetualScenariosAndContingencies() throws {
        let perp = DerivePM2Portfolio.Perp(positionCoins: -2, priceUSD: 3010, confidence: 1, unrealisedValueUSD: 150, source: "perp")
        let result = try DerivePM2Margin.compute(Self.portfolio(cash: 10_000, perp: perp), parameters: Self.parameters)
        let scenarios = Self.parameters.scenarios
        let pnls = scenarios.map { -2 * ($0.spotShock - 1) * 3010 * $0.dampeningFactor }
        for (result, expected) in zip(result.scenarios, pnls) {
            #expect(isClose(result.pnlUSD, expected, relative: 1e-14, absolute: 1e-12))
        }
        let worst = pnls.min() ?? 0
        let notional = 2 * Self.spotUSD
        let other = Self.parameters.otherContingency
        #expect(isClose(result.maintenanceMarginUSD, 10_150 + 0.8 * worst - notional * other.mmPerpPercent, relative: 1e-14))
        #expect(
            isClose(result.initialMarginUSD, 10_150 + 1.0 * worst - notional * (other.mmPerpPercent + other.imPerpPercent), relative: 1e-14)
        )
    }

    @Test func lowConfidenceAddsTheOracleContingencyToInitialMarginOnly() throws {
        let perp = DerivePM2Portfolio.Perp(positionCoins: 1, priceUSD: 3000, confidence: 0.4, unrealisedValueUSD: 0, source: "perp")
        let confident = try DerivePM2Margin.compute(
            Self.portfolio(
                perp: DerivePM2Portfolio.Perp(
                    positionCoins: 1, priceUSD: 3000, confidence: 1, unrealisedValueUSD: 0, source: "perp")), parameters: Self.parameters)
        let doubtful = try DerivePM2Margin.compute(Self.portfolio(perp: perp), parameters: Self.parameters)
        #expect(doubtful.maintenanceMarginUSD == confident.maintenanceMarginUSD)
        let addOn = (1 - 0.4) * Self.parameters.otherContingency.confMargin * Self.spotUSD
        #expect(isClose(confident.initialMarginUSD - doubtful.initialMarginUSD, addOn, relative: 1e-12))
    }

    @Test func staticDiscountMakesTheUnmovedScenarioALossForALongOption() throws {
        let expiry = Self.expiry([Self.option(3200, .call, 1)], seconds: 90 * 86_400)
        let result = try DerivePM2Margin.compute(Self.portfolio(expiries: [expiry]), parameters: Self.parameters)
        let risk = try #require(result.expiries.first)
        let margin = Self.parameters.margin
        let years = 90.0 / 365
        #expect(
            isClose(
                risk.staticDiscountPositive, 0.95 * Double.exp(-years * (0.05 * margin.longRateMultScale + margin.longRateAddScale)),
                relative: 1e-14))
        let unmoved = try #require(result.scenarios.first { $0.scenario.spotShock == 1 && $0.scenario.volShock == .none })
        #expect(isClose(unmoved.pnlUSD, risk.markToMarketUSD * (risk.staticDiscountPositive - 1), relative: 1e-13))
        #expect(unmoved.pnlUSD < 0)
    }

    @Test func skewScenariosNeverGain() throws {
        let expiry = Self.expiry([Self.option(2500, .put, 3), Self.option(3500, .call, -2), Self.option(3000, .call, 1)])
        let result = try DerivePM2Margin.compute(Self.portfolio(expiries: [expiry]), parameters: Self.parameters)
        for scenario in result.scenarios where scenario.scenario.volShock.isSkew {
            #expect(scenario.expiryPnLUSD.allSatisfy { $0 <= 0 })
        }
    }

    @Test func volShockMultipliersFollowTheDTEScaling() throws {
        let short = try DerivePM2Margin.compute(
            Self.portfolio(expiries: [Self.expiry([Self.option(3000, .call, 1)], seconds: 7 * 86_400)]), parameters: Self.parameters)
        let long = try DerivePM2Margin.compute(
            Self.portfolio(expiries: [Self.expiry([Self.option(3000, .call, 1)], seconds: 180 * 86_400)]), parameters: Self.parameters)
        let vol = Self.parameters.volShock
        let shortMultiplier = Double.pow(30.0 / 7, vol.shortTermPower)
        let longMultiplier = Double.pow(30.0 / 180, vol.longTermPower)
        #expect(isClose(short.expiries[0].volShockUp, 1 + vol.volRangeUp * shortMultiplier, relative: 1e-14))
        #expect(isClose(short.expiries[0].volShockDown, max(0, 1 - vol.volRangeDown * shortMultiplier), relative: 1e-14))
        #expect(isClose(long.expiries[0].volShockUp, 1 + vol.volRangeUp * longMultiplier, relative: 1e-14))
    }

    @Test func pegLossRaisesTheInitialFactorOnly() throws {
        let expiry = Self.expiry([Self.option(3000, .call, -1)])
        let pegged = try DerivePM2Margin.compute(Self.portfolio(cash: 5000, expiries: [expiry], stable: 1), parameters: Self.parameters)
        let depegged = try DerivePM2Margin.compute(
            Self.portfolio(cash: 5000, expiries: [expiry], stable: 0.95), parameters: Self.parameters)
        let other = Self.parameters.otherContingency
        #expect(pegged.initialFactor == Self.parameters.margin.imFactor)
        #expect(
            isClose(
                depegged.initialFactor, Self.parameters.margin.imFactor + (other.pegLossThreshold - 0.95) * other.pegLossFactor,
                relative: 1e-15))
        #expect(depegged.maintenanceMarginUSD == pegged.maintenanceMarginUSD)
    }

    /// Requirements are positively homogeneous in the book: scaling every position scales them.
    @Test(arguments: [0.5, 3.0])
    func requirementsScaleWithTheBook(factor: Double) throws {
        func book(_ scale: Double) -> DerivePM2Portfolio {
            let expiry = Self.expiry([Self.option(2800, .put, -4 * scale), Self.option(3300, .call, 2 * scale)], seconds: 20 * 86_400)
            let perp = DerivePM2Portfolio.Perp(
                positionCoins: 1.5 * scale, priceUSD: 3005, confidence: 1, unrealisedValueUSD: 0, source: "perp")
            return Self.portfolio(expiries: [expiry], perp: perp)
        }
        let base = try DerivePM2Margin.compute(book(1), parameters: Self.parameters)
        let scaled = try DerivePM2Margin.compute(book(factor), parameters: Self.parameters)
        #expect(isClose(scaled.maintenanceRequirementUSD, factor * base.maintenanceRequirementUSD, relative: 1e-12))
        #expect(isClose(scaled.initialRequirementUSD, factor * base.initialRequirementUSD, relative: 1e-12))
        #expect(base.initialRequirementUSD >= base.maintenanceRequirementUSD)
    }

    // MARK: - Parameters and inputs

    @Test func shippedSetIsDerivesCaseDefaults() {
        let parameters = Self.parameters
        #expect(parameters.id == "derive-pm2")
        #expect(parameters.scenarios.count == 31)
        #expect(parameters.scenarios.filter(\.volShock.isSkew).count == 2)
        #expect(parameters.volShock.dteFloorSeconds == 86_400)
        #expect(parameters.forwardSplitSeconds == 1800)
    }

    @Test func skewScenarioWithASpotMoveIsRefused() {
        var scenarios = Self.parameters.scenarios
        scenarios[scenarios.count - 1].spotShock = 0.9
        let p = Self.parameters
        #expect(throws: EngineError.self) {
            try DerivePM2Parameters(
                id: "x", scenarios: scenarios, volShock: p.volShock, skewShock: p.skewShock, margin: p.margin,
                basisContingency: p.basisContingency, otherContingency: p.otherContingency)
        }
    }

    @Test func modelParametersPickTheModelFromTheDocument() throws {
        // An incomplete derive-pm2 document fails in the Derive loader, naming a Derive field.
        #expect(throws: EngineError.missingField(path: "params.scenarios")) {
            try ModelParameters(json: JSONParser.parse(#"{"model": "derive-pm2", "id": "x"}"#))
        }
        #expect(throws: EngineError.self) { try ModelParameters(json: JSONParser.parse(#"{"model": "cme-span", "id": "x"}"#)) }
        // The okx-pm set loads with and without an explicit model.
        guard case .object(var object) = Fixtures.parameterDocument("okx-2025-01") else {
            Issue.record("not an object")
            return
        }
        #expect(try ModelParameters(json: .object(object)).model == .okxPM)
        object["model"] = .string("okx-pm")
        let explicit = try ModelParameters(json: .object(object))
        #expect(explicit.model == .okxPM && explicit.id == "okx-2025-01")
        #expect(try ModelParameters(json: Fixtures.parameterDocument("derive-pm2")).model == .derivePM2)
    }

    @Test(arguments: [
        (".238139170210715658", "0.238139170210715658"), ("-0.0035144021250414", "-0.0035144021250414"), ("1734", "1734"),
        ("10.8139170210715658241", "10.813917021071565824"), ("5.", "5"),
    ])
    func deriveNumbersAreReadAsTheHarnessReadsThem(text: String, normalised: String) {
        #expect(DerivePM2GoldenCase.decimalText(text) == normalised)
    }

    @Test(arguments: [("1.0", 86_400), ("400", 34_560_000), ("1.15", 99_360), ("0.00001", 0)] as [(String, Int64)])
    func dteFloorDaysBecomeWholeSeconds(days: String, seconds: Int64) throws {
        #expect(try DerivePM2GoldenCase.daysInSeconds(FieldReader(.string(days), path: "DTE_FLOOR")) == seconds)
    }
}
