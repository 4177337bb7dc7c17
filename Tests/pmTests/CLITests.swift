import Foundation
import MarginEngine
import MarginTestSupport
import Testing

// MARK: - Running the real `pm` executable

/// The outcome of one `pm` run.
struct PMResult: Sendable, CustomStringConvertible {
    var status: Int32
    var stdout: String
    var stderr: String

    var description: String {
        "exit status \(status)\n--- stdout (\(stdout.utf8.count) bytes) ---\n\(stdout.prefix(2000))\n--- stderr ---\n\(stderr)"
    }
}

enum PMExecutable {
    /// The package root, from this file's path (`Tests/pmTests/CLITests.swift`).
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Where the `pm` binary was found, or why it was not.
    static let located: Result<URL, LocateError> = locate()

    struct LocateError: Error, CustomStringConvertible {
        var searched: [String]
        var description: String {
            "the pm executable was not found (build it with `swift build`); looked in:\n  " + searched.joined(separator: "\n  ")
        }
    }

    private static func isExecutable(_ url: URL) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) && !isDirectory.boolValue
            && FileManager.default.isExecutableFile(atPath: url.path)
    }

    /// `pm` is built into the same directory as the test bundle (`.build…/debug/`); failing that, the newest
    /// `.build*/debug/pm` (or `.build*/<triple>/debug/pm`) under the package root.
    private static func locate() -> Result<URL, LocateError> {
        var candidates: [URL] = []
        let bundle = Bundle.main.bundleURL
        candidates.append(bundle.appendingPathComponent("pm"))
        candidates.append(bundle.deletingLastPathComponent().appendingPathComponent("pm"))
        if let executable = Bundle.main.executableURL {
            candidates.append(executable.deletingLastPathComponent().appendingPathComponent("pm"))
        }
        if let first = CommandLine.arguments.first, first.contains("/") {
            candidates.append(URL(fileURLWithPath: first).deletingLastPathComponent().appendingPathComponent("pm"))
        }
        for candidate in candidates where isExecutable(candidate) { return .success(candidate.standardizedFileURL) }

        var fallbacks: [URL] = []
        let manager = FileManager.default
        let buildDirectories = ((try? manager.contentsOfDirectory(atPath: packageRoot.path)) ?? [])
            .filter { $0.hasPrefix(".build") }.sorted()
        for directory in buildDirectories {
            let base = packageRoot.appendingPathComponent(directory)
            fallbacks.append(base.appendingPathComponent("debug/pm"))
            for entry in ((try? manager.contentsOfDirectory(atPath: base.path)) ?? []).sorted() where entry.contains("-") {
                fallbacks.append(base.appendingPathComponent(entry).appendingPathComponent("debug/pm"))
            }
        }
        let found = fallbacks.filter(isExecutable).max { lhs, rhs in
            let left = (try? manager.attributesOfItem(atPath: lhs.path)[.modificationDate] as? Date) ?? .distantPast
            let right = (try? manager.attributesOfItem(atPath: rhs.path)[.modificationDate] as? Date) ?? .distantPast
            return left < right
        }
        if let found { return .success(found.standardizedFileURL) }
        return .failure(LocateError(searched: (candidates + fallbacks).map(\.path)))
    }
}

