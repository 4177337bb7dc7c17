import Dispatch
import Foundation
import FuzzSupport
import MarginDefaults
import MarginEngine
import Sandbox

// The sandbox's REST request decoding and OKX HMAC authentication. The input is an HTTP/1.1-like request:
//
//     METHOD TARGET\n            (TARGET exactly as on the request line: path and raw query)
//     Name: value\n              (any number of header lines; names are matched case-insensitively)
//     \n
//     body bytes
//
// Header values may hold placeholders the harness fills in with a known account's credentials, so that the
// fuzzer reaches the accepting paths: `$KEY`, `$PASS`, `$TS` (the server's clock as ISO 8601), `$SIGN` (the
// correct signature of the timestamp header, method, target and body) and `$SIGND` (the signature of the
// percent-decoded target, as python-okx makes it). The harness decodes the request as the server does
// (`APIRequest(method:target:…)`), reads the JSON body, authenticates it on a fresh SandboxAPI and checks:
// an accepted request carried the key, the passphrase, a timestamp inside the window and one of the two
// valid signatures, and is refused as a replay the second time; a request whose credentials are all the
// placeholders is accepted; every refusal is an OKXError with HTTP 401 (400 for the body) whose envelope
// is well-formed JSON.

/// 2026-11-27T00:00:00.000Z, the server clock of every run.
let serverNow: Int64 = 1_795_737_600_000
let serverNowText = "2026-11-27T00:00:00.000Z"
let window: Int64 = 30_000

final class Fixture: @unchecked Sendable {
    let exchange: Exchange
    let apiKey: String
    let secret: String
    let passphrase: String
    let uid: String

    init() {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pm-fuzz-rest-auth-\(getpid())")
        try? FileManager.default.removeItem(at: directory)
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let catalog = try ShippedData.catalog()
            let market = try ShippedData.market(named: ShippedData.defaultMarketName)
            let parameters = try ShippedData.parameters()
            let sandbox = try Sandbox.open(
                SandboxConfiguration(databasePath: directory.appendingPathComponent("fuzz.sqlite").path),
                catalog: catalog, market: market, parameters: parameters)
            exchange = sandbox.exchange
            let created = try blocking { try await sandbox.exchange.createAccount(label: "fuzz") }
            (uid, apiKey, secret, passphrase) = (created.uid, created.apiKey, created.secretKey, created.passphrase)
        } catch {
            fatalError("cannot set up the sandbox: \(error)")
        }
    }
}

/// Runs `body` on the concurrency pool and waits for it (libFuzzer calls the target synchronously).
func blocking<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
    let box = ResultBox<T>()
    let done = DispatchSemaphore(value: 0)
    Task {
        do { box.result = .success(try await body()) } catch { box.result = .failure(error) }
        done.signal()
    }
    done.wait()
    return try box.result!.get()
}

final class ResultBox<T>: @unchecked Sendable {
    var result: Result<T, any Error>?
}

nonisolated(unsafe) var fixture: Fixture!

struct RawRequest {
    var method = ""
    var target = ""
    var headers: [String: String] = [:]
    var body: [UInt8] = []
}

