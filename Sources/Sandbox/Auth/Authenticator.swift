import Crypto
import Foundation
import MarginStore
import NIOConcurrencyHelpers

/// What a client presents to authenticate, as received: REST sends it in four headers, a WebSocket login in
/// the fields of its `login` arg. Nil means missing (an empty value is missing too).
struct PresentedCredentials: Sendable {
    var apiKey: String?
    var passphrase: String?
    var signature: String?
    var timestamp: String?
}

/// How a transport writes the signed timestamp (docs/methodology/06-sandbox-api.md §2, §7): REST headers in ISO 8601
/// with milliseconds (`2026-11-27T03:28:31.444Z`), a WebSocket login in Unix seconds (`1795737600`).
enum TimestampFormat: Sendable {
    case iso8601
    case unixSeconds

    /// The timestamp in Unix milliseconds, or nil when it is not written in this format.
    func milliseconds(_ text: String) -> Int64? {
        switch self {
        case .iso8601: Authenticator.parseTimestamp(text)
        case .unixSeconds: Authenticator.parseUnixSeconds(text)
        }
    }
}

/// Why authentication failed, one case per check in the order they run; each transport maps it to its own
/// codes at the edge (REST: ``OKXError`` 501xx with HTTP 401; WebSocket: an error event 600xx).
enum AuthenticationFailure: Error, Equatable {
    case missingKey
    case missingPassphrase
    case missingSignature
    case missingTimestamp
    /// The timestamp is not written in the transport's format.
    case malformedTimestamp(String)
    /// The timestamp is further than the window from the server clock.
    case expired(timestamp: String, windowSeconds: Int64)
    case unknownKey
    case wrongPassphrase
    case badSignature
    /// A valid signature already received inside the window (ours: OKX has no replay check).
    case replayed
}

/// OKX authentication (docs/methodology/06-sandbox-api.md §2) for every transport: the four credentials, the timestamp
/// window, key, passphrase, signature and replay rejection — in that order, each failure an ``AuthenticationFailure``.
/// REST requests (``authenticate(_:)``) and WebSocket logins (``WebSocketSession``) both come through
/// ``verify(_:format:method:requestPath:alternativePath:body:)``, so they share the window, the remembered keys and one
/// replay guard. A REST signature and a WebSocket login signature never collide there: they sign different strings
/// (`…GET/api/v5/…` against `…GET/users/self/verify`).
///
/// A lock, not an actor: every signed request passes through here, and an actor hop per request cost a
/// thread switch under load. Keys never change once created, so a verified key's secret is kept decrypted
/// with the passphrase last seen to match; only a key not seen yet asks the exchange (which decrypts it).
final class Authenticator: Sendable {
    let exchange: Exchange
    /// ± milliseconds a request timestamp may differ from the server clock.
    let windowMilliseconds: Int64
    let clock: @Sendable () -> Int64

    /// What authentication needs of one API key, resolved once.
    struct KnownKey: Sendable {
        var uid: String
        var permissions: Set<String>
        var passphraseHash: String
        /// HMAC-SHA256 keyed with the secret, copied for each signature.
        var mac: KeyedMAC
        /// The last passphrase that matched the hash: the same bytes again skip the salted hash.
        var verifiedPassphrase: [UInt8]?
    }

    /// A keyed HMAC shared by requests. `HMAC` is a value type whose hash state is copy-on-write storage
    /// (swift-crypto checks `isKnownUniquelyReferenced` before every update), and this one is never updated in
    /// place: each signature mutates its own copy, whose storage is duplicated on the first update because the
    /// remembered key still references the original. Reading shared storage from several threads is safe, so
    /// the value may cross threads although swift-crypto does not mark it `Sendable`.
    struct KeyedMAC: @unchecked Sendable {
        let keyed: HMAC<SHA256>
    }

    struct State: Sendable {
        /// Signatures seen, until they stop mattering (their timestamp + the window).
        var seen = ReplayGuard()
        var keys: [String: KnownKey] = [:]
    }

    private let state = NIOLockedValueBox(State())

    init(exchange: Exchange, windowMilliseconds: Int64, clock: @escaping @Sendable () -> Int64) {
        self.exchange = exchange
        self.windowMilliseconds = windowMilliseconds
        self.clock = clock
    }

