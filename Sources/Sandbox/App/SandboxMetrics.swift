import Metrics
import NIOConcurrencyHelpers

/// What `pm serve` measures, recorded through the swift-metrics API. The library chooses no backend: the
/// executable bootstraps one (Prometheus) and hands the sandbox a renderer for `GET /metrics`
/// (``SandboxServer``); without one (the tests, the benchmark) every record goes to swift-metrics' no-op handler.
///
/// Names and labels follow Prometheus's conventions (`_total` counters, `_seconds` durations); README's
/// "Operating pm serve" lists them. Labels take values from small closed sets only (route templates, HTTP
/// statuses, OKX codes, planner steps, currencies), never from raw paths or query strings.
///
/// Handles with fixed labels are made once; those keyed by a label value are made on first use and kept (making
/// one asks the backend: a lock and a lookup), behind one lock per kind.
public final class SandboxMetrics: Sendable {
    /// The metric names (the executable sets histogram buckets by name).
    package enum Name {
        /// Counter: HTTP requests answered, by `route` (the OKX path or another template, `other` for anything
        /// unknown), `method` and `status`.
        package static let httpRequests = "pm_http_requests_total"
        /// Histogram (seconds): time to answer an HTTP request, by `route` and `method`.
        package static let httpDuration = "pm_http_request_duration_seconds"
        /// Counter: orders placed (`order`, `batch-orders`: one per item), by `result` (accepted, refused) and
        /// `code` (the item's `sCode`: 0, or the OKX error code).
        package static let orders = "pm_orders_total"
        /// Counter: cancellations, like ``orders``.
        package static let cancels = "pm_cancels_total"
        /// Histogram: trading submissions (requests) processed together by one group commit.
        package static let groupCommitSubmissions = "pm_group_commit_submissions"
        /// Histogram (seconds): the group commit's database transaction.
        package static let groupCommitDuration = "pm_group_commit_duration_seconds"
        /// Histogram (seconds): one market tick (interest, funding, expiry, re-margining, liquidation).
        package static let tickDuration = "pm_tick_duration_seconds"
        /// Histogram: accounts re-margined by one tick.
        package static let tickRemarginedAccounts = "pm_tick_remargined_accounts"
        /// Counter: accounts liquidated, by `mode` (portfolio, classic).
        package static let liquidatedAccounts = "pm_liquidated_accounts_total"
        /// Counter: liquidation steps executed, by `step`: the planner's (CANCEL, DDH1, DDH2, BASIS, GENERAL,
        /// COLLATERAL, DEFICIT) for portfolio-margin accounts; CLASSIC (one per position closed) and DEFICIT for
        /// classic ones.
        package static let liquidationSteps = "pm_liquidation_steps_total"
        /// Gauge: the insurance fund's balance, by `ccy`.
        package static let insuranceFund = "pm_insurance_fund_balance"
        /// Gauge: open WebSocket connections, by `endpoint` (public, private, business).
        package static let webSocketConnections = "pm_websocket_connections"
        /// Counter: requests refused by the rate limit (50011), by `scope` (public: per client, private: per key).
        package static let rateLimitRefusals = "pm_rate_limit_refusals_total"
    }

    let factory: any MetricsFactory
    private let counters = NIOLockedValueBox([String: Counter]())
    private let timers = NIOLockedValueBox([String: Timer]())
    private let gauges = NIOLockedValueBox([String: Gauge]())
    private let meters = NIOLockedValueBox([String: Meter]())
    private let groupSubmissions: Recorder
    private let groupCommit: Timer
    private let tickDuration: Timer
    private let tickRemargined: Recorder

    /// Metrics recorded through `factory`, by default the one `MetricsSystem.bootstrap` installed (read now:
    /// bootstrap first).
    public init(factory: any MetricsFactory = MetricsSystem.factory) {
        self.factory = factory
        groupSubmissions = Recorder(label: Name.groupCommitSubmissions, dimensions: [], aggregate: true, factory: factory)
        groupCommit = Timer(label: Name.groupCommitDuration, dimensions: [], factory: factory)
        tickDuration = Timer(label: Name.tickDuration, dimensions: [], factory: factory)
        tickRemargined = Recorder(label: Name.tickRemarginedAccounts, dimensions: [], aggregate: true, factory: factory)
    }