/// Splits the input into request line, headers and body. Any byte string is some request.
func parse(_ bytes: UnsafeBufferPointer<UInt8>) -> RawRequest {
    var raw = RawRequest()
    var lines: [ArraySlice<UInt8>] = []
    var index = 0
    var lineStart = 0
    var bodyStart = bytes.count
    while index < bytes.count {
        if bytes[index] == UInt8(ascii: "\n") {
            var line = bytes[lineStart..<index]
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
            index += 1
            lineStart = index
            if line.isEmpty, !lines.isEmpty {
                bodyStart = index
                break
            }
            lines.append(ArraySlice(line))
            continue
        }
        index += 1
    }
    if bodyStart == bytes.count, lineStart < bytes.count, index >= bytes.count {
        lines.append(ArraySlice(bytes[lineStart..<bytes.count]))
    }
    raw.body = bodyStart < bytes.count ? Array(bytes[bodyStart...]) : []
    guard let first = lines.first else { return raw }
    let requestLine = String(decoding: first, as: UTF8.self)
    if let space = requestLine.firstIndex(of: " ") {
        raw.method = String(requestLine[..<space])
        raw.target = String(requestLine[requestLine.index(after: space)...])
    } else {
        raw.method = requestLine
    }
    for line in lines.dropFirst() {
        let text = String(decoding: line, as: UTF8.self)
        guard let colon = text.firstIndex(of: ":") else { continue }
        // HTTPField.Name.canonicalName is the lower-cased name; the server keeps the last of repeated fields.
        let name = String(text[..<colon]).lowercased()
        var value = text[text.index(after: colon)...]
        while value.first == " " || value.first == "\t" { value = value.dropFirst() }
        while value.last == " " || value.last == "\t" { value = value.dropLast() }
        raw.headers[name] = String(value)
    }
    return raw
}

func run(_ bytes: UnsafeBufferPointer<UInt8>) {
    let fixture = fixture!
    var raw = parse(bytes)
    var placeholders = 0
    for (name, value) in raw.headers {
        switch value {
        case "$KEY":
            raw.headers[name] = fixture.apiKey
            placeholders += name == "ok-access-key" ? 1 : 0
        case "$PASS":
            raw.headers[name] = fixture.passphrase
            placeholders += name == "ok-access-passphrase" ? 1 : 0
        case "$TS":
            raw.headers[name] = serverNowText
            placeholders += name == "ok-access-timestamp" ? 1 : 0
        default: break
        }
    }
    let timestamp = raw.headers["ok-access-timestamp"] ?? ""
    let signed = okxSignature(secret: fixture.secret, timestamp: timestamp, method: raw.method, requestPath: raw.target, body: raw.body)
    let decodedTarget = raw.target.removingPercentEncoding ?? raw.target
    let signedDecoded = okxSignature(
        secret: fixture.secret, timestamp: timestamp, method: raw.method, requestPath: decodedTarget, body: raw.body)
    for (name, value) in raw.headers {
        switch value {
        case "$SIGN":
            raw.headers[name] = signed
            placeholders += name == "ok-access-sign" ? 1 : 0
        case "$SIGND":
            raw.headers[name] = signedDecoded
            placeholders += name == "ok-access-sign" ? 1 : 0
        default: break
        }
    }

    // Decoding, as Sandbox.respond does it.
    let request = APIRequest(method: raw.method, target: raw.target, body: raw.body, headers: raw.headers, remoteIsLoopback: false)
    guard request.rawTarget == raw.target, request.method == raw.method, request.body == raw.body else {
        OutputCheck.fail("the decoded request does not keep the method, target and body as received")
    }
    guard !request.path.contains("?"), raw.target.hasPrefix(request.path) else {
        OutputCheck.fail("path \(request.path.debugDescription) is not the part of \(raw.target.debugDescription) before the query")
    }
    for (name, value) in request.query {
        _ = request.parameter(name)
        _ = value.utf8.count
    }
    do {
        let body = try request.jsonBody()
        OutputCheck.check(body, "body", scanNumbers: false)
    } catch let error as OKXError {
        guard error.code == .jsonSyntax, error.httpStatus == 400 else { OutputCheck.fail("the body was refused with \(error)") }
        OutputCheck.check(APIResponse.error(error).envelope, "body error envelope")
    } catch {
        OutputCheck.fail("jsonBody threw \(error)")
    }

    // Authentication on a fresh API (no replay memory), at a fixed server time.
    let api = SandboxAPI(
        exchange: fixture.exchange, adminToken: "fuzz-admin-token", timestampWindowSeconds: Int(window / 1000),
        rateLimitPerSecond: 1e9, clock: { serverNow })
    let outcome: Result<(uid: String, permissions: Set<String>), any Error>
    do {
        outcome = .success(try blocking { try await api.authenticate(request) })
    } catch {
        outcome = .failure(error)
    }
    switch outcome {
    case .success(let accepted):
        let sign = request.headers["ok-access-sign"] ?? ""
        guard accepted.uid == fixture.uid, request.headers["ok-access-key"] == fixture.apiKey,
            request.headers["ok-access-passphrase"] == fixture.passphrase,
            sign == signed || (raw.target.contains("%") && sign == signedDecoded)
        else {
            OutputCheck.fail("accepted a request without the key, passphrase and signature: \(request.headers)")
        }
        // (1 ms of slack: the server scales the fraction in floating point.)
        guard let time = isoMilliseconds(timestamp), abs(time - serverNow) <= window + 1 else {
            OutputCheck.fail("accepted the timestamp \(timestamp.debugDescription) outside the window")
        }
        // The same request again is a replay.
        do {
            _ = try blocking { try await api.authenticate(request) }
            OutputCheck.fail("a replayed request was accepted")
        } catch let error as OKXError {
            guard error.code == .invalidSignature, error.httpStatus == 401 else { OutputCheck.fail("a replay was refused with \(error)") }
        } catch {
            OutputCheck.fail("a replay threw \(error)")
        }
    case .failure(let error as OKXError):
        guard error.httpStatus == 401,
            ["50102", "50103", "50104", "50105", "50106", "50107", "50111", "50112", "50113"].contains(error.code.rawValue)
        else {
            OutputCheck.fail("authentication refused with \(error)")
        }
        OutputCheck.check(APIResponse.error(error).envelope, "error envelope")
        if placeholders == 4 {
            OutputCheck.fail(
                "a request signed with the account's credentials was refused: \(error) \(raw.method.debugDescription) \(raw.target.debugDescription)"
            )
        }
    case .failure(let error):
        OutputCheck.fail("authentication threw \(error)")
    }
}

