/// A JSON document as the engine reads and writes it.
///
/// Numbers keep their literal text (`.number("97078.9")`), so a value is converted exactly once, by the
/// reader that knows its unit, and ledger amounts can later be read as exact decimals. Objects keep their
/// key order, so responses print in a stable, readable order.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    /// A number, as its JSON literal text.
    case number(String)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)
}

/// An ordered JSON object with unique keys.
public struct JSONObject: Sendable, Equatable {
    /// The members in document order.
    public private(set) var members: [(key: String, value: JSONValue)]

    public init() { members = [] }

    public init(_ members: [(String, JSONValue)]) {
        self.members = members.map { (key: $0.0, value: $0.1) }
    }

    /// The value of `key`, or nil when absent. Complexity: O(n) in the number of members.
    public subscript(key: String) -> JSONValue? {
        get { members.first { $0.key == key }?.value }
        set {
            if let index = members.firstIndex(where: { $0.key == key }) {
                if let newValue { members[index].value = newValue } else { members.remove(at: index) }
            } else if let newValue {
                members.append((key: key, value: newValue))
            }
        }
    }

    public var keys: [String] { members.map(\.key) }

    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        lhs.members.count == rhs.members.count
            && zip(lhs.members, rhs.members).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }
}

extension JSONValue {
    /// A string value holding `value` formatted as a plain decimal (see ``DecimalText``).
    public static func decimal(_ value: Double) -> JSONValue { .string(DecimalText.format(value)) }

    /// Builds an object from ordered members.
    public static func object(_ members: [(String, JSONValue)]) -> JSONValue { .object(JSONObject(members)) }

    /// A short rendering of the value for error messages (at most about 60 characters).
    public var excerpt: String {
        let text: String
        switch self {
        case .null: text = "null"
        case .bool(let flag): text = flag ? "true" : "false"
        case .number(let literal): text = literal
        case .string(let string): text = JSONWriter.quoted(string)
        case .array(let items): text = "[…\(items.count) items]"
        case .object(let object): text = "{…\(object.members.count) keys}"
        }
        return text.count > 60 ? String(text.prefix(57)) + "…" : text
    }
}
