import Logging

/// Swift-log's `StreamLogHandler`, with metadata kept as a plain dictionary until a message is written.
///
/// Hummingbird gives every request's logger a `hb.request.id`; `StreamLogHandler` formats its whole metadata
/// whenever it is set, so a server logging nothing at its level still paid ~2.5 % of its CPU per request for text
/// it never wrote (seen with perf under the load test). Here setting metadata only stores it, and the inner
/// handler formats it with the message when one passes the level.
package struct LazyMetadataLogHandler: LogHandler {
    private var inner: StreamLogHandler
    package var metadata: Logger.Metadata = [:]
    package var logLevel: Logger.Level {
        get { inner.logLevel }
        set { inner.logLevel = newValue }
    }
    package var metadataProvider: Logger.MetadataProvider? {
        get { inner.metadataProvider }
        set { inner.metadataProvider = newValue }
    }

    /// Writes to standard error.
    package init(label: String) { inner = StreamLogHandler.standardError(label: label) }

    /// Writes to `stream` (tests).
    package init(label: String, stream: any TextOutputStream & Sendable) { inner = StreamLogHandler(label: label, stream: stream) }

    package subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    package func log(event: LogEvent) {
        var event = event
        if !metadata.isEmpty { event.metadata = metadata.merging(event.metadata ?? [:]) { _, explicit in explicit } }
        inner.log(event: event)
    }
}
