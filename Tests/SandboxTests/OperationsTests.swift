import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import MarginEngine
import MarginTestSupport
import MetricsTestKit
import NIOCore
import Testing

@testable import Sandbox

/// Operating the sandbox: who may read `/metrics`, and readiness while it starts (README, "Operating pm serve").
@Suite struct OperationsTests {
    @Test func metricsAreForLoopbackClientsUnlessOpenedAndNotFoundWhenOff() throws {
        let render: @Sendable () -> [UInt8] = { Array("pm_up 1\n".utf8) }
        let loopback = try SocketAddress(ipAddress: "127.0.0.1", port: 40_000)
        let loopback6 = try SocketAddress(ipAddress: "::1", port: 40_000)
        // An address value only (documentation range, RFC 5737): nothing is sent anywhere.
        let remote = try SocketAddress(ipAddress: "192.0.2.7", port: 40_000)
        #expect(Sandbox.metricsResponse(access: .loopback, remote: loopback, render: render).status == .ok)
        #expect(Sandbox.metricsResponse(access: .loopback, remote: loopback6, render: render).status == .ok)
        #expect(Sandbox.metricsResponse(access: .loopback, remote: remote, render: render).status == .forbidden)
        #expect(Sandbox.metricsResponse(access: .loopback, remote: nil, render: render).status == .forbidden)
        #expect(Sandbox.metricsResponse(access: .any, remote: remote, render: render).status == .ok)
        #expect(Sandbox.metricsResponse(access: .off, remote: loopback, render: render).status == .notFound)
        #expect(Sandbox.metricsResponse(access: .loopback, remote: loopback, render: nil).status == .notFound)
    }

    /// The server answers while the sandbox starts: `/live` 200, `/ready` and the API 503, then 200 once it has.
    @Test func readinessIs503UntilTheSandboxHasStarted() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("pm-ready-\(UUID().uuidString).sqlite").path
        let configuration = SandboxConfiguration(databasePath: path)
        let (release, released) = AsyncStream<Void>.makeStream()
        let metrics = SandboxMetrics(factory: TestMetrics())
        let app = Sandbox.application(
            configuration, metrics: metrics, renderMetrics: { Array("pm_up 1\n".utf8) }, logger: Logger(label: "test"),
            start: {
                for await _ in release { break }
                return try Sandbox.open(
                    configuration, catalog: Fixtures.catalog, market: Fixtures.calmMarket, parameters: Fixtures.parameters, metrics: metrics
                )
            })
        try await app.test(.live) { client in
            try await client.execute(uri: "/live", method: .get) { #expect($0.status == .ok) }
            try await client.execute(uri: "/ready", method: .get) { #expect($0.status == .serviceUnavailable) }
            try await client.execute(uri: "/api/v5/public/time", method: .get) { response in
                #expect(response.status == .serviceUnavailable)
                let json = try JSONParser.parse(Array(response.body.readableBytesView))
                #expect(json[member: "code"]?.scalarText == "50001")
            }
            // The test client connects to localhost: a loopback client.
            try await client.execute(uri: "/metrics", method: .get) { #expect($0.status == .ok) }
            released.yield()
            var ready = false
            for _ in 0..<200 where !ready {
                ready = try await client.execute(uri: "/ready", method: .get) { $0.status == .ok }
                if !ready { try await Task.sleep(for: .milliseconds(50)) }
            }
            #expect(ready)
            try await client.execute(uri: "/api/v5/public/time", method: .get) { #expect($0.status == .ok) }
        }
    }
}
