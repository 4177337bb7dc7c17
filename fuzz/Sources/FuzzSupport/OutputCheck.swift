import MarginEngine

/// The checks every fuzz target applies to what the code under test produced. A failed check traps
/// (`fatalError`), which libFuzzer reports as a crash and saves the input for.
public enum OutputCheck {
    /// Ends the run: the code under test produced something it must never produce.
    public static func fail(_ message: String) -> Never {
        fatalError("fuzz output check failed: \(message)")
    }

    /// Members whose string values are identifiers or words, never numbers (`ccy` may be any text the
    /// request or a snapshot names, `"1e999"` included); every other string that reads as a number must be finite.
    static let textKeys: Set<String> = [
        "ccy", "instId", "instType", "riskUnit", "paramsId", "posSide", "acctLv", "greeksType", "tier", "dominant",
        "volShock", "type", "reasons", "reason", "from", "to", "code", "msg", "sCode", "sMsg",
    ]

    /// Writes `value` as `pm` does (pretty) and as the server does (compact), parses both back, requires the
    /// same document, and checks every number in it: JSON numbers and numeric strings must be finite and no
    /// string may spell NaN or infinity. `context` names the call in a failure.
    /// `scanNumbers: false` for a document that is input rather than output (a request body the parser read):
    /// its number literals are whatever the client sent (`-2e308` included), and the handlers that use them
    /// refuse the non-finite ones naming the field; only the round trip is checked then.
    public static func check(_ value: JSONValue, _ context: @autoclosure () -> String, scanNumbers: Bool = true) {
        for pretty in [true, false] {
            let text = JSONWriter.serialize(value, pretty: pretty)
            let parsed: JSONValue
            do {
                parsed = try JSONParser.parse(Array(text.utf8), maxDepth: 10_000)
            } catch {
                fail("\(context()): the written output is not valid JSON (\(error.description)): \(text.prefix(300))")
            }
            guard parsed == value else { fail("\(context()): the written output does not read back as the same document") }
        }
        if scanNumbers { scan(value, key: "", path: context) }
    }

    static func scan(_ value: JSONValue, key: String, path: () -> String) {
        switch value {
        case .null, .bool: break
        case .number(let literal):
            guard let number = Double(literal), number.isFinite else { fail("\(path()): \(key) is the non-finite number \(literal)") }
        case .string(let text):
            guard !textKeys.contains(key) else { return }
            if isNonFiniteWord(text) { fail("\(path()): \(key) is \"\(text)\"") }
            if isNumberText(text) {
                guard let number = Double(text), number.isFinite else {
                    fail("\(path()): \(key) is the non-finite number \"\(text.prefix(80))\"")
                }
            }
        case .array(let items):
            for item in items { scan(item, key: key, path: path) }
        case .object(let object):
            for member in object.members {
                // Keys such as the spot moves of `mr1Scenarios` are numbers too.
                if isNonFiniteWord(member.key) { fail("\(path()): key \"\(member.key)\"") }
                if isNumberText(member.key), !(Double(member.key)?.isFinite ?? false) {
                    fail("\(path()): key \"\(member.key)\" is not finite")
                }
                scan(member.value, key: member.key, path: path)
            }
        }
    }

    /// NaN and infinity as Swift, C and JavaScript print them.
    static func isNonFiniteWord(_ text: String) -> Bool {
        guard text.utf8.count <= 10 else { return false }
        switch text.lowercased() {
        case "nan", "-nan", "+nan", "inf", "-inf", "+inf", "infinity", "-infinity", "+infinity": return true
        default: return false
        }
    }

    /// A string that reads as a JSON number: the engine's own grammar (``NumberSyntax``), and any longer
    /// numeric text too, since a literal above 400 characters could only be out of a Double's range.
    public static func isNumberText(_ text: String) -> Bool {
        NumberSyntax.isValid(text) || (text.utf8.count > 400 && Double(text) != nil)
    }

    /// An engine error must describe itself (its text is what the user sees) without trapping.
    public static func check(_ error: EngineError) {
        let text = error.description
        guard !text.isEmpty else { fail("an engine error with an empty description: \(error)") }
    }

    /// A margin figure that must not be negative (`totalMmr`, `totalImr`).
    public static func requireNonNegative(_ value: JSONValue, _ keys: [String], _ context: @autoclosure () -> String) {
        guard case .object(let object) = value else { return }
        for key in keys {
            guard case .string(let text)? = object[key], let number = Double(text) else { continue }
            if number < 0 { fail("\(context()): \(key) is negative (\(text))") }
        }
    }
}
