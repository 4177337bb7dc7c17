import Foundation

/// A documented request limit: at most `requests` within any `windowSeconds`.
public struct RateLimit: Sendable, Equatable {
    public var requests: Int
    public var windowSeconds: Double

    public init(requests: Int, windowSeconds: Double) {
        precondition(
            requests > 0 && windowSeconds > 0, "a rate limit needs requests > 0 and a positive window, not \(requests)/\(windowSeconds) s")
        self.requests = requests
        self.windowSeconds = windowSeconds
    }

    /// OKX v5's limits for the endpoints this client calls, from OKX's API reference
    /// (https://www.okx.com/docs-v5/en/, each endpoint's "Rate Limit" line). Requests to one endpoint share
    /// its budget here even where OKX counts per instrument type, family or id, which only makes the
    /// client slower, never over the limit. Endpoints not listed get OKX's most common public limit.
    public static let okx: [String: RateLimit] = [
        "/api/v5/public/instruments": RateLimit(requests: 20, windowSeconds: 2),
        "/api/v5/public/underlying": RateLimit(requests: 20, windowSeconds: 2),
        "/api/v5/public/mark-price": RateLimit(requests: 10, windowSeconds: 2),
        "/api/v5/public/opt-summary": RateLimit(requests: 20, windowSeconds: 2),
        "/api/v5/public/funding-rate": RateLimit(requests: 10, windowSeconds: 2),
        "/api/v5/public/time": RateLimit(requests: 10, windowSeconds: 2),
        "/api/v5/market/tickers": RateLimit(requests: 20, windowSeconds: 2),
        "/api/v5/market/index-tickers": RateLimit(requests: 20, windowSeconds: 2),
        "/api/v5/account/balance": RateLimit(requests: 10, windowSeconds: 2),
        "/api/v5/account/positions": RateLimit(requests: 10, windowSeconds: 2),
        "/api/v5/system/status": RateLimit(requests: 1, windowSeconds: 5),
    ]
    public static let okxDefault = RateLimit(requests: 10, windowSeconds: 2)
}

/// Spaces requests so that no endpoint exceeds its ``RateLimit``: a sliding window of the start times of
/// the last requests per endpoint; a request that would be one too many waits until the oldest leaves the
/// window. The clock and the sleep are injected so tests run without waiting.
public actor RequestPacer {
    let limits: [String: RateLimit]
    let defaultLimit: RateLimit
    let now: @Sendable () -> Double
    let sleep: @Sendable (Double) async throws -> Void
    /// Start times (seconds) of the recent requests per endpoint, oldest first.
    var recent: [String: [Double]] = [:]

    public init(
        limits: [String: RateLimit] = RateLimit.okx, defaultLimit: RateLimit = RateLimit.okxDefault,
        now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 },
        sleep: @escaping @Sendable (Double) async throws -> Void = { seconds in
            try await Task.sleep(nanoseconds: UInt64(max(0, seconds) * 1_000_000_000))
        }
    ) {
        self.limits = limits
        self.defaultLimit = defaultLimit
        self.now = now
        self.sleep = sleep
    }

    /// Waits until a request to `endpoint` is within its limit, then counts it. Returns the seconds waited.
    @discardableResult
    public func take(_ endpoint: String) async throws -> Double {
        let limit = limits[endpoint] ?? defaultLimit
        var waited = 0.0
        while true {
            let time = now()
            var starts = recent[endpoint, default: []]
            starts.removeAll { $0 <= time - limit.windowSeconds }
            if starts.count < limit.requests {
                starts.append(time)
                recent[endpoint] = starts
                return waited
            }
            recent[endpoint] = starts
            let wait = starts[starts.count - limit.requests] + limit.windowSeconds - time
            waited += wait
            try await sleep(wait)
        }
    }
}
