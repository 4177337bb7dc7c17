import Foundation
import MarginEngine

/// Why a price-path file was refused: the file, the 1-based line and column, and what is wrong there.
public struct PricePathError: Error, Equatable, CustomStringConvertible {
    public var file: String
    /// 1-based line of the file (the header is line 1); 0 when the problem is the file as a whole.
    public var line: Int
    /// 1-based column (CSV cell) of the line; 0 when the problem is the whole line or file.
    public var column: Int
    public var message: String

    public init(file: String, line: Int = 0, column: Int = 0, _ message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.message = message
    }

    /// `file:line:column: message` (the compiler's convention), with the parts that apply.
    public var description: String {
        var location = file
        if line > 0 { location += ":\(line)" }
        if column > 0 { location += ":\(column)" }
        return "\(location): \(message)"
    }
}

/// One coin's price path as read from a CSV file of bars (`timestamp_utc,open,high,low,close,…`, the format of
/// the project's crash paths and hourly series, `data/crash_paths/SOURCES.md`).
///
/// Strict: the header must name `timestamp_utc` and `close`; every row has as many cells as the header; times
/// are ISO-8601 UTC (`2020-03-12T13:05:00Z`, optional fraction) and strictly increasing; every price present is
/// a finite number above zero, with `low ≤ open, close ≤ high` when those columns exist. Other columns
/// (volume, trades, …) are carried through unread. A file that breaks a rule is refused with the line and
/// column; nothing is guessed or repaired.
public struct PriceSeries: Sendable {
    /// The coin whose USD index the path moves (`BTC`, `ETH`, `USDC`).
    public var coin: String
    /// The file as given (for messages and the report).
    public var file: String
    /// Bar open times.
    public var times: [UnixMillis]
    /// Close prices in the file's quote currency.
    public var closes: [Double]
    /// Lows and highs where the file has them (empty otherwise), for the path's range in the report.
    public var lows: [Double]
    public var highs: [Double]

    /// The median spacing of the bars in milliseconds (the file's resolution).
    public var medianStepMilliseconds: Int64 {
        guard times.count >= 2 else { return 0 }
        let gaps = zip(times.dropFirst(), times).map { $0.rawValue - $1.rawValue }.sorted()
        return gaps[gaps.count / 2]
    }

    /// Parses `text`, the contents of `file`, as the path of `coin`.
    /// - Complexity: O(characters).
    public init(csv text: String, file: String, coin: String) throws(PricePathError) {
        self.coin = coin
        self.file = file
        // "\r\n" is one Character in Swift: split on either line ending.
        var lines = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
        // One trailing newline (or several) is the usual end of a file; an empty line inside is not.
        while let last = lines.last, last.isEmpty { lines.removeLast() }
        guard let headerLine = lines.first else { throw PricePathError(file: file, "the file is empty") }
        let header = headerLine.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        func column(_ name: String) -> Int? { header.firstIndex(of: name) }
        guard let timeColumn = column("timestamp_utc") else {
            throw PricePathError(file: file, line: 1, "the header has no timestamp_utc column (found: \(header.joined(separator: ",")))")
        }
        guard let closeColumn = column("close") else {
            throw PricePathError(file: file, line: 1, "the header has no close column (found: \(header.joined(separator: ",")))")
        }
        let openColumn = column("open")
        let highColumn = column("high")
        let lowColumn = column("low")
        var times: [UnixMillis] = []
        var closes: [Double] = []
        var lows: [Double] = []
        var highs: [Double] = []
        times.reserveCapacity(lines.count)
        closes.reserveCapacity(lines.count)
        for (offset, line) in lines.enumerated().dropFirst() {
            let number = offset + 1
            guard !line.isEmpty else { throw PricePathError(file: file, line: number, "empty line inside the file") }
            let cells = line.split(separator: ",", omittingEmptySubsequences: false)
            guard cells.count == header.count else {
                throw PricePathError(
                    file: file, line: number, column: min(cells.count, header.count) + 1,
                    "\(cells.count) cells where the header has \(header.count)")
            }
            let time = try Self.time(cells[timeColumn], file: file, line: number, column: timeColumn + 1)
            if let previous = times.last, time <= previous {
                throw PricePathError(
                    file: file, line: number, column: timeColumn + 1,
                    "time \(cells[timeColumn]) is not after the previous row's \(previous.iso8601)")
            }
            func price(_ index: Int?) throws(PricePathError) -> Double? {
                guard let index else { return nil }
                let cell = cells[index]
                guard let value = Double(cell.trimmingCharacters(in: .whitespaces)), value.isFinite, value > 0 else {
                    throw PricePathError(
                        file: file, line: number, column: index + 1, "\(header[index]) \"\(cell)\" is not a finite price above zero")
                }
                return value
            }
            guard let close = try price(closeColumn) else { continue }
            let open = try price(openColumn)
            let high = try price(highColumn)
            let low = try price(lowColumn)
            if let low, let highColumn, let high, low > high {
                throw PricePathError(file: file, line: number, column: highColumn + 1, "high \(high) is below low \(low)")
            }
            for (name, value, index) in [("close", close, closeColumn), ("open", open, openColumn)] {
                guard let value, let index else { continue }
                if let low, value < low {
                    throw PricePathError(file: file, line: number, column: index + 1, "\(name) \(value) is below the bar's low \(low)")
                }
                if let high, value > high {
                    throw PricePathError(file: file, line: number, column: index + 1, "\(name) \(value) is above the bar's high \(high)")
                }
            }
            times.append(time)
            closes.append(close)
            if let low, let high {
                lows.append(low)
                highs.append(high)
            }
        }
        guard times.count >= 2 else {
            throw PricePathError(file: file, "a path needs at least two rows after the header (found \(times.count))")
        }
        self.times = times
        self.closes = closes
        self.lows = lows.count == closes.count ? lows : []
        self.highs = highs.count == closes.count ? highs : []
    }

