import MarginEngine

/// `|actual − expected| ≤ relative·|expected| + absolute`.
public func isClose(_ actual: Double, _ expected: Double, relative: Double = 1e-9, absolute: Double = 0) -> Bool {
    actual.isFinite && abs(actual - expected) <= relative * abs(expected) + absolute
}

/// A small deterministic generator (SplitMix64) for building random fixtures from a seed.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension JSONValue {
    /// The member `key` of an object (nil otherwise).
    public subscript(member key: String) -> JSONValue? {
        guard case .object(let object) = self else { return nil }
        return object[key]
    }

    /// The string or number text of a scalar.
    public var scalarText: String? {
        switch self {
        case .string(let text): text
        case .number(let text): text
        default: nil
        }
    }

    /// The numeric value of a scalar given as a number or a numeric string.
    public var doubleValue: Double? { scalarText.flatMap(Double.init) }

    public var arrayItems: [JSONValue] {
        guard case .array(let items) = self else { return [] }
        return items
    }
}
