import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import MarginEngine
import MarginTestSupport
import Testing

@testable import Sandbox

/// The HTTP layer: envelopes for every status, body limits, and a server that keeps serving.
@Suite struct HTTPTests {
    static func application() throws -> (some ApplicationProtocol, Sandbox) {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("pm-http-\(UUID().uuidString).sqlite").path
        let configuration = SandboxConfiguration(databasePath: path)
        let sandbox = try Sandbox.open(
            configuration, catalog: Fixtures.catalog, market: Fixtures.calmMarket, parameters: Fixtures.parameters)
        return (sandbox.application(configuration, logger: Logger(label: "test")), sandbox)
    }

    @Test func everyAnswerIsAnOKXEnvelope() async throws {
        let (app, _) = try Self.application()
        try await app.test(.router) { client in
            try await client.execute(uri: "/api/v5/public/time", method: .get) { response in
                #expect(response.status == .ok)
                let json = try JSONParser.parse(Array(response.body.readableBytesView))
                #expect(json[member: "code"]?.scalarText == "0")
                #expect(response.headers[.contentType] == "application/json")
            }
            try await client.execute(uri: "/nowhere", method: .get) { response in
                #expect(response.status == .notFound)
                let json = try JSONParser.parse(Array(response.body.readableBytesView))
                #expect(json[member: "code"]?.scalarText == "404")
            }
            // An oversized body is refused with an envelope, not a dropped connection.
            let huge = ByteBuffer(repeating: UInt8(ascii: "x"), count: 2 << 20)
            try await client.execute(uri: "/api/v5/trade/order", method: .post, body: huge) { response in
                #expect(response.status.code == 413)
                let json = try JSONParser.parse(Array(response.body.readableBytesView))
                #expect(json[member: "code"]?.scalarText == "50006")
            }
            // Deeply nested JSON is a syntax error (after authentication fails first here: no headers).
            let nested = ByteBuffer(string: String(repeating: "[", count: 100_000))
            try await client.execute(uri: "/api/v5/trade/order", method: .post, body: nested) { response in
                #expect(response.status.code == 401)
            }
            // The server still serves.
            try await client.execute(uri: "/api/v5/market/ticker?instId=BTC-USDT-SWAP", method: .get) { response in
                let json = try JSONParser.parse(Array(response.body.readableBytesView))
                #expect(json[member: "data"]?.arrayItems.count == 1)
            }
        }
    }
}
