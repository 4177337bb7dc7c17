import Foundation
import MarginEngine
import MarginTestSupport
import Testing

@testable import Sandbox

/// Signing, the timestamp window, replay rejection and permissions (docs/methodology/06-sandbox-api.md §2), in OKX's
/// check order.
@Suite struct AuthenticationTests {
    /// Stored passphrase hashes are `salt:hex(sha256(salt + passphrase))` (reference: Python's hashlib), and
    /// random tokens are upper-case hexadecimal of the requested length.
    @Test func passphraseHashAndTokensKeepTheirFormat() {
        let stored = SecretBox.hashPassphrase("correct horse", salt: "00FF7A")
        #expect(stored == "00FF7A:214b376e8f7f3661cf1e5004e8544b0d2be99639d728bf4812b236d6c62bf36c")
        #expect(SecretBox.verifyPassphrase("correct horse", against: stored))
        #expect(!SecretBox.verifyPassphrase("correct horsE", against: stored))
        let token = SecretBox.randomToken(bytes: 24)
        #expect(token.utf8.count == 48 && token.allSatisfy { "0123456789ABCDEF".contains($0) })
    }

    @Test func aCorrectlySignedRequestIsAccepted() async throws {
        let sandbox = try SandboxHarness()
        let user = try await sandbox.account()
        let response = await sandbox.call("GET", "/api/v5/account/balance", as: user)
        #expect(response.code == "0" && response.status == 200)
        #expect(response.first?[member: "details"]?.arrayItems.first?[member: "ccy"]?.scalarText == "USDT")
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var code: String
        var tamper: @Sendable (inout [String: String]) -> Void
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "missing key", code: "50103") { $0["ok-access-key"] = nil },
        Case(name: "missing passphrase", code: "50104") { $0["ok-access-passphrase"] = nil },
        Case(name: "missing signature", code: "50106") { $0["ok-access-sign"] = nil },
        Case(name: "missing timestamp", code: "50107") { $0["ok-access-timestamp"] = nil },
        Case(name: "malformed timestamp", code: "50112") { $0["ok-access-timestamp"] = "yesterday" },
        Case(name: "unknown key", code: "50111") { $0["ok-access-key"] = "00000000-0000-0000-0000-000000000000" },
        Case(name: "wrong passphrase", code: "50105") { $0["ok-access-passphrase"] = "not-it" },
        Case(name: "forged signature", code: "50113") { $0["ok-access-sign"] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" },
    ]

