/// The listed instruments, loaded from a document in the schema of OKX `GET /api/v5/public/instruments`.
///
/// The document is either that endpoint's whole response (`{"code":"0","msg":"","data":[...]}`) or its
/// `data` array. Every entry is checked against its id: `instType`, `uly`, `settleCcy`, `ctType`,
/// `optType`, `stk` and `expTime` must agree with what the id says, and `ctVal`, `ctMult`, `tickSz`,
/// `lotSz`, `minSz` must be positive numbers. An id is never guessed: looking up an id that is not in the
/// catalog is an error naming it.
public struct InstrumentCatalog: Sendable {
    private let instrumentsByID: [String: Instrument]
    /// All instruments, sorted by id.
    public let instruments: [Instrument]

    public init(instruments: [Instrument]) {
        self.instruments = instruments.sorted { $0.id < $1.id }
        self.instrumentsByID = Dictionary(instruments.map { ($0.id.rawValue, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// Parses and validates a catalog document.
    public init(json: JSONValue) throws(EngineError) {
        let root = FieldReader(json, path: "catalog")
        let list: FieldReader
        if case .array = json {
            list = root
        } else {
            if let code = try root.optional("code"), code.value != .string("0"), code.value != .number("0") {
                throw .invalidField(path: "catalog.code", value: code.value.excerpt, reason: "is not a success code (\"0\")")
            }
            list = try root.required("data")
        }
        var parsed: [Instrument] = []
        var seen = Set<String>()
        for entry in try list.elements() {
            let instrument = try Self.parseEntry(entry)
            guard seen.insert(instrument.id.rawValue).inserted else {
                throw .invalidField(
                    path: "\(entry.path).instId", value: "\"\(instrument.id.rawValue)\"", reason: "appears twice in the catalog")
            }
            parsed.append(instrument)
        }
        self.init(instruments: parsed)
    }

    /// Parses and validates catalog bytes.
    public init(bytes: some Sequence<UInt8>) throws(EngineError) {
        let json: JSONValue
        do { json = try JSONParser.parse(bytes) } catch { throw .malformedDocument(document: "catalog", detail: error.description) }
        try self.init(json: json)
    }

    /// The instrument with this id; `path` names the request field for the error message.
    public func instrument(_ id: String, path: String) throws(EngineError) -> Instrument {
        guard let instrument = instrumentsByID[id] else { throw .unknownInstrument(path: path, instrumentID: id) }
        return instrument
    }

    /// The instrument with this id, or nil.
    public func instrument(_ id: String) -> Instrument? { instrumentsByID[id] }

    public var count: Int { instruments.count }

    private static func parseEntry(_ entry: FieldReader) throws(EngineError) -> Instrument {
        let idText = try entry.required("instId").string()
        guard let id = InstrumentID(idText) else { throw .unknownInstrument(path: "\(entry.path).instId", instrumentID: idText) }
        let instType = try entry.required("instType").oneOf(InstrumentKind.allCases.map(\.rawValue))
        guard instType == id.kind.rawValue else {
            throw .invalidField(path: "\(entry.path).instType", value: "\"\(instType)\"", reason: "does not match \(idText)")
        }
        func positive(_ key: String) throws(EngineError) -> Double { try entry.required(key).positiveDouble() }
        func check(_ key: String, _ expected: String) throws(EngineError) {
            guard let field = try entry.optional(key) else { return }
            let actual = try field.string()
            guard actual == expected else {
                throw .invalidField(path: field.path, value: "\"\(actual)\"", reason: "does not match \(idText) (expected \"\(expected)\")")
            }
        }
        guard case .object(let object) = entry.value else {
            throw .invalidField(path: entry.path, value: entry.value.excerpt, reason: "must be an object")
        }
        let tickSize = try positive("tickSz")
        let lotSize = try positive("lotSz")
        let minimumSize = try positive("minSz")
        if id.kind == .spot {
            try check("baseCcy", id.baseCurrency)
            try check("quoteCcy", id.quoteCurrency)
            return Instrument(
                id: id, contractValue: 1, contractMultiplier: 1, settleCurrency: "", tickSize: tickSize,
                lotSize: lotSize, minimumSize: minimumSize, catalogEntry: object)
        }
        let settle = id.margining == .linear ? id.quoteCurrency : id.baseCurrency
        try check("uly", id.family)
        try check("settleCcy", settle)
        if id.kind != .option { try check("ctType", id.margining?.rawValue ?? "") }
        if let optionKind = id.optionKind { try check("optType", optionKind.rawValue) }
        if let strike = id.strikeUSD, let stk = try entry.optional("stk") {
            guard try stk.positiveDouble() == strike else {
                throw .invalidField(path: stk.path, value: stk.value.excerpt, reason: "does not match the strike of \(idText)")
            }
        }
        if let expiry = id.expiry, let expTime = try entry.optional("expTime") {
            guard try expTime.int64() == expiry.rawValue else {
                throw .invalidField(
                    path: expTime.path, value: expTime.value.excerpt,
                    reason: "does not match \(idText), which expires at \(expiry.iso8601)")
            }
        }
        let contractMultiplier = try entry.optional("ctMult")?.positiveDouble() ?? 1
        return Instrument(
            id: id, contractValue: try positive("ctVal"), contractMultiplier: contractMultiplier, settleCurrency: settle,
            tickSize: tickSize, lotSize: lotSize, minimumSize: minimumSize, catalogEntry: object)
    }
}
