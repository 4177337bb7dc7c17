import Foundation
import MarginEngine
import MarginTestSupport
import PropertyBased
import Testing

/// Black-76 against QuantLib (golden case 5), identities and implied volatility.
@Suite struct Black76Tests {
    /// Agreement required with QuantLib: 1e-10 relative, with an absolute floor of 1e-15 × the quantity's
    /// scale for values that underflow to zero (QuantLib's own error there is ~1e-17 × scale).
    static let relativeTolerance = 1e-10
    static let absoluteFloor = 1e-15

    struct ReferenceCase: Sendable, CustomTestStringConvertible {
        var kind: OptionKind
        var forward, strike, volatility, years, discount: Double
        var price, delta, gamma, vega, theta, thetaPerDay: Double
        var impliedVolatility: Double?
        var testDescription: String {
            "\(kind == .call ? "call" : "put") F=\(forward) K=\(strike) σ=\(volatility) T=\(years) D=\(discount)"
        }
    }

    static let referenceCases: [ReferenceCase] = {
        guard let url = Bundle.module.url(forResource: "Resources/quantlib-black76", withExtension: "json"),
            let data = FileManager.default.contents(atPath: url.path),
            let json = try? JSONParser.parse([UInt8](data))
        else { return [] }
        return json[member: "cases"]?.arrayItems.compactMap { item -> ReferenceCase? in
            func value(_ key: String) -> Double? { item[member: key]?.doubleValue }
            guard let forward = value("forward"), let strike = value("strike"), let volatility = value("volatility"),
                let years = value("timeToExpiryYears"), let discount = value("discountFactor"), let price = value("price"),
                let delta = value("deltaForward"), let gamma = value("gammaForward"), let vega = value("vega"),
                let theta = value("theta"), let thetaPerDay = value("thetaPerDay")
            else { return nil }
            return ReferenceCase(
                kind: item[member: "type"]?.scalarText == "call" ? .call : .put, forward: forward, strike: strike,
                volatility: volatility, years: years, discount: discount, price: price, delta: delta, gamma: gamma, vega: vega,
                theta: theta, thetaPerDay: thetaPerDay, impliedVolatility: value("impliedVolatility"))
        } ?? []
    }()

    static func agrees(_ actual: Double, _ expected: Double, scale: Double) -> Bool {
        abs(actual - expected) <= relativeTolerance * abs(expected) + absoluteFloor * scale
    }

    @Test func referenceFileHoldsTheFullGrid() {
        #expect(Self.referenceCases.count == 2520)
    }

    @Test func priceAndGreeksAgreeWithQuantLib() {
        var failures: [String] = []
        for reference in Self.referenceCases {
            let option = Black76(
                reference.kind, forward: reference.forward, strike: reference.strike, volatility: reference.volatility,
                timeToExpiryYears: reference.years, discountFactor: reference.discount)
            let fast = Black76.price(
                reference.kind, forward: reference.forward, strike: reference.strike, volatility: reference.volatility,
                timeToExpiryYears: reference.years, discountFactor: reference.discount)
            let checks: [(String, Double, Double, Double)] = [
                ("price", option.price, reference.price, reference.forward),
                ("fast price", fast, reference.price, reference.forward),
                ("delta", option.delta, reference.delta, 1),
                ("gamma", option.gamma, reference.gamma, 1 / reference.forward),
                ("vega", option.vega, reference.vega, reference.forward),
                ("theta", option.theta, reference.theta, reference.forward),
                ("thetaPerDay", option.thetaPerDay, reference.thetaPerDay, reference.forward / 365),
            ]
            for (name, actual, expected, scale) in checks where !Self.agrees(actual, expected, scale: scale) {
                failures.append("\(reference.testDescription) \(name): \(actual) vs QuantLib \(expected)")
            }
        }
        #expect(failures.isEmpty, "\(failures.count) disagreements, first: \(failures.prefix(5).joined(separator: "; "))")
    }

