import MarginDefaults
import MarginEngine
import Testing

/// Every shipped parameter set of every margin model loads, under its own id and model.
@Suite struct ModelParameterSetsTests {
    @Test(arguments: ShippedData.modelParameterSetIDs)
    func shippedSetLoads(id: String) throws {
        let parameters = try ShippedData.modelParameters(id: id)
        #expect(parameters.id == id)
        #expect(parameters.model == (ShippedData.parameterSetIDs.contains(id) ? .okxPM : .derivePM2))
    }

    @Test(arguments: MarginModelID.allCases)
    func everyModelHasADefaultSet(model: MarginModelID) throws {
        #expect(try ShippedData.modelParameters(id: ShippedData.defaultParameterSetID(for: model)).model == model)
    }
}
