using Hl7.Fhir.Model;
using Wardline.Server.Modules.Records.Search;

namespace Wardline.Server.Tests.Modules.Records.Search;

public sealed class SearchParameterRegistryTests
{
    [Fact]
    public void Every_search_parameter_is_filed_under_the_FHIR_name_of_its_resource_class()
    {
        var filed = SearchParameterRegistry.SearchableTypes.ToList();

        // The registry reads the [FhirType] attribute itself (ModelInfo's inspector costs a CLI 0.9 s); its names must
        // be the ones ModelInfo gives for the same classes.
        Assert.True(filed.Count >= 20, $"only {filed.Count} resource types have search parameters");
        foreach (var type in filed)
        {
            Assert.Contains(type, SearchParameterRegistry.ResourceTypes);
            var modelType = ModelInfo.GetTypeForFhirType(type);
            Assert.NotNull(modelType);
            Assert.Equal(type, ModelInfo.GetFhirTypeNameForType(modelType));
            Assert.All(SearchParameterRegistry.For(type).Values, p => Assert.Equal(type, p.ResourceType));
        }
        Assert.Contains("subject", SearchParameterRegistry.For("Observation").Keys);
        Assert.Contains("family", SearchParameterRegistry.For("Patient").Keys);
    }
}
