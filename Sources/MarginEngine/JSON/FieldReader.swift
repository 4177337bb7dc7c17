/// Reads validated fields out of a JSON document, naming the field's path in every error.
///
/// OKX clients send numbers and booleans either as JSON values or as strings, and send `""` or `null` for
/// an absent optional field; the reader accepts all of these. Every number must be finite.
public struct FieldReader: Sendable {
    /// The value at ``path``.
    public let value: JSONValue
    /// Where the value sits in its document, e.g. `simPos[2].pos`.
    public let path: String

    public init(_ value: JSONValue, path: String) {
        self.value = value
        self.path = path
    }

    private func childPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// True for `null` and `""`, which OKX clients send for "absent".
    public var isAbsent: Bool {
        switch value {
        case .null: true
        case .string(let text): text.isEmpty
        default: false
        }
    }

    /// The member `key` of an object, or nil when it is missing, `null` or `""`.
    public func optional(_ key: String) throws(EngineError) -> FieldReader? {
        guard case .object(let object) = value else {
            throw .invalidField(path: path, value: value.excerpt, reason: "must be an object")
        }
        guard let member = object[key] else { return nil }
        let reader = FieldReader(member, path: childPath(key))
        return reader.isAbsent ? nil : reader
    }

    /// The member `key` of an object; missing, `null` or `""` is an error.
    public func required(_ key: String) throws(EngineError) -> FieldReader {
        guard let reader = try optional(key) else { throw .missingField(path: childPath(key)) }
        return reader
    }

    /// The keys of an object, in document order.
    public func objectKeys() throws(EngineError) -> [String] {
        guard case .object(let object) = value else {
            throw .invalidField(path: path, value: value.excerpt, reason: "must be an object")
        }
        return object.keys
    }

    /// The elements of an array, each with its indexed path.
    public func elements() throws(EngineError) -> [FieldReader] {
        guard case .array(let items) = value else {
            throw .invalidField(path: path, value: value.excerpt, reason: "must be an array")
        }
        return items.enumerated().map { FieldReader($1, path: "\(path)[\($0)]") }
    }

    /// A string value (a number literal is not accepted as a string).
    public func string() throws(EngineError) -> String {
        guard case .string(let text) = value else {
            throw .invalidField(path: path, value: value.excerpt, reason: "must be a string")
        }
        return text
    }

    /// The literal text of a number given as a JSON number or a numeric string, validated by the JSON number
    /// grammar (no `+`, no leading zeros, no hex, no `inf` or `nan`).
    public func numberText() throws(EngineError) -> String {
        let text: String
        switch value {
        case .number(let literal): text = literal
        case .string(let string): text = string.trimmingSpaces()
        default: throw .invalidField(path: path, value: value.excerpt, reason: "must be a number")
        }
        guard NumberSyntax.isValid(text) else {
            throw .invalidField(path: path, value: value.excerpt, reason: "is not a number")
        }
        return text
    }

    /// A finite number.
    public func double() throws(EngineError) -> Double {
        let text = try numberText()
        guard let number = Double(text), number.isFinite else {
            throw .invalidField(path: path, value: value.excerpt, reason: "is not a finite number")
        }
        return number
    }

    /// A finite number strictly greater than zero.
    public func positiveDouble() throws(EngineError) -> Double {
        let number = try double()
        guard number > 0 else { throw .invalidField(path: path, value: value.excerpt, reason: "must be greater than 0") }
        return number
    }

    /// A finite number greater than zero and at most `maximum`.
    public func positiveDouble(atMost maximum: Double) throws(EngineError) -> Double {
        let number = try positiveDouble()
        guard number <= maximum else {
            throw .invalidField(path: path, value: value.excerpt, reason: "must be at most \(DecimalText.format(maximum))")
        }
        return number
    }

    /// A finite number inside `range`.
    public func double(in range: ClosedRange<Double>) throws(EngineError) -> Double {
        let number = try double()
        guard range.contains(number) else {
            throw .invalidField(
                path: path, value: value.excerpt,
                reason: "must be between \(DecimalText.format(range.lowerBound)) and \(DecimalText.format(range.upperBound))")
        }
        return number
    }

    /// A whole number given as a JSON integer or an integer string.
    public func int64() throws(EngineError) -> Int64 {
        let text = try numberText()
        guard let number = Int64(text) else {
            throw .invalidField(path: path, value: value.excerpt, reason: "must be a whole number")
        }
        return number
    }

    /// A boolean, as `true`/`false` or `"true"`/`"false"`.
    public func bool() throws(EngineError) -> Bool {
        switch value {
        case .bool(let flag): return flag
        case .string("true"): return true
        case .string("false"): return false
        default: throw .invalidField(path: path, value: value.excerpt, reason: "must be true or false")
        }
    }

    /// One of `allowed`, compared exactly.
    public func oneOf(_ allowed: [String]) throws(EngineError) -> String {
        let text: String
        switch value {
        case .string(let string): text = string
        case .number(let literal): text = literal
        default: throw .invalidField(path: path, value: value.excerpt, reason: "must be one of \(allowed.joined(separator: ", "))")
        }
        guard allowed.contains(text) else {
            throw .invalidField(path: path, value: value.excerpt, reason: "must be one of \(allowed.joined(separator: ", "))")
        }
        return text
    }

    /// Fails when the object holds a key outside `known` (catches typos such as `simPosition`).
    public func rejectUnknownKeys(_ known: Set<String>) throws(EngineError) {
        for key in try objectKeys() where !known.contains(key) {
            throw .invalidField(path: childPath(key), value: "", reason: "is not a known field")
        }
    }
}

/// The JSON number grammar, used for numbers that arrive as strings (and by the fuzz targets' output checks).
public enum NumberSyntax {
    /// Whether `text` is a JSON number literal of at most 400 characters.
    public static func isValid(_ text: String) -> Bool {
        var bytes = Array(text.utf8)[...]
        func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
        guard !bytes.isEmpty, bytes.count <= 400 else { return false }
        if bytes.first == UInt8(ascii: "-") { bytes = bytes.dropFirst() }
        guard let first = bytes.first, isDigit(first) else { return false }
        if first == UInt8(ascii: "0") {
            bytes = bytes.dropFirst()
        } else {
            bytes = bytes.drop(while: isDigit)
        }
        if bytes.first == UInt8(ascii: ".") {
            bytes = bytes.dropFirst()
            guard let digit = bytes.first, isDigit(digit) else { return false }
            bytes = bytes.drop(while: isDigit)
        }
        if bytes.first == UInt8(ascii: "e") || bytes.first == UInt8(ascii: "E") {
            bytes = bytes.dropFirst()
            if bytes.first == UInt8(ascii: "+") || bytes.first == UInt8(ascii: "-") { bytes = bytes.dropFirst() }
            guard let digit = bytes.first, isDigit(digit) else { return false }
            bytes = bytes.drop(while: isDigit)
        }
        return bytes.isEmpty
    }
}

extension String {
    func trimmingSpaces() -> String {
        var slice = self[...]
        while slice.first == " " { slice = slice.dropFirst() }
        while slice.last == " " { slice = slice.dropLast() }
        return String(slice)
    }
}