    /// Authenticates a private REST request; returns the account id and the key's permissions, or throws the
    /// ``OKXError`` (HTTP 401) OKX answers. The signed path is the request target exactly as received, or,
    /// when that fails and it is percent-encoded, its decoded form (python-okx signs the unencoded query; its
    /// HTTP library may percent-encode after signing).
    func authenticate(_ request: APIRequest) async throws -> (uid: String, permissions: Set<String>) {
        func header(_ name: String) -> String? {
            guard let value = request.headers[name], !value.isEmpty else { return nil }
            return value
        }
        let presented = PresentedCredentials(
            apiKey: header("ok-access-key"), passphrase: header("ok-access-passphrase"), signature: header("ok-access-sign"),
            timestamp: header("ok-access-timestamp"))
        do throws(AuthenticationFailure) {
            return try await verify(
                presented, format: .iso8601, method: request.method, requestPath: request.rawTarget,
                alternativePath: { request.rawTarget.contains("%") ? request.rawTarget.removingPercentEncoding : nil }, body: request.body)
        } catch {
            throw error.restError
        }
    }

    /// The one authentication path: checks `presented` against a signature over
    /// `timestamp + method + requestPath + body` (or over `alternativePath()` in place of `requestPath`, when
    /// given and the first does not match), with the timestamp written in `format` and within
    /// ±``windowMilliseconds`` of ``clock``; a signature that passes is remembered until its timestamp leaves
    /// the window, and the same signature again inside it is ``AuthenticationFailure/replayed``.
    func verify(
        _ presented: PresentedCredentials, format: TimestampFormat, method: String, requestPath: String,
        alternativePath: () -> String? = { nil }, body: [UInt8]
    ) async throws(AuthenticationFailure) -> (uid: String, permissions: Set<String>) {
        guard let apiKey = presented.apiKey, !apiKey.isEmpty else { throw .missingKey }
        guard let passphrase = presented.passphrase, !passphrase.isEmpty else { throw .missingPassphrase }
        guard let signature = presented.signature, !signature.isEmpty else { throw .missingSignature }
        guard let timestamp = presented.timestamp, !timestamp.isEmpty else { throw .missingTimestamp }
        guard let time = format.milliseconds(timestamp) else { throw .malformedTimestamp(timestamp) }
        let now = clock()
        // Both sides are bounded (a parsed timestamp is below year 10000 or 10¹² s), so the difference cannot overflow.
        guard abs(now - time) <= windowMilliseconds else { throw .expired(timestamp: timestamp, windowSeconds: windowMilliseconds / 1000) }
        guard var key = await knownKey(apiKey) else { throw .unknownKey }
        let offered = Array(passphrase.utf8)
        if !(key.verifiedPassphrase.map { constantTimeEqual($0, offered) } ?? false) {
            guard SecretBox.verifyPassphrase(passphrase, against: key.passphraseHash) else { throw .wrongPassphrase }
            key.verifiedPassphrase = offered
            state.withLockedValue { $0.keys[apiKey] = key }
        }
        let offeredSignature = Array(signature.utf8)
        let expected = okxSignature(keyed: key.mac.keyed, timestamp: timestamp, method: method, requestPath: requestPath, body: body)
        var valid = constantTimeEqual(Array(expected.utf8), offeredSignature)
        if !valid, let alternative = alternativePath() {
            let expected = okxSignature(keyed: key.mac.keyed, timestamp: timestamp, method: method, requestPath: alternative, body: body)
            valid = constantTimeEqual(Array(expected.utf8), offeredSignature)
        }
        guard valid else { throw .badSignature }
        let replayed = state.withLockedValue { state -> Bool in
            !state.seen.admit(signature, expiry: time + windowMilliseconds, now: now)
        }
        if replayed { throw .replayed }
        return (key.uid, key.permissions)
    }