/// A fresh temporary directory for one test's files; removed by ``remove()``.
struct TemporaryDirectory {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("pmTests-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    /// Writes `contents` to `name` in the directory and returns its absolute path.
    @discardableResult
    func write(_ name: String, _ contents: String) throws -> String {
        let file = url.appendingPathComponent(name)
        try Data(contents.utf8).write(to: file)
        return file.path
    }

    func path(_ name: String) -> String { url.appendingPathComponent(name).path }

    func remove() { try? FileManager.default.removeItem(at: url) }
}

/// Runs `pm` with `args` (working directory: the package root), feeding `stdin` when given, and returns the
/// exit status and everything written to stdout and stderr.
func runPM(_ args: [String], stdin: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) throws -> PMResult {
    let executable: URL
    switch PMExecutable.located {
    case .success(let url): executable = url
    case .failure(let error):
        Issue.record(Comment(rawValue: error.description), sourceLocation: sourceLocation)
        throw error
    }
    let scratch = try TemporaryDirectory()
    defer { scratch.remove() }
    // Files rather than pipes, so a large output can never block the child.
    let outPath = try scratch.write("stdout", "")
    let errPath = try scratch.write("stderr", "")
    let outHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
    let errHandle = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
    var inHandle = FileHandle.nullDevice
    if let stdin {
        inHandle = try FileHandle(forReadingFrom: URL(fileURLWithPath: try scratch.write("stdin", stdin)))
    }

    let process = Process()
    process.executableURL = executable
    process.arguments = args
    process.currentDirectoryURL = PMExecutable.packageRoot
    process.standardOutput = outHandle
    process.standardError = errHandle
    process.standardInput = inHandle
    try process.run()
    process.waitUntilExit()
    try outHandle.close()
    try errHandle.close()
    if stdin != nil { try inHandle.close() }

    let stdout = String(decoding: try Data(contentsOf: URL(fileURLWithPath: outPath)), as: UTF8.self)
    let stderr = String(decoding: try Data(contentsOf: URL(fileURLWithPath: errPath)), as: UTF8.self)
    return PMResult(status: process.terminationStatus, stdout: stdout, stderr: stderr)
}

// MARK: - Helpers

extension JSONValue {
    var testObject: JSONObject? {
        guard case .object(let object) = self else { return nil }
        return object
    }
}

/// Parses stdout as exactly one JSON object (trailing newline allowed).
func parseObject(_ result: PMResult, sourceLocation: SourceLocation = #_sourceLocation) throws -> JSONValue {
    let json: JSONValue
    do { json = try JSONParser.parse(result.stdout) } catch {
        Issue.record("stdout is not one JSON document: \(error)\n\(result)", sourceLocation: sourceLocation)
        throw error
    }
    try #require(json.testObject != nil, "stdout is not a JSON object", sourceLocation: sourceLocation)
    return json
}

/// Asserts the bad-input contract: non-zero exit, nothing on stdout, exactly one line on stderr that names
/// `field` and, after it, `value`.
func expectOneLineError(
    _ result: PMResult, field: String, value: String?, sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(result.status != 0, "exit status must be non-zero\n\(result)", sourceLocation: sourceLocation)
    #expect(result.stdout.isEmpty, "stdout must be empty\n\(result)", sourceLocation: sourceLocation)
    let lines = result.stderr.split(separator: "\n", omittingEmptySubsequences: false)
    #expect(
        result.stderr.hasSuffix("\n") && lines.count == 2 && !lines[0].isEmpty,
        "stderr must be exactly one line\n\(result)", sourceLocation: sourceLocation)
    guard let fieldRange = result.stderr.range(of: field) else {
        Issue.record("stderr does not name the field \(field)\n\(result)", sourceLocation: sourceLocation)
        return
    }
    if let value {
        #expect(
            result.stderr[fieldRange.upperBound...].contains(value),
            "stderr does not name the value \(value) after \(field)\n\(result)", sourceLocation: sourceLocation)
    }
}

