import AsyncHTTPClient
import Foundation
import MarginEngine
import NIOCore
import NIOHTTP1

/// A client of any OKX v5-compatible REST endpoint (the real exchange at `https://www.okx.com`, or `pm serve`):
/// GET requests, signed when credentials are given, paced under OKX's documented rate limits, each answer
/// checked to be OKX's envelope with code `"0"` and returned as its `data` array.
///
/// Uses AsyncHTTPClient's shared client (its event loops live as long as the process; nothing to shut down).
public struct OKXClient: Sendable {
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

    public init(baseURL: String, credentials: OKXCredentials? = nil, pacer: RequestPacer = RequestPacer(), timeoutSeconds: Double = 10)
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

    /// The request target `path?query` with the query percent-encoded as sent (and as signed).
    static func target(_ path: String, _ query: [(String, String)]) -> String {
        guard !query.isEmpty else { return path }
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-_.~")
        let encoded = query.map { key, value in
            "\(key)=\(value.addingPercentEncoding(withAllowedCharacters: allowed) ?? value)"
        }
        return path + "?" + encoded.joined(separator: "&")
    }

    /// `GET path?query`, signed with ``credentials`` when `signed`; the `data` array of the answer.
    public func get(_ path: String, _ query: [(String, String)] = [], signed: Bool = false) async throws(OKXFeedError) -> [JSONValue] {
        let target = Self.target(path, query)
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
                throw OKXFeedError.rejected(endpoint: endpoint, httpStatus: 0, code: "50103", message: "no API key given for a signed request")
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
        return try Self.data(of: bytes, status: status, endpoint: endpoint)
    }

    /// The `data` array of an OKX envelope, or the error it reports.
    public static func data(of bytes: [UInt8], status: Int, endpoint: String) throws(OKXFeedError) -> [JSONValue] {
        let json: JSONValue
        do { json = try JSONParser.parse(bytes) } catch {
            if status != 200 { throw .rejected(endpoint: endpoint, httpStatus: status, code: "", message: Self.excerpt(bytes)) }
            throw .malformed(endpoint: endpoint, detail: error.description)
        }
        guard case .object(let envelope) = json else { throw .malformed(endpoint: endpoint, detail: "the answer is not a JSON object") }
        let code: String
        switch envelope["code"] {
        case .string(let text)?: code = text
        case .number(let text)?: code = text
        default:
            if status != 200 { throw .rejected(endpoint: endpoint, httpStatus: status, code: "", message: Self.excerpt(bytes)) }
            throw .malformed(endpoint: endpoint, detail: "no \"code\"")
        }
        var message = ""
        if case .string(let text)? = envelope["msg"] { message = text }
        guard code == "0", status == 200 else { throw .rejected(endpoint: endpoint, httpStatus: status, code: code, message: message) }
        switch envelope["data"] {
        case .array(let rows)?: return rows
        case .object?: throw .malformed(endpoint: endpoint, detail: "\"data\" is an object, not an array")
        default: throw .malformed(endpoint: endpoint, detail: "no \"data\" array")
        }
    }

    static func excerpt(_ bytes: [UInt8]) -> String {
        let text = String(decoding: bytes.prefix(120), as: UTF8.self).replacingOccurrences(of: "\n", with: " ")
        return bytes.count > 120 ? text + "…" : text
    }

    static func reason(_ error: any Error) -> String {
        if let error = error as? HTTPClientError {
            if error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout { return "timed out" }
            return "\(error)"
        }
        return "\(error)"
    }
}
