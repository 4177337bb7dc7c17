import Foundation
import Logging
import Sandbox
import Testing

/// The server's log handler keeps metadata unformatted until a message passes the level, then writes it like
/// swift-log's `StreamLogHandler`, an explicit value winning over the logger's.
@Suite struct LazyMetadataLogHandlerTests {
    final class Capture: TextOutputStream, @unchecked Sendable {
        private let lock = NSLock()
        private var text = ""
        func write(_ string: String) { lock.withLock { text += string } }
        var written: String { lock.withLock { text } }
    }

    @Test func writesMetadataOnlyWithMessagesThatPassTheLevel() {
        let capture = Capture()
        var logger = Logger(label: "pm.test") { LazyMetadataLogHandler(label: $0, stream: capture) }
        logger.logLevel = .warning
        logger[metadataKey: "hb.request.id"] = "r1"
        logger[metadataKey: "side"] = "buy"
        logger.info("below the level")
        #expect(capture.written.isEmpty)
        logger.warning("refused", metadata: ["side": "sell"])
        let line = capture.written
        #expect(line.contains("warning pm.test:") && line.contains("refused"), "\(line)")
        #expect(line.contains("hb.request.id=r1") && line.contains("side=sell") && !line.contains("side=buy"), "\(line)")
        #expect(logger[metadataKey: "side"] == "buy")
    }
}
