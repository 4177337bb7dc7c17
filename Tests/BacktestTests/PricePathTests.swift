import Foundation
import MarginEngine
import Testing

@testable import Backtest

/// The CSV reader of price paths: what it accepts, and that everything else is refused at its line and column.
struct PricePathTests {
    static let header = "timestamp_utc,open,high,low,close,volume"

    static func series(_ rows: [String], header: String = header) throws(PricePathError) -> PriceSeries {
        try PriceSeries(csv: ([header] + rows).joined(separator: "\n") + "\n", file: "test.csv", coin: "BTC")
    }

    @Test func readsTimesAndClosesOfAFile() throws {
        let series = try Self.series([
            "2020-03-12T00:00:00Z,100,110,90,105,1",
            "2020-03-12T01:00:00Z,105,106,50,60,2",
            "2020-03-12T02:00:00.500Z,60,70,55,65,3",
            "2020-03-12T03:00:00Z,65,66,64,66,4",
        ])
        #expect(series.times.map(\.rawValue) == [1_583_971_200_000, 1_583_974_800_000, 1_583_978_400_500, 1_583_982_000_000])
        #expect(series.closes == [105, 60, 65, 66])
        #expect(series.lows == [90, 50, 55, 64])
        #expect(series.highs == [110, 106, 70, 66])
        #expect(series.medianStepMilliseconds == 3_600_000)
    }

    @Test func acceptsCRLFAndAHeaderWithOnlyTimeAndClose() throws {
        let text = "close,timestamp_utc\r\n1.5,2023-03-11T07:15:00Z\r\n2.5,2023-03-11T07:16:00Z\r\n"
        let series = try PriceSeries(csv: text, file: "usdc.csv", coin: "USDC")
        #expect(series.closes == [1.5, 2.5])
        #expect(series.lows.isEmpty)
    }

    /// (rows after the header, expected line, expected column, a fragment of the message).
    static let refusals: [([String], Int, Int, String)] = [
        (["2020-03-12T00:00:00Z,1,2,1,abc,1", "2020-03-12T01:00:00Z,1,2,1,1,1"], 2, 5, "close \"abc\""),
        (["2020-03-12T00:00:00Z,1,2,1,1,1", "2020-03-12T01:00:00Z,1,2,1,-3,1"], 3, 5, "close \"-3\""),
        (["2020-03-12T00:00:00Z,1,2,1,1,1", "2020-03-12T01:00:00Z,1,2,1,nan,1"], 3, 5, "finite"),
        (["2020-03-12 00:00:00,1,2,1,1,1", "2020-03-12T01:00:00Z,1,2,1,1,1"], 2, 1, "ISO-8601"),
        (["2020-02-30T00:00:00Z,1,2,1,1,1", "2020-03-12T01:00:00Z,1,2,1,1,1"], 2, 1, "ISO-8601"),
        (["2020-03-12T01:00:00Z,1,2,1,1,1", "2020-03-12T01:00:00Z,1,2,1,1,1"], 3, 1, "not after"),
        (["2020-03-12T00:00:00Z,1,2,1,1,1", "2020-03-12T01:00:00Z,1,2,1,1"], 3, 6, "5 cells"),
        (["2020-03-12T00:00:00Z,1,2,1,1,1", "2020-03-12T01:00:00Z,1,2,1,1,1,7"], 3, 7, "7 cells"),
        (["2020-03-12T00:00:00Z,1,1,2,1,1", "2020-03-12T01:00:00Z,1,2,1,1,1"], 2, 3, "high 1.0 is below low 2.0"),
        (["2020-03-12T00:00:00Z,1,2,1,3,1", "2020-03-12T01:00:00Z,1,2,1,1,1"], 2, 5, "above the bar's high"),
        (["2020-03-12T00:00:00Z,0.5,2,1,1,1", "2020-03-12T01:00:00Z,1,2,1,1,1"], 2, 2, "below the bar's low"),
        (["2020-03-12T00:00:00Z,1,2,1,1,1", "", "2020-03-12T01:00:00Z,1,2,1,1,1"], 3, 0, "empty line"),
        (["2020-03-12T00:00:00Z,1,2,1,1,1"], 0, 0, "at least two rows"),
    ]

