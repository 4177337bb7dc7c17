/// A margin model: whose rules turn a portfolio into requirements. The name carries the version of the
/// venue's methodology (Derive's second portfolio-margin manager is `derive-pm2`); the parameter set's id
/// (`paramsId`) versions the numbers. Both are reported in every Position Builder response.
///
/// A model is its scenarios, contingencies and aggregation; instruments, market snapshots, Black-76 pricing
/// and JSON are shared (see `docs/models.md`).
public enum MarginModelID: String, Sendable, Hashable, CaseIterable {
    /// OKX portfolio margin (docs/methodology/02-margin.md): risk units, MR1–MR9, the default.
    case okxPM = "okx-pm"
    /// Derive PM2 (`PMRMLib_2.sol`): SPAN-like scenarios with static discounting, basis, perp, naked-short,
    /// oracle and collateral contingencies.
    case derivePM2 = "derive-pm2"
}

/// A loaded parameter set of any model; the set's `model` key picks the model (absent: `okx-pm`).
public enum ModelParameters: Sendable {
    case okxPM(MarginParameters)
    case derivePM2(DerivePM2Parameters)

    /// The parameter set's id (`okx-2025-01`, `derive-pm2`).
    public var id: String {
        switch self {
        case .okxPM(let parameters): parameters.id
        case .derivePM2(let parameters): parameters.id
        }
    }

    public var model: MarginModelID {
        switch self {
        case .okxPM: .okxPM
        case .derivePM2: .derivePM2
        }
    }

    /// Parses a parameter-set document of either model.
    public init(bytes: some Sequence<UInt8>) throws(EngineError) {
        let json: JSONValue
        do { json = try JSONParser.parse(bytes) } catch { throw .malformedDocument(document: "params", detail: error.description) }
        try self.init(json: json)
    }

    /// Reads `model` (`okx-pm` when absent) and parses the rest with that model's loader; an okx-pm set is
    /// passed on without the `model` key, so its loader's key list is unchanged.
    public init(json: JSONValue) throws(EngineError) {
        let root = FieldReader(json, path: "params")
        guard case .object(var object) = json else {
            throw .invalidField(path: "params", value: json.excerpt, reason: "must be a JSON object")
        }
        let name = try root.optional("model")?.oneOf(MarginModelID.allCases.map(\.rawValue)) ?? MarginModelID.okxPM.rawValue
        switch MarginModelID(rawValue: name) ?? .okxPM {
        case .okxPM:
            object["model"] = nil
            self = .okxPM(try MarginParameters(json: .object(object)))
        case .derivePM2:
            self = .derivePM2(try DerivePM2Parameters(json: json))
        }
    }
}

extension JSONValue {
    /// The object with `("model", name)` inserted right after `paramsId` (at the end when there is none),
    /// so every Position Builder response names its model next to its parameter set.
    public func withModel(_ model: MarginModelID) -> JSONValue {
        guard case .object(let object) = self else { return self }
        var members: [(String, JSONValue)] = []
        var inserted = false
        for (key, value) in object.members where key != "model" {
            members.append((key, value))
            if key == "paramsId" {
                members.append(("model", .string(model.rawValue)))
                inserted = true
            }
        }
        if !inserted { members.append(("model", .string(model.rawValue))) }
        return .object(members)
    }
}