enum Requests {
    static func position(_ instId: String, pos: String = "1", avgPx: String? = nil) -> String {
        let price = avgPx.map { #", "avgPx": "\#($0)""# } ?? ""
        return #"{"instId": "\#(instId)", "pos": "\#(pos)"\#(price)}"#
    }

    static func request(_ positions: [String], extra: String = "") -> String {
        #"{"simPos": [\#(positions.joined(separator: ", "))], "simAsset": [{"ccy": "USDT", "amt": "100000"}]\#(extra)}"#
    }

    static let btcPerpetual = request([position("BTC-USDT-SWAP", pos: "10", avgPx: "65000")])

    /// A small valid snapshot pricing BTC-USDT-SWAP (the OKX documentation example's values).
    static let btcMarket = """
        {"ts": "1736936801642",
         "indices": {"BTC-USDT": "97078.9", "USDT-USD": "0.99954"},
         "rates": {"USD": "0"},
         "marks": [{"instId": "BTC-USDT-SWAP", "markPx": "97093.7"}]}
        """

    /// The shipped parameter set, parsed (read from the package sources).
    static func shippedParameters() throws -> JSONObject {
        let path = PMExecutable.packageRoot.appendingPathComponent("Sources/MarginDefaults/Resources/params/okx-2025-01.json")
        let json = try JSONParser.parse(Array(try Data(contentsOf: path)))
        return try #require(json.testObject)
    }
}

// MARK: - Tests

@Suite struct CLITests {
    static let docExample = "examples/okx-doc-example.json"
    static let docExampleTotalMmr = 2946.5480841048

    // MARK: Success

    @Test("build --format json prints one JSON object reproducing the OKX documentation example")
    func buildJSON() throws {
        let result = try runPM(["build", Self.docExample, "--format", "json"])
        #expect(result.status == 0, "\(result)")
        #expect(result.stderr.isEmpty, "\(result)")
        #expect(result.stdout.hasSuffix("}\n"))
        let response = try parseObject(result)
        let totalMmr = try #require(response[member: "totalMmr"]?.doubleValue)
        #expect(isClose(totalMmr, Self.docExampleTotalMmr, relative: 1e-9), "totalMmr \(totalMmr)")
        let units = (response[member: "riskUnitData"]?.arrayItems ?? []).compactMap { $0[member: "riskUnit"]?.scalarText }
        #expect(Set(units) == ["BTC", "LTC"], "risk units \(units)")
        #expect(response[member: "greeksType"]?.scalarText == "CASH")
        #expect(response[member: "marketTs"]?.scalarText == "1736936801642")
    }

    @Test func buildTable() throws {
        let result = try runPM(["build", Self.docExample, "--format", "table"])
        #expect(result.status == 0, "\(result)")
        #expect(result.stderr.isEmpty, "\(result)")
        for text in ["Risk units", "MR1 grid", "BTC"] {
            #expect(result.stdout.contains(text), "table lacks \(text)\n\(result)")
        }
    }

    @Test("without --format, output that is not a terminal is JSON")
    func defaultFormatIsJSONOffTerminal() throws {
        let implicit = try runPM(["build", Self.docExample])
        let explicit = try runPM(["build", Self.docExample, "--format", "json"])
        #expect(implicit.status == 0, "\(implicit)")
        #expect(implicit.stdout == explicit.stdout)
    }

    @Test("build --graph --format json prints mmrData from -0.99 to 1, consistent with build")
    func graphJSON() throws {
        let result = try runPM(["build", Self.docExample, "--graph", "--format", "json"])
        #expect(result.status == 0, "\(result)")
        #expect(result.stderr.isEmpty, "\(result)")
        let graph = try parseObject(result)
        let points = graph[member: "mmrData"]?.arrayItems ?? []
        #expect(points.count == 200)
        let factors = points.compactMap { $0[member: "shockFactor"]?.doubleValue }
        #expect(factors.count == points.count)
        #expect(points.first?[member: "shockFactor"]?.scalarText == "-0.99")
        #expect(points.last?[member: "shockFactor"]?.scalarText == "1")
        #expect(zip(factors, factors.dropFirst()).allSatisfy { $0 < $1 }, "shockFactor must ascend")
        #expect(points.allSatisfy { $0[member: "mmr"]?.doubleValue.map { $0.isFinite && $0 >= 0 } == true })

        let build = try parseObject(try runPM(["build", Self.docExample, "--format", "json"]))
        let zero = try #require(points.first { $0[member: "shockFactor"]?.scalarText == "0" }, "no point at shockFactor 0")
        let graphMmr = try #require(zero[member: "mmr"]?.scalarText)
        let buildMmr = try #require(build[member: "totalMmr"]?.scalarText)
        #expect(graphMmr == buildMmr, "mmr at shock 0 (\(graphMmr)) vs build totalMmr (\(buildMmr))")
    }