    /// The key's authentication data, from memory or, the first time, from the exchange (which decrypts
    /// the secret). Nil for an unknown key, which is not remembered: only real keys take memory.
    private func knownKey(_ apiKey: String) async -> KnownKey? {
        if let key = state.withLockedValue({ $0.keys[apiKey] }) { return key }
        guard let credentials = await exchange.credentials(apiKey: apiKey) else { return nil }
        let key = KnownKey(
            uid: credentials.record.uid, permissions: Set(credentials.record.permissions.split(separator: ",").map(String.init)),
            passphraseHash: credentials.record.passphraseHash,
            mac: KeyedMAC(keyed: HMAC<SHA256>(key: SymmetricKey(data: Array(credentials.secret.utf8)))),
            verifiedPassphrase: nil)
        state.withLockedValue { $0.keys[apiKey] = key }
        return key
    }

    /// `2026-11-27T03:28:31.444Z` (milliseconds optional) to Unix milliseconds.
    static func parseTimestamp(_ text: String) -> Int64? {
        let bytes = Array(text.utf8)
        guard bytes.count >= 20, bytes.count <= 30, bytes.last == UInt8(ascii: "Z") else { return nil }
        func number(_ range: Range<Int>) -> Int? {
            guard range.upperBound <= bytes.count else { return nil }
            var value = 0
            for index in range {
                let byte = bytes[index]
                guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
            }
            return value
        }
        guard bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"), bytes[10] == UInt8(ascii: "T"), bytes[13] == UInt8(ascii: ":"),
            bytes[16] == UInt8(ascii: ":"), let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
            let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19),
            (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61
        else { return nil }
        var milliseconds = 0
        if bytes[19] == UInt8(ascii: ".") {
            let digits = bytes.count - 21
            guard digits >= 1, digits <= 9, number(20..<(bytes.count - 1)) != nil, let leading = number(20..<(20 + min(digits, 3)))
            else { return nil }
            // Whole milliseconds, truncated, in integers (dividing a Double by ten lost one now and then).
            milliseconds = leading * [100, 10, 1][min(digits, 3) - 1]
        } else if bytes.count != 20 {
            return nil
        }
        // Days since 1970-01-01 in the proleptic Gregorian calendar (H. Hinnant's days_from_civil); a day
        // past the month's end rolls over into the next month, as the calendar did before.
        let shiftedYear = month <= 2 ? year - 1 : year
        let era = shiftedYear / 400
        let yearOfEra = shiftedYear - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        let days = era * 146_097 + dayOfEra - 719_468
        let seconds = ((days * 24 + hour) * 60 + minute) * 60 + second
        return Int64(seconds) * 1000 + Int64(milliseconds)
    }

    /// `1795737600` (a fraction of up to 9 digits allowed, as in `1795737600.5`) to Unix milliseconds,
    /// truncated. Digits only: no sign, exponent or spaces, and at most 12 whole digits (past year 33000),
    /// so the result never overflows.
    static func parseUnixSeconds(_ text: String) -> Int64? {
        let bytes = Array(text.utf8)
        let point = bytes.firstIndex(of: UInt8(ascii: ".")) ?? bytes.count
        let whole = bytes[..<point]
        let fraction = bytes[min(point + 1, bytes.count)...]
        guard (1...12).contains(whole.count), point == bytes.count || (1...9).contains(fraction.count),
            (whole + fraction).allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") })
        else { return nil }
        var milliseconds: Int64 = 0
        for byte in whole { milliseconds = milliseconds * 10 + Int64(byte - UInt8(ascii: "0")) }
        milliseconds *= 1000
        for (index, byte) in fraction.prefix(3).enumerated() { milliseconds += Int64(byte - UInt8(ascii: "0")) * [100, 10, 1][index] }
        return milliseconds
    }
}

