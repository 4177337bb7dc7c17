import Foundation
import MarginEngine
import MarginTestSupport
import Testing

// Classic mode (acctLv "3") through the real `pm` binary: `pm build` with acctLv 3, `pm compare` and
// `pm precheck` (docs/methodology/03-account.md §5–6). Figures are cross-checked against each other (compare against
// build, precheck against compare) or derived by hand from the formulas of docs/methodology/03-account.md and the
// shipped snapshot's inputs.

// MARK: - Running the real `pm` executable (the runner of CLITests.swift)

typealias ModeRunResult = PMResult
typealias ModeScratchDirectory = TemporaryDirectory

func runModePM(_ args: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> ModeRunResult {
    try runPM(args, sourceLocation: sourceLocation)
}

// MARK: - Helpers

extension JSONValue {
    var modeObject: JSONObject? { testObject }

    var modeBool: Bool? {
        guard case .bool(let flag) = self else { return nil }
        return flag
    }
}

/// Runs `pm`, expects success with an empty stderr, and parses stdout as exactly one JSON object.
func runModeJSON(_ args: [String], sourceLocation: SourceLocation = #_sourceLocation) throws -> JSONValue {
    let result = try runModePM(args, sourceLocation: sourceLocation)
    try #require(result.status == 0, "pm \(args.joined(separator: " ")) failed\n\(result)", sourceLocation: sourceLocation)
    #expect(result.stderr.isEmpty, "stderr must be empty\n\(result)", sourceLocation: sourceLocation)
    #expect(result.stdout.hasSuffix("}\n"), "stdout must end with one object and a newline\n\(result)", sourceLocation: sourceLocation)
    let json: JSONValue
    do { json = try JSONParser.parse(result.stdout) } catch {
        Issue.record("stdout is not one JSON document: \(error)\n\(result)", sourceLocation: sourceLocation)
        throw error
    }
    try #require(json.modeObject != nil, "stdout is not a JSON object\n\(result)", sourceLocation: sourceLocation)
    return json
}

/// The number at `key` of `value` (a JSON number or numeric string); fails the test when absent.
func modeNumber(_ value: JSONValue?, _ key: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> Double {
    let member = try #require(value?[member: key], "missing \(key) in \(String(describing: value))", sourceLocation: sourceLocation)
    let number = try #require(member.doubleValue, "\(key) is not a number: \(member)", sourceLocation: sourceLocation)
    try #require(number.isFinite, "\(key) is not finite: \(member)", sourceLocation: sourceLocation)
    return number
}

/// The text of `key` (string or number), or nil.
func modeText(_ value: JSONValue?, _ key: String) -> String? { value?[member: key]?.scalarText }

/// `|actual − expected| ≤ relative·|expected| + absolute`, with a message on failure.
func expectModeClose(
    _ actual: Double, _ expected: Double, relative: Double = 1e-9, absolute: Double = 1e-9, _ what: String,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(
        isClose(actual, expected, relative: relative, absolute: absolute),
        "\(what): \(actual) vs expected \(expected)", sourceLocation: sourceLocation)
}

/// Asserts the bad-input contract: non-zero exit, nothing on stdout, exactly one line on stderr mentioning
/// every string of `mentions`.
func expectModeOneLineError(_ result: ModeRunResult, mentions: [String], sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(result.status != 0, "exit status must be non-zero\n\(result)", sourceLocation: sourceLocation)
    #expect(result.stdout.isEmpty, "stdout must be empty\n\(result)", sourceLocation: sourceLocation)
    let lines = result.stderr.split(separator: "\n", omittingEmptySubsequences: false)
    #expect(
        result.stderr.hasSuffix("\n") && lines.count == 2 && !lines[0].isEmpty,
        "stderr must be exactly one line\n\(result)", sourceLocation: sourceLocation)
    for text in mentions {
        #expect(result.stderr.contains(text), "stderr does not mention \(text)\n\(result)", sourceLocation: sourceLocation)
    }
}

enum ModeRequests {
    static func position(_ instId: String, pos: String, avgPx: String? = nil, lever: String? = nil) -> String {
        var fields = [#""instId": "\#(instId)""#, #""pos": "\#(pos)""#]
        if let avgPx { fields.append(#""avgPx": "\#(avgPx)""#) }
        if let lever { fields.append(#""lever": "\#(lever)""#) }
        return "{" + fields.joined(separator: ", ") + "}"
    }

    /// A position-builder request; `acctLv` and a top-level `lever` only when given.
    static func request(
        _ positions: [String], assets: [(String, String)] = [("USDT", "100000")], acctLv: String? = nil, lever: String? = nil,
        extra: String = ""
    ) -> String {
        var members: [String] = []
        if let acctLv { members.append(#""acctLv": "\#(acctLv)""#) }
        if let lever { members.append(#""lever": "\#(lever)""#) }
        members.append(#""simPos": [\#(positions.joined(separator: ", "))]"#)
        let balances = assets.map { #"{"ccy": "\#($0.0)", "amt": "\#($0.1)"}"# }
        members.append(#""simAsset": [\#(balances.joined(separator: ", "))]"#)
        return "{" + members.joined(separator: ", ") + extra + "}"
    }

    /// The shipped parameter set, parsed from the package sources.
    static func shippedParameters() throws -> JSONValue {
        let path = PMExecutable.packageRoot.appendingPathComponent("Sources/MarginDefaults/Resources/params/okx-2025-01.json")
        return try JSONParser.parse(Array(try Data(contentsOf: path)))
    }

    /// The shipped default market snapshot (calm-2025-12-30), parsed from the package sources.
    static func shippedCalmMarket() throws -> JSONValue {
        let path = PMExecutable.packageRoot.appendingPathComponent("Sources/MarginDefaults/Resources/market/calm-2025-12-30.json")
        return try JSONParser.parse(Array(try Data(contentsOf: path)))
    }

    /// The snapshot's entry for `instId` in `marks`.
    static func mark(_ instId: String, in market: JSONValue) throws -> JSONValue {
        try #require(
            market[member: "marks"]?.arrayItems.first { $0[member: "instId"]?.scalarText == instId },
            "no mark for \(instId) in the shipped snapshot")
    }
}

/// The classic position tier of the shipped parameters (docs/methodology/parameters.md, tier1 = BTC and ETH).
let classicTier1: [(upTo: Double, mmr: Double, maxLever: Double)] = [
    (500_000, 0.004, 100), (2_000_000, 0.006, 50), (5_000_000, 0.01, 33), (20_000_000, 0.02, 20), (50_000_000, 0.05, 10),
    (.infinity, 0.10, 5),
]

/// Checks the account totals of a classic response against its positions.
func expectClassicTotalsConsistent(_ response: JSONValue, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let positions = response[member: "positions"]?.arrayItems ?? []
    let sumMmr = try positions.reduce(0.0) { $0 + (try modeNumber($1, "mmr", sourceLocation: sourceLocation)) }
    let sumImr = try positions.reduce(0.0) { $0 + (try modeNumber($1, "imr", sourceLocation: sourceLocation)) }
    let borrowMmr = try modeNumber(response, "borrowMmr", sourceLocation: sourceLocation)
    let borrowImr = try modeNumber(response, "borrowImr", sourceLocation: sourceLocation)
    let totalMmr = try modeNumber(response, "totalMmr", sourceLocation: sourceLocation)
    let totalImr = try modeNumber(response, "totalImr", sourceLocation: sourceLocation)
    expectModeClose(totalMmr, sumMmr + borrowMmr, "totalMmr = Σ positions mmr + borrowMmr", sourceLocation: sourceLocation)
    expectModeClose(totalImr, sumImr + borrowImr, "totalImr = Σ positions imr + borrowImr", sourceLocation: sourceLocation)
    expectModeClose(
        try modeNumber(response, "derivMmr", sourceLocation: sourceLocation), sumMmr, "derivMmr = Σ positions mmr",
        sourceLocation: sourceLocation)
    // mgnRatio = adjEq / Σ MMR (docs/methodology/03-account.md §6), and every position carries the account's ratio.
    let adjEq = try modeNumber(response, "adjEq", sourceLocation: sourceLocation)
    let ratio = try modeNumber(response, "marginRatio", sourceLocation: sourceLocation)
    expectModeClose(ratio, adjEq / totalMmr, "marginRatio = adjEq / totalMmr", sourceLocation: sourceLocation)
    for position in positions {
        #expect(
            modeText(position, "mgnRatio") == modeText(response, "marginRatio"),
            "position mgnRatio \(String(describing: modeText(position, "mgnRatio"))) vs account \(ratio)", sourceLocation: sourceLocation)
    }
    // riskUnitData sums positions by underlying coin.
    var byCoin: [String: (Double, Double)] = [:]
    for position in positions {
        let coin = String((modeText(position, "instId") ?? "").split(separator: "-").first ?? "")
        let current = byCoin[coin] ?? (0, 0)
        byCoin[coin] = (current.0 + (try modeNumber(position, "mmr")), current.1 + (try modeNumber(position, "imr")))
    }
    let units = response[member: "riskUnitData"]?.arrayItems ?? []
    #expect(Set(units.compactMap { modeText($0, "riskUnit") }) == Set(byCoin.keys), "riskUnitData coins", sourceLocation: sourceLocation)
    for unit in units {
        let coin = modeText(unit, "riskUnit") ?? ""
        let sums = byCoin[coin] ?? (.nan, .nan)
        expectModeClose(try modeNumber(unit, "mmr"), sums.0, "riskUnit \(coin) mmr", sourceLocation: sourceLocation)
        expectModeClose(try modeNumber(unit, "imr"), sums.1, "riskUnit \(coin) imr", sourceLocation: sourceLocation)
    }
}

// MARK: - Tests

@Suite struct ModeCLITests {
    // MARK: pm build with acctLv 3

    @Test(
        "build acctLv 3: a lone BTC-USDT-SWAP short has MMR = 0.4 % of notional and IMR = notional / lever, lever capped at 100",
        arguments: [("20", 20.0), ("200", 100.0), ("100", 100.0), ("1", 1.0), ("33.5", 33.5)])
    func classicPerpetualLeverage(_ lever: String, _ applied: Double) throws {
        let directory = try ModeScratchDirectory()
        defer { directory.remove() }
        let request = try directory.write(
            "request.json",
            ModeRequests.request(
                [ModeRequests.position("BTC-USDT-SWAP", pos: "-10", avgPx: "87000", lever: lever)], acctLv: "3"))
        let response = try runModeJSON(["build", request, "--format", "json"])
        #expect(modeText(response, "acctLv") == "3")
        let positions = response[member: "positions"]?.arrayItems ?? []
        try #require(positions.count == 1, "positions: \(positions)")
        let position = positions[0]
        for key in ["instId", "notionalUsd", "imr", "mmr", "mgnRatio", "lever", "maxLever"] {
            #expect(position[member: key] != nil, "position lacks \(key): \(position)")
        }
        #expect(modeText(position, "instId") == "BTC-USDT-SWAP")

        // Notional: |pos|·ctVal·markPx·USDT-USD, ctVal 0.01 BTC, from the response's mark and the snapshot's USDT rate.
        let notional = try modeNumber(position, "notionalUsd")
        let markPx = try modeNumber(position, "markPx")
        let usdt = try modeNumber(try ModeRequests.shippedCalmMarket()[member: "indices"], "USDT-USD")
        expectModeClose(notional, 10 * 0.01 * markPx * usdt, "notionalUsd = |pos|·ctVal·markPx·USDT-USD")
        try #require(notional > 0 && notional < 500_000, "the position must sit in the first tier; notional \(notional)")

        // docs/methodology/03-account.md §6 with the first BTC tier: MMR 0.4 %, lever ≤ 100.
        expectModeClose(try modeNumber(position, "mmr"), 0.004 * notional, "MMR = 0.004·N")
        expectModeClose(try modeNumber(position, "imr"), notional / applied, "IMR = N / lever")
        expectModeClose(try modeNumber(position, "lever"), applied, "applied lever")
        expectModeClose(try modeNumber(position, "maxLever"), 100, "maxLever of the first tier")
        try expectClassicTotalsConsistent(response)
    }

    @Test(
        "build acctLv 3: without any lever OKX's documented default of 1 applies; a top-level lever sets it for positions without their own"
    )
    func classicDefaultAndTopLevelLeverage() throws {
        let directory = try ModeScratchDirectory()
        defer { directory.remove() }
        // OKX: "the default is 1" for a simulated position (the sandbox's accounts keep their own settings).
        let defaultLever = 1.0
        let positions = [
            ModeRequests.position("BTC-USDT-SWAP", pos: "5"),
            ModeRequests.position("ETH-USDT-SWAP", pos: "-20", lever: "7"),
        ]
        let plain = try directory.write("plain.json", ModeRequests.request(positions, acctLv: "3"))
        let topLevel = try directory.write("top.json", ModeRequests.request(positions, acctLv: "3", lever: "25"))

        func lever(_ response: JSONValue, _ instId: String) throws -> (lever: Double, imr: Double, notional: Double) {
            let position = try #require(
                response[member: "positions"]?.arrayItems.first { modeText($0, "instId") == instId },
                "no position \(instId)")
            return (try modeNumber(position, "lever"), try modeNumber(position, "imr"), try modeNumber(position, "notionalUsd"))
        }
        let withoutLever = try runModeJSON(["build", plain, "--format", "json"])
        let btc = try lever(withoutLever, "BTC-USDT-SWAP")
        expectModeClose(btc.lever, defaultLever, "default lever")
        expectModeClose(btc.imr, btc.notional / defaultLever, "IMR at the default lever")
        let eth = try lever(withoutLever, "ETH-USDT-SWAP")
        expectModeClose(eth.lever, 7, "own lever")
        expectModeClose(eth.imr, eth.notional / 7, "IMR at the position's own lever")

        let withTopLevel = try runModeJSON(["build", topLevel, "--format", "json"])
        let btcTop = try lever(withTopLevel, "BTC-USDT-SWAP")
        expectModeClose(btcTop.lever, 25, "top-level lever")
        expectModeClose(btcTop.imr, btcTop.notional / 25, "IMR at the top-level lever")
        expectModeClose(try lever(withTopLevel, "ETH-USDT-SWAP").lever, 7, "a position's own lever wins over the top-level one")
        try expectClassicTotalsConsistent(withoutLever)
        try expectClassicTotalsConsistent(withTopLevel)
    }

    @Test("build acctLv 3: the tier follows the notional — above 500,000 USD, MMR 0.6 % and lever at most 50")
    func classicSecondTier() throws {
        let directory = try ModeScratchDirectory()
        defer { directory.remove() }
        let request = try directory.write(
            "request.json",
            ModeRequests.request(
                [ModeRequests.position("BTC-USDT-SWAP", pos: "700", lever: "100")], assets: [("USDT", "1000000")], acctLv: "3"))
        let response = try runModeJSON(["build", request, "--format", "json"])
        let position = try #require(response[member: "positions"]?.arrayItems.first)
        let notional = try modeNumber(position, "notionalUsd")
        let tier = try #require(classicTier1.first { notional <= $0.upTo })
        try #require(notional > 500_000 && notional <= 2_000_000, "the position must sit in the second tier; notional \(notional)")
        expectModeClose(try modeNumber(position, "mmr"), tier.mmr * notional, "MMR = 0.006·N (whole position at the tier's rate)")
        expectModeClose(try modeNumber(position, "maxLever"), tier.maxLever, "maxLever of the second tier")
        expectModeClose(try modeNumber(position, "lever"), 50, "lever 100 capped at 50")
        expectModeClose(try modeNumber(position, "imr"), notional / 50, "IMR = N / 50")
        try expectClassicTotalsConsistent(response)
    }

    @Test("build acctLv 3: short options need OKX's coin margin, long options none")
    func classicOptions() throws {
        let directory = try ModeScratchDirectory()
        defer { directory.remove() }
        // 90000-C: b − OTM/F > a; 100000-C: deep out of the money, so a applies; 80000-P short; 85000-C long.
        let request = try directory.write(
            "request.json",
            ModeRequests.request(
                [
                    ModeRequests.position("BTC-USD-260327-90000-C", pos: "-10"),
                    ModeRequests.position("BTC-USD-260327-100000-C", pos: "-20"),
                    ModeRequests.position("BTC-USD-260327-80000-P", pos: "-10"),
                    ModeRequests.position("BTC-USD-260327-80000-C", pos: "30"),
                    ModeRequests.position("BTC-USD-260327-100000-P", pos: "5"),
                ], acctLv: "3"))
        let response = try runModeJSON(["build", request, "--format", "json"])
        let market = try ModeRequests.shippedCalmMarket()
        let positions = response[member: "positions"]?.arrayItems ?? []
        try #require(positions.count == 5, "positions: \(positions)")
        let (a, b, c) = (0.1, 0.15, 0.03)  // BTC, margin factor 1 (docs/methodology/03-account.md §6)
        var sawBranchA = false
        var sawBranchB = false
        for position in positions {
            let instId = try #require(modeText(position, "instId"))
            for key in ["imr", "mmr", "mgnRatio", "lever"] { #expect(position[member: key] != nil, "\(instId) lacks \(key)") }
            let parts = instId.split(separator: "-")
            let strike = try #require(Double(parts[3]))
            let isCall = parts[4] == "C"
            let pos = try modeNumber(position, "pos")
            let imr = try modeNumber(position, "imr")
            let mmr = try modeNumber(position, "mmr")
            if pos > 0 {
                #expect(imr == 0, "a long option needs no initial margin: \(instId) imr \(imr)")
                #expect(mmr == 0, "a long option needs no maintenance margin: \(instId) mmr \(mmr)")
                continue
            }
            #expect(imr > 0, "a short option needs initial margin: \(instId)")
            // notionalUsd = |pos|·ctVal·ctMult·index, so requirement in USD = coins-per-coin × notionalUsd.
            let notional = try modeNumber(position, "notionalUsd")
            let markCoin = try modeNumber(position, "markPx")
            let forward = try modeNumber(try ModeRequests.mark(instId, in: market), "fwdPx")
            let outOfTheMoney = isCall ? max(0, strike - forward) : max(0, forward - strike)
            let imrCoins = max(a, b - outOfTheMoney / forward) + markCoin
            if a >= b - outOfTheMoney / forward { sawBranchA = true } else { sawBranchB = true }
            let mmrCoins = (isCall ? c : max(c, c * markCoin)) + markCoin
            expectModeClose(imr, imrCoins * notional, "\(instId) IMR = (max(a, b − OTM/F) + mark)·|pos|·ctVal·index")
            expectModeClose(mmr, mmrCoins * notional, "\(instId) MMR")
            #expect(imr > mmr, "\(instId): IMR \(imr) should exceed MMR \(mmr)")
        }
        #expect(sawBranchA && sawBranchB, "the fixture should exercise both branches of max(a, b − OTM/F)")
        try expectClassicTotalsConsistent(response)
    }

    @Test("build acctLv 3: totalMmr = Σ positions mmr + borrowMmr when a balance is borrowed")
    func classicWithBorrowing() throws {
        let directory = try ModeScratchDirectory()
        defer { directory.remove() }
        let request = try directory.write(
            "request.json",
            ModeRequests.request(
                [
                    ModeRequests.position("BTC-USDT-SWAP", pos: "-10", lever: "20"),
                    ModeRequests.position("BTC-USD-260327-90000-C", pos: "-10"),
                    ModeRequests.position("BTC-USD-260327-80000-P", pos: "10"),
                ], assets: [("USDT", "-20000"), ("BTC", "1")], acctLv: "3"))
        let response = try runModeJSON(["build", request, "--format", "json"])
        try #require(try modeNumber(response, "borrowMmr") > 0, "the USDT loan must carry a borrowing MMR")
        #expect(try modeNumber(response, "borrowImr") > 0)
        try expectClassicTotalsConsistent(response)

        // Borrowing is the same in both modes (docs/methodology/03-account.md §6: "Borrowing as in §4").
        let pmRequest = try directory.write(
            "pm.json",
            ModeRequests.request(
                [
                    ModeRequests.position("BTC-USDT-SWAP", pos: "-10", lever: "20"),
                    ModeRequests.position("BTC-USD-260327-90000-C", pos: "-10"),
                    ModeRequests.position("BTC-USD-260327-80000-P", pos: "10"),
                ], assets: [("USDT", "-20000"), ("BTC", "1")], acctLv: "4"))
        let pm = try runModeJSON(["build", pmRequest, "--format", "json"])
        #expect(modeText(pm, "acctLv") == "4")
        #expect(modeText(pm, "borrowMmr") == modeText(response, "borrowMmr"))
        // Adjusted equity differs only by the long put: isolated under classic margin, cross (at BTC's first
        // discount tier, 98 %) under portfolio margin.
        let put = try #require(response[member: "positions"]?.arrayItems.first { modeText($0, "instId") == "BTC-USD-260327-80000-P" })
        let putUSD = try modeNumber(put, "pos") * 0.01 * (try modeNumber(put, "markPx")) * 88_524.21
        expectModeClose(try modeNumber(pm, "adjEq") - (try modeNumber(response, "adjEq")), 0.98 * putUSD, "long option isolated in classic")
    }

    @Test("build acctLv 3 with idxVol reports the unshocked totals as totalMmrBf/totalImrBf")
    func classicIndexShock() throws {
        let directory = try ModeScratchDirectory()
        defer { directory.remove() }
        let positions = [
            ModeRequests.position("BTC-USDT-SWAP", pos: "-10", lever: "20"), ModeRequests.position("BTC-USD-260327-90000-C", pos: "-10"),
        ]
        let base = try directory.write("base.json", ModeRequests.request(positions, acctLv: "3"))
        let shocked = try directory.write("shocked.json", ModeRequests.request(positions, acctLv: "3", extra: #", "idxVol": "0.1""#))
        let unshocked = try runModeJSON(["build", base, "--format", "json"])
        let after = try runModeJSON(["build", shocked, "--format", "json"])
        #expect(modeText(after, "acctLv") == "3")
        #expect(modeText(after, "totalMmrBf") == modeText(unshocked, "totalMmr"))
        #expect(modeText(after, "totalImrBf") == modeText(unshocked, "totalImr"))
        // A 10 % rise raises the perpetual's notional, hence its MMR.
        #expect(try modeNumber(after, "totalMmr") > (try modeNumber(unshocked, "totalMmr")))
    }

    @Test("build --graph with acctLv 3: the MMR at shock 0 is the classic totalMmr")
    func classicGraph() throws {
        let directory = try ModeScratchDirectory()
        defer { directory.remove() }
        let request = try directory.write(
            "request.json",
            ModeRequests.request(
                [
                    ModeRequests.position("BTC-USDT-SWAP", pos: "-10", lever: "20"),
                    ModeRequests.position("BTC-USD-260327-90000-C", pos: "-10"),
                ],
                acctLv: "3"))
        let graph = try runModeJSON(["build", request, "--graph", "--format", "json"])
        let build = try runModeJSON(["build", request, "--format", "json"])
        let zero = try #require(graph[member: "mmrData"]?.arrayItems.first { modeText($0, "shockFactor") == "0" })
        #expect(modeText(zero, "mmr") == modeText(build, "totalMmr"))
        #expect(modeText(zero, "mmrRatio") == modeText(build, "marginRatio"))
    }

    // MARK: pm compare

    static let comparePositions = [
        ModeRequests.position("BTC-USDT-SWAP", pos: "-50", avgPx: "88000", lever: "20"),
        ModeRequests.position("BTC-USD-260327-90000-C", pos: "-100", avgPx: "0.045"),
        ModeRequests.position("BTC-USD-260327-80000-P", pos: "100", avgPx: "0.03"),
        ModeRequests.position("ETH-USDT-SWAP", pos: "30", lever: "200"),
    ]
    static let compareAssets = [("USDT", "60000"), ("BTC", "0.8")]

    @Test("compare --format json: PM and classic side by side, each equal to pm build in that mode")
    func compareJSON() throws {
        let directory = try ModeScratchDirectory()
        defer { directory.remove() }
        let request = try directory.write("request.json", ModeRequests.request(Self.comparePositions, assets: Self.compareAssets))
        let classicRequest = try directory.write(
            "classic.json", ModeRequests.request(Self.comparePositions, assets: Self.compareAssets, acctLv: "3"))
        let pmRequest = try directory.write("pm.json", ModeRequests.request(Self.comparePositions, assets: Self.compareAssets, acctLv: "4"))

        let report = try runModeJSON(["compare", request, "--format", "json"])
        let classicBuild = try runModeJSON(["build", classicRequest, "--format", "json"])
        let pmBuild = try runModeJSON(["build", pmRequest, "--format", "json"])
        let pmDefault = try runModeJSON(["build", request, "--format", "json"])
        #expect(modeText(pmDefault, "totalMmr") == modeText(pmBuild, "totalMmr"), "a request without acctLv is portfolio margin")

        let pm = try #require(report[member: "portfolioMargin"])
        let classic = try #require(report[member: "classic"])
        let difference = try #require(report[member: "difference"])
        #expect(modeText(pm, "acctLv") == "4")
        #expect(modeText(classic, "acctLv") == "3")
        for (name, mode, build) in [("portfolioMargin", pm, pmBuild), ("classic", classic, classicBuild)] {
            for key in ["totalMmr", "totalImr", "mgnRatio", "availEq", "adjEq", "riskUnits"] {
                #expect(mode[member: key] != nil, "\(name) lacks \(key)")
            }
            // The same figures as pm build in that mode, to the digit.
            #expect(modeText(mode, "totalMmr") == modeText(build, "totalMmr"), "\(name) totalMmr vs build")
            #expect(modeText(mode, "totalImr") == modeText(build, "totalImr"), "\(name) totalImr vs build")
            #expect(modeText(mode, "mgnRatio") == modeText(build, "marginRatio"), "\(name) mgnRatio vs build marginRatio")
            #expect(modeText(mode, "adjEq") == modeText(build, "adjEq"), "\(name) adjEq vs build")
            // availEq = adjEq − totalImr (docs/methodology/03-account.md §3).
            expectModeClose(
                try modeNumber(mode, "availEq"), try modeNumber(mode, "adjEq") - (try modeNumber(mode, "totalImr")),
                absolute: 1e-6, "\(name) availEq = adjEq − totalImr")
            expectModeClose(
                try modeNumber(mode, "mgnRatio"), try modeNumber(mode, "adjEq") / (try modeNumber(mode, "totalMmr")),
                "\(name) mgnRatio = adjEq / totalMmr")

            // Per risk unit: the same coins and figures as the build's riskUnitData.
            let units = mode[member: "riskUnits"]?.arrayItems ?? []
            let buildUnits = build[member: "riskUnitData"]?.arrayItems ?? []
            #expect(Set(units.compactMap { modeText($0, "riskUnit") }) == ["BTC", "ETH"], "\(name) risk units")
            #expect(units.count == buildUnits.count, "\(name): \(units.count) risk units vs build \(buildUnits.count)")
            for unit in units {
                let coin = modeText(unit, "riskUnit")
                let buildUnit = buildUnits.first { modeText($0, "riskUnit") == coin }
                #expect(buildUnit != nil, "\(name): build has no risk unit \(coin ?? "?")")
                #expect(modeText(unit, "mmr") == modeText(buildUnit, "mmr"), "\(name) \(coin ?? "?") mmr vs build")
                #expect(modeText(unit, "imr") == modeText(buildUnit, "imr"), "\(name) \(coin ?? "?") imr vs build")
            }
        }
        // The classic ETH perpetual asked for 200x and got the tier's 100x.
        let eth = try #require(classicBuild[member: "positions"]?.arrayItems.first { modeText($0, "instId") == "ETH-USDT-SWAP" })
        expectModeClose(try modeNumber(eth, "lever"), 100, "ETH lever capped")

        for key in ["totalMmr", "totalImr", "availEq"] {
            let expected = try modeNumber(classic, key) - (try modeNumber(pm, key))
            expectModeClose(try modeNumber(difference, key), expected, relative: 1e-9, absolute: 1e-6, "difference.\(key) = classic − PM")
        }
        #expect(modeText(report, "paramsId") == modeText(classicBuild, "paramsId"))
        #expect(modeText(report, "marketTs") == modeText(classicBuild, "marketTs"))
    }

    @Test("compare: a long option is isolated under classic margin (no cross equity) and counts under portfolio margin")
    func compareLongOptionIsolatedInClassic() throws {
        let directory = try ModeScratchDirectory()
        defer { directory.remove() }
        let request = try directory.write(
            "request.json",
            ModeRequests.request(
                [ModeRequests.position("BTC-USD-260327-100000-C", pos: "100")], assets: [("USDT", "20000")]))
        let report = try runModeJSON(["compare", request, "--format", "json"])
        let pm = try #require(report[member: "portfolioMargin"])
        let classic = try #require(report[member: "classic"])
        let usdtUSD = 20_000 * 0.99975
        // The call's value: 100 contracts × 0.01 BTC × its mark (BTC per BTC) × the BTC index.
        let call = try #require(try? ModeRequests.mark("BTC-USD-260327-100000-C", in: try ModeRequests.shippedCalmMarket()))
        let callUSD = 100 * 0.01 * (try modeNumber(call, "markPx")) * 88_524.21
        expectModeClose(try modeNumber(classic, "adjEq"), usdtUSD, "classic adjEq: USDT only")
        expectModeClose(try modeNumber(pm, "adjEq"), usdtUSD + 0.98 * callUSD, "PM adjEq: USDT and the call at 98 %")
        expectModeClose(
            try modeNumber(classic, "availEq"), usdtUSD - (try modeNumber(classic, "totalImr")), absolute: 1e-6,
            "classic availEq excludes the call")
    }

    @Test("compare ignores the request's acctLv: both modes are always shown")
    func compareIgnoresAccountLevel() throws {
        let directory = try ModeScratchDirectory()
        defer { directory.remove() }
        let plain = try directory.write("plain.json", ModeRequests.request(Self.comparePositions, assets: Self.compareAssets))
        let classic = try directory.write(
            "classic.json", ModeRequests.request(Self.comparePositions, assets: Self.compareAssets, acctLv: "3"))
        let first = try runModePM(["compare", plain, "--format", "json"])
        let second = try runModePM(["compare", classic, "--format", "json"])
        #expect(first.status == 0 && second.status == 0, "\(first)\n\(second)")
        #expect(!first.stdout.isEmpty)
        #expect(first.stdout == second.stdout)
    }

    @Test("compare --format table: both modes, the difference and a row per risk unit")
    func compareTable() throws {
        let directory = try ModeScratchDirectory()
        defer { directory.remove() }
        let request = try directory.write("request.json", ModeRequests.request(Self.comparePositions, assets: Self.compareAssets))
        let result = try runModePM(["compare", request, "--format", "table"])
        #expect(result.status == 0, "\(result)")
        #expect(result.stderr.isEmpty, "\(result)")
        let table = result.stdout
        for text in ["portfolio margin", "classic", "total MMR", "total IMR", "margin ratio", "available equity"] {
            #expect(table.contains(text), "table lacks \(text)\n\(table)")
        }
        let report = try runModeJSON(["compare", request, "--format", "json"])
        let lines = table.split(separator: "\n").map(String.init)
        func row(_ label: String) -> String? { lines.first { $0.trimmingCharacters(in: .whitespaces).hasPrefix(label) } }
        let mmrRow = try #require(row("total MMR"), "no total MMR row\n\(table)")
        for key in ["portfolioMargin", "classic", "difference"] {
            let figure = MoneyText.usd(try modeNumber(report[member: key], "totalMmr"))
            #expect(mmrRow.contains(figure), "total MMR row lacks \(key) \(figure): \(mmrRow)")
        }
        let availRow = try #require(row("available equity"), "no available equity row\n\(table)")
        #expect(availRow.contains(MoneyText.usd(try modeNumber(report[member: "difference"], "availEq"))), "\(availRow)")
        for coin in ["BTC", "ETH"] {
            let unitRow = try #require(row(coin), "no risk unit row for \(coin)\n\(table)")
            let classicUnit = report[member: "classic"]?[member: "riskUnits"]?.arrayItems.first { modeText($0, "riskUnit") == coin }
            let pmUnit = report[member: "portfolioMargin"]?[member: "riskUnits"]?.arrayItems.first { modeText($0, "riskUnit") == coin }
            for (name, unit) in [("classic", classicUnit), ("PM", pmUnit)] {
                for key in ["mmr", "imr"] {
                    let figure = MoneyText.usd(try modeNumber(unit, key))
                    #expect(unitRow.contains(figure), "\(coin) row lacks \(name) \(key) \(figure): \(unitRow)")
                }
            }
        }
    }

    // MARK: pm precheck

    @Test("precheck --to 4, small account, no acknowledgement: refused with both reasons, figures before (classic) and after (PM)")
    func precheckSmallAccountToPortfolioMargin() throws {
        let directory = try ModeScratchDirectory()
        defer { directory.remove() }
        let positions = [ModeRequests.position("BTC-USDT-SWAP", pos: "-2", lever: "10")]
        let assets = [("USDT", "5000")]
        let request = try directory.write("request.json", ModeRequests.request(positions, assets: assets))
        let result = try runModePM(["precheck", request, "--to", "4", "--format", "json"])
        #expect(result.status == 0, "a refusal is not an error\n\(result)")
        let report = try runModeJSON(["precheck", request, "--to", "4", "--format", "json"])

        let pmBuild = try runModeJSON(["build", request, "--format", "json"])
        let netEquity = try modeNumber(pmBuild, "eq")
        try #require(netEquity < 10_000, "the fixture must hold less than 10,000 USD; eq \(netEquity)")

        #expect(
            report[member: "allowed"]?.modeBool == false,
            "allowed must be the JSON boolean false: \(String(describing: report[member: "allowed"]))")
        let reasons = (report[member: "reasons"]?.arrayItems ?? []).compactMap(\.scalarText)
        #expect(reasons.count == 2, "exactly the net-equity and acknowledgement reasons: \(reasons)")
        let netEquityReason = reasons.first { $0.contains("10,000") }
        #expect(netEquityReason != nil, "no reason mentions the 10,000 USD minimum: \(reasons)")
        #expect(
            netEquityReason?.contains(MoneyText.usd(netEquity)) == true,
            "the net-equity reason should state the equity \(MoneyText.usd(netEquity)): \(reasons)")
        #expect(reasons.contains { $0.lowercased().contains("acknowledg") }, "no acknowledgement reason: \(reasons)")
        #expect(!reasons.contains { $0.contains("IMR") }, "PM IMR is covered here: \(reasons)")

        // No acctLv in the request: the account is taken to be in the other mode.
        #expect(modeText(report, "from") == "3")
        #expect(modeText(report, "to") == "4")
        let before = try #require(report[member: "before"])
        let after = try #require(report[member: "after"])
        #expect(modeText(before, "acctLv") == "3")
        #expect(modeText(after, "acctLv") == "4")
        for (name, figures) in [("before", before), ("after", after)] {
            for key in ["mgnRatio", "availEq", "totalMmr", "totalImr"] {
                #expect(figures[member: key]?.doubleValue != nil, "\(name).\(key) missing or not a number: \(figures)")
            }
        }
        // before = the classic figures, after = the PM figures, as compare reports them.
        let compare = try runModeJSON(["compare", request, "--format", "json"])
        for (figures, mode) in [(before, compare[member: "classic"]), (after, compare[member: "portfolioMargin"])] {
            for key in ["mgnRatio", "availEq", "totalMmr", "totalImr"] {
                #expect(
                    modeText(figures, key) == modeText(mode, key),
                    "\(key): precheck \(String(describing: modeText(figures, key))) vs compare \(String(describing: modeText(mode, key)))")
            }
        }
        #expect(report[member: "failingPositions"]?.arrayItems.isEmpty == true)
    }

    @Test("precheck --to 4, rich account, --acknowledged: allowed, no reasons")
    func precheckRichAccountAllowed() throws {
        let directory = try ModeScratchDirectory()
        defer { directory.remove() }
        let request = try directory.write(
            "request.json",
            ModeRequests.request(
                [
                    ModeRequests.position("BTC-USDT-SWAP", pos: "-2", lever: "10"),
                    ModeRequests.position("BTC-USD-260327-90000-C", pos: "-5"),
                ],
                assets: [("USDT", "100000")]))
        let report = try runModeJSON(["precheck", request, "--to", "4", "--acknowledged", "--format", "json"])
        #expect(report[member: "allowed"]?.modeBool == true, "\(report)")
        let reasons = try #require(report[member: "reasons"], "reasons must be present, even when empty")
        #expect(reasons == .array([]), "reasons: \(reasons)")
        #expect(modeText(report[member: "before"], "acctLv") == "3")
        #expect(modeText(report[member: "after"], "acctLv") == "4")
        let after = try #require(report[member: "after"])
        #expect(try modeNumber(after, "availEq") >= 0)

        // Without --acknowledged the same account is refused, for that reason alone.
        let unacknowledged = try runModeJSON(["precheck", request, "--to", "4", "--format", "json"])
        #expect(unacknowledged[member: "allowed"]?.modeBool == false)
        let reasonsWithout = (unacknowledged[member: "reasons"]?.arrayItems ?? []).compactMap(\.scalarText)
        #expect(reasonsWithout.count == 1 && reasonsWithout.first?.lowercased().contains("acknowledg") == true, "\(reasonsWithout)")
    }

    @Test(
        "precheck --to 4: a PM IMR above adjusted equity is refused with the IMR reason and its figures",
        arguments: [("500", false), ("20000", true)])
    func precheckPortfolioMarginImrNotCovered(_ balance: String, _ netEquityEnough: Bool) throws {
        let directory = try ModeScratchDirectory()
        defer { directory.remove() }
        let request = try directory.write(
            "request.json",
            ModeRequests.request(
                [ModeRequests.position("BTC-USD-260327-90000-C", pos: "-100")], assets: [("USDT", balance)]))
        let report = try runModeJSON(["precheck", request, "--to", "4", "--acknowledged", "--format", "json"])
        let after = try #require(report[member: "after"])
        let adjEq = try modeNumber(after, "adjEq")
        let totalImr = try modeNumber(after, "totalImr")
        try #require(adjEq < totalImr, "the fixture must leave PM IMR uncovered: adjEq \(adjEq), IMR \(totalImr)")
        let pmBuild = try runModeJSON(["build", request, "--format", "json"])
        let netEquity = try modeNumber(pmBuild, "eq")
        try #require((netEquity >= 10_000) == netEquityEnough, "fixture net equity \(netEquity)")
        #expect(modeText(after, "totalImr") == modeText(pmBuild, "totalImr"))

        #expect(report[member: "allowed"]?.modeBool == false)
        let reasons = (report[member: "reasons"]?.arrayItems ?? []).compactMap(\.scalarText)
        let imrReason = reasons.first { $0.contains("IMR") }
        #expect(imrReason != nil, "no reason mentions IMR: \(reasons)")
        #expect(imrReason?.contains(MoneyText.usd(totalImr)) == true, "IMR reason lacks the IMR \(MoneyText.usd(totalImr)): \(reasons)")
        #expect(imrReason?.contains(MoneyText.usd(adjEq)) == true, "IMR reason lacks adjEq \(MoneyText.usd(adjEq)): \(reasons)")
        #expect(reasons.contains { $0.contains("10,000") } == !netEquityEnough, "net-equity reason iff equity < 10,000: \(reasons)")
        #expect(reasons.count == (netEquityEnough ? 1 : 2), "\(reasons)")
        expectModeClose(try modeNumber(after, "availEq"), adjEq - totalImr, absolute: 1e-6, "after.availEq = adjEq − totalImr")
        #expect(try modeNumber(after, "availEq") < 0)
    }

    @Test("precheck --to 3 from PM: classic IMR above adjusted equity is refused with figures; the over-levered position fails its tier")
    func precheckToClassicRefused() throws {
        let directory = try ModeScratchDirectory()
        defer { directory.remove() }
        let positions = [
            ModeRequests.position("BTC-USDT-SWAP", pos: "700", lever: "100"),
            ModeRequests.position("ETH-USDT-SWAP", pos: "10", lever: "100"),
        ]
        let request = try directory.write("request.json", ModeRequests.request(positions, assets: [("USDT", "5000")]))
        let classicRequest = try directory.write("classic.json", ModeRequests.request(positions, assets: [("USDT", "5000")], acctLv: "3"))

        let classicBuild = try runModeJSON(["build", classicRequest, "--format", "json"])
        let btc = try #require(classicBuild[member: "positions"]?.arrayItems.first { modeText($0, "instId") == "BTC-USDT-SWAP" })
        let notional = try modeNumber(btc, "notionalUsd")
        try #require(notional > 500_000, "the BTC position must exceed 500,000 USD; notional \(notional)")
        let eth = try #require(classicBuild[member: "positions"]?.arrayItems.first { modeText($0, "instId") == "ETH-USDT-SWAP" })
        try #require(try modeNumber(eth, "notionalUsd") <= 500_000)

        let result = try runModePM(["precheck", request, "--to", "3", "--format", "json"])
        #expect(result.status == 0, "a refusal is not an error\n\(result)")
        let report = try runModeJSON(["precheck", request, "--to", "3", "--format", "json"])
        #expect(report[member: "allowed"]?.modeBool == false)
        #expect(modeText(report, "from") == "4")
        #expect(modeText(report, "to") == "3")
        let before = try #require(report[member: "before"])
        let after = try #require(report[member: "after"])
        #expect(modeText(before, "acctLv") == "4")
        #expect(modeText(after, "acctLv") == "3")
        // after = the classic build's figures.
        #expect(modeText(after, "totalImr") == modeText(classicBuild, "totalImr"))
        #expect(modeText(after, "totalMmr") == modeText(classicBuild, "totalMmr"))
        #expect(modeText(after, "mgnRatio") == modeText(classicBuild, "marginRatio"))
        let adjEq = try modeNumber(after, "adjEq")
        let totalImr = try modeNumber(after, "totalImr")
        try #require(adjEq < totalImr, "the fixture must leave classic IMR uncovered: adjEq \(adjEq), IMR \(totalImr)")
        // The capped BTC position alone needs N/50 > 10,000 USD.
        expectModeClose(try modeNumber(btc, "imr"), notional / 50, "BTC IMR at the capped lever")

        let reasons = (report[member: "reasons"]?.arrayItems ?? []).compactMap(\.scalarText)
        let imrReason = reasons.first { $0.contains("IMR") }
        #expect(imrReason != nil, "no IMR reason: \(reasons)")
        #expect(
            imrReason?.contains(MoneyText.usd(totalImr)) == true, "the reason should give the IMR \(MoneyText.usd(totalImr)): \(reasons)")
        #expect(imrReason?.contains(MoneyText.usd(adjEq)) == true, "the reason should give adjEq \(MoneyText.usd(adjEq)): \(reasons)")
        #expect(!reasons.contains { $0.lowercased().contains("acknowledg") }, "classic needs no acknowledgement: \(reasons)")

        let failing = report[member: "failingPositions"]?.arrayItems ?? []
        #expect(failing.count == 1, "only the BTC position exceeds its tier: \(failing)")
        let failingBTC = failing.first { modeText($0, "instId") == "BTC-USDT-SWAP" }
        #expect(failingBTC != nil, "BTC-USDT-SWAP should fail the classic tier: \(failing)")
        let failingReason = modeText(failingBTC, "reason") ?? ""
        #expect(
            failingReason.contains("100") && failingReason.contains("50"), "reason should name the lever and the maximum: \(failingReason)")
        #expect(!failing.contains { modeText($0, "instId") == "ETH-USDT-SWAP" }, "ETH at 100x is within its tier")
    }

    @Test("precheck --to 3 of a well-funded account is allowed, needs no acknowledgement, and lists no failing positions")
    func precheckToClassicAllowed() throws {
        let directory = try ModeScratchDirectory()
        defer { directory.remove() }
        let request = try directory.write(
            "request.json",
            ModeRequests.request(
                [ModeRequests.position("BTC-USDT-SWAP", pos: "10", lever: "20")], assets: [("USDT", "100000")]))
        let report = try runModeJSON(["precheck", request, "--to", "3", "--format", "json"])
        #expect(report[member: "allowed"]?.modeBool == true, "\(report)")
        #expect(report[member: "reasons"] == .array([]))
        #expect(report[member: "failingPositions"]?.arrayItems.isEmpty == true)
        #expect(modeText(report[member: "before"], "acctLv") == "4")
        #expect(modeText(report[member: "after"], "acctLv") == "3")
    }

    @Test("precheck with the request's acctLv already the target is refused")
    func precheckAlreadyInTarget() throws {
        let directory = try ModeScratchDirectory()
        defer { directory.remove() }
        for level in ["3", "4"] {
            let request = try directory.write(
                "request\(level).json",
                ModeRequests.request(
                    [ModeRequests.position("BTC-USDT-SWAP", pos: "1")], assets: [("USDT", "100000")], acctLv: level))
            let report = try runModeJSON(["precheck", request, "--to", level, "--acknowledged", "--format", "json"])
            #expect(report[member: "allowed"]?.modeBool == false, "level \(level): \(report)")
            #expect(modeText(report, "from") == level)
            #expect(modeText(report[member: "before"], "acctLv") == level)
            #expect((report[member: "reasons"]?.arrayItems ?? []).count == 1)
        }
    }

    @Test("precheck --to other than 3 or 4 is a usage error", arguments: ["5", "0", "classic", ""])
    func precheckBadTarget(_ target: String) throws {
        let result = try runModePM(["precheck", "examples/btc-hedged.json", "--to", target, "--format", "json"])
        #expect(result.status != 0, "\(result)")
        #expect(result.stdout.isEmpty, "\(result)")
        #expect(result.stderr.contains("--to"), "\(result)")
    }

    @Test("precheck --format table says ALLOWED or REFUSED, with the figures and failing positions")
    func precheckTable() throws {
        let directory = try ModeScratchDirectory()
        defer { directory.remove() }
        let rich = try directory.write(
            "rich.json",
            ModeRequests.request(
                [ModeRequests.position("BTC-USDT-SWAP", pos: "-2", lever: "10")], assets: [("USDT", "100000")]))
        let allowed = try runModePM(["precheck", rich, "--to", "4", "--acknowledged", "--format", "table"])
        #expect(allowed.status == 0, "\(allowed)")
        #expect(allowed.stdout.contains("ALLOWED") && !allowed.stdout.contains("REFUSED"), "\(allowed)")

        let refused = try runModePM(["precheck", rich, "--to", "4", "--format", "table"])
        #expect(refused.status == 0, "\(refused)")
        #expect(refused.stdout.contains("REFUSED") && !refused.stdout.contains("ALLOWED"), "\(refused)")
        let json = try runModeJSON(["precheck", rich, "--to", "4", "--format", "json"])
        let reasons = (json[member: "reasons"]?.arrayItems ?? []).compactMap(\.scalarText)
        #expect(reasons.count > 0, "the unacknowledged switch must carry a reason")
        for reason in reasons {
            #expect(refused.stdout.contains(reason), "table lacks the reason \(reason)\n\(refused)")
        }
        for key in ["totalMmr", "totalImr", "availEq"] {
            for side in ["before", "after"] {
                let figure = MoneyText.usd(try modeNumber(json[member: side], key))
                #expect(refused.stdout.contains(figure), "table lacks \(side).\(key) \(figure)\n\(refused)")
            }
        }

        let overLevered = try directory.write(
            "over.json",
            ModeRequests.request(
                [ModeRequests.position("BTC-USDT-SWAP", pos: "700", lever: "100")], assets: [("USDT", "5000")]))
        let toClassic = try runModePM(["precheck", overLevered, "--to", "3", "--format", "table"])
        #expect(toClassic.status == 0, "\(toClassic)")
        #expect(toClassic.stdout.contains("REFUSED"), "\(toClassic)")
        #expect(toClassic.stdout.contains("BTC-USDT-SWAP"), "the failing position should be listed\n\(toClassic)")
    }

    // MARK: Bad input through compare and precheck

    static let badInputs: [(name: String, request: String, mentions: [String])] = [
        (
            "unknown instrument",
            ModeRequests.request([ModeRequests.position("DOGE-USDT-SWAP", pos: "1", avgPx: "1")]), ["simPos[0].instId", "DOGE-USDT-SWAP"]
        ),
        (
            "acctLv other than 3 or 4",
            ModeRequests.request([ModeRequests.position("BTC-USDT-SWAP", pos: "1")], acctLv: "5"), ["acctLv", "5"]
        ),
        (
            "position lever below 1",
            ModeRequests.request([ModeRequests.position("BTC-USDT-SWAP", pos: "1", lever: "0.5")]), ["simPos[0].lever", "0.5"]
        ),
        (
            "non-numeric position lever",
            ModeRequests.request([ModeRequests.position("BTC-USDT-SWAP", pos: "1", lever: "high")]), ["simPos[0].lever", "high"]
        ),
        (
            "top-level lever out of range",
            ModeRequests.request([ModeRequests.position("BTC-USDT-SWAP", pos: "1")], lever: "5000"), ["lever", "5000"]
        ),
        (
            "zero position",
            ModeRequests.request([ModeRequests.position("BTC-USDT-SWAP", pos: "0")]), ["simPos[0].pos", "0"]
        ),
    ]

    @Test(
        "bad input through compare and precheck: one stderr line, non-zero exit, empty stdout",
        arguments: [["compare"], ["precheck", "--to", "4"], ["precheck", "--to", "3", "--acknowledged"], ["build"]], 0..<6)
    func badInput(_ command: [String], _ index: Int) throws {
        let directory = try ModeScratchDirectory()
        defer { directory.remove() }
        let bad = Self.badInputs[index]
        // The same request in classic mode for build, so that path is the one exercised.
        let text =
            command == ["build"] && !bad.request.contains("acctLv")
            ? bad.request.replacingOccurrences(of: #"{"simPos""#, with: #"{"acctLv": "3", "simPos""#).replacingOccurrences(
                of: #"{"lever""#, with: #"{"acctLv": "3", "lever""#)
            : bad.request
        let request = try directory.write("request.json", text)
        // Every input in JSON; the table path once, for the first input.
        for format in index == 0 ? ["json", "table"] : ["json"] {
            let result = try runModePM([command[0], request] + command.dropFirst() + ["--format", format])
            expectModeOneLineError(result, mentions: bad.mentions)
            #expect(result.stderr.hasPrefix("pm: error: "), "\(bad.name): \(result)")
        }
    }

    @Test("a missing request file through compare and precheck is one stderr line")
    func missingRequestFile() throws {
        let directory = try ModeScratchDirectory()
        defer { directory.remove() }
        let missing = directory.url.appendingPathComponent("no-such-request.json").path
        for command in [["compare"], ["precheck", "--to", "4"]] {
            let result = try runModePM([command[0], missing] + command.dropFirst() + ["--format", "json"])
            expectModeOneLineError(result, mentions: [missing])
        }
    }
}