    /// Reads and parses a file; `coin` defaults to the file name's first `_`-separated word (`btc_usdt_…` → BTC).
    public init(contentsOf path: String, coin: String? = nil) throws(PricePathError) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw PricePathError(file: path, FileManager.default.fileExists(atPath: path) ? "cannot be read" : "no such file")
        }
        guard let text = String(data: data, encoding: .utf8) else { throw PricePathError(file: path, "is not UTF-8 text") }
        let resolved: String
        if let coin { resolved = coin } else { resolved = try Self.coin(fromFileName: path) }
        try self.init(csv: text, file: path, coin: resolved)
    }

    /// The coin a file name starts with: `btc_usdt_binance_spot_1h.csv` → `BTC`.
    public static func coin(fromFileName path: String) throws(PricePathError) -> String {
        let name = URL(fileURLWithPath: path).lastPathComponent
        guard let first = name.split(separator: "_").first, first.count < name.count,
            first.allSatisfy({ $0.isLetter || $0.isNumber })
        else {
            throw PricePathError(file: path, "cannot tell the coin from the file name; give it as COIN=\(path)")
        }
        return first.uppercased()
    }

    /// `YYYY-MM-DDTHH:MM:SS[.fff]Z`, strictly.
    static func time(_ cell: Substring, file: String, line: Int, column: Int) throws(PricePathError) -> UnixMillis {
        let text = Array(cell.utf8)
        func fail() -> PricePathError {
            PricePathError(file: file, line: line, column: column, "time \"\(cell)\" is not ISO-8601 UTC like 2020-03-12T13:05:00Z")
        }
        func digits(_ start: Int, _ count: Int) -> Int? {
            guard start + count <= text.count else { return nil }
            var value = 0
            for index in start..<(start + count) {
                let byte = text[index]
                guard byte >= 48, byte <= 57 else { return nil }
                value = value * 10 + Int(byte - 48)
            }
            return value
        }
        guard text.count >= 20, text[4] == UInt8(ascii: "-"), text[7] == UInt8(ascii: "-"), text[10] == UInt8(ascii: "T"),
            text[13] == UInt8(ascii: ":"), text[16] == UInt8(ascii: ":"), text.last == UInt8(ascii: "Z"),
            let year = digits(0, 4), let month = digits(5, 2), let day = digits(8, 2), let hour = digits(11, 2),
            let minute = digits(14, 2), let second = digits(17, 2),
            (1...12).contains(month), hour < 24, minute < 60, second < 60
        else { throw fail() }
        let daysInMonth = [31, year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        guard day >= 1, day <= daysInMonth[month - 1] else { throw fail() }
        var milliseconds = 0
        if text.count > 20 {
            // A fraction: `.` then 1–9 digits, of which milliseconds are kept only when the rest are zeros.
            guard text[19] == UInt8(ascii: "."), text.count <= 30, let fraction = digits(20, text.count - 21) else { throw fail() }
            let width = text.count - 21
            guard width >= 1 else { throw fail() }
            var scaled = fraction
            if width < 3 {
                for _ in 0..<(3 - width) { scaled *= 10 }
            } else if width > 3 {
                var divisor = 1
                for _ in 3..<width { divisor *= 10 }
                guard scaled % divisor == 0 else { throw fail() }
                scaled /= divisor
            }
            milliseconds = scaled
        }
        let start = UnixMillis.utc(year: year, month: month, day: day, hour: hour)
        return UnixMillis(start.rawValue + Int64(minute) * 60_000 + Int64(second) * 1000 + Int64(milliseconds))
    }
}

/// Several coins' paths on one time axis: the instants every series has (their intersection), in order.
///
/// Nothing is filled in: an instant missing from one file is dropped for all (and counted), so a step never
/// carries a price forward or interpolates one. The first common instant is the path's start; each coin's
/// move at a step is its close there over its close at the start.
public struct AlignedPath: Sendable {
    /// What each file contributed.
    public struct Source: Sendable {
        public var coin: String
        public var file: String
        public var rows: Int
        public var first: UnixMillis
        public var last: UnixMillis
        public var medianStepMilliseconds: Int64
        /// Rows of this file at instants some other file lacks.
        public var droppedRows: Int
        /// The lowest low and highest high over the kept span (closes when the file has no low/high), in the file's quote.
        public var lowestPrice: Double
        public var highestPrice: Double
    }

