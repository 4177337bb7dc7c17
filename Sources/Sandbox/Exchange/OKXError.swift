import MarginEngine

/// Every error code the sandbox answers with: one table, OKX's codes where OKX documents one for the case
/// (docs/okx-client-compat.md), each with the HTTP status it is sent with unless a caller says otherwise.
public enum OKXErrorCode: String, Sendable, CaseIterable {
    /// Our code for a failure inside the sandbox (a commit that did not happen, an unexpected error); OKX: "Body for POST request cannot be empty" is the documented text, clients treat it as a bad request and do not retry.
    case internalError = "50000"
    /// Service temporarily unavailable (the sandbox is starting).
    case serviceUnavailable = "50001"
    /// Endpoint request timeout: the request may or may not have been carried out (a forwarded write with no answer).
    case requestTimeout = "50004"
    /// JSON syntax error (an unreadable body).
    case jsonSyntax = "50002"
    /// Request body too large (ours: OKX answers with HTTP 413 only).
    case bodyTooLarge = "50006"
    /// Rate limit reached.
    case rateLimited = "50011"
    /// A required parameter is empty.
    case parameterEmpty = "50014"
    /// Timestamp request expired.
    case timestampExpired = "50102"
    /// Header OK-ACCESS-KEY cannot be empty.
    case missingKey = "50103"
    /// Header OK-ACCESS-PASSPHRASE cannot be empty.
    case missingPassphrase = "50104"
    /// Header OK-ACCESS-PASSPHRASE incorrect.
    case wrongPassphrase = "50105"
    /// Header OK-ACCESS-SIGN cannot be empty.
    case missingSignature = "50106"
    /// Header OK-ACCESS-TIMESTAMP cannot be empty.
    case missingTimestamp = "50107"
    /// Invalid OK-ACCESS-KEY.
    case invalidKey = "50111"
    /// Invalid OK-ACCESS-TIMESTAMP.
    case invalidTimestamp = "50112"
    /// Invalid sign (also: a replayed request, the admin token).
    case invalidSignature = "50113"
    /// The key (or the caller's address) lacks the permission.
    case noPermission = "50120"
    /// Parameter error.
    case parameterError = "51000"
    /// Instrument ID (or index) does not exist.
    case unknownInstrument = "51001"
    /// Order failed: insufficient balance or margin.
    case insufficientMargin = "51008"
    /// The account already placed an order with this clOrdId.
    case duplicateClientOrderID = "51016"
    /// A post-only order would take liquidity.
    case postOnlyWouldTake = "51019"
    /// Order amount below the minimum.
    case belowMinimumSize = "51020"
    /// The account does not meet the requirements of the account level asked for.
    case levelSwitchRefused = "51070"
    /// Order quantity is not a multiple of the lot size.
    case notLotMultiple = "51121"
    /// A reduce-only order would not reduce the position.
    case reduceOnlyDoesNotReduce = "51169"
    /// Cancellation failed: the order does not exist or is not open.
    case cancelFailed = "51400"
    /// Order does not exist.
    case orderNotFound = "51603"
    /// No such route (HTTP).
    case notFound = "404"
    /// The route exists with another method (HTTP).
    case methodNotAllowed = "405"

    /// The HTTP status an error with this code is answered with by default.
    package var httpStatus: Int {
        switch self {
        case .internalError: 500
        case .serviceUnavailable: 503
        case .requestTimeout: 504
        case .jsonSyntax: 400
        case .bodyTooLarge: 413
        case .rateLimited: 429
        case .parameterEmpty: 400
        case .timestampExpired: 401
        case .missingKey: 401
        case .missingPassphrase: 401
        case .wrongPassphrase: 401
        case .missingSignature: 401
        case .missingTimestamp: 401
        case .invalidKey: 401
        case .invalidTimestamp: 401
        case .invalidSignature: 401
        case .noPermission: 401
        case .parameterError: 400
        case .unknownInstrument: 200
        case .insufficientMargin: 200
        case .duplicateClientOrderID: 200
        case .postOnlyWouldTake: 200
        case .belowMinimumSize: 200
        case .levelSwitchRefused: 200
        case .notLotMultiple: 200
        case .reduceOnlyDoesNotReduce: 200
        case .cancelFailed: 200
        case .orderNotFound: 200
        case .notFound: 404
        case .methodNotAllowed: 405
        }
    }
}

/// An error answered to an OKX client: its code (`code` in the envelope, `sCode` in a batch item) and message.
public struct OKXError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: OKXErrorCode
    package var message: String
    public var httpStatus: Int

    package init(_ code: OKXErrorCode, _ message: String, httpStatus: Int? = nil) {
        self.code = code
        self.message = message
        self.httpStatus = httpStatus ?? code.httpStatus
    }

    public var description: String { "\(code.rawValue): \(message)" }

    static func parameter(_ message: String) -> OKXError { OKXError(.parameterError, "Parameter error: \(message)") }
    static func empty(_ field: String) -> OKXError { OKXError(.parameterEmpty, "Parameter \(field) cannot be empty") }
    static func unknownInstrument(_ id: String) -> OKXError { OKXError(.unknownInstrument, "Instrument ID does not exist: \(id)") }
    static func insufficient(_ message: String) -> OKXError {
        OKXError(.insufficientMargin, "Order failed. Insufficient balance or margin: \(message)")
    }
    static func orderNotFound(_ id: String, code: OKXErrorCode = .orderNotFound) -> OKXError {
        OKXError(code, "Order does not exist: \(id)")
    }

    /// Maps an engine error to OKX's parameter error, keeping the engine's message (it names the field).
    static func engine(_ error: EngineError) -> OKXError {
        switch error {
        case .unknownInstrument(let path, let id):
            OKXError(
                .unknownInstrument, path.isEmpty ? "Instrument ID does not exist: \(id)" : "Instrument ID does not exist: \(id) (\(path))")
        case .missingField(let path): OKXError(.parameterEmpty, "Parameter \(path) cannot be empty")
        default: OKXError(.parameterError, "Parameter error: \(error.description)")
        }
    }
}
