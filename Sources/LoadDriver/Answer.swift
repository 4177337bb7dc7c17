/// The parts of an OKX answer the loop looks at: `{"code":"0","msg":"","data":[{"ordId":…,"sCode":"0",…}]}`.
/// Read by a small JSON scanner rather than JSONDecoder, whose generic Codable machinery cost about as much
/// CPU per answer as the whole rest of the request.
struct Answer {
    struct Item {
        var ordId, clOrdId, sCode, sMsg: String?
    }

    var code, msg: String?
    /// The elements of `data` that are objects, in order (a batch answers one per order).
    var items: [Item] = []
    /// The first element of `data`, empty when there is none (as loadgen.py's `item`).
    var item: Item { items.first ?? Item() }

    /// nil when the body is not one well-formed JSON object. Fields that are not strings read as absent.
    init?(json bytes: [UInt8]) {
        var scanner = JSONScanner(bytes: bytes)
        var answer = Answer()
        let parsed = scanner.object { scanner, key in
            switch key {
            case "code": return scanner.string(into: &answer.code)
            case "msg": return scanner.string(into: &answer.msg)
            case "data" where scanner.next == UInt8(ascii: "["):
                return scanner.array { scanner, _ in
                    guard scanner.next == UInt8(ascii: "{") else { return scanner.skipValue() }
                    var item = Item()
                    let parsed = scanner.object { scanner, key in
                        switch key {
                        case "ordId": return scanner.string(into: &item.ordId)
                        case "clOrdId": return scanner.string(into: &item.clOrdId)
                        case "sCode": return scanner.string(into: &item.sCode)
                        case "sMsg": return scanner.string(into: &item.sMsg)
                        default: return scanner.skipValue()
                        }
                    }
                    answer.items.append(item)
                    return parsed
                }
            default: return scanner.skipValue()
            }
        }
        guard parsed, scanner.next == nil else { return nil }
        self = answer
    }

    private init() {}
}

/// A forward-only reader over JSON bytes: each method consumes one value and answers whether it was
/// well-formed. Scalars other than strings are skipped without being checked character by character.
struct JSONScanner {
    private let bytes: [UInt8]
    private var at = 0

    init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// The next significant byte, after whitespace; nil at the end.
    var next: UInt8? {
        mutating get {
            while at < bytes.count, Self.isSpace(bytes[at]) { at += 1 }
            return at < bytes.count ? bytes[at] : nil
        }
    }

    private static func isSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09
    }

    private mutating func consume(_ byte: UInt8) -> Bool {
        guard next == byte else { return false }
        at += 1
        return true
    }

    /// `{ "key": value, … }`, each value read by `member`, which must consume it.
    mutating func object(_ member: (inout JSONScanner, String) -> Bool) -> Bool {
        guard consume(UInt8(ascii: "{")) else { return false }
        if consume(UInt8(ascii: "}")) { return true }
        repeat {
            guard let key = string(), consume(UInt8(ascii: ":")), member(&self, key) else { return false }
        } while consume(UInt8(ascii: ","))
        return consume(UInt8(ascii: "}"))
    }

    /// `[ value, … ]`, each value read by `element` with its index.
    mutating func array(_ element: (inout JSONScanner, Int) -> Bool) -> Bool {
        guard consume(UInt8(ascii: "[")) else { return false }
        if consume(UInt8(ascii: "]")) { return true }
        var index = 0
        repeat {
            guard element(&self, index) else { return false }
            index += 1
        } while consume(UInt8(ascii: ","))
        return consume(UInt8(ascii: "]"))
    }

    /// Any value, discarded.
    mutating func skipValue() -> Bool {
        switch next {
        case UInt8(ascii: "\""): return string() != nil
        case UInt8(ascii: "{"): return object { scanner, _ in scanner.skipValue() }
        case UInt8(ascii: "["): return array { scanner, _ in scanner.skipValue() }
        case nil: return false
        default:  // number, true, false, null
            let start = at
            while at < bytes.count, !Self.isSpace(bytes[at]), ![0x2C, 0x5D, 0x7D].contains(bytes[at]) { at += 1 }
            return at > start
        }
    }

    /// A string value into `field`; any other value is skipped and leaves `field` nil.
    mutating func string(into field: inout String?) -> Bool {
        guard next == UInt8(ascii: "\"") else { return skipValue() }
        field = string()
        return field != nil
    }

    /// A string with its escapes decoded; nil when the next value is not a complete string.
    mutating func string() -> String? {
        guard consume(UInt8(ascii: "\"")) else { return nil }
        var decoded: [UInt8] = []
        var start = at
        while at < bytes.count {
            switch bytes[at] {
            case UInt8(ascii: "\""):
                defer { at += 1 }
                if decoded.isEmpty { return String(decoding: bytes[start..<at], as: UTF8.self) }
                return String(decoding: decoded + bytes[start..<at], as: UTF8.self)
            case UInt8(ascii: "\\"):
                decoded += bytes[start..<at]
                at += 1
                guard let scalar = escape() else { return nil }
                decoded += String(scalar).utf8
                start = at
            default:
                at += 1
            }
        }
        return nil
    }

    /// The character of the escape after a backslash; a lone surrogate becomes U+FFFD.
    private mutating func escape() -> Unicode.Scalar? {
        guard at < bytes.count else { return nil }
        let byte = bytes[at]
        at += 1
        let simple: [UInt8: Unicode.Scalar] = [0x62: "\u{8}", 0x66: "\u{C}", 0x6E: "\n", 0x72: "\r", 0x74: "\t"]
        guard byte == UInt8(ascii: "u") else { return simple[byte] ?? Unicode.Scalar(byte) }  // also \" \\ \/
        guard let unit = hex4() else { return nil }
        guard (0xD800..<0xDC00).contains(unit), bytes[at...].starts(with: "\\u".utf8) else {
            return Unicode.Scalar(unit) ?? "\u{FFFD}"
        }
        at += 2
        guard let low = hex4() else { return nil }
        guard (0xDC00..<0xE000).contains(low) else { return "\u{FFFD}" }
        return Unicode.Scalar(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00))
    }

    private mutating func hex4() -> UInt32? {
        guard at + 4 <= bytes.count, let value = UInt32(String(decoding: bytes[at..<(at + 4)], as: UTF8.self), radix: 16)
        else { return nil }
        at += 4
        return value
    }
}
