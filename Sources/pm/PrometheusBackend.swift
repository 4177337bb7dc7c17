import Metrics
import Prometheus
import Sandbox

/// `pm serve`'s metrics backend: swift-prometheus behind the swift-metrics API that the sandbox records through. Only
/// the executable links Prometheus; the sandbox library gets the exposition text as a renderer (README, Layout).
enum PrometheusBackend {
    /// Bootstraps swift-metrics with a Prometheus registry (once per process: call it before anything makes a metric)
    /// and returns the renderer of `GET /metrics` (the Prometheus text exposition format).
    static func bootstrap() -> @Sendable () -> [UInt8] {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        // Requests take 0.1–10 ms on loopback: buckets from 0.25 ms (the library's default starts at 5 ms).
        factory.defaultDurationHistogramBuckets = [
            .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
            .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
            .milliseconds(2500), .seconds(5), .seconds(10),
        ]
        // A tick re-margins up to a million accounts: up to a minute.
        factory.durationHistogramBuckets[SandboxMetrics.Name.tickDuration] = [
            .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(50), .milliseconds(100), .milliseconds(500), .seconds(1),
            .seconds(5), .seconds(10), .seconds(30), .seconds(60),
        ]
        factory.valueHistogramBuckets[SandboxMetrics.Name.groupCommitSubmissions] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
        factory.valueHistogramBuckets[SandboxMetrics.Name.tickRemarginedAccounts] = [0, 1, 10, 100, 1_000, 10_000, 100_000, 1_000_000]
        MetricsSystem.bootstrap(factory)
        return {
            var buffer: [UInt8] = []
            registry.emit(into: &buffer)
            return buffer
        }
    }
}
