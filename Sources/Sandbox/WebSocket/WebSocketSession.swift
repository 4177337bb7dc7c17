import Foundation
import MarginEngine
import MarginStore

/// One OKX v5 WebSocket connection's protocol state (docs/methodology/06-sandbox-api.md §7), independent of the
/// transport so that it can be tested frame by frame.
///
/// Text `ping` answers `pong`. `login` signs `timestamp + "GET" + "/users/self/verify"` with the timestamp in
/// Unix seconds and goes through the REST ``Authenticator`` of the ``SandboxAPI`` it was made with: the same
/// window, clock, remembered keys, check order and replay guard, with OKX's WebSocket codes (60004–60024)
/// in place of the REST ones. `subscribe`/`unsubscribe` take OKX's args; every accepted
/// subscription gets an initial snapshot (where OKX sends one) and then every change, in order. Errors are
/// `{"event":"error","code":…,"msg":…}` frames; nothing a client sends can crash the server.
package actor WebSocketSession {
    /// Which URL the client connected to.
    package enum Endpoint: String, Sendable {
        case publicChannels = "public"
        case privateChannels = "private"
        case business
    }

    struct Subscription: Equatable {
        var channel: String
        /// The subscribe arg exactly as sent, echoed in every push (ccxt routes on it).
        var arg: JSONObject
        var instId: String? { arg["instId"].flatMap(Self.text) }
        var instType: String? { arg["instType"].flatMap(Self.text) }
        var instFamily: String? { (arg["instFamily"] ?? arg["uly"]).flatMap(Self.text) }
        var currency: String? { arg["ccy"].flatMap(Self.text) }

        static func text(_ value: JSONValue) -> String? {
            if case .string(let text) = value, !text.isEmpty { return text }
            return nil
        }
    }

    static let publicChannels: Set<String> = ["tickers", "mark-price", "index-tickers", "opt-summary"]
    static let privateChannels: Set<String> = ["account", "positions", "orders", "balance_and_position", "liquidation-warning"]
    /// Largest accepted frame, characters.
    package static let maximumFrame = 65_536

    let exchange: Exchange
    let endpoint: Endpoint
    /// The REST API's authenticator: logins share its window, clock and replay guard.
    let authenticator: Authenticator
    /// The REST API's clock (push timestamps).
    let clock: @Sendable () -> Int64
    package let connectionID: String
    var uid: String?
    var subscriptions: [Subscription] = []

    /// A session of `api`'s exchange, authenticating logins with `api`'s authenticator and clock.
    package init(api: SandboxAPI, endpoint: Endpoint) {
        exchange = api.exchange
        self.endpoint = endpoint
        authenticator = api.authenticator
        clock = api.clock
        connectionID = SecretBox.randomToken(bytes: 4).lowercased()
    }

    package var isLoggedIn: Bool { uid != nil }
    package var subscriptionCount: Int { subscriptions.count }

    func frame(_ members: [(String, JSONValue)]) -> String { JSONWriter.serialize(.object(members)) }

    func error(_ code: String, _ message: String) -> String {
        frame([("event", .string("error")), ("code", .string(code)), ("msg", .string(message)), ("connId", .string(connectionID))])
    }

    /// Handles one text frame; returns the frames to send back, in order.
    package func receive(_ text: String) async -> [String] {
        if text == "ping" { return ["pong"] }
        guard text.utf8.count <= Self.maximumFrame else {
            return [error("60012", "Invalid request: the frame is larger than \(Self.maximumFrame) bytes")]
        }
        guard let json = try? JSONParser.parse(text), case .object(let message) = json else {
            return [error("60012", "Invalid request: \(text.prefix(80))")]
        }
        guard case .string(let op)? = message["op"] else { return [error("60012", "Invalid request: missing op")] }
        guard case .array(let args)? = message["args"], !args.isEmpty else {
            return [error("60013", "Invalid args: args must be a non-empty array")]
        }
        switch op {
        case "login": return await login(args)
        case "subscribe": return await subscribe(args)
        case "unsubscribe": return unsubscribe(args)
        default: return [error("60012", "Invalid request: unknown op \(op)")]
        }
    }

    /// The path a login signs, with method `GET` and an empty body (OKX's WebSocket login).
    static let loginPath = "/users/self/verify"

    func login(_ args: [JSONValue]) async -> [String] {
        guard endpoint != .publicChannels else { return [error("60009", "Login failed: log in on /ws/v5/private or /ws/v5/business")] }
        guard case .object(let fields) = args[0] else { return [error("60013", "Invalid args: login takes one object")] }
        func field(_ name: String) -> String? {
            switch fields[name] {
            case .string(let text)?: return text.isEmpty ? nil : text
            case .number(let literal)?: return literal
            default: return nil
            }
        }
        let presented = PresentedCredentials(
            apiKey: field("apiKey"), passphrase: field("passphrase"), signature: field("sign"), timestamp: field("timestamp"))
        let verified: String
        do throws(AuthenticationFailure) {
            verified = try await authenticator.verify(
                presented, format: .unixSeconds, method: "GET", requestPath: Self.loginPath, body: []
            ).uid
        } catch {
            let (code, message) = error.webSocketError
            return [self.error(code, message)]
        }
        // Several nodes: an account's events come from the node holding its partition; this one would send none.
        guard exchange.holds(verified) else {
            return [
                error(
                    "50001",
                    "Service temporarily unavailable: this account is served by another node (or is moving); connect to the node that serves it"
                )
            ]
        }
        uid = verified
        return [frame([("event", .string("login")), ("code", .string("0")), ("msg", .string("")), ("connId", .string(connectionID))])]
    }

    func subscribe(_ args: [JSONValue]) async -> [String] {
        var replies: [String] = []
        for value in args {
            guard case .object(let arg) = value, case .string(let channel)? = arg["channel"] else {
                replies.append(error("60013", "Invalid args: each arg needs a channel"))
                continue
            }
            let subscription = Subscription(channel: channel, arg: arg)
            if Self.privateChannels.contains(channel) {
                guard endpoint != .publicChannels else {
                    replies.append(error("60018", "Wrong URL or channel:\(channel) is private: use /ws/v5/private"))
                    continue
                }
                guard uid != nil else {
                    replies.append(error("60011", "Please log in before subscribing to \(channel)"))
                    continue
                }
            } else if Self.publicChannels.contains(channel) {
                if let problem = await validatePublic(subscription) {
                    replies.append(error("60018", problem))
                    continue
                }
            } else {
                replies.append(error("60018", "Wrong URL or channel:\(channel) doesn't exist"))
                continue
            }
            if !subscriptions.contains(subscription) { subscriptions.append(subscription) }
            replies.append(frame([("event", .string("subscribe")), ("arg", .object(arg)), ("connId", .string(connectionID))]))
            replies += await snapshot(subscription)
        }
        return replies
    }

    func validatePublic(_ subscription: Subscription) async -> String? {
        switch subscription.channel {
        case "tickers", "mark-price":
            guard let id = subscription.instId else { return "Wrong URL or channel:\(subscription.channel) needs instId" }
            guard (try? await exchange.tickerView(instId: id)) != nil else {
                return "Wrong URL or channel:\(subscription.channel),instId:\(id) doesn't exist"
            }
        case "index-tickers":
            guard let id = subscription.instId else { return "Wrong URL or channel:index-tickers needs instId" }
            guard (try? await exchange.indexTickersView(instId: id, quoteCurrency: nil)) != nil else {
                return "Wrong URL or channel:index-tickers,instId:\(id) doesn't exist"
            }
        case "opt-summary":
            guard subscription.instFamily != nil else { return "Wrong URL or channel:opt-summary needs instFamily" }
        default:
            break
        }
        return nil
    }

    func unsubscribe(_ args: [JSONValue]) -> [String] {
        var replies: [String] = []
        for value in args {
            guard case .object(let arg) = value, case .string(let channel)? = arg["channel"] else {
                replies.append(error("60013", "Invalid args: each arg needs a channel"))
                continue
            }
            subscriptions.removeAll { $0.channel == channel && $0.arg == arg }
            replies.append(frame([("event", .string("unsubscribe")), ("arg", .object(arg)), ("connId", .string(connectionID))]))
        }
        return replies
    }

    func push(_ subscription: Subscription, _ data: JSONValue, extra: [(String, JSONValue)] = []) -> String {
        frame([("arg", .object(subscription.arg))] + extra + [("data", data)])
    }

    /// The initial snapshot of a subscription (OKX sends one for these channels).
    func snapshot(_ subscription: Subscription) async -> [String] {
        switch subscription.channel {
        case "tickers", "mark-price", "index-tickers", "opt-summary": return await marketPushes(for: subscription)
        case "account", "positions", "balance_and_position": return await accountPushes(for: subscription, eventType: "snapshot")
        default: return []
        }
    }

    func marketPushes(for subscription: Subscription) async -> [String] {
        let data: JSONValue?
        switch subscription.channel {
        case "tickers": data = try? await exchange.tickerView(instId: subscription.instId ?? "")
        case "mark-price": data = try? await exchange.markPriceView(instType: nil, family: nil, instId: subscription.instId)
        case "index-tickers": data = try? await exchange.indexTickersView(instId: subscription.instId, quoteCurrency: nil)
        case "opt-summary": data = try? await exchange.optionSummaryView(family: subscription.instFamily ?? "", expiryDate: nil)
        default: data = nil
        }
        guard let data else { return [] }
        return [push(subscription, data)]
    }

    func accountPushes(for subscription: Subscription, eventType: String) async -> [String] {
        guard let uid else { return [] }
        switch subscription.channel {
        case "account":
            let filter = subscription.currency.map { Set([$0]) }
            return [push(subscription, await exchange.balanceView(uid: uid, currencies: filter))]
        case "positions":
            let type = subscription.instType.flatMap { $0 == "ANY" ? nil : $0 }
            let ids = subscription.instId.map { Set([$0]) }
            var rows = await exchange.positionsView(uid: uid, instType: type, instIds: ids).elements
            if let family = subscription.instFamily {
                rows = rows.filter { row in
                    guard case .string(let id)? = row.member("instId") else { return false }
                    return InstrumentID(id)?.family == family
                }
            }
            return [push(subscription, .array(rows))]
        case "balance_and_position":
            let balances = await exchange.balanceView(uid: uid).elements.first?.member("details")?.elements ?? []
            let positions = await exchange.positionsView(uid: uid).elements
            let now = String(clock())
            let data = JSONValue.array([
                .object([
                    ("pTime", .string(now)), ("eventType", .string(eventType)),
                    (
                        "balData",
                        .array(
                            balances.map { row in
                                .object([
                                    ("ccy", row.member("ccy") ?? .string("")), ("cashBal", row.member("cashBal") ?? .string("")),
                                    ("uTime", .string(now)),
                                ])
                            })
                    ),
                    (
                        "posData",
                        .array(
                            positions.map { row in
                                .object([
                                    ("posId", row.member("posId") ?? .string("")), ("tradeId", .string("")),
                                    ("instId", row.member("instId") ?? .string("")),
                                    ("instType", row.member("instType") ?? .string("")), ("mgnMode", .string("cross")),
                                    ("posSide", .string("net")),
                                    ("pos", row.member("pos") ?? .string("")), ("ccy", row.member("ccy") ?? .string("")),
                                    ("posCcy", .string("")),
                                    ("avgPx", row.member("avgPx") ?? .string("")), ("uTime", .string(now)),
                                ])
                            })
                    ),
                    ("trades", .array([])),
                ])
            ])
            return [push(subscription, data)]
        default:
            return []
        }
    }

    /// The frames an exchange event produces for this connection's subscriptions, in subscription order.
    package func render(_ event: ExchangeEvent) async -> [String] {
        var frames: [String] = []
        switch event {
        case .market:
            for subscription in subscriptions where Self.publicChannels.contains(subscription.channel) {
                frames += await marketPushes(for: subscription)
            }
        case .account(let account):
            guard account == uid else { return [] }
            for subscription in subscriptions where ["account", "positions", "balance_and_position"].contains(subscription.channel) {
                frames += await accountPushes(for: subscription, eventType: "filled")
            }
        case .orders(let account, let orders, let fills):
            guard account == uid else { return [] }
            for subscription in subscriptions where subscription.channel == "orders" {
                let rows = await orderRows(orders, fills: fills, subscription: subscription)
                if !rows.isEmpty { frames.append(push(subscription, .array(rows))) }
            }
        case .liquidationWarning(let account, let ratio):
            guard account == uid else { return [] }
            for subscription in subscriptions where subscription.channel == "liquidation-warning" {
                let type = subscription.instType.flatMap { $0 == "ANY" ? nil : $0 }
                var rows = await exchange.positionsView(uid: account, instType: type).elements
                if rows.isEmpty { rows = [.object([("instType", .string("")), ("instId", .string(""))])] }
                let warned = rows.map { row -> JSONValue in
                    guard case .object(var object) = row else { return row }
                    object["mgnRatio"] = .decimal(ratio)
                    object["warningRatio"] = .decimal(exchange.parameters.warningRatio)
                    return .object(object)
                }
                frames.append(push(subscription, .array(warned)))
            }
        }
        return frames
    }

    func orderRows(_ orders: [OrderRecord], fills: [FillRecord], subscription: Subscription) async -> [JSONValue] {
        var rows: [JSONValue] = []
        for order in orders {
            guard let instrument = exchange.catalog.instrument(order.instId) else { continue }
            if let type = subscription.instType, type != "ANY", type != instrument.kind.rawValue { continue }
            if let id = subscription.instId, id != order.instId { continue }
            if let family = subscription.instFamily, family != instrument.id.family { continue }
            guard case .object(var object) = Exchange.orderJSON(order, instType: instrument.kind.rawValue) else { continue }
            let fill = fills.last { $0.ordId == order.ordId }
            object["tradeId"] = .string(fill.map { String($0.tradeId) } ?? "")
            object["fillPx"] = .string(fill?.fillPx ?? "")
            object["fillSz"] = .string(fill?.fillSz ?? "0")
            object["fillTime"] = .string(fill.map { String($0.ts) } ?? "")
            object["fillFee"] = .string(fill?.fee ?? "0")
            object["fillFeeCcy"] = .string(fill?.feeCcy ?? "")
            object["fillPnl"] = .string(fill?.pnl ?? "0")
            object["execType"] = .string(fill?.execType ?? "")
            rows.append(.object(object))
        }
        return rows
    }
}

