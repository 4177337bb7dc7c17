import Foundation
import MarginStore

/// OKX request authentication (spec 06 §2): headers, the timestamp window, replay rejection, key,
/// passphrase, signature, permission — in that order, each failure with OKX's code and HTTP 401.
actor Authenticator {
    let exchange: Exchange
    /// ± milliseconds a request timestamp may differ from the server clock.
    let windowMilliseconds: Int64
    let clock: @Sendable () -> Int64
    /// Signatures seen, with the time they stop mattering (their timestamp + the window).
    private var seen: [String: Int64] = [:]
    private var lastPrune: Int64 = 0

    init(exchange: Exchange, windowMilliseconds: Int64, clock: @escaping @Sendable () -> Int64) {
        self.exchange = exchange
        self.windowMilliseconds = windowMilliseconds
        self.clock = clock
    }

    /// Authenticates a private request; returns the account id and the key's permissions.
    func authenticate(_ request: APIRequest) async throws -> (uid: String, permissions: Set<String>) {
        func header(_ name: String) -> String? {
            guard let value = request.headers[name.lowercased()], !value.isEmpty else { return nil }
            return value
        }
        guard let key = header("OK-ACCESS-KEY") else { throw OKXError("50103", "Request header OK-ACCESS-KEY cannot be empty", httpStatus: 401) }
        guard let passphrase = header("OK-ACCESS-PASSPHRASE") else {
            throw OKXError("50104", "Request header OK-ACCESS-PASSPHRASE cannot be empty", httpStatus: 401)
        }
        guard let signature = header("OK-ACCESS-SIGN") else { throw OKXError("50106", "Request header OK-ACCESS-SIGN cannot be empty", httpStatus: 401) }
        guard let timestamp = header("OK-ACCESS-TIMESTAMP") else {
            throw OKXError("50107", "Request header OK-ACCESS-TIMESTAMP cannot be empty", httpStatus: 401)
        }
        guard let time = Self.parseTimestamp(timestamp) else {
            throw OKXError("50112", "Invalid OK-ACCESS-TIMESTAMP \"\(timestamp.prefix(40))\": expected ISO 8601 like 2026-11-27T03:28:31.444Z", httpStatus: 401)
        }
        let now = clock()
        guard abs(now - time) <= windowMilliseconds else {
            throw OKXError("50102", "Timestamp request expired: OK-ACCESS-TIMESTAMP \(timestamp) is more than \(windowMilliseconds / 1000) s from server time", httpStatus: 401)
        }
        guard let credentials = await exchange.credentials(apiKey: key) else {
            throw OKXError("50111", "Invalid OK-ACCESS-KEY", httpStatus: 401)
        }
        guard SecretBox.verifyPassphrase(passphrase, against: credentials.record.passphraseHash) else {
            throw OKXError("50105", "Request header OK-ACCESS-PASSPHRASE incorrect", httpStatus: 401)
        }
        let expected = okxSignature(
            secret: credentials.secret, timestamp: timestamp, method: request.method, requestPath: request.rawTarget, body: request.body)
        var valid = constantTimeEqual(Array(expected.utf8), Array(signature.utf8))
        if !valid, request.rawTarget.contains("%"), let decoded = request.rawTarget.removingPercentEncoding {
            // python-okx signs the unencoded query; its HTTP library may percent-encode after signing.
            let alternative = okxSignature(
                secret: credentials.secret, timestamp: timestamp, method: request.method, requestPath: decoded, body: request.body)
            valid = constantTimeEqual(Array(alternative.utf8), Array(signature.utf8))
        }
        guard valid else { throw OKXError("50113", "Invalid Sign", httpStatus: 401) }
        prune(now: now)
        guard seen[signature] == nil else {
            throw OKXError("50113", "Invalid Sign: this request was already received (replay rejected)", httpStatus: 401)
        }
        seen[signature] = time + windowMilliseconds
        return (credentials.record.uid, Set(credentials.record.permissions.split(separator: ",").map(String.init)))
    }

    private func prune(now: Int64) {
        guard now - lastPrune > 1_000 else { return }
        lastPrune = now
        seen = seen.filter { $0.value >= now }
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
            guard digits >= 1, digits <= 9, let fraction = number(20..<(bytes.count - 1)) else { return nil }
            var scaled = Double(fraction)
            for _ in 0..<digits { scaled /= 10 }
            milliseconds = Int((scaled * 1000).rounded(.down))
        } else if bytes.count != 20 {
            return nil
        }
        var components = DateComponents()
        components.calendar = Calendar(identifier: .gregorian)
        components.timeZone = TimeZone(identifier: "UTC")
        (components.year, components.month, components.day) = (year, month, day)
        (components.hour, components.minute, components.second) = (hour, minute, second)
        guard let date = components.date else { return nil }
        return Int64(date.timeIntervalSince1970) * 1000 + Int64(milliseconds)
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
/// `perSecond`. Over the limit: code 50011, HTTP 429.
actor RateLimiter {
    let capacity: Double
    let perSecond: Double
    let clock: @Sendable () -> Int64
    private var buckets: [String: (tokens: Double, updated: Int64)] = [:]

    init(capacity: Double, perSecond: Double, clock: @escaping @Sendable () -> Int64) {
        self.capacity = capacity
        self.perSecond = perSecond
        self.clock = clock
    }

    func take(_ key: String) throws {
        let now = clock()
        var bucket = buckets[key] ?? (capacity, now)
        bucket.tokens = min(capacity, bucket.tokens + Double(now - bucket.updated) / 1000 * perSecond)
        bucket.updated = now
        guard bucket.tokens >= 1 else {
            buckets[key] = bucket
            throw OKXError("50011", "Rate limit reached: more than \(Int(capacity)) requests in a burst or \(Int(perSecond))/s", httpStatus: 429)
        }
        bucket.tokens -= 1
        buckets[key] = bucket
        if buckets.count > 100_000 { buckets = buckets.filter { now - $0.value.updated < 60_000 } }
    }
}
