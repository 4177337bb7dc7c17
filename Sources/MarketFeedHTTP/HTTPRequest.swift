import AsyncHTTPClient
import NIOCore
import NIOHTTP1

/// One HTTP request and its whole answer, over AsyncHTTPClient's shared client: what `pm sandbox` sends to a
/// running `pm serve`. Waiting for the answer parks the task on the client's event loop (no polling).
public enum HTTPRequest {
    /// Sends `method url` with `headers` and `body`; returns the status and the body (at most
    /// `maximumBodyBytes`). Throws when there is no answer within `timeoutSeconds`.
    public static func send(
        _ method: String, _ url: String, headers: [(String, String)] = [], body: [UInt8]? = nil, timeoutSeconds: Double = 600,
        maximumBodyBytes: Int = 64 << 20
    ) async throws -> (status: Int, body: [UInt8]) {
        var request = HTTPClientRequest(url: url)
        request.method = HTTPMethod(rawValue: method)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        let response = try await HTTPClient.shared.execute(request, timeout: .nanoseconds(Int64(timeoutSeconds * 1e9)))
        let collected = try await response.body.collect(upTo: maximumBodyBytes)
        return (Int(response.status.code), Array(collected.readableBytesView))
    }
}