    @Test("--snapshot with a shipped snapshot name")
    func shippedSelloffMarket() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let request = try directory.write("request.json", Requests.btcPerpetual)
        let result = try runPM(["build", request, "--snapshot", "selloff-2026-02-05", "--format", "json"])
        #expect(result.status == 0, "\(result)")
        #expect(result.stderr.isEmpty, "\(result)")
        let response = try parseObject(result)
        #expect(response[member: "marketTs"]?.scalarText == "1770326977885")
        #expect((response[member: "totalMmr"]?.doubleValue ?? 0) > 0)
    }

    @Test("--snapshot with a snapshot file")
    func marketFile() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let request = try directory.write("request.json", Requests.btcPerpetual)
        let market = try directory.write("market.json", Requests.btcMarket)
        let result = try runPM(["build", request, "--snapshot", market, "--format", "json"])
        #expect(result.status == 0, "\(result)")
        #expect(result.stderr.isEmpty, "\(result)")
        let response = try parseObject(result)
        #expect(response[member: "marketTs"]?.scalarText == "1736936801642")
        let unit = try #require(response[member: "riskUnitData"]?.arrayItems.first)
        #expect(unit[member: "riskUnit"]?.scalarText == "BTC")
        #expect(unit[member: "portfolios"]?.arrayItems.first?[member: "markPx"]?.scalarText == "97093.7")
    }

    @Test("--params with a parameter file")
    func paramsFile() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        var parameters = try Requests.shippedParameters()
        parameters["id"] = .string("test-set")
        let params = try directory.write("params.json", JSONWriter.serialize(.object(parameters), pretty: true))
        let request = try directory.write("request.json", Requests.btcPerpetual)

        let result = try runPM(["build", request, "--params", params, "--format", "json"])
        #expect(result.status == 0, "\(result)")
        #expect(result.stderr.isEmpty, "\(result)")
        let response = try parseObject(result)
        #expect(response[member: "paramsId"]?.scalarText == "test-set")

        // Same values as the shipped set, so the same requirement.
        let shipped = try parseObject(try runPM(["build", request, "--format", "json"]))
        #expect(shipped[member: "paramsId"]?.scalarText == "okx-2025-01")
        #expect(response[member: "totalMmr"]?.scalarText == shipped[member: "totalMmr"]?.scalarText)
    }

    @Test("--catalog replaces the shipped catalog")
    func catalogFile() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let catalog = try directory.write(
            "catalog.json",
            """
            {"code": "0", "msg": "", "data": [
              {"instType": "SWAP", "instId": "ETH-USDT-SWAP", "uly": "ETH-USDT", "instFamily": "ETH-USDT",
               "settleCcy": "USDT", "ctVal": "0.1", "ctMult": "1", "ctValCcy": "ETH", "ctType": "linear",
               "tickSz": "0.01", "lotSz": "0.01", "minSz": "0.01", "lever": "100", "state": "live"}
            ]}
            """)
        let request = try directory.write("request.json", Requests.btcPerpetual)
        let result = try runPM(["build", request, "--catalog", catalog, "--format", "json"])
        expectOneLineError(result, field: "simPos[0].instId", value: "BTC-USDT-SWAP")
        #expect(result.stderr.contains("unknown instrument"), "\(result)")

        // The tiny catalog itself is valid: an instrument it lists is accepted.
        let ethRequest = try directory.write("eth.json", Requests.request([Requests.position("ETH-USDT-SWAP", pos: "10", avgPx: "3000")]))
        let eth = try runPM(["build", ethRequest, "--catalog", catalog, "--format", "json"])
        #expect(eth.status == 0, "\(eth)")
    }

    @Test("- reads the request from standard input")
    func requestFromStandardInput() throws {
        let text = try String(contentsOf: PMExecutable.packageRoot.appendingPathComponent(Self.docExample), encoding: .utf8)
        let fromStdin = try runPM(["build", "-", "--format", "json"], stdin: text)
        #expect(fromStdin.status == 0, "\(fromStdin)")
        #expect(fromStdin.stderr.isEmpty, "\(fromStdin)")
        let fromFile = try runPM(["build", Self.docExample, "--format", "json"])
        #expect(fromStdin.stdout == fromFile.stdout)
        let response = try parseObject(fromStdin)
        #expect(response[member: "totalMmr"]?.doubleValue.map { isClose($0, Self.docExampleTotalMmr) } == true)
    }

    @Test("JSON output does not depend on the order of simPos", arguments: ["examples/okx-doc-example.json", "examples/btc-hedged.json"])
    func simPosOrderDoesNotMatter(_ example: String) throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let original = try JSONParser.parse(Array(try Data(contentsOf: PMExecutable.packageRoot.appendingPathComponent(example))))
        var object = try #require(original.testObject)
        let positions = object["simPos"]?.arrayItems ?? []
        try #require(positions.count >= 2)
        object["simPos"] = .array(positions.reversed())
        let reversed = try directory.write("reversed.json", JSONWriter.serialize(.object(object), pretty: true))

        let forward = try runPM(["build", example, "--format", "json"])
        let backward = try runPM(["build", reversed, "--format", "json"])
        #expect(forward.status == 0, "\(forward)")
        #expect(backward.status == 0, "\(backward)")
        #expect(!forward.stdout.isEmpty)
        #expect(Array(forward.stdout.utf8) == Array(backward.stdout.utf8), "outputs differ when simPos is reversed")
    }

    // MARK: Bad input: one line on stderr naming field and value, non-zero exit, nothing on stdout

    @Test("unknown instrument", arguments: ["DOGE-USDT-SWAP", "BTC-USD-NOPE", "BTC-USD-260424-88001-C"])
    func unknownInstrument(_ id: String) throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let request = try directory.write("request.json", Requests.request([Requests.position(id, avgPx: "1")]))
        let result = try runPM(["build", request, "--format", "json"])
        expectOneLineError(result, field: "simPos[0].instId", value: id)
    }

    @Test("expired instrument (an option of January 2026 against the 2026-02-05 snapshot)")
    func expiredInstrument() throws {
        // BTC-USD-260130-100000-C is in the shipped catalog (from the 2025-12-30 chain); it expired on
        // 2026-01-30, before the sell-off snapshot.
        let id = "BTC-USD-260130-100000-C"
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let request = try directory.write(
            "request.json",
            Requests.request([
                Requests.position("BTC-USDT-SWAP", pos: "1", avgPx: "65000"), Requests.position(id, pos: "1", avgPx: "0.01"),
            ]))
        // Listed, and live in the default (calm) snapshot.
        let calm = try runPM(["build", request, "--format", "json"])
        #expect(calm.status == 0, "\(calm)")

        let result = try runPM(["build", request, "--snapshot", "selloff-2026-02-05", "--format", "json"])
        expectOneLineError(result, field: "simPos[1].instId", value: id)
        #expect(result.stderr.contains("expired"), "\(result)")
    }

    @Test("non-numeric number")
    func nonNumeric() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let request = try directory.write(
            "request.json", Requests.request([Requests.position("BTC-USDT-SWAP", pos: "abc", avgPx: "65000")]))
        expectOneLineError(try runPM(["build", request, "--format", "json"]), field: "simPos[0].pos", value: "abc")
    }

    @Test("non-finite number", arguments: ["1e999", "NaN", "-1e400", "Infinity"])
    func nonFinite(_ text: String) throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let request = try directory.write("request.json", Requests.request([Requests.position("BTC-USDT-SWAP", pos: text, avgPx: "65000")]))
        expectOneLineError(try runPM(["build", request, "--format", "json"]), field: "simPos[0].pos", value: text)
    }

    @Test("non-finite number given as a bare JSON number")
    func nonFiniteBareNumber() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let request = try directory.write(
            "request.json",
            #"{"simPos": [{"instId": "BTC-USDT-SWAP", "pos": 1, "avgPx": 1e999}]}"#)
        expectOneLineError(try runPM(["build", request, "--format", "json"]), field: "simPos[0].avgPx", value: "1e999")
    }

    @Test("zero position size")
    func zeroPosition() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let request = try directory.write("request.json", Requests.request([Requests.position("BTC-USDT-SWAP", pos: "0", avgPx: "65000")]))
        expectOneLineError(try runPM(["build", request, "--format", "json"]), field: "simPos[0].pos", value: "0")
    }

    @Test("zero or negative price", arguments: ["0", "-65000", "-0.5"])
    func nonPositivePrice(_ price: String) throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let request = try directory.write("request.json", Requests.request([Requests.position("BTC-USDT-SWAP", pos: "1", avgPx: price)]))
        expectOneLineError(try runPM(["build", request, "--format", "json"]), field: "simPos[0].avgPx", value: price)
    }

    @Test("more than 1,000 positions")
    func tooManyPositions() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let positions = Array(repeating: Requests.position("BTC-USDT-SWAP", pos: "1", avgPx: "65000"), count: 1001)
        let request = try directory.write("request.json", Requests.request(positions))
        expectOneLineError(try runPM(["build", request, "--format", "json"]), field: "simPos", value: "1001")

        // 1,000 is allowed.
        let atLimit = try directory.write("limit.json", Requests.request(Array(positions.dropLast())))
        let result = try runPM(["build", atLimit, "--format", "json"])
        #expect(result.status == 0, "\(result)")
    }

    @Test("malformed snapshot file (invalid JSON)")
    func malformedSnapshotFile() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let request = try directory.write("request.json", Requests.btcPerpetual)
        let market = try directory.write("market.json", #"{"ts": "1736936801642", "indices": {"BTC-USD": "97000",}"#)
        let result = try runPM(["build", request, "--snapshot", market, "--format", "json"])
        expectOneLineError(result, field: "market", value: "invalid JSON")
    }

    @Test("snapshot with a negative index price")
    func snapshotNegativeIndex() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let request = try directory.write("request.json", Requests.btcPerpetual)
        let market = try directory.write("market.json", Requests.btcMarket.replacingOccurrences(of: #""97078.9""#, with: #""-97078.9""#))
        let result = try runPM(["build", request, "--snapshot", market, "--format", "json"])
        expectOneLineError(result, field: "market.indices.BTC-USDT", value: "-97078.9")
    }

    @Test("malformed parameter file (invalid JSON)")
    func malformedParamsFile() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let request = try directory.write("request.json", Requests.btcPerpetual)
        let params = try directory.write("params.json", #"{"id": "broken", "tiers": "#)
        let result = try runPM(["build", request, "--params", params, "--format", "json"])
        expectOneLineError(result, field: "params", value: "invalid JSON")
    }

    @Test(
        "parameter file with a key removed",
        arguments: [["mr3Factor"], ["derivatives", "tier2", "perpBasis"], ["limits", "maxPositions"]])
    func paramsMissingKey(_ keyPath: [String]) throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        func removing(_ path: ArraySlice<String>, from object: JSONObject) throws -> JSONObject {
            var object = object
            let key = try #require(path.first)
            if path.count == 1 {
                try #require(object[key] != nil, "the shipped parameters have no \(key)")
                object[key] = nil
            } else {
                let child = try #require(object[key]?.testObject, "the shipped parameters have no object \(key)")
                object[key] = .object(try removing(path.dropFirst(), from: child))
            }
            return object
        }
        let parameters = try removing(keyPath[...], from: try Requests.shippedParameters())
        let params = try directory.write("params.json", JSONWriter.serialize(.object(parameters), pretty: true))
        let request = try directory.write("request.json", Requests.btcPerpetual)
        let result = try runPM(["build", request, "--params", params, "--format", "json"])
        expectOneLineError(result, field: "params." + keyPath.joined(separator: "."), value: nil)
    }

    @Test("parameter value NaN")
    func paramsNaNValue() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        var parameters = try Requests.shippedParameters()
        parameters["mr3Factor"] = .string("NaN")
        let params = try directory.write("params.json", JSONWriter.serialize(.object(parameters), pretty: true))
        let request = try directory.write("request.json", Requests.btcPerpetual)
        let result = try runPM(["build", request, "--params", params, "--format", "json"])
        expectOneLineError(result, field: "params.mr3Factor", value: "NaN")
    }

    @Test("nonexistent request file")
    func missingRequestFile() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let missing = directory.path("no-such-request.json")
        let result = try runPM(["build", missing, "--format", "json"])
        expectOneLineError(result, field: missing, value: nil)
    }

    @Test("inline market and --snapshot together")
    func inlineMarketConflict() throws {
        let result = try runPM(["build", Self.docExample, "--snapshot", "calm-2025-12-30", "--format", "json"])
        expectOneLineError(result, field: "market", value: "--snapshot")
    }

    /// `--market` was `pm build`'s name for a snapshot until `pm serve --market-mode` took the idea of a market
    /// mode: the old spelling still works, says so on stderr, and gives the same answer.
    @Test("--market, the old name of --snapshot, still works with a deprecation note")
    func deprecatedMarketOption() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let request = try directory.write("request.json", Requests.btcPerpetual)
        let renamed = try runPM(["build", request, "--snapshot", "selloff-2026-02-05", "--format", "json"])
        let old = try runPM(["build", request, "--market", "selloff-2026-02-05", "--format", "json"])
        #expect(old.status == 0, "\(old)")
        #expect(old.stdout == renamed.stdout)
        #expect(old.stderr == "pm: warning: --market is deprecated here; use --snapshot (same value)\n", "\(old)")
        let both = try runPM(["build", request, "--market", "calm-2025-12-30", "--snapshot", "calm-2025-12-30"])
        #expect(both.status != 0 && both.stdout.isEmpty, "\(both)")
        #expect(both.stderr.contains("--market is the old name of --snapshot"), "\(both)")
    }

    /// `pm serve --market` is the old name of `--market-mode`; both at once, or a bad mode, end before serving
    /// (and the database path cannot be opened, so a serve that got past validation would end too).
    @Test("pm serve: --market-mode, and --market as its deprecated alias")
    func serveMarketModeNames() throws {
        let unopenable = ["--port", "0", "--db", "/nonexistent/pm-test.sqlite"]
        let both = try runPM(["serve", "--market", "static", "--market-mode", "random"] + unopenable)
        #expect(both.status != 0 && both.stderr.contains("--market is the old name of --market-mode"), "\(both)")
        let badOld = try runPM(["serve", "--market", "sideways"] + unopenable)
        #expect(badOld.status != 0, "\(badOld)")
        #expect(badOld.stderr.contains("--market is deprecated here; use --market-mode"), "\(badOld)")
        #expect(badOld.stderr.contains("--market-mode must be static, random, replay FILE or follow URL"), "\(badOld)")
        let badNew = try runPM(["serve", "--market-mode", "replay"] + unopenable)
        #expect(badNew.status != 0 && badNew.stderr.contains("--market-mode replay needs a CSV file"), "\(badNew)")
    }
}
