import Foundation
import MarginEngine

/// One API request as the handlers see it: method, path, raw query and body, parsed parameters, and the
/// authenticated account (for private endpoints).
public struct APIRequest: Sendable {
    public var method: String
    /// The path without the query (`/api/v5/account/balance`).
    public var path: String
    /// The request target exactly as received (path and raw query), as signed by clients.
    public var rawTarget: String
    public var body: [UInt8]
    public var headers: [String: String]
    public var query: [String: String]
    package var remoteIsLoopback: Bool
    /// Set by authentication for private endpoints.
    package var uid: String = ""
    package var permissions: Set<String> = []

    package init(
        method: String, path: String, rawTarget: String, body: [UInt8], headers: [String: String], query: [String: String],
        remoteIsLoopback: Bool
    ) {
        self.method = method
        self.path = path
        self.rawTarget = rawTarget
        self.body = body
        self.headers = headers
        self.query = query
        self.remoteIsLoopback = remoteIsLoopback
    }

    /// A request as the server decodes it: `target` is the request target exactly as received (path and
    /// raw query, as clients sign it), `headers` are keyed by lower-case name.
    public init(method: String, target: String, body: [UInt8], headers: [String: String], remoteIsLoopback: Bool) {
        let (path, rawQuery) = Self.splitTarget(target)
        self.init(
            method: method, path: path, rawTarget: target, body: body, headers: headers, query: Self.parseQuery(rawQuery),
            remoteIsLoopback: remoteIsLoopback)
    }

    /// Splits a request target at its first `?` into the path and the raw query; either may be empty
    /// (`/api/v5/public/time?` has an empty query, `?a=1` an empty path).
    package static func splitTarget(_ target: String) -> (path: String, rawQuery: String) {
        guard let mark = target.firstIndex(of: "?") else { return (target, "") }
        return (String(target[..<mark]), String(target[target.index(after: mark)...]))
    }

    /// Parses the raw query (`a=1&b=x%2Cy`), percent-decoding names and values; the first of a repeated
    /// name wins.
    package static func parseQuery(_ raw: String) -> [String: String] {
        var result: [String: String] = [:]
        for pair in raw.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(parts[0]).removingPercentEncoding ?? String(parts[0])
            let value = parts.count > 1 ? (String(parts[1]).removingPercentEncoding ?? String(parts[1])) : ""
            if result[name] == nil { result[name] = value }
        }
        return result
    }

    /// A query parameter, nil when absent or empty.
    public func parameter(_ name: String) -> String? {
        guard let value = query[name], !value.isEmpty else { return nil }
        return value
    }

    /// The body as JSON (`{}` for an empty body).
    public func jsonBody() throws -> JSONValue {
        if body.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { return .object([]) }
        do {
            return try JSONParser.parse(body)
        } catch {
            throw OKXError(.jsonSyntax, "JSON syntax error: \(error.description)")
        }
    }
}

/// A JSON object body read with OKX's tolerances (numbers or strings; `""` and `null` mean absent),
/// each failure an OKX parameter error naming the field and the value.
struct BodyFields {
    let reader: FieldReader

    init(_ value: JSONValue, path: String = "") throws {
        guard case .object = value else { throw OKXError(.jsonSyntax, "JSON syntax error: the body must be a JSON object") }
        reader = FieldReader(value, path: path)
    }

    func string(_ key: String) throws -> String? {
        do {
            guard let field = try reader.optional(key) else { return nil }
            switch field.value {
            case .string(let text): return text
            case .number(let literal): return literal
            case .bool(let flag): return flag ? "true" : "false"
            default: throw EngineError.invalidField(path: field.path, value: field.value.excerpt, reason: "must be a string")
            }
        } catch let error as EngineError {
            throw OKXError.parameter(error.description)
        }
    }

    func required(_ key: String) throws -> String {
        guard let value = try string(key) else { throw OKXError.empty(key) }
        return value
    }

    /// A required field whose value is one of a closed set (`side`, `ordType`, `tdMode`); anything else is a
    /// parameter error listing what is accepted.
    func required<Value: RawRepresentable & CaseIterable>(_ key: String, as _: Value.Type) throws -> Value where Value.RawValue == String {
        let text = try required(key)
        guard let value = Value(rawValue: text) else {
            throw OKXError.parameter("\(key) \(text.prefix(40)) must be one of \(Value.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return value
    }

    func decimal(_ key: String) throws -> ExactDecimal? {
        guard let text = try string(key) else { return nil }
        // Foundation's trimming is only paid for when there is something to trim.
        let padded = text.first?.isWhitespace == true || text.last?.isWhitespace == true
        guard let value = ExactDecimal(padded ? text.trimmingCharacters(in: .whitespaces) : text) else {
            throw OKXError.parameter("\(key) \"\(text)\" is not a finite decimal number within ±1e18")
        }
        return value
    }

    /// Refuses keys outside `known` (51000, naming the key).
    func rejectUnknown(_ known: Set<String>) throws {
        do { try reader.rejectUnknownKeys(known) } catch { throw OKXError.parameter(error.description) }
    }

    func bool(_ key: String) throws -> Bool? {
        guard let text = try string(key) else { return nil }
        switch text.lowercased() {
        case "true": return true
        case "false": return false
        default: throw OKXError.parameter("\(key) \"\(text)\" must be true or false")
        }
    }
}
