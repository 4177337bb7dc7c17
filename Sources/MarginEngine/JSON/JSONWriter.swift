/// Serialises ``JSONValue`` deterministically: members in their stored order, strings escaped per RFC 8259.
public enum JSONWriter {
    /// Compact (`pretty == false`) or two-space indented output.
    public static func serialize(_ value: JSONValue, pretty: Bool = false) -> String {
        var output: [UInt8] = []
        output.reserveCapacity(1_024)
        write(value, into: &output, pretty: pretty, indent: 0)
        return String(decoding: output, as: UTF8.self)
    }

    /// `text` as a JSON string literal, quotes included.
    public static func quoted(_ text: String) -> String {
        var output: [UInt8] = []
        appendQuoted(text, to: &output)
        return String(decoding: output, as: UTF8.self)
    }

    /// Appends `text` as a JSON string literal. Bytes ≥ 0x80 are copied as they are (UTF-8 passes
    /// through JSON unescaped); quotes, backslashes and control characters are escaped.
    static func appendQuoted(_ text: String, to output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case UInt8(ascii: "\n"): output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case UInt8(ascii: "\r"): output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case UInt8(ascii: "\t"): output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0x08: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "b")])
            case 0x0C: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "f")])
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0")])
                output.append(hex[Int(byte >> 4)])
                output.append(hex[Int(byte & 0xF)])
            default: output.append(byte)
            }
        }
        output.append(UInt8(ascii: "\""))
    }

    private static func newline(_ output: inout [UInt8], indent: Int) {
        output.append(UInt8(ascii: "\n"))
        for _ in 0..<(2 * indent) { output.append(UInt8(ascii: " ")) }
    }

    private static func write(_ value: JSONValue, into output: inout [UInt8], pretty: Bool, indent: Int) {
        switch value {
        case .null: output.append(contentsOf: "null".utf8)
        case .bool(let flag): output.append(contentsOf: (flag ? "true" : "false").utf8)
        case .number(let literal): output.append(contentsOf: literal.utf8)
        case .string(let string): appendQuoted(string, to: &output)
        case .array(let items):
            guard !items.isEmpty else {
                output.append(contentsOf: "[]".utf8)
                return
            }
            output.append(UInt8(ascii: "["))
            for (position, item) in items.enumerated() {
                if position > 0 { output.append(UInt8(ascii: ",")) }
                if pretty { newline(&output, indent: indent + 1) }
                write(item, into: &output, pretty: pretty, indent: indent + 1)
            }
            if pretty { newline(&output, indent: indent) }
            output.append(UInt8(ascii: "]"))
        case .object(let object):
            guard !object.members.isEmpty else {
                output.append(contentsOf: "{}".utf8)
                return
            }
            output.append(UInt8(ascii: "{"))
            for (position, member) in object.members.enumerated() {
                if position > 0 { output.append(UInt8(ascii: ",")) }
                if pretty { newline(&output, indent: indent + 1) }
                appendQuoted(member.key, to: &output)
                output.append(UInt8(ascii: ":"))
                if pretty { output.append(UInt8(ascii: " ")) }
                write(member.value, into: &output, pretty: pretty, indent: indent + 1)
            }
            if pretty { newline(&output, indent: indent) }
            output.append(UInt8(ascii: "}"))
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
        let text = value.description
        let bytes = Array(text.utf8)
        let dot = UInt8(ascii: ".")
        let zero = UInt8(ascii: "0")
        guard let exponentIndex = bytes.firstIndex(where: { $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }) else {
            // "12.0" → "12"; otherwise Swift's text is already plain.
            if bytes.count > 2, bytes[bytes.count - 2] == dot, bytes[bytes.count - 1] == zero {
                return String(decoding: bytes[..<(bytes.count - 2)], as: UTF8.self)
            }
            return text
        }
        guard let exponent = Int(String(decoding: bytes[(exponentIndex + 1)...], as: UTF8.self)) else { return text }
        let negative = bytes.first == UInt8(ascii: "-")
        let mantissa = bytes[(negative ? 1 : 0)..<exponentIndex]
        let integerDigits = mantissa.prefix { $0 != dot }
        var fractionDigits = mantissa.dropFirst(integerDigits.count + 1)
        if fractionDigits.elementsEqual([zero]) { fractionDigits = [] }
        let digits = Array(integerDigits) + Array(fractionDigits)
        let pointPosition = integerDigits.count + exponent  // digits before the decimal point
        var result: [UInt8]
        if pointPosition <= 0 {
            result = [zero, dot] + [UInt8](repeating: zero, count: -pointPosition) + digits
        } else if pointPosition >= digits.count {
            result = digits + [UInt8](repeating: zero, count: pointPosition - digits.count)
        } else {
            result = Array(digits[..<pointPosition]) + [dot] + Array(digits[pointPosition...])
        }
        // Trim redundant zeros in a fraction, then leading zeros of the integer part.
        if result.contains(dot) {
            while result.last == zero { result.removeLast() }
            if result.last == dot { result.removeLast() }
        }
        while result.count > 1, result[0] == zero, result[1] != dot { result.removeFirst() }
        return (negative ? "-" : "") + String(decoding: result, as: UTF8.self)
    }
}