    private static func key(_ name: String, _ dimensions: [(String, String)]) -> String {
        dimensions.reduce(name) { $0 + "\u{1}" + $1.1 }
    }

    private func counter(_ name: String, _ dimensions: [(String, String)]) -> Counter {
        let key = Self.key(name, dimensions)
        return counters.withLockedValue { cache in
            if let counter = cache[key] { return counter }
            let counter = Counter(label: name, dimensions: dimensions, factory: factory)
            cache[key] = counter
            return counter
        }
    }

    private func timer(_ name: String, _ dimensions: [(String, String)]) -> Timer {
        let key = Self.key(name, dimensions)
        return timers.withLockedValue { cache in
            if let timer = cache[key] { return timer }
            let timer = Timer(label: name, dimensions: dimensions, factory: factory)
            cache[key] = timer
            return timer
        }
    }

    /// One HTTP request answered.
    func request(route: String, method: String, status: Int, duration: Duration) {
        counter(Name.httpRequests, [("route", route), ("method", method), ("status", String(status))]).increment()
        timer(Name.httpDuration, [("route", route), ("method", method)]).record(duration: duration)
    }

    /// One order item's outcome.
    func order(code: String) {
        counter(Name.orders, [("result", code == "0" ? "accepted" : "refused"), ("code", code)]).increment()
    }

    /// One cancellation item's outcome.
    func cancel(code: String) {
        counter(Name.cancels, [("result", code == "0" ? "accepted" : "refused"), ("code", code)]).increment()
    }

    /// A group of trading submissions processed together.
    func groupCommit(submissions: Int) { groupSubmissions.record(submissions) }

    /// The group commit's transaction took `duration`.
    func groupCommit(duration: Duration) { groupCommit.record(duration: duration) }

    /// One tick applied.
    func tick(duration: Duration, remarginedAccounts: Int) {
        tickDuration.record(duration: duration)
        tickRemargined.record(remarginedAccounts)
    }

    /// Accounts liquidated and the steps executed, once committed.
    func liquidations(accounts: [String: Int], steps: [String: Int]) {
        for (mode, count) in accounts.sorted(by: { $0.key < $1.key }) {
            counter(Name.liquidatedAccounts, [("mode", mode)]).increment(by: count)
        }
        for (step, count) in steps.sorted(by: { $0.key < $1.key }) {
            counter(Name.liquidationSteps, [("step", step)]).increment(by: count)
        }
    }

    /// The insurance fund's balance in `currency` after a commit (a `Double` for the gauge; the ledger keeps it exact).
    func insuranceFund(_ currency: String, balance: Double) {
        let key = Self.key(Name.insuranceFund, [("ccy", currency)])
        let gauge = gauges.withLockedValue { cache in
            if let gauge = cache[key] { return gauge }
            let gauge = Gauge(label: Name.insuranceFund, dimensions: [("ccy", currency)], factory: factory)
            cache[key] = gauge
            return gauge
        }
        gauge.record(balance)
    }

    /// A WebSocket connection opened (`+1`) or closed (`-1`).
    func webSocketConnections(endpoint: String, change: Int) {
        let key = Self.key(Name.webSocketConnections, [("endpoint", endpoint)])
        let meter = meters.withLockedValue { cache in
            if let meter = cache[key] { return meter }
            let meter = Meter(label: Name.webSocketConnections, dimensions: [("endpoint", endpoint)], factory: factory)
            cache[key] = meter
            return meter
        }
        if change >= 0 { meter.increment(by: Double(change)) } else { meter.decrement(by: Double(-change)) }
    }

    /// A request refused by the rate limit.
    func rateLimitRefused(scope: String) {
        counter(Name.rateLimitRefusals, [("scope", scope)]).increment()
    }
}
