import Foundation
import Hummingbird
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOWebSocket

/// Connects OKX WebSocket sessions to Hummingbird's WebSocket upgrade.
///
/// Each connection has a bounded queue of exchange events (`capacity`). A subscriber that keeps up loses
/// nothing: events are rendered and written in the order the exchange committed them. One that falls
/// `capacity` events behind is disconnected cleanly (close code 4008, "slow consumer") rather than holding
/// memory without bound.
package enum WebSocketTransport {
    package static let defaultCapacity = 10_000

    /// The session endpoint for an upgrade path (`/ws/v5/public`, `/private`, `/business`; query ignored).
    package static func endpoint(forPath target: String) -> WebSocketSession.Endpoint? {
        let path = target.split(separator: "?", maxSplits: 1).first.map(String.init) ?? target
        switch path {
        case "/ws/v5/public": return .publicChannels
        case "/ws/v5/private": return .privateChannels
        case "/ws/v5/business": return .business
        default: return nil
        }
    }

    /// Serves one upgraded connection until either side closes it; logins go through `api`'s authenticator.
    static func serve(
        _ inbound: WebSocketInboundStream, _ outbound: WebSocketOutboundWriter, endpoint: WebSocketSession.Endpoint, api: SandboxAPI,
        capacity: Int
    ) async throws {
        let session = WebSocketSession(api: api, endpoint: endpoint)
        let exchange = api.exchange
        exchange.metrics.webSocketConnections(endpoint: endpoint.rawValue, change: 1)
        defer { exchange.metrics.webSocketConnections(endpoint: endpoint.rawValue, change: -1) }
        let (events, continuation) = AsyncStream<ExchangeEvent>.makeStream(bufferingPolicy: .bufferingOldest(capacity))
        let overflow = OverflowFlag()
        let listener = await exchange.addListener { event in
            if case .dropped = continuation.yield(event) {
                overflow.set()
                continuation.finish()
            }
        }
        let writer = SerialWriter(outbound)
        defer { continuation.finish() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for await event in events {
                    for frame in await session.render(event) { try await writer.write(frame) }
                }
                if overflow.isSet {
                    try await writer.close(code: .unknown(4008), reason: "slow consumer: more than \(capacity) updates pending")
                }
            }
            group.addTask {
                for try await message in inbound.messages(maxSize: WebSocketSession.maximumFrame) {
                    switch message {
                    case .text(let text):
                        for frame in await session.receive(text) { try await writer.write(frame) }
                    case .binary:
                        try await writer.write(
                            #"{"event":"error","code":"60012","msg":"Invalid request: binary frames are not supported"}"#)
                    }
                }
            }
            // Whichever side ends first ends the connection.
            _ = try await group.next()
            group.cancelAll()
        }
        await exchange.removeListener(listener)
    }
}

/// Serialises writes from the reader and the pusher.
actor SerialWriter {
    let outbound: WebSocketOutboundWriter
    init(_ outbound: WebSocketOutboundWriter) { self.outbound = outbound }
    func write(_ text: String) async throws { try await outbound.write(.text(text)) }
    func close(code: WebSocketErrorCode, reason: String) async throws { try await outbound.close(code, reason: reason) }
}

/// A flag set by the event listener when the queue overflows.
final class OverflowFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}
