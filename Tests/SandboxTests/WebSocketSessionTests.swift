import Foundation
import MarginEngine
import MarginTestSupport
import Testing

@testable import Sandbox

/// The OKX WebSocket protocol, frame by frame (docs/methodology/06-sandbox-api.md §7): login, subscriptions, pushes,
/// malformed input.
@Suite struct WebSocketSessionTests {
    /// A session of the harness's API: its authenticator, window and ManualClock.
    static func session(_ sandbox: SandboxHarness, _ endpoint: WebSocketSession.Endpoint = .privateChannels) -> WebSocketSession {
        WebSocketSession(api: sandbox.api, endpoint: endpoint)
    }

    static func loginFrame(
        _ user: SandboxHarness.Credentials, seconds: Int64, timestamp written: String? = nil, secret: String? = nil,
        passphrase: String? = nil,
        key: String? = nil
    ) -> String {
        let timestamp = written ?? String(seconds)
        let sign = okxSignature(
            secret: secret ?? user.secret, timestamp: timestamp, method: "GET", requestPath: "/users/self/verify", body: [])
        return
            #"{"op":"login","args":[{"apiKey":"\#(key ?? user.apiKey)","passphrase":"\#(passphrase ?? user.passphrase)","timestamp":"\#(timestamp)","sign":"\#(sign)"}]}"#
    }

    static func parse(_ frame: String) -> JSONValue? { try? JSONParser.parse(frame) }

    @Test func pingPong() async throws {
        let sandbox = try SandboxHarness()
        #expect(await Self.session(sandbox).receive("ping") == ["pong"])
    }

    @Test func loginSucceedsWithAValidSignature() async throws {
        let sandbox = try SandboxHarness()
        let user = try await sandbox.account()
        let session = Self.session(sandbox)
        let reply = await session.receive(Self.loginFrame(user, seconds: sandbox.clock.now / 1000))
        let frame = Self.parse(reply.first ?? "")
        #expect(frame?[member: "event"]?.scalarText == "login" && frame?[member: "code"]?.scalarText == "0")
        #expect(await session.isLoggedIn)
    }

