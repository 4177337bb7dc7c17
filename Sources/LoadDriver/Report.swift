import Foundation

/// The run's parameters, written to stdin by integration/load/loadgen.py, which also created the accounts and keys.
struct Config: Decodable {
    struct Account: Decodable {
        let index: Int
        let uid: String
        let apiKey: String
        let secretKey: String
        let passphrase: String
    }

    let host: String
    let port: Int
    let instId: String
    let price: String
    let size: String
    let startAt: Double
    let endAt: Double
    let grace: Double
    let clients: [Account]
    /// Orders per request: 1 uses `order` and `cancel-order`; 2…20 use `batch-orders` and
    /// `cancel-batch-orders` with that many orders each (absent: 1).
    let batch: Int?

    var ordersPerRequest: Int { batch ?? 1 }

    /// What is wrong with a config no run could use: refusing it up front keeps every later time and slot
    /// conversion in range.
    var problem: String? {
        let now = wallClock()
        guard abs(startAt - now) < 86_400, endAt >= startAt, endAt - startAt < 7 * 86_400 else {
            return "startAt \(startAt) and endAt \(endAt) are not a run starting within a day of now"
        }
        guard grace >= 0, grace < 86_400 else { return "grace \(grace) is not 0 s to a day" }
        guard (1...20).contains(ordersPerRequest) else { return "batch \(ordersPerRequest) is not 1…20 orders per request (OKX's limit)" }
        return (1...65_535).contains(port) ? nil : "port \(port) is not 1…65535"
    }
}

/// The two timed operations; the raw values are the keys loadgen.py reads.
enum Operation: String, Hashable {
    case place, cancel
}

/// Field for field what loadgen.py's Python `worker()` returns, so that its merge code reads either driver.
/// Only `series` differs: its Python keys are ("place", slot) tuples, which JSON cannot carry, so they are
/// written "place:<slot>".
struct Report: Encodable {
    struct ClientResult: Encodable {
        let uid: String
        let acked: [String]
        let cancelled: Int
    }

    var histograms: [String: [String: Int]] = [:]
    var maximum: [String: Double] = [:]
    var ok: [String: Int] = [:]
    var errors: [String: Int]
    var samples: [String: [String]]
    var series: [String: Int] = [:]
    var results: [String: ClientResult]
    var cpu: Double
}

/// Latency histogram resolution, as in loadgen.py: log-spaced buckets 0.5 % wide.
let bucketsPerE = 200.0
/// Width of a throughput-series slot in seconds, as in loadgen.py.
let seriesSeconds = 5.0

/// What the clients measure, kept in typed counters while the run lasts and written in the report's string
/// keyed shape at the end.
final class Recorder {
    private var histograms: [Operation: [Int: Int]] = [.place: [:], .cancel: [:]]
    private var maximum: [Operation: Double] = [.place: 0, .cancel: 0]
    private var series: [Operation: [Int: Int]] = [.place: [:], .cancel: [:]]
    private var errors: [String: Int] = [:]
    private var samples: [String: [String]] = [:]
    private let startAt: Double

    init(startAt: Double) {
        self.startAt = startAt
    }

    /// A successful operation: latency histogram, maximum and the throughput slot it finished in.
    func succeeded(_ operation: Operation, micros: Double) {
        histograms[operation, default: [:]][Int(log(max(micros, 1.0)) * bucketsPerE), default: 0] += 1
        maximum[operation] = max(maximum[operation] ?? 0, micros)
        series[operation, default: [:]][Int(((wallClock() - startAt) / seriesSeconds).rounded(.down)), default: 0] += 1
    }

    /// Counts an error under `key` and keeps its first three messages, at most 300 characters each.
    func error(_ key: String, _ message: String) {
        errors[key, default: 0] += 1
        if samples[key, default: []].count < 3 {
            samples[key, default: []].append(String(String.UnicodeScalarView(message.unicodeScalars.prefix(300))))
        }
    }

    func report(results: [String: Report.ClientResult], cpu: Double) -> Report {
        var report = Report(errors: errors, samples: samples, results: results, cpu: cpu)
        for operation in [Operation.place, .cancel] {
            let op = operation.rawValue
            let histogram = histograms[operation] ?? [:]
            report.histograms[op] = Dictionary(uniqueKeysWithValues: histogram.map { (String($0.key), $0.value) })
            report.maximum[op] = maximum[operation] ?? 0
            report.ok[op] = histogram.values.reduce(0, +)
            for (slot, count) in series[operation] ?? [:] { report.series["\(op):\(slot)"] = count }
        }
        return report
    }
}

/// Wall-clock Unix seconds: loadgen.py's start and end times are `time.time()` values.
func wallClock() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}

/// Monotonic nanoseconds for latencies (Python's `perf_counter_ns` reads the same clock).
func monotonicNanos() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}
