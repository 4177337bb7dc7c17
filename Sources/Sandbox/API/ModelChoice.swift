import MarginDefaults
import MarginEngine

extension Exchange {
    /// The shipped parameter sets of margin models other than the server's (okx-pm) one, by id: a public
    /// Position Builder request selects one with `paramsId` (the web page's model choice).
    /// Loaded once; a shipped set that does not load is left out (`ShippedDataTests` loads every one).
    static let otherModelParameters: [String: ModelParameters] = {
        var sets: [String: ModelParameters] = [:]
        for id in ShippedData.modelParameterSetIDs where !ShippedData.parameterSetIDs.contains(id) {
            if let parameters = try? ShippedData.modelParameters(id: id) { sets[id] = parameters }
        }
        return sets
    }()

    /// The public Position Builder under another model, when the request's `paramsId` names one of
    /// ``otherModelParameters``; nil otherwise. `compare` is then okx-pm (the server's set) against that model.
    func otherModelPositionBuilder(_ request: PositionBuilderRequest, kind: PublicBuilderKind) throws(EngineError) -> JSONValue? {
        guard let id = request.parametersID, id != parameters.id, let chosen = Self.otherModelParameters[id] else { return nil }
        switch chosen {
        case .okxPM:
            return nil
        case .derivePM2(let derive):
            switch kind {
            case .build: return try DerivePM2PositionBuilder.build(request, catalog: catalog, market: market, parameters: derive)
            case .graph: return try DerivePM2PositionBuilder.graph(request, catalog: catalog, market: market, parameters: derive)
            case .compare:
                return try ModelComparison.compare(request, catalog: catalog, market: market, models: [.okxPM(parameters), chosen])
            }
        }
    }
}