    @Test(arguments: [("bad signature", "60007"), ("expired timestamp", "60006"), ("unknown key", "60005"), ("wrong passphrase", "60024")])
    func loginFailures(name: String, code: String) async throws {
        let sandbox = try SandboxHarness()
        let user = try await sandbox.account()
        let now = sandbox.clock.now / 1000
        let frame: String
        switch name {
        case "bad signature": frame = Self.loginFrame(user, seconds: now, secret: "not-the-secret")
        case "expired timestamp": frame = Self.loginFrame(user, seconds: now - 120)
        case "unknown key": frame = Self.loginFrame(user, seconds: now, key: "nobody")
        default: frame = Self.loginFrame(user, seconds: now, passphrase: "wrong")
        }
        let session = Self.session(sandbox)
        let reply = Self.parse(await session.receive(frame).first ?? "")
        #expect(
            reply?[member: "event"]?.scalarText == "error" && reply?[member: "code"]?.scalarText == code, "\(String(describing: reply))")
        #expect(await !session.isLoggedIn)
        // A private subscription is then refused.
        let refused = Self.parse(await session.receive(#"{"op":"subscribe","args":[{"channel":"account"}]}"#).first ?? "")
        #expect(refused?[member: "code"]?.scalarText == "60011")
    }

    static func code(_ replies: [String]) -> String? { parse(replies.first ?? "")?[member: "code"]?.scalarText }
    static func message(_ replies: [String]) -> String { parse(replies.first ?? "")?[member: "msg"]?.scalarText ?? "" }

    /// The REST check order over WebSocket: each frame fails two checks and must report the earlier one
    /// (missing field → bad timestamp → outside the window → unknown key → wrong passphrase → bad signature).
    @Test func loginChecksRunInTheRESTOrder() async throws {
        let sandbox = try SandboxHarness()
        let user = try await sandbox.account()
        let now = sandbox.clock.now / 1000
        let missingKey = #"{"op":"login","args":[{"passphrase":"p","timestamp":"nope","sign":"s"}]}"#
        let cases: [(frame: String, code: String)] = [
            (missingKey, "60013"),
            (Self.loginFrame(user, seconds: 0, timestamp: "yesterday", key: "nobody"), "60004"),
            (Self.loginFrame(user, seconds: now - 120, key: "nobody"), "60006"),
            (Self.loginFrame(user, seconds: now, passphrase: "wrong", key: "nobody"), "60005"),
            (Self.loginFrame(user, seconds: now, secret: "not-the-secret", passphrase: "wrong"), "60024"),
        ]
        for (frame, code) in cases {
            let replies = await Self.session(sandbox).receive(frame)
            #expect(Self.code(replies) == code, "\(replies)")
        }
        #expect(Self.message(await Self.session(sandbox).receive(missingKey)).contains("apiKey"), "the missing field is named")
    }

    /// A login frame captured and sent again inside the window, on another connection or the same one, is
    /// refused by the REST replay guard; a fresh timestamp logs in.
    @Test func aReplayedLoginIsRefused() async throws {
        let sandbox = try SandboxHarness()
        let user = try await sandbox.account()
        let frame = Self.loginFrame(user, seconds: sandbox.clock.now / 1000)
        let first = Self.session(sandbox)
        #expect(Self.code(await first.receive(frame)) == "0")
        sandbox.clock.advance(10_000)
        let thief = Self.session(sandbox)
        let replayed = await thief.receive(frame)
        #expect(Self.code(replayed) == "60007" && Self.message(replayed).contains("replay"), "\(replayed)")
        #expect(await !thief.isLoggedIn)
        #expect(Self.code(await first.receive(frame)) == "60007", "also on the connection that logged in")
        #expect(Self.code(await thief.receive(Self.loginFrame(user, seconds: sandbox.clock.now / 1000))) == "0")
        #expect(await thief.isLoggedIn)
    }

    /// WebSocket logins and REST requests are held to the API's window (5 s here, not a WebSocket default of
    /// 30 s) against the one ManualClock: refused just outside it on both sides, accepted just inside.
    @Test(arguments: [-6_000, 6_000, -3_600_000, -4_000, 4_000] as [Int64])
    func theWindowIsRESTs(offset: Int64) async throws {
        let sandbox = try SandboxHarness(timestampWindowSeconds: 5)
        let user = try await sandbox.account()
        let inside = abs(offset) <= 5_000
        let timestamp = sandbox.clock.now + offset
        let login = await Self.session(sandbox).receive(Self.loginFrame(user, seconds: timestamp / 1000))
        #expect(Self.code(login) == (inside ? "0" : "60006"), "\(login)")
        let rest = await sandbox.api.handle(sandbox.request("GET", "/api/v5/account/config", as: user, timestamp: timestamp))
        #expect(rest.code == (inside ? "0" : "50102"), "\(rest.envelope)")
    }

    /// Timestamps that are not Unix seconds answer 60004; none crashes the session (`1e30` used to trap
    /// converting a Double to Int64), and the REST ISO form is not accepted over WebSocket.
    @Test(arguments: ["1e30", "99999999999999999999", "-1", "1795737600.", ".5", " 1795737600", "0x6B0E7C00", "2026-11-27T00:00:00.000Z"])
    func malformedLoginTimestamps(timestamp: String) async throws {
        let sandbox = try SandboxHarness()
        let user = try await sandbox.account()
        let session = Self.session(sandbox)
        let replies = await session.receive(Self.loginFrame(user, seconds: 0, timestamp: timestamp))
        #expect(Self.code(replies) == "60004", "\(replies)")
        #expect(await session.receive("ping") == ["pong"])
    }

    /// Fractional seconds and a JSON number are Unix seconds too (OKX documents a string of whole seconds).
    @Test func loginTimestampsMayCarryAFractionOrBeANumber() async throws {
        let sandbox = try SandboxHarness()
        let user = try await sandbox.account()
        let seconds = sandbox.clock.now / 1000
        #expect(Self.code(await Self.session(sandbox).receive(Self.loginFrame(user, seconds: 0, timestamp: "\(seconds).25"))) == "0")
        let sign = okxSignature(
            secret: user.secret, timestamp: String(seconds + 1), method: "GET", requestPath: "/users/self/verify", body: [])
        let number =
            #"{"op":"login","args":[{"apiKey":"\#(user.apiKey)","passphrase":"\#(user.passphrase)","timestamp":\#(seconds + 1),"sign":"\#(sign)"}]}"#
        #expect(Self.code(await Self.session(sandbox).receive(number)) == "0")
    }

    /// Malformed frames get an error event; nothing crashes and the session keeps working.
    @Test(arguments: [
        "", "{", "[]", "null", #"{"op":"subscribe"}"#, #"{"op":"subscribe","args":[]}"#, #"{"op":"subscribe","args":[1]}"#,
        #"{"op":"teleport","args":[{}]}"#, #"{"op":"login","args":["x"]}"#, #"{"op":"login","args":[{"apiKey":1}]}"#,
        #"{"op":"subscribe","args":[{"channel":"nope"}]}"#, #"{"op":"subscribe","args":[{"channel":"tickers","instId":"NOPE-X"}]}"#,
        String(repeating: "[", count: 70_000), "\u{0}\u{1}\u{2}",
    ])
    func malformedFramesGetErrors(frame: String) async throws {
        let sandbox = try SandboxHarness()
        let session = Self.session(sandbox, .publicChannels)
        let replies = await session.receive(frame)
        #expect(!replies.isEmpty)
        #expect(replies.allSatisfy { Self.parse($0)?[member: "event"]?.scalarText == "error" })
        #expect(await session.receive("ping") == ["pong"])
    }

    @Test func publicSubscriptionsSnapshotThenPushEveryTick() async throws {
        let sandbox = try SandboxHarness()
        let session = Self.session(sandbox, .publicChannels)
        let replies = await session.receive(
            #"{"op":"subscribe","args":[{"channel":"tickers","instId":"BTC-USDT-SWAP"},{"channel":"mark-price","instId":"BTC-USDT-SWAP"}]}"#
        )
        #expect(replies.count == 4, "an ack and a snapshot per channel")
        let snapshot = Self.parse(replies[1])
        #expect(snapshot?[member: "arg"]?[member: "instId"]?.scalarText == "BTC-USDT-SWAP", "the arg is echoed")
        let before = snapshot?[member: "data"]?.arrayItems.first?[member: "last"]?.scalarText
        try await sandbox.simulator.shock(["BTC": 0.02])
        let pushes = await session.render(.market)
        #expect(pushes.count == 2)
        let after = Self.parse(pushes[0])?[member: "data"]?.arrayItems.first?[member: "last"]?.scalarText
        #expect(before != nil && after != nil && before != after)
        _ = await session.receive(#"{"op":"unsubscribe","args":[{"channel":"tickers","instId":"BTC-USDT-SWAP"}]}"#)
        #expect(await session.render(.market).count == 1)
    }

    @Test func privateChannelsFollowOrdersAndFills() async throws {
        let sandbox = try SandboxHarness()
        let user = try await sandbox.account()
        let other = try await sandbox.account()
        let session = Self.session(sandbox)
        _ = await session.receive(Self.loginFrame(user, seconds: sandbox.clock.now / 1000))
        let acks = await session.receive(
            #"{"op":"subscribe","args":[{"channel":"orders","instType":"ANY"},{"channel":"positions","instType":"ANY"},{"channel":"account"}]}"#
        )
        #expect(acks.count == 5, "three acks, snapshots for positions and account")
        let events = EventLog()
        let id = await sandbox.exchange.addListener { events.append($0) }
        _ = await sandbox.call(
            "POST", "/api/v5/trade/order",
            body: #"{"instId":"BTC-USDT-SWAP","tdMode":"cross","side":"buy","ordType":"market","sz":"2"}"#, as: user)
        _ = await sandbox.call(
            "POST", "/api/v5/trade/order",
            body: #"{"instId":"BTC-USDT-SWAP","tdMode":"cross","side":"buy","ordType":"market","sz":"3"}"#, as: other)
        await sandbox.exchange.removeListener(id)
        var frames: [String] = []
        for event in events.all { frames += await session.render(event) }
        let orders = frames.compactMap(Self.parse).filter { $0[member: "arg"]?[member: "channel"]?.scalarText == "orders" }
        #expect(orders.count == 1, "only this account's order")
        let order = orders.first?[member: "data"]?.arrayItems.first
        #expect(order?[member: "state"]?.scalarText == "filled" && order?[member: "fillSz"]?.scalarText == "2")
        #expect(order?[member: "tradeId"]?.scalarText?.isEmpty == false)
        let positions = frames.compactMap(Self.parse).filter { $0[member: "arg"]?[member: "channel"]?.scalarText == "positions" }
        #expect(positions.last?[member: "data"]?.arrayItems.first?[member: "pos"]?.scalarText == "2")
        #expect(positions.last?[member: "arg"]?[member: "instId"] == nil, "an instType ANY subscription gains no instId")
    }

    @Test func liquidationWarningBelowTheWarningRatio() async throws {
        let sandbox = try SandboxHarness()
        let user = try await sandbox.account([("USDT", "3000")])
        let session = Self.session(sandbox)
        _ = await session.receive(Self.loginFrame(user, seconds: sandbox.clock.now / 1000))
        _ = await session.receive(#"{"op":"subscribe","args":[{"channel":"liquidation-warning","instType":"ANY"}]}"#)
        _ = await sandbox.call(
            "POST", "/api/v5/account/set-leverage", body: #"{"lever":"50","mgnMode":"cross","instId":"BTC-USDT-SWAP"}"#, as: user)
        _ = await sandbox.call(
            "POST", "/api/v5/trade/order",
            body: #"{"instId":"BTC-USDT-SWAP","tdMode":"cross","side":"buy","ordType":"market","sz":"100"}"#, as: user)
        let events = EventLog()
        let id = await sandbox.exchange.addListener { events.append($0) }
        try await sandbox.simulator.shock(["BTC": -0.025])
        await sandbox.exchange.removeListener(id)
        var frames: [String] = []
        for event in events.all { frames += await session.render(event) }
        let warning = frames.compactMap(Self.parse).first { $0[member: "arg"]?[member: "channel"]?.scalarText == "liquidation-warning" }
        #expect(warning != nil)
        let ratio = Double(warning?[member: "data"]?.arrayItems.first?[member: "mgnRatio"]?.scalarText ?? "") ?? .infinity
        #expect(ratio <= 3)
    }
}

/// Collects exchange events (listeners run inside the exchange actor).
final class EventLog: @unchecked Sendable {
    private let lock = NSLock()
    private var events: [ExchangeEvent] = []
    func append(_ event: ExchangeEvent) { lock.withLock { events.append(event) } }
    var all: [ExchangeEvent] { lock.withLock { events } }
}