    /// Round trip price → implied volatility → price to 1e-10 relative (docs/methodology/01-instruments-market.md
    /// §1.4), on every reference case whose price carries time value; where the problem is well conditioned the
    /// volatility itself is recovered and agrees with QuantLib's solver (whose default accuracy is 1e-6 on σ√T).
    @Test func impliedVolatilityRoundTrip() throws {
        var roundTrips = 0
        var recovered = 0
        for reference in Self.referenceCases {
            let intrinsic =
                reference.discount
                * max(reference.kind == .call ? reference.forward - reference.strike : reference.strike - reference.forward, 0)
            guard reference.price - intrinsic > 1e-9 * reference.forward else { continue }
            let implied = try ImpliedVolatility.solve(
                price: reference.price, kind: reference.kind, forward: reference.forward, strike: reference.strike,
                timeToExpiryYears: reference.years, discountFactor: reference.discount)
            let repriced = Black76.price(
                reference.kind, forward: reference.forward, strike: reference.strike, volatility: implied,
                timeToExpiryYears: reference.years, discountFactor: reference.discount)
            #expect(isClose(repriced, reference.price, relative: 1e-10), "\(reference.testDescription): \(repriced)")
            roundTrips += 1
            let vega = Black76(
                reference.kind, forward: reference.forward, strike: reference.strike, volatility: reference.volatility,
                timeToExpiryYears: reference.years, discountFactor: reference.discount
            ).vega
            if vega * reference.volatility > 1e-3 * reference.price {
                #expect(isClose(implied, reference.volatility, relative: 1e-8), "\(reference.testDescription): σ \(implied)")
                if let quantLib = reference.impliedVolatility {
                    // QuantLib's default solver accuracy (1e-6) applies to σ√T, not to σ.
                    #expect(
                        abs(implied - quantLib) * reference.years.squareRoot() <= 2e-6,
                        "\(reference.testDescription): QuantLib σ \(quantLib)")
                }
                recovered += 1
            }
        }
        #expect(roundTrips > 1500)
        #expect(recovered > 1000)
    }

    @Test(arguments: [50.0, 99.5, 100.0, 100.5, 150.0], [0.11, 0.5, 1.2])
    func putCallParity(strike: Double, volatility: Double) {
        let forward = 100.0
        let discount = 0.97
        let call = Black76(
            .call, forward: forward, strike: strike, volatility: volatility, timeToExpiryYears: 0.5, discountFactor: discount)
        let put = Black76(.put, forward: forward, strike: strike, volatility: volatility, timeToExpiryYears: 0.5, discountFactor: discount)
        #expect(isClose(call.price - put.price, discount * (forward - strike), relative: 0, absolute: 1e-12 * forward))
        #expect(isClose(call.delta - put.delta, discount, relative: 0, absolute: 1e-14))
        #expect(call.gamma == put.gamma)
        #expect(call.vega == put.vega)
    }

    /// Analytic Greeks against central differences of the price (QuantLib's test pattern).
    @Test(arguments: [OptionKind.call, .put], [(80.0, 0.3, 0.25), (100.0, 0.8, 0.02), (130.0, 1.5, 2.0)])
    func greeksMatchFiniteDifferences(kind: OptionKind, point: (strike: Double, volatility: Double, years: Double)) {
        let forward = 100.0
        let discount = 0.99
        func price(_ f: Double = forward, _ sigma: Double = point.volatility, _ t: Double = point.years, _ d: Double = discount) -> Double {
            Black76.price(kind, forward: f, strike: point.strike, volatility: sigma, timeToExpiryYears: t, discountFactor: d)
        }
        let option = Black76(
            kind, forward: forward, strike: point.strike, volatility: point.volatility,
            timeToExpiryYears: point.years, discountFactor: discount)
        let h = 1e-3
        #expect(isClose(option.delta, (price(forward + h) - price(forward - h)) / (2 * h), relative: 1e-6, absolute: 1e-9))
        #expect(isClose(option.gamma, (price(forward + h) - 2 * price() + price(forward - h)) / (h * h), relative: 1e-4, absolute: 1e-8))
        #expect(
            isClose(option.vega, (price(forward, point.volatility + 1e-5) - price(forward, point.volatility - 1e-5)) / 2e-5, relative: 1e-6)
        )
        // Theta: −∂V/∂T with F fixed and r fixed, so D = exp(−rT) moves with T.
        let rate = -log(discount) / point.years
        let dt = 1e-6
        let later = price(forward, point.volatility, point.years + dt, exp(-rate * (point.years + dt)))
        let earlier = price(forward, point.volatility, point.years - dt, exp(-rate * (point.years - dt)))
        #expect(isClose(option.theta, -(later - earlier) / (2 * dt), relative: 1e-5, absolute: 1e-7))
        #expect(isClose(option.rho, -point.years * option.price, relative: 1e-12))
    }

    @Test(arguments: [OptionKind.call, .put], [(90.0, 0.97), (100.0, 1.0), (110.0, 0.5)])
    func degenerateCaseIsDiscountedIntrinsic(kind: OptionKind, point: (forward: Double, discount: Double)) {
        let option = Black76(kind, forward: point.forward, strike: 100, volatility: 0, timeToExpiryYears: 1, discountFactor: point.discount)
        let intrinsic = max(kind == .call ? point.forward - 100 : 100 - point.forward, 0)
        #expect(option.price == point.discount * intrinsic)
        #expect(option.gamma == 0 && option.vega == 0)
        let sign: Double = kind == .call ? 1 : -1
        let expectedDelta = point.forward == 100 ? 0.5 * point.discount * sign : (intrinsic > 0 ? point.discount * sign : 0)
        #expect(option.delta == expectedDelta)
    }

    @Test func priceIsNonDecreasingInForwardAndVolatility() async {
        await propertyCheck(input: Gen.double(in: 1...200_000), Gen.double(in: 0.01...3)) { forward, volatility in
            let base = Black76.price(.call, forward: forward, strike: 50_000, volatility: volatility, timeToExpiryYears: 0.1)
            let higherForward = Black76.price(
                .call, forward: forward * 1.01, strike: 50_000, volatility: volatility, timeToExpiryYears: 0.1)
            let higherVolatility = Black76.price(
                .call, forward: forward, strike: 50_000, volatility: volatility * 1.01, timeToExpiryYears: 0.1)
            // Monotone up to rounding: deep in the money the time value is below one ulp of the price.
            let rounding = 1e-12 * forward
            #expect(higherForward >= base - rounding)
            #expect(higherVolatility >= base - rounding)
            #expect(base >= 0 && base <= forward)
        }
    }

    @Test(arguments: [-0.01, 0.0, 60.0, 101.0])
    func impliedVolatilityRejectsPricesOutsideTheBounds(price: Double) {
        // Call, F = 100, K = 50, D = 1: bounds [50, 100]; 0 and -0.01 are below intrinsic, 101 above F.
        let outcome = Result { try ImpliedVolatility.solve(price: price, kind: .call, forward: 100, strike: 50, timeToExpiryYears: 1) }
        if price == 60 {
            #expect((try? outcome.get()).map { $0 > 0.005 && $0 < 10 } == true)
        } else {
            #expect(throws: ImpliedVolatilityError.self) { try outcome.get() }
        }
    }
}
