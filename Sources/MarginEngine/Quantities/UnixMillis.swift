/// A point in time as milliseconds since 1970-01-01T00:00:00Z (UTC), the unit of every OKX timestamp.
public struct UnixMillis: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: Int64

    public init(_ rawValue: Int64) { self.rawValue = rawValue }

    public static let millisecondsPerYear: Double = 31_536_000_000  // ACT/365
    public static let millisecondsPerDay: Int64 = 86_400_000

    public static func < (lhs: UnixMillis, rhs: UnixMillis) -> Bool { lhs.rawValue < rhs.rawValue }

    /// Years from `self` to `later` on ACT/365 (negative when `later` is earlier).
    public func years(until later: UnixMillis) -> Double {
        Double(later.rawValue - rawValue) / Self.millisecondsPerYear
    }

    /// The instant at `hour`:00 UTC on the given civil date (proleptic Gregorian calendar).
    public static func utc(year: Int, month: Int, day: Int, hour: Int = 0) -> UnixMillis {
        UnixMillis(
            Int64(CivilCalendar.daysFromCivil(year: year, month: month, day: day)) * millisecondsPerDay
                + Int64(hour) * 3_600_000)
    }

    /// ISO 8601 in UTC with milliseconds, e.g. `2025-12-30T17:31:15.944Z`.
    public var iso8601: String {
        let days = Int(
            rawValue >= 0 ? rawValue / Self.millisecondsPerDay : (rawValue - Self.millisecondsPerDay + 1) / Self.millisecondsPerDay)
        let millisOfDay = Int(rawValue - Int64(days) * Self.millisecondsPerDay)
        let (year, month, day) = CivilCalendar.civilFromDays(days)
        func pad(_ value: Int, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(millisOfDay / 3_600_000, 2)):"
            + "\(pad(millisOfDay / 60_000 % 60, 2)):\(pad(millisOfDay / 1000 % 60, 2)).\(pad(millisOfDay % 1000, 3))Z"
    }

    public var description: String { String(rawValue) }
}

/// Conversions between civil dates and day numbers (days since 1970-01-01), after Howard Hinnant's
/// public-domain algorithms; valid for every date the engine meets.
enum CivilCalendar {
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let shiftedYear = month <= 2 ? year - 1 : year
        let era = (shiftedYear >= 0 ? shiftedYear : shiftedYear - 399) / 400
        let yearOfEra = shiftedYear - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    static func civilFromDays(_ days: Int) -> (year: Int, month: Int, day: Int) {
        let shifted = days + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    static func isValid(year: Int, month: Int, day: Int) -> Bool {
        guard (1...12).contains(month), day >= 1 else { return false }
        let lengths = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
        return day <= (month == 2 && leap ? 29 : lengths[month - 1])
    }
}
