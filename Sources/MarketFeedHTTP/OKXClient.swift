import AsyncHTTPClient
import Foundation
import MarginEngine
import MarketFeed
import NIOCore
import NIOHTTP1

/// A client of any OKX v5-compatible REST endpoint (the real exchange at `https://www.okx.com`, or `pm serve`):
/// GET requests, signed when credentials are given, paced under OKX's documented rate limits, each answer
/// checked to be OKX's envelope with code `"0"` and returned as its `data` array.
///
/// Uses AsyncHTTPClient's shared client (its event loops live as long as the process; nothing to shut down).
public struct OKXClient: OKXTransport {
    /// The scheme, host and port, without a trailing slash (`https://www.okx.com`).
    public let baseURL: String
    public let credentials: OKXCredentials?
    let pacer: RequestPacer
    /// Seconds a request may take before it counts as unanswered.
    public let timeoutSeconds: Double
    /// How often a request refused for its rate (HTTP 429, code 50011) is tried again, a second apart.
    let rateLimitRetries = 3
    /// The largest answer read (OKX's option instrument list is a few megabytes).
    static let maximumBodyBytes = 64 << 20

    public init(
        baseURL: String, credentials: OKXCredentials? = nil, pacer: RequestPacer = RequestPacer(), timeoutSeconds: Double = 10
    )
        throws(OKXFeedError)
    {
        var base = baseURL.trimmingCharacters(in: .whitespaces)
        while base.hasSuffix("/") { base.removeLast() }
        if base.hasSuffix("/api/v5") { base.removeLast("/api/v5".count) }
        guard let url = URL(string: base), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme), url.host != nil
        else { throw .invalidBaseURL(baseURL) }
        self.baseURL = base
        self.credentials = credentials
        self.pacer = pacer
        self.timeoutSeconds = timeoutSeconds
    }

    /// `GET path?query`, signed with ``credentials`` when `signed`; the `data` array of the answer.
    public func get(_ path: String, _ query: [(String, String)], signed: Bool) async throws(OKXFeedError) -> [JSONValue] {
        let target = OKXEnvelope.target(path, query)
        let endpoint = "GET \(target)"
        var attempt = 0
        while true {
            do {
                return try await once(path: path, target: target, endpoint: endpoint, signed: signed)
            } catch let error as OKXFeedError where error.isRateLimit && attempt < rateLimitRetries {
                attempt += 1
                try? await Task.sleep(nanoseconds: 1_000_000_000)
            } catch let error as OKXFeedError {
                throw error
            } catch {
                throw .unreachable(endpoint: endpoint, reason: "\(error)")
            }
        }
    }

    func once(path: String, target: String, endpoint: String, signed: Bool) async throws -> [JSONValue] {
        try await pacer.take(path)
        var request = HTTPClientRequest(url: baseURL + target)
        request.method = .GET
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "User-Agent", value: "pm-marketfeed")
        if signed {
            guard let credentials else {
                throw OKXFeedError.rejected(
                    endpoint: endpoint, httpStatus: 0, code: "50103", message: "no API key given for a signed request")
            }
            for (name, value) in credentials.headers(method: "GET", requestPath: target, timestamp: OKXCredentials.timestamp()) {
                request.headers.add(name: name, value: value)
            }
        }
        let bytes: [UInt8]
        let status: Int
        do {
            let response = try await HTTPClient.shared.execute(request, timeout: .nanoseconds(Int64(timeoutSeconds * 1e9)))
            status = Int(response.status.code)
            let body = try await response.body.collect(upTo: Self.maximumBodyBytes)
            bytes = Array(body.readableBytesView)
        } catch {
            throw OKXFeedError.unreachable(endpoint: endpoint, reason: Self.reason(error))
        }
        return try OKXEnvelope.data(of: bytes, status: status, endpoint: endpoint)
    }

    static func reason(_ error: any Error) -> String {
        if let error = error as? HTTPClientError {
            if error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout { return "timed out" }
            return "\(error)"
        }
        return "\(error)"
    }
}