    /// Warm: the key has just authenticated a request, so its secret and passphrase are remembered; the
    /// remembered key must refuse exactly what a cold one does.
    @Test(arguments: cases, [false, true])
    func rejectsWithOKXCodes(_ scenario: Case, warm: Bool) async throws {
        let sandbox = try SandboxHarness()
        let user = try await sandbox.account()
        if warm { #expect(await sandbox.call("GET", "/api/v5/account/config", as: user).code == "0") }
        var request = sandbox.request("GET", "/api/v5/account/balance", as: user)
        scenario.tamper(&request.headers)
        let response = await sandbox.api.handle(request)
        #expect(response.code == scenario.code, "\(response.envelope)")
        #expect(response.status == 401)
        #expect(response.data.isEmpty)
    }

    @Test(arguments: [-31_000, 31_000, -3_600_000] as [Int64])
    func timestampsOutsideTheWindowAreExpired(offset: Int64) async throws {
        let sandbox = try SandboxHarness()
        let user = try await sandbox.account()
        let response = await sandbox.api.handle(
            sandbox.request("GET", "/api/v5/account/balance", as: user, timestamp: sandbox.clock.now + offset))
        #expect(response.code == "50102", "\(response.envelope)")
        let inside = await sandbox.api.handle(
            sandbox.request("GET", "/api/v5/account/config", as: user, timestamp: sandbox.clock.now - 29_000))
        #expect(inside.code == "0")
    }

    /// The timestamp parser's calendar arithmetic against Foundation's ISO 8601 formatter, every 9 days
    /// and 7 hours (with milliseconds) from 1900 to 2200: leap years, century rules, month ends.
    @Test func timestampsParseLikeFoundation() {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        var milliseconds: Int64 = -2_208_988_800_000  // 1900-01-01
        while milliseconds < 7_258_118_400_000 {  // 2200-01-01
            let text = formatter.string(from: Date(timeIntervalSince1970: Double(milliseconds) / 1000))
            #expect(Authenticator.parseTimestamp(text) == milliseconds, "\(text)")
            milliseconds += ((9 * 24 + 7) * 3600 + 13) * 1000 + 457
        }
        #expect(Authenticator.parseTimestamp("2024-02-29T23:59:59Z") == 1_709_251_199_000)
        #expect(Authenticator.parseTimestamp("1970-01-01T00:00:00.5Z") == 500)
        #expect(Authenticator.parseTimestamp("2024-13-01T00:00:00Z") == nil)
    }

    /// WebSocket login timestamps: Unix seconds, a fraction truncated to milliseconds; nothing else.
    @Test func unixSecondsParse() {
        #expect(Authenticator.parseUnixSeconds("1795737600") == 1_795_737_600_000)
        #expect(Authenticator.parseUnixSeconds("1795737600.4569") == 1_795_737_600_456)
        #expect(Authenticator.parseUnixSeconds("0.5") == 500)
        #expect(Authenticator.parseUnixSeconds("999999999999") == 999_999_999_999_000)
        for text in ["", ".", "1.", ".5", "-1", "+1", "1e9", "1 ", "1,5", "1.0000000001", "1000000000000", "99999999999999999999", "١٢"] {
            #expect(Authenticator.parseUnixSeconds(text) == nil, "\(text)")
        }
    }

    /// `public/time` answers the API's injected clock — the one that checks signatures — not the machine's.
    @Test func publicTimeIsTheInjectedClock() async throws {
        let sandbox = try SandboxHarness()
        for step in [0, 1, 45_000] as [Int64] {
            sandbox.clock.advance(step)
            let response = await sandbox.api.handle(sandbox.request("GET", "/api/v5/public/time", as: nil))
            #expect(response.code == "0" && response.first?[member: "ts"]?.scalarText == String(sandbox.clock.now), "\(response.envelope)")
        }
    }

    /// `Sandbox.open` hands one clock to everything it builds: records, REST signatures, WebSocket logins and
    /// `public/time` all read it (a clock in 2020, far from the machine's, shows none of them reads the machine's).
    @Test func sandboxOpenSharesOneClock() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("pm-clock-\(UUID().uuidString).sqlite").path
        defer { for suffix in ["", "-wal", "-shm", ".key", ".admin-token"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        let clock = ManualClock(1_600_000_000_000)
        let sandbox = try Sandbox.open(
            SandboxConfiguration(databasePath: path), catalog: Fixtures.catalog, market: Fixtures.calmMarket,
            parameters: Fixtures.parameters,
            clock: { clock.now })
        let exchangeClock = await sandbox.exchange.clock
        #expect(exchangeClock() == clock.now && sandbox.api.clock() == clock.now)
        let time = await sandbox.api.handle(
            APIRequest(method: "GET", target: "/api/v5/public/time", body: [], headers: [:], remoteIsLoopback: true))
        #expect(time.first?[member: "ts"]?.scalarText == "1600000000000")
        let created = try await sandbox.exchange.createAccount(deposits: [("USDT", ExactDecimal("1000") ?? .zero)])
        let stamp = SandboxHarness.isoTimestamp(clock.now)
        let target = "/api/v5/account/config"
        let headers = [
            "ok-access-key": created.apiKey, "ok-access-passphrase": created.passphrase, "ok-access-timestamp": stamp,
            "ok-access-sign": okxSignature(secret: created.secretKey, timestamp: stamp, method: "GET", requestPath: target, body: []),
        ]
        let rest = await sandbox.api.handle(APIRequest(method: "GET", target: target, body: [], headers: headers, remoteIsLoopback: true))
        #expect(rest.code == "0", "\(rest.envelope)")
        let user = SandboxHarness.Credentials(
            uid: created.uid, apiKey: created.apiKey, secret: created.secretKey, passphrase: created.passphrase)
        let session = WebSocketSession(api: sandbox.api, endpoint: .privateChannels)
        let login = await session.receive(WebSocketSessionTests.loginFrame(user, seconds: clock.now / 1000))
        #expect(WebSocketSessionTests.code(login) == "0", "\(login)")
    }

    /// The replay set refuses a signature until its expiry, admits it again after, and forgets expired
    /// signatures as time passes: it holds about one window's worth, however long the server runs.
    @Test func theReplayGuardForgetsExpiredSignatures() {
        var guardSet = ReplayGuard()
        func admit(_ signature: String, _ expiry: Int64, _ now: Int64) -> Bool { guardSet.admit(signature, expiry: expiry, now: now) }
        #expect(admit("a", 1_000, 0))
        #expect(!admit("a", 1_000, 999))
        #expect(admit("a", 3_000, 1_001))
        #expect(!admit("a", 3_000, 2_000))
        var now: Int64 = 10_000
        var refused = 0
        var largest = 0
        for index in 0..<100_000 {
            now += 1
            // Timestamps anywhere in ±30 s: expiries are not in arrival order.
            let expiry = now + Int64((index * 7_919) % 60_001)
            if !admit("s\(index)", expiry, now) { refused += 1 }
            largest = max(largest, guardSet.count)
        }
        #expect(refused == 0)
        #expect(largest <= 61_000, "\(largest) signatures remembered at once")
        #expect(!admit("s99999", now + 30_000, now))
    }

    @Test func aReplayedRequestIsRejectedAndChangesNothing() async throws {
        let sandbox = try SandboxHarness()
        let user = try await sandbox.account()
        let body = #"{"instId":"BTC-USDT-SWAP","tdMode":"cross","side":"buy","ordType":"market","sz":"1"}"#
        let request = sandbox.request("POST", "/api/v5/trade/order", body: body, as: user)
        #expect(await sandbox.api.handle(request).code == "0")
        let replay = await sandbox.api.handle(request)
        #expect(replay.code == "50113" && replay.message.contains("replay"))
        let positions = await sandbox.call("GET", "/api/v5/account/positions", as: user)
        #expect(positions.data.count == 1 && positions.first?[member: "pos"]?.scalarText == "1")
    }

    /// ccxt percent-encodes the query; python-okx signs it unencoded and its HTTP library may encode after.
    @Test func queryIsVerifiedAsReceivedOrDecoded() async throws {
        let sandbox = try SandboxHarness()
        let user = try await sandbox.account()
        let encoded = "/api/v5/account/positions?instId=BTC-USDT-SWAP%2CETH-USDT-SWAP"
        #expect(await sandbox.api.handle(sandbox.request("GET", encoded, as: user)).code == "0")
        // Signed over the decoded form, sent encoded.
        var request = sandbox.request("GET", "/api/v5/account/positions?instId=BTC-USDT-SWAP,ETH-USDT-SWAP", as: user)
        request.rawTarget = "/api/v5/account/positions?instId=BTC-USDT-SWAP%2CETH-USDT-SWAP"
        #expect(await sandbox.api.handle(request).code == "0")
    }

    @Test func aReadOnlyKeyCannotTrade() async throws {
        let sandbox = try SandboxHarness()
        let user = try await sandbox.account()
        let key = try await sandbox.exchange.createKey(uid: user.uid, permissions: "read")
        let reader = SandboxHarness.Credentials(uid: user.uid, apiKey: key.apiKey, secret: key.secretKey, passphrase: key.passphrase)
        #expect(await sandbox.call("GET", "/api/v5/account/balance", as: reader).code == "0")
        let order = await sandbox.call(
            "POST", "/api/v5/trade/order",
            body: #"{"instId":"BTC-USDT-SWAP","tdMode":"cross","side":"buy","ordType":"market","sz":"1"}"#, as: reader)
        #expect(order.code == "50120" && order.status == 401)
        let positions = await sandbox.call("GET", "/api/v5/account/positions", as: user)
        #expect(positions.data.isEmpty)
    }

    /// One account's key can neither see nor cancel another account's orders.
    @Test func keysAreConfinedToTheirAccount() async throws {
        let sandbox = try SandboxHarness()
        let alice = try await sandbox.account()
        let mallory = try await sandbox.account()
        let placed = await sandbox.call(
            "POST", "/api/v5/trade/order",
            body: #"{"instId":"BTC-USDT-SWAP","tdMode":"cross","side":"buy","ordType":"limit","px":"50000","sz":"1"}"#, as: alice)
        let ordId = try #require(placed.first?[member: "ordId"]?.scalarText)
        let peek = await sandbox.call("GET", "/api/v5/trade/order?instId=BTC-USDT-SWAP&ordId=\(ordId)", as: mallory)
        #expect(peek.code == "51603")
        let cancel = await sandbox.call(
            "POST", "/api/v5/trade/cancel-order", body: #"{"instId":"BTC-USDT-SWAP","ordId":"\#(ordId)"}"#, as: mallory)
        #expect(cancel.code == "1" && cancel.first?[member: "sCode"]?.scalarText == "51400")
        #expect(await sandbox.call("GET", "/api/v5/trade/orders-pending", as: mallory).data.isEmpty)
        #expect(await sandbox.call("GET", "/api/v5/trade/orders-pending", as: alice).data.count == 1)
    }

    @Test func theRateLimitAnswers429() async throws {
        let sandbox = try SandboxHarness(rateLimit: 5)
        let user = try await sandbox.account()
        var codes: [String] = []
        for _ in 0..<8 { codes.append(await sandbox.call("GET", "/api/v5/account/config", as: user).code ?? "") }
        #expect(codes.prefix(5).allSatisfy { $0 == "0" })
        #expect(codes.last == "50011")
    }

    @Test func adminRoutesNeedLoopbackAndTheToken() async throws {
        let sandbox = try SandboxHarness()
        let body = #"{"deposits":[{"ccy":"USDT","amt":"10"}]}"#
        let noToken = await sandbox.api.handle(sandbox.request("POST", "/api/v5/sandbox/account/create", body: body, as: nil))
        #expect(noToken.code == "50113")
        let remote = await sandbox.api.handle(
            sandbox.request(
                "POST", "/api/v5/sandbox/account/create", body: body, as: nil, headers: ["X-Sandbox-Admin-Token": "admin-token"],
                loopback: false))
        #expect(remote.code == "50120")
        let created = await sandbox.api.handle(
            sandbox.request(
                "POST", "/api/v5/sandbox/account/create", body: body, as: nil, headers: ["X-Sandbox-Admin-Token": "admin-token"]))
        #expect(created.code == "0" && created.first?[member: "apiKey"] != nil)
    }
}