extension AuthenticationFailure {
    /// OKX's REST answer (docs/methodology/06-sandbox-api.md §2): codes 50102–50113, HTTP 401.
    var restError: OKXError {
        switch self {
        case .missingKey: OKXError(.missingKey, "Request header OK-ACCESS-KEY cannot be empty")
        case .missingPassphrase: OKXError(.missingPassphrase, "Request header OK-ACCESS-PASSPHRASE cannot be empty")
        case .missingSignature: OKXError(.missingSignature, "Request header OK-ACCESS-SIGN cannot be empty")
        case .missingTimestamp: OKXError(.missingTimestamp, "Request header OK-ACCESS-TIMESTAMP cannot be empty")
        case .malformedTimestamp(let timestamp):
            OKXError(
                .invalidTimestamp,
                "Invalid OK-ACCESS-TIMESTAMP \"\(timestamp.prefix(40))\": expected ISO 8601 like 2026-11-27T03:28:31.444Z",
                httpStatus: 401)
        case .expired(let timestamp, let windowSeconds):
            OKXError(
                .timestampExpired,
                "Timestamp request expired: OK-ACCESS-TIMESTAMP \(timestamp) is more than \(windowSeconds) s from server time",
                httpStatus: 401)
        case .unknownKey: OKXError(.invalidKey, "Invalid OK-ACCESS-KEY")
        case .wrongPassphrase: OKXError(.wrongPassphrase, "Request header OK-ACCESS-PASSPHRASE incorrect")
        case .badSignature: OKXError(.invalidSignature, "Invalid Sign")
        case .replayed: OKXError(.invalidSignature, "Invalid Sign: this request was already received (replay rejected)")
        }
    }
}

/// The signatures received inside the timestamp window, to refuse replays: a dictionary for the lookup, and
/// the signatures in arrival order with their expiry, removed from the front in place as they expire. (The
/// dictionary used to be rebuilt with `filter` every second: under load a new multi-megabyte table each
/// time, and the server's RSS stepped up by a fifth during a 10-minute soak.) An entry can outlive its expiry
/// while an older arrival with a later expiry is ahead of it, by at most the window's width.
struct ReplayGuard: Sendable {
    private var expiries: [String: Int64] = [:]
    private var arrivals: [(signature: String, expiry: Int64)] = []
    private var head = 0

    /// Records `signature` until `expiry` (ms); false when it is already recorded and not yet expired.
    mutating func admit(_ signature: String, expiry: Int64, now: Int64) -> Bool {
        removeExpired(now: now)
        if let known = expiries[signature], known >= now { return false }
        expiries[signature] = expiry
        arrivals.append((signature, expiry))
        return true
    }

    /// Signatures currently remembered.
    var count: Int { expiries.count }

    private mutating func removeExpired(now: Int64) {
        while head < arrivals.count, arrivals[head].expiry < now {
            let entry = arrivals[head]
            if expiries[entry.signature] == entry.expiry { expiries.removeValue(forKey: entry.signature) }
            head += 1
        }
        if head >= 1024, head * 2 >= arrivals.count {
            arrivals.removeFirst(head)
            head = 0
        }
    }
}

extension SandboxAPI {
    /// A private endpoint's authentication alone — headers, timestamp window, replay, key, passphrase,
    /// signature, in OKX's order — without running any handler: the account id and the key's permissions,
    /// or the ``OKXError`` (HTTP 401) a private endpoint would answer. For the fuzz targets (`fuzz/`).
    public func authenticate(_ request: APIRequest) async throws -> (uid: String, permissions: Set<String>) {
        try await authenticator.authenticate(request)
    }
}

/// Token buckets per key (or per client address for public endpoints): `capacity` requests, refilled at
/// `perSecond`. Over the limit: code 50011, HTTP 429. A lock rather than an actor, like the authenticator.
final class RateLimiter: Sendable {
    let capacity: Double
    let perSecond: Double
    let clock: @Sendable () -> Int64
    private let buckets = NIOLockedValueBox([String: (tokens: Double, updated: Int64)]())

    init(capacity: Double, perSecond: Double, clock: @escaping @Sendable () -> Int64) {
        self.capacity = capacity
        self.perSecond = perSecond
        self.clock = clock
    }

    func take(_ key: String) throws {
        let now = clock()
        let allowed = buckets.withLockedValue { buckets -> Bool in
            var bucket = buckets[key] ?? (capacity, now)
            bucket.tokens = min(capacity, bucket.tokens + Double(now - bucket.updated) / 1000 * perSecond)
            bucket.updated = now
            let allowed = bucket.tokens >= 1
            if allowed { bucket.tokens -= 1 }
            buckets[key] = bucket
            if buckets.count > 100_000 { buckets = buckets.filter { now - $0.value.updated < 60_000 } }
            return allowed
        }
        guard allowed else {
            throw OKXError(
                .rateLimited, "Rate limit reached: more than \(Int(capacity)) requests in a burst or \(Int(perSecond))/s", httpStatus: 429)
        }
    }
}
