import MarginEngine

/// Something an upstream could not give: an endpoint that failed, a field it left empty, or an
/// instrument skipped because what it gave does not pass the engine's validation. Each names its subject
/// (an instrument id, an index pair, an endpoint) so a user can see exactly what is missing.
public struct FeedProblem: Sendable, Equatable, CustomStringConvertible {
    /// The instrument id, index pair, currency or endpoint concerned (`BTC-USD-250328-100000-C`,
    /// `USDT-USD`, `GET /api/v5/public/opt-summary?instFamily=BTC-USD`).
    public var subject: String
    /// What is missing or wrong, and what was done about it.
    public var detail: String
    /// Whether a request got no OKX answer at all (no connection, a timeout, an HTTP 5xx or rate-limit
    /// status, a body that is not OKX's envelope), as opposed to an answer refusing or lacking something.
    public var unanswered: Bool

    public init(_ subject: String, _ detail: String, unanswered: Bool = false) {
        self.subject = subject
        self.detail = detail
        self.unanswered = unanswered
    }

    public var description: String { "\(subject): \(detail)" }
}

/// Why a request to an OKX v5 endpoint gave no data.
public enum OKXFeedError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The base URL is not an `http://` or `https://` URL.
    case invalidBaseURL(String)
    /// No answer: connection refused, timeout, TLS or DNS failure.
    case unreachable(endpoint: String, reason: String)
    /// An answer that is not OKX's envelope (`{"code":..., "msg":..., "data":[...]}`).
    case malformed(endpoint: String, detail: String)
    /// OKX's envelope with a non-zero `code` (or an HTTP error status).
    case rejected(endpoint: String, httpStatus: Int, code: String, message: String)

    public var description: String {
        switch self {
        case .invalidBaseURL: reason
        case .unreachable(let endpoint, _), .malformed(let endpoint, _), .rejected(let endpoint, _, _, _): "\(endpoint): \(reason)"
        }
    }

    /// What went wrong, without the endpoint.
    public var reason: String {
        switch self {
        case .invalidBaseURL(let url): "\(url) is not an http:// or https:// URL"
        case .unreachable(_, let reason): "no answer (\(reason))"
        case .malformed(_, let detail): "not an OKX v5 answer (\(detail))"
        case .rejected(_, let status, let code, let message): "HTTP \(status), code \(code)\(message.isEmpty ? "" : ": \(message)")"
        }
    }

    /// Whether the upstream gave no OKX answer (see ``FeedProblem/unanswered``).
    public var isUnanswered: Bool {
        switch self {
        case .invalidBaseURL, .unreachable, .malformed: true
        case .rejected(_, let status, let code, _): status >= 500 || status == 429 || status == 404 || code == "50011" || code.isEmpty
        }
    }

    /// Whether waiting and asking again may help (OKX's rate limit: HTTP 429 or code 50011).
    public var isRateLimit: Bool {
        if case .rejected(_, let status, let code, _) = self { return status == 429 || code == "50011" }
        return false
    }
}
