using System.Text.Json;
using Wardline.Crypto;
using Wardline.Server.Modules.Records;
using Wardline.Server.Modules.Records.Search;
using Wardline.Server.Tests.EndToEnd;

namespace Wardline.Server.Tests.Modules.Records.Search;

/// <summary>
/// <see cref="ResourceIndexer.References"/> is what the ledger verifier derives access facts from instead of the whole index:
/// it must give exactly the index's reference rows, in their order (the first patient reference found is the one that counts).
/// </summary>
public sealed class ResourceIndexerReferencesTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("wardline-indexer-").FullName;

    [Fact]
    public void The_references_alone_are_the_index_rows_that_hold_a_reference_in_the_same_order_for_every_Synthea_resource()
    {
        var indexer = new ResourceIndexer(new BlindIndex(Keyring.LoadOrCreate(Path.Combine(_folder, "keyring.json"), passphrase: null)));
        var checkedResources = 0;
        var withReferences = 0;
        foreach (var file in SyntheaSamples.Files.Take(4))
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(file));
            var entries = doc.RootElement.GetProperty("entry").EnumerateArray().ToList();
            // As an import stores them: the bundle's urn:uuid references become Type/id.
            var local = entries.ToDictionary(e => e.GetProperty("fullUrl").GetString()!,
                e => $"{e.GetProperty("resource").GetProperty("resourceType").GetString()}/{e.GetProperty("resource").GetProperty("id").GetString()}");
            foreach (var entry in entries)
            {
                var json = entry.GetProperty("resource").GetRawText();
                foreach (var (from, to) in local) json = json.Replace($"\"{from}\"", $"\"{to}\"", StringComparison.Ordinal);
                var resource = FhirJson.Parse(System.Text.Encoding.UTF8.GetBytes(json)).Resource;
                Assert.NotNull(resource);
                var references = ResourceIndexer.References(resource);

                Assert.Equal(indexer.Index(resource).Where(e => e.Ref is not null), references);
                checkedResources++;
                if (references.Count > 0) withReferences++;
            }
        }
        Assert.True(checkedResources > 500 && withReferences * 2 > checkedResources, $"{withReferences} of {checkedResources} resources hold references");
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);
}
