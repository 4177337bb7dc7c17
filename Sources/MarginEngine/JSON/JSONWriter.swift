/// Serialises ``JSONValue`` deterministically: members in their stored order, strings escaped per RFC 8259.
public enum JSONWriter {
    /// Compact (`pretty == false`) or two-space indented output.
    public static func serialize(_ value: JSONValue, pretty: Bool = false) -> String {
        var output = ""
        write(value, into: &output, pretty: pretty, indent: 0)
        return output
    }

    /// `text` as a JSON string literal, quotes included.
    public static func quoted(_ text: String) -> String {
        var output = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": output += "\\\""
            case "\\": output += "\\\\"
            case "\n": output += "\\n"
            case "\r": output += "\\r"
            case "\t": output += "\\t"
            case "\u{08}": output += "\\b"
            case "\u{0C}": output += "\\f"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    output += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    output.unicodeScalars.append(scalar)
                }
            }
        }
        return output + "\""
    }

    private static func write(_ value: JSONValue, into output: inout String, pretty: Bool, indent: Int) {
        switch value {
        case .null: output += "null"
        case .bool(let flag): output += flag ? "true" : "false"
        case .number(let literal): output += literal
        case .string(let string): output += quoted(string)
        case .array(let items):
            guard !items.isEmpty else { output += "[]"; return }
            output += "["
            for (position, item) in items.enumerated() {
                if position > 0 { output += "," }
                if pretty { output += "\n" + String(repeating: "  ", count: indent + 1) }
                write(item, into: &output, pretty: pretty, indent: indent + 1)
            }
            if pretty { output += "\n" + String(repeating: "  ", count: indent) }
            output += "]"
        case .object(let object):
            guard !object.members.isEmpty else { output += "{}"; return }
            output += "{"
            for (position, member) in object.members.enumerated() {
                if position > 0 { output += "," }
                if pretty { output += "\n" + String(repeating: "  ", count: indent + 1) }
                output += quoted(member.key) + (pretty ? ": " : ":")
                write(member.value, into: &output, pretty: pretty, indent: indent + 1)
            }
            if pretty { output += "\n" + String(repeating: "  ", count: indent) }
            output += "}"
        }
    }
}

/// Formats binary floating-point values as plain decimal strings, the way OKX writes numbers.
///
/// The digits are Swift's shortest round-trip representation (so parsing the text gives back the same
/// `Double`), written without an exponent: `1e-05` becomes `"0.00001"`, `1e+16` becomes
/// `"10000000000000000"`. Negative zero prints as `"0"`. The engine never produces NaN or infinity; if one
/// reaches this function it is a programming error.
public enum DecimalText {
    public static func format(_ value: Double) -> String {
        precondition(value.isFinite, "non-finite value \(value) reached the output formatter")
        if value == 0 { return "0" }
        let text = "\(value)"
        guard let exponentIndex = text.firstIndex(where: { $0 == "e" || $0 == "E" }) else {
            return text.hasSuffix(".0") ? String(text.dropLast(2)) : text
        }
        let mantissa = text[..<exponentIndex]
        guard let exponent = Int(text[text.index(after: exponentIndex)...]) else { return text }
        let negative = mantissa.hasPrefix("-")
        let unsigned = negative ? mantissa.dropFirst() : mantissa[...]
        let parts = unsigned.split(separator: ".", omittingEmptySubsequences: false)
        let integerDigits = String(parts[0])
        var fractionDigits = parts.count > 1 ? String(parts[1]) : ""
        if fractionDigits == "0" { fractionDigits = "" }
        let digits = integerDigits + fractionDigits
        let pointPosition = integerDigits.count + exponent  // digits before the decimal point
        var result: String
        if pointPosition <= 0 {
            result = "0." + String(repeating: "0", count: -pointPosition) + digits
        } else if pointPosition >= digits.count {
            result = digits + String(repeating: "0", count: pointPosition - digits.count)
        } else {
            let split = digits.index(digits.startIndex, offsetBy: pointPosition)
            result = digits[..<split] + "." + digits[split...]
        }
        // Trim redundant zeros in a fraction.
        if result.contains(".") {
            while result.hasSuffix("0") { result.removeLast() }
            if result.hasSuffix(".") { result.removeLast() }
        }
        while result.count > 1, result.hasPrefix("0"), !result.hasPrefix("0.") { result.removeFirst() }
        return negative ? "-" + result : result
    }
}
