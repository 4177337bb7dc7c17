import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1

/// Closes a connection that has not completed its first request head within `timeout`, or whose first request
/// the HTTP decoder rejects.
///
/// Hummingbird's HTTP/1 + WebSocket channel installs its idle timeout and its error handling only once the
/// first request head has been read (the upgrade negotiation decides which pipeline follows), so a client that
/// connects and stays silent, sends a head a byte at a time, or sends bytes that are not HTTP would hold its
/// socket for ever. This wrapper adds a handler at the tail of the negotiating pipeline: it removes itself as
/// soon as anything is read past the negotiation (HTTP or WebSocket), and otherwise closes the connection
/// when the time is up or the decoder fails.
struct FirstRequestGuardedChannel<Inner: ServerChildChannel>: ServerChildChannel {
    let inner: Inner
    let timeout: TimeAmount

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Inner.Value> {
        let timeout = timeout
        return inner.setup(channel: channel, logger: logger).flatMapThrowing { value in
            try channel.pipeline.syncOperations.addHandler(FirstRequestGuard(timeout: timeout))
            return value
        }
    }

    func handle(value: Inner.Value, logger: Logger) async {
        await inner.handle(value: value, logger: logger)
    }
}

final class FirstRequestGuard: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny
    let timeout: TimeAmount
    private var timer: Scheduled<Void>?
    private var done = false

    init(timeout: TimeAmount) { self.timeout = timeout }

    func handlerAdded(context: ChannelHandlerContext) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: timeout) {
            let (guardHandler, context) = loopBound.value
            guardHandler.timer = nil
            if guardHandler.negotiating(context) { context.close(promise: nil) } else { guardHandler.finish(context) }
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(data)
        finish(context)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !done, negotiating(context) {
            context.close(promise: nil)
        } else {
            context.fireErrorCaught(error)
        }
    }

    /// Still reading the first request head: the HTTP decoder is there and the HTTP pipeline that follows the
    /// negotiation (with its own idle timeout) is not.
    private func negotiating(_ context: ChannelHandlerContext) -> Bool {
        let operations = context.pipeline.syncOperations
        let decoding = (try? operations.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)) != nil
        let serving = (try? operations.handler(type: HTTPConnectionStateHandler.self)) != nil
        return decoding && !serving
    }

    private func finish(_ context: ChannelHandlerContext) {
        guard !done else { return }
        done = true
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}