/// An independent reading of `YYYY-MM-DDTHH:MM:SS[.f…]Z` in Unix milliseconds, for the window check. Out of
/// range fields roll over (day 31 of November is 1 December), as Foundation's calendar does; the fraction is
/// truncated to milliseconds. Nil when the text does not have that form.
func isoMilliseconds(_ text: String) -> Int64? {
    let bytes = Array(text.utf8)
    guard bytes.count >= 20, bytes.last == UInt8(ascii: "Z") else { return nil }
    func number(_ range: Range<Int>) -> Int64? {
        guard range.upperBound <= bytes.count, !range.isEmpty else { return nil }
        var value: Int64 = 0
        for index in range {
            guard bytes[index] >= UInt8(ascii: "0"), bytes[index] <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int64(bytes[index] - UInt8(ascii: "0"))
        }
        return value
    }
    guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10), let hour = number(11..<13),
        let minute = number(14..<16), let second = number(17..<19), (1...12).contains(month)
    else { return nil }
    var milliseconds: Int64 = 0
    if bytes.count > 20 {
        guard bytes[19] == UInt8(ascii: "."), let fraction = number(20..<min(bytes.count - 1, 23)) else { return nil }
        let digits = min(bytes.count - 1, 23) - 20
        milliseconds = fraction * [100, 10, 1][digits - 1]
    }
    // Days from 1970-01-01 to the first of the month (Howard Hinnant's days_from_civil), then linear.
    let y = month <= 2 ? year - 1 : year
    let era = (y >= 0 ? y : y - 399) / 400
    let yearOfEra = y - era * 400
    let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5
    let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
    let days = era * 146_097 + dayOfEra - 719_468 + (day - 1)
    return ((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + milliseconds
}

@main enum FuzzMain {
    static func main() {
        FuzzDriver.run(initialize: { fixture = Fixture() }, fuzzTestOneInput)
    }
}

/// The target's one-input function, exported under libFuzzer's conventional name.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    run(UnsafeBufferPointer(start: data, count: size))
    return 0
}
