/// Everything the engine rejects, each case naming the offending field, instrument or value.
///
/// The engine validates all outside input (requests, market snapshots, parameter sets, catalogs) and
/// answers bad input with one of these instead of a partial result. ``description`` is one line, meant to
/// be shown to the user as is.
public enum EngineError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A document is not valid JSON. `document` names it (`request`, `market`, `params`, `catalog`).
    case malformedDocument(document: String, detail: String)
    /// A required field is missing, `null` or empty.
    case missingField(path: String)
    /// A field holds a value the engine cannot accept.
    case invalidField(path: String, value: String, reason: String)
    /// An instrument id that is malformed or not in the catalog.
    case unknownInstrument(path: String, instrumentID: String)
    /// An instrument that expired at or before the market snapshot's time.
    case expiredInstrument(path: String, instrumentID: String, expiry: UnixMillis, marketTime: UnixMillis)
    /// The market snapshot lacks a price the request needs.
    case missingMarketData(name: String, detail: String)
    /// A market price or volatility the engine cannot use (non-positive, outside no-arbitrage bounds, …).
    case badMarketData(name: String, detail: String)
    /// More positions than the engine accepts in one request.
    case tooManyPositions(path: String, count: Int, limit: Int)
    /// A feature the request asks for that this build does not provide.
    case unsupported(path: String, value: String, reason: String)

    public var description: String {
        switch self {
        case .malformedDocument(let document, let detail):
            return "\(document): \(detail)"
        case .missingField(let path):
            return "\(path): required field is missing or empty"
        case .invalidField(let path, let value, let reason):
            return value.isEmpty ? "\(path) \(reason)" : "\(path): \(value) \(reason)"
        case .unknownInstrument(let path, let instrumentID):
            return "\(path): unknown instrument \"\(instrumentID)\""
        case .expiredInstrument(let path, let instrumentID, let expiry, let marketTime):
            return "\(path): instrument \"\(instrumentID)\" expired at \(expiry.iso8601) (market time \(marketTime.iso8601))"
        case .missingMarketData(let name, let detail):
            return "market: \(detail) for \(name)"
        case .badMarketData(let name, let detail):
            return "market: \(name): \(detail)"
        case .tooManyPositions(let path, let count, let limit):
            return "\(path): \(count) positions, more than the limit of \(limit)"
        case .unsupported(let path, let value, let reason):
            return "\(path): \(value) \(reason)"
        }
    }
}