extension AuthenticationFailure {
    /// OKX's WebSocket login answer: the code and message of the error event. A missing field is an invalid
    /// arg (60013), named; a replay is an invalid sign (60007), as REST answers it with 50113.
    var webSocketError: (code: String, message: String) {
        switch self {
        case .missingKey: ("60013", "Invalid args: login needs apiKey")
        case .missingPassphrase: ("60013", "Invalid args: login needs passphrase")
        case .missingSignature: ("60013", "Invalid args: login needs sign")
        case .missingTimestamp: ("60013", "Invalid args: login needs timestamp")
        case .malformedTimestamp(let timestamp):
            ("60004", "Invalid timestamp \"\(timestamp.prefix(40))\": expected Unix seconds like 1795737600")
        case .expired(let timestamp, let windowSeconds):
            ("60006", "Timestamp request expired: \(timestamp) is more than \(windowSeconds) s from server time")
        case .unknownKey: ("60005", "Invalid apiKey")
        case .wrongPassphrase: ("60024", "Wrong passphrase")
        case .badSignature: ("60007", "Invalid sign")
        case .replayed: ("60007", "Invalid sign: this login was already received (replay rejected); sign a new timestamp")
        }
    }
}

extension JSONValue {
    func member(_ key: String) -> JSONValue? {
        guard case .object(let object) = self else { return nil }
        return object[key]
    }

    var elements: [JSONValue] {
        guard case .array(let items) = self else { return [] }
        return items
    }
}
