import MarginEngine

/// A way to GET an OKX v5 endpoint: the `data` rows of its answer, or why there are none. `OKXClient`
/// (MarketFeedHTTP, AsyncHTTPClient) is the real one; tests answer in memory.
public protocol OKXTransport: Sendable {
    /// The endpoint's scheme, host and port (`https://www.okx.com`).
    var baseURL: String { get }
    /// `GET path?query`, signed with the transport's API key when `signed`.
    func get(_ path: String, _ query: [(String, String)], signed: Bool) async throws(OKXFeedError) -> [JSONValue]
}

extension OKXTransport {
    /// An unsigned GET.
    public func get(_ path: String, _ query: [(String, String)] = []) async throws(OKXFeedError) -> [JSONValue] {
        try await get(path, query, signed: false)
    }
}

/// OKX's request targets and answer envelope.
public enum OKXEnvelope {
    /// The request target `path?query` with the query percent-encoded as sent (and as signed): letters,
    /// digits and `-_.~` as they are, every other byte as `%XX`.
    public static func target(_ path: String, _ query: [(String, String)]) -> String {
        guard !query.isEmpty else { return path }
        func encoded(_ text: String) -> String {
            var result = ""
            for byte in text.utf8 {
                let scalar = Unicode.Scalar(byte)
                if (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x30 && byte <= 0x39)
                    || "-_.~".unicodeScalars.contains(scalar)
                {
                    result.unicodeScalars.append(scalar)
                } else {
                    let hex = Array("0123456789ABCDEF")
                    result += "%\(hex[Int(byte >> 4)])\(hex[Int(byte & 15)])"
                }
            }
            return result
        }
        return path + "?" + query.map { "\($0.0)=\(encoded($0.1))" }.joined(separator: "&")
    }

    /// The `data` array of an OKX envelope, or the error it reports.
    public static func data(of bytes: [UInt8], status: Int, endpoint: String) throws(OKXFeedError) -> [JSONValue] {
        let json: JSONValue
        do { json = try JSONParser.parse(bytes) } catch {
            if status != 200 { throw .rejected(endpoint: endpoint, httpStatus: status, code: "", message: excerpt(bytes)) }
            throw .malformed(endpoint: endpoint, detail: error.description)
        }
        guard case .object(let envelope) = json else { throw .malformed(endpoint: endpoint, detail: "the answer is not a JSON object") }
        let code: String
        switch envelope["code"] {
        case .string(let text)?: code = text
        case .number(let text)?: code = text
        default:
            if status != 200 { throw .rejected(endpoint: endpoint, httpStatus: status, code: "", message: excerpt(bytes)) }
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
        let text = String(decoding: bytes.prefix(120), as: UTF8.self).split(whereSeparator: \.isNewline).joined(separator: " ")
        return bytes.count > 120 ? text + "…" : text
    }
}
