/// The four kinds of instrument, named as OKX's `instType`.
public enum InstrumentKind: String, Sendable, Hashable, CaseIterable {
    case spot = "SPOT"
    case perpetual = "SWAP"
    case future = "FUTURES"
    case option = "OPTION"
}

/// How a derivative's contract is denominated and settled.
public enum Margining: String, Sendable, Hashable {
    /// Contract value in coins, quoted and settled in a stablecoin (`BTC-USDT-SWAP`).
    case linear
    /// Contract value in USD, quoted in USD and settled in the coin (`BTC-USD-SWAP`, and every option).
    case inverse
}

/// Call or put.
public enum OptionKind: String, Sendable, Hashable {
    case call = "C"
    case put = "P"
}

/// An OKX instrument id, checked against the id grammar of docs/methodology/01-instruments-market.md §1.1.
///
/// | kind | pattern | example |
/// | --- | --- | --- |
/// | spot | `BASE-QUOTE` | `BTC-USDT` |
/// | perpetual | `BASE-QUOTE-SWAP` | `BTC-USDT-SWAP`, `BTC-USD-SWAP` |
/// | future | `BASE-QUOTE-YYMMDD` | `BTC-USD-250328` |
/// | option | `BASE-USD-YYMMDD-STRIKE-C|P` | `BTC-USD-250328-100000-C` |
///
/// Parsing checks only the grammar (and that the date exists); whether the instrument is listed is the
/// catalog's question. Dated instruments expire at 08:00 UTC on their date.
public struct InstrumentID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: String
    public let kind: InstrumentKind
    /// The underlying coin (`BTC`), or the base currency of a spot pair.
    public let baseCurrency: String
    /// `USDT`, `USDC` or `USD` for derivatives; the quote currency of a spot pair.
    public let quoteCurrency: String
    /// 08:00 UTC on the id's date, for futures and options.
    public let expiry: UnixMillis?
    /// The strike in USD per coin, for options.
    public let strikeUSD: Double?
    public let optionKind: OptionKind?

    /// Parses `text`, or returns nil when it does not follow the grammar.
    public init?(_ text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 2 || parts.count == 3 || parts.count == 5,
            Self.isCurrencyCode(parts[0]), Self.isCurrencyCode(parts[1]), parts[0] != parts[1]
        else { return nil }
        rawValue = text
        baseCurrency = parts[0]
        quoteCurrency = parts[1]
        switch parts.count {
        case 2:
            kind = .spot
            expiry = nil
            strikeUSD = nil
            optionKind = nil
        case 3:
            guard ["USDT", "USDC", "USD"].contains(parts[1]) else { return nil }
            if parts[2] == "SWAP" {
                kind = .perpetual
                expiry = nil
            } else {
                guard let date = Self.expiry(fromYYMMDD: parts[2]) else { return nil }
                kind = .future
                expiry = date
            }
            strikeUSD = nil
            optionKind = nil
        default:
            guard parts[1] == "USD", let date = Self.expiry(fromYYMMDD: parts[2]),
                let strike = Self.strike(parts[3]), let optionKind = OptionKind(rawValue: parts[4])
            else { return nil }
            kind = .option
            expiry = date
            strikeUSD = strike
            self.optionKind = optionKind
        }
    }

    /// Linear for USDT/USDC-quoted swaps and futures, inverse for USD-quoted ones and for options.
    public var margining: Margining? {
        switch kind {
        case .spot: nil
        case .option: .inverse
        case .perpetual, .future: quoteCurrency == "USD" ? .inverse : .linear
        }
    }

    /// The instrument family (`BTC-USDT`, `BTC-USD`), OKX's `uly`.
    public var family: String { "\(baseCurrency)-\(quoteCurrency)" }

    public static func < (lhs: InstrumentID, rhs: InstrumentID) -> Bool { lhs.rawValue < rhs.rawValue }
    public static func == (lhs: InstrumentID, rhs: InstrumentID) -> Bool { lhs.rawValue == rhs.rawValue }
    public func hash(into hasher: inout Hasher) { hasher.combine(rawValue) }
    public var description: String { rawValue }

    private static func isCurrencyCode(_ text: String) -> Bool {
        (1...12).contains(text.count)
            && text.utf8.allSatisfy {
                (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0)
            }
    }

    private static func expiry(fromYYMMDD text: String) -> UnixMillis? {
        guard text.utf8.count == 6, text.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
            let number = Int(text)
        else { return nil }
        let year = 2000 + number / 10_000
        let month = number / 100 % 100
        let day = number % 100
        guard CivilCalendar.isValid(year: year, month: month, day: day) else { return nil }
        return UnixMillis.utc(year: year, month: month, day: day, hour: 8)
    }

    private static func strike(_ text: String) -> Double? {
        guard !text.isEmpty, text.first != "0" || text.hasPrefix("0."), NumberSyntax.isValid(text),
            !text.contains("e"), !text.contains("E"), !text.hasPrefix("-"),
            let value = Double(text), value > 0, value.isFinite
        else { return nil }
        return value
    }
}
