import MarginEngine
import MarginTestSupport
import Testing

@testable import Sandbox

/// The public Position Builder's model choice (the web page's select): `paramsId` picks the model.
@Suite struct ModelChoiceTests {
    static let book = """
        {"paramsId": "derive-pm2", "simPos": [{"instId": "BTC-USDC-SWAP", "pos": "-5000"}, {"instId": "BTC-USD-260327-90000-C", "pos": "-100"}],
         "simAsset": [{"ccy": "USDC", "amt": "60000"}]}
        """

    @Test func publicBuilderMarginsUnderTheChosenModel() async throws {
        let sandbox = try SandboxHarness()
        let build = await sandbox.call("POST", "/api/v5/public/position-builder", body: Self.book, as: nil)
        #expect(build.code == "0", "\(build.message)")
        #expect(build.first?[member: "model"]?.scalarText == "derive-pm2")
        let expected = try DerivePM2PositionBuilder.build(
            try PositionBuilderRequest(bytes: Array(Self.book.utf8)), catalog: Fixtures.catalog, market: Fixtures.calmMarket,
            parameters: Fixtures.derivePM2Parameters)
        #expect(build.first?[member: "totalMmr"] == expected[member: "totalMmr"])

        let graph = await sandbox.call("POST", "/api/v5/public/position-builder-graph", body: Self.book, as: nil)
        #expect(graph.first?[member: "model"]?.scalarText == "derive-pm2" && graph.first?[member: "mmrData"]?.arrayItems.count == 200)
        let compare = await sandbox.call("POST", "/api/v5/public/position-builder-compare", body: Self.book, as: nil)
        #expect(compare.first?[member: "models"]?.arrayItems.compactMap { $0[member: "model"]?.scalarText } == ["okx-pm", "derive-pm2"])

        let okx = await sandbox.call(
            "POST", "/api/v5/public/position-builder",
            body: #"{"simPos": [{"instId": "BTC-USDC-SWAP", "pos": "-5000"}]}"#, as: nil)
        #expect(okx.first?[member: "model"]?.scalarText == "okx-pm")
    }

    @Test func anUnmappableInstrumentIsAParameterError() async throws {
        let sandbox = try SandboxHarness()
        let response = await sandbox.call(
            "POST", "/api/v5/public/position-builder",
            body: #"{"paramsId": "derive-pm2", "simPos": [{"instId": "BTC-USDT-SWAP", "pos": "1"}]}"#, as: nil)
        #expect(response.code == "51000" && response.message.contains("simPos[0].instId") && response.message.contains("BTC-USDT-SWAP"))
    }
}