    public var times: [UnixMillis]
    /// Coins, sorted.
    public var coins: [String]
    /// Close prices per coin (same order as ``coins``), one per time.
    public var closes: [[Double]]
    public var sources: [Source]

    /// The step count (times − 1).
    public var steps: Int { times.count - 1 }

    /// Aligns `series` (one per coin) on their common instants.
    public init(_ series: [PriceSeries]) throws(PricePathError) {
        guard !series.isEmpty else { throw PricePathError(file: "--path", "no path given") }
        var seen = Set<String>()
        for item in series {
            guard seen.insert(item.coin).inserted else {
                throw PricePathError(file: item.file, "a second path for \(item.coin); give one file per coin")
            }
        }
        let ordered = series.sorted { $0.coin < $1.coin }
        var common = Set(ordered[0].times)
        for item in ordered.dropFirst() { common.formIntersection(item.times) }
        let times = common.sorted()
        guard times.count >= 2 else {
            let ranges = ordered.map { "\($0.file) \($0.times[0].iso8601)…\($0.times[$0.times.count - 1].iso8601)" }
            throw PricePathError(
                file: ordered.map(\.file).joined(separator: ", "),
                "the files share \(times.count) instant(s); a path needs two (ranges: \(ranges.joined(separator: "; ")))")
        }
        var closes: [[Double]] = []
        var sources: [Source] = []
        for item in ordered {
            var kept: [Double] = []
            kept.reserveCapacity(times.count)
            var lowest = Double.infinity
            var highest = -Double.infinity
            for (row, time) in item.times.enumerated() where common.contains(time) {
                kept.append(item.closes[row])
                lowest = min(lowest, item.lows.isEmpty ? item.closes[row] : item.lows[row])
                highest = max(highest, item.highs.isEmpty ? item.closes[row] : item.highs[row])
            }
            closes.append(kept)
            sources.append(
                Source(
                    coin: item.coin, file: item.file, rows: item.times.count, first: times[0], last: times[times.count - 1],
                    medianStepMilliseconds: item.medianStepMilliseconds, droppedRows: item.times.count - kept.count, lowestPrice: lowest,
                    highestPrice: highest))
        }
        self.times = times
        coins = ordered.map(\.coin)
        self.closes = closes
        self.sources = sources
    }

    /// Each coin's price at step `index` over its price at the start (the factor applied to its index).
    public func factors(at index: Int) -> [String: Double] {
        var result: [String: Double] = [:]
        for (position, coin) in coins.enumerated() { result[coin] = closes[position][index] / closes[position][0] }
        return result
    }

    /// Each coin's price at step `end` over its price at step `start` (a window's move).
    public func factors(from start: Int, to end: Int) -> [String: Double] {
        var result: [String: Double] = [:]
        for (position, coin) in coins.enumerated() { result[coin] = closes[position][end] / closes[position][start] }
        return result
    }

    /// The index of `time` among ``times``, or nil.
    public func index(of time: UnixMillis) -> Int? {
        var low = 0
        var high = times.count - 1
        while low <= high {
            let middle = (low + high) / 2
            if times[middle] == time { return middle }
            if times[middle] < time { low = middle + 1 } else { high = middle - 1 }
        }
        return nil
    }
}

extension AlignedPath {
    /// One coin's moves over every window of `horizonMilliseconds` whose end instant the path has.
    public struct HorizonMoves: Sendable {
        public var coin: String
        public var windows: Int
        /// The largest fall and rise, as fractions (−0.18 = a fall of 18 %).
        public var worstFall: Double
        public var largestRise: Double
        /// The moves that 1 % and 0.3 % of windows fell below: what a spot shock must span for 99 % and 99.7 %
        /// of windows.
        public var fall99: Double
        public var fall99point7: Double
        public var rise99: Double
        public var rise99point7: Double
    }

    /// Each coin's moves over the horizon (the spot shock MR1 and MR6 would have to span to cover them).
    /// - Complexity: O(steps log steps) per coin.
    public func horizonMoves(_ horizonMilliseconds: Int64) -> [HorizonMoves] {
        var ends: [(Int, Int)] = []
        var end = 0
        for start in times.indices {
            let target = UnixMillis(times[start].rawValue + horizonMilliseconds)
            while end < times.count, times[end] < target { end += 1 }
            if end < times.count, times[end] == target { ends.append((start, end)) }
        }
        return coins.indices.compactMap { position in
            guard !ends.isEmpty else { return nil }
            let moves = ends.map { closes[position][$0.1] / closes[position][$0.0] - 1 }.sorted()
            func quantile(_ share: Double) -> Double {
                moves[min(moves.count - 1, max(0, Int((Double(moves.count - 1) * share).rounded())))]
            }
            return HorizonMoves(
                coin: coins[position], windows: moves.count, worstFall: moves[0], largestRise: moves[moves.count - 1],
                fall99: quantile(0.01),
                fall99point7: quantile(0.003), rise99: quantile(0.99), rise99point7: quantile(0.997))
        }
    }
}