    @Test(arguments: refusals)
    func refusesAMalformedRowAtItsLineAndColumn(rows: [String], line: Int, column: Int, fragment: String) {
        do {
            _ = try Self.series(rows)
            Issue.record("accepted \(rows)")
        } catch {
            #expect(error.line == line, "\(error)")
            #expect(error.column == column, "\(error)")
            #expect(error.message.contains(fragment), "\(error)")
            #expect(error.description.hasPrefix("test.csv"))
        }
    }

    @Test func refusesAHeaderWithoutTimeOrClose() {
        #expect(throws: PricePathError.self) { try Self.series(["2020-03-12T00:00:00Z,1"], header: "timestamp_utc,price") }
        do {
            _ = try Self.series(["x,1"], header: "time,close")
        } catch {
            #expect(error.line == 1)
            #expect(error.message.contains("timestamp_utc"))
        }
    }

    @Test func takesTheCoinFromTheFileName() throws {
        #expect(try PriceSeries.coin(fromFileName: "data/crash_paths/x/btc_usdt_binance_spot_1h.csv") == "BTC")
        #expect(try PriceSeries.coin(fromFileName: "usdc_usd_kraken_1m.csv") == "USDC")
        #expect(throws: PricePathError.self) { try PriceSeries.coin(fromFileName: "prices.csv") }
    }

    @Test func alignsCoinsOnTheInstantsTheyShareAndCountsWhatItDrops() throws {
        let btc = try PriceSeries(
            csv:
                "timestamp_utc,close\n2020-01-01T00:00:00Z,100\n2020-01-01T01:00:00Z,90\n2020-01-01T02:00:00Z,80\n2020-01-01T03:00:00Z,85\n",
            file: "b.csv", coin: "BTC")
        let eth = try PriceSeries(
            csv: "timestamp_utc,close\n2020-01-01T00:00:00Z,10\n2020-01-01T02:00:00Z,7\n2020-01-01T03:00:00Z,8\n2020-01-01T04:00:00Z,9\n",
            file: "e.csv", coin: "ETH")
        let path = try AlignedPath([eth, btc])
        #expect(path.coins == ["BTC", "ETH"])
        #expect(path.times.count == 3)
        #expect(path.sources.map(\.droppedRows) == [1, 1])
        let factors = path.factors(at: 1)
        #expect(factors["BTC"] == 0.8)
        #expect(factors["ETH"] == 0.7)
        #expect(path.factors(from: 1, to: 2)["BTC"] == 85.0 / 80.0)
        #expect(path.index(of: UnixMillis(path.times[2].rawValue)) == 2)
        #expect(path.index(of: UnixMillis(path.times[0].rawValue + 3_600_000)) == nil)
    }

    @Test func refusesFilesWithoutCommonInstantsAndTwoFilesForOneCoin() throws {
        let early = try PriceSeries(
            csv: "timestamp_utc,close\n2020-01-01T00:00:00Z,1\n2020-01-01T01:00:00Z,2\n", file: "a.csv", coin: "BTC")
        let late = try PriceSeries(csv: "timestamp_utc,close\n2021-01-01T00:00:00Z,1\n2021-01-01T01:00:00Z,2\n", file: "b.csv", coin: "ETH")
        #expect(throws: PricePathError.self) { try AlignedPath([early, late]) }
        #expect(throws: PricePathError.self) { try AlignedPath([early, early]) }
    }

    /// Every path the project ships parses under the strict rules (they are the data the README's figures use).
    @Test func everyShippedPathParses() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("data")
        var checked = 0
        for directory in ["crash_paths", "long_series"] {
            let base = root.appendingPathComponent(directory)
            guard let files = FileManager.default.enumerator(atPath: base.path) else { continue }
            for case let name as String in files where name.hasSuffix(".csv") && !name.hasSuffix("MANIFEST.csv") {
                let series = try PriceSeries(contentsOf: base.appendingPathComponent(name).path)
                #expect(series.times.count > 100, "\(name)")
                checked += 1
            }
        }
        #expect(checked == 14)
    }
}
