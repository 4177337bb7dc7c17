import Foundation
import MarginEngine
import MarginTestSupport
import Testing

/// `pm backtest` through the real binary: what it refuses before running (one line on stderr naming the option
/// or file, status 1, nothing on stdout), and one small run's JSON.
@Suite struct BacktestCLITests {
    static let path =
        "timestamp_utc,open,high,low,close,volume\n"
        + (0..<4).map { "2024-01-01T0\($0):00:00Z,100,100,\(100 - 10 * $0),\(100 - 10 * $0),1" }.joined(separator: "\n") + "\n"

    static func refused(_ arguments: [String], fragment: String) throws {
        let result = try runPM(["backtest"] + arguments)
        #expect(result.status != 0, "\(result)")
        #expect(result.stdout.isEmpty, "\(result)")
        #expect(result.stderr.contains(fragment), "\(result)")
    }

    @Test func refusesWhatCannotRun() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = try directory.write("btc_usdt_test_1h.csv", Self.path)
        try Self.refused([], fragment: "--path")
        try Self.refused(["--path", path, "--population", path, "--accounts", "5"], fragment: "exclude each other")
        try Self.refused(["--path", path, "--horizon", "soon"], fragment: "--horizon soon")
        try Self.refused(["--path", path, "--vol", "wild"], fragment: "--vol wild")
        try Self.refused(["--path", path, "--modes", "pm,cross"], fragment: "cross")
        try Self.refused(["--path", path, "--params", "derive-pm2"], fragment: "okx-pm model only")
        try Self.refused(["--path", path, "--snapshot", "no-such-snapshot"], fragment: "--snapshot: no-such-snapshot: no such file")
        try Self.refused(
            ["--path", path, "--snapshot", "calm-2025-12-30", "--market", "calm-2025-12-30"], fragment: "old name of --snapshot")
        try Self.refused(["--path", path, "--horizon", "5h"], fragment: "longer than the path")
        let luna = try directory.write("luna_usdt_test_1h.csv", Self.path)
        try Self.refused(["--path", luna], fragment: "no LUNA-USD index")
        let bad = try directory.write(
            "eth_bad_1h.csv", Self.path.replacingOccurrences(of: "2024-01-01T02:00:00Z", with: "2024-01-01T01:00:00Z"))
        try Self.refused(["--path", bad], fragment: "\(bad):4:1: time 2024-01-01T01:00:00Z is not after")
    }

    @Test func printsTheReportAsJSON() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = try directory.write("btc_usdt_test_1h.csv", Self.path)
        let result = try runPM(["backtest", "--path", path, "--accounts", "12", "--seed", "4", "--modes", "pm", "--format", "json"])
        #expect(result.status == 0 && result.stderr.isEmpty, "\(result)")
        let report = try parseObject(result)
        #expect(report[member: "tool"] == .string("pm backtest"))
        let runs = report[member: "runs"]?.arrayItems ?? []
        #expect(runs.count == 1)
        #expect(runs.first?[member: "mode"] == .string("PM"))
        #expect(runs.first?[member: "accountsOpened"]?.scalarText == "12")
        #expect(report[member: "path"]?[member: "steps"]?.scalarText == "3")
        #expect(report[member: "volatility"]?[member: "rule"] == .string("linked:1"))
    }
}
