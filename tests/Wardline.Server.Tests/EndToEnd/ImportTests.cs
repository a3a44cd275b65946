using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Wardline.Cli;
using Wardline.Server.Modules.Records;
using Wardline.Server.Modules.Records.Storage;
using Wardline.Server.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Wardline.Server.Tests.EndToEnd;

/// <summary>The Synthea samples imported once per engine (the shared store), checked against the JSON itself.</summary>
public abstract class SyntheaImportTests(SyntheaStoreFixture fixture, ITestOutputHelper output)
{
    [Fact]
    public async Task All_Synthea_bundles_import_and_each_type_is_stored_once_per_distinct_id()
    {
        Assert.Equal(40, fixture.Results.Count);
        Assert.All(fixture.Results, r => Assert.True(r.Ok, $"{r.Source}: {string.Join(" | ", r.Problems)}"));
        Assert.Equal(8838, SyntheaSamples.EntryCount);
        Assert.Equal(SyntheaSamples.EntryCount, fixture.Results.Sum(r => r.Resources));

        foreach (var (type, distinct) in SyntheaSamples.DistinctIdsByType)
        {
            Assert.True(distinct == await fixture.CountAsync(type), $"{type}: expected {distinct} stored");
        }
        // Organization and Practitioner repeat across files (59 entries, 41 ids each) and are stored once.
        Assert.Equal(41, await fixture.CountAsync("Organization"));
        Assert.Equal(41, await fixture.CountAsync("Practitioner"));
        Assert.Equal(8802, await fixture.RecordStore.CountAsync("SELECT COUNT(*) FROM resources", CancellationToken.None));
        Assert.Equal(8802, await fixture.RecordStore.CountAsync("SELECT COUNT(*) FROM resource_versions", CancellationToken.None));
        output.WriteLine($"{fixture.Kind}: imported {SyntheaSamples.EntryCount} entries from 40 files in {fixture.ImportTime.TotalSeconds:F1} s " +
            $"({SyntheaSamples.EntryCount / fixture.ImportTime.TotalSeconds:F0} entries/s)");
    }

    [Fact]
    public async Task Importing_the_same_files_again_changes_nothing()
    {
        var versions = await fixture.RecordStore.CountAsync("SELECT COUNT(*) FROM resource_versions", CancellationToken.None);
        var keys = await fixture.RecordStore.CountAsync("SELECT COUNT(*) FROM data_keys", CancellationToken.None);

        var again = await fixture.ImportAllAsync();

        Assert.All(again, r => Assert.True(r.Ok, $"{r.Source}: {string.Join(" | ", r.Problems)}"));
        Assert.Equal(versions, await fixture.RecordStore.CountAsync("SELECT COUNT(*) FROM resource_versions", CancellationToken.None));
        Assert.Equal(keys, await fixture.RecordStore.CountAsync("SELECT COUNT(*) FROM data_keys", CancellationToken.None));
        Assert.Equal(0, await fixture.RecordStore.CountAsync("SELECT COUNT(*) FROM resources WHERE version <> 1", CancellationToken.None));
    }

    [Fact]
    public async Task Imported_urn_uuid_references_point_at_the_stored_resources()
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(SyntheaSamples.Files[0]));
        var resources = doc.RootElement.GetProperty("entry").EnumerateArray().Select(e => e.GetProperty("resource")).ToList();
        var patientId = resources.First(r => r.GetProperty("resourceType").GetString() == "Patient").GetProperty("id").GetString()!;
        var encounterId = resources.First(r => r.GetProperty("resourceType").GetString() == "Encounter").GetProperty("id").GetString()!;

        var stored = await fixture.RecordStore.ReadCurrentAsync("Encounter", encounterId, CancellationToken.None);
        var body = JsonNode.Parse(fixture.Services.GetRequiredService<RecordKeys>().Open(stored!)!)!;

        Assert.Equal("Patient/" + patientId, (string?)body["subject"]!["reference"]);
        Assert.NotNull(await fixture.RecordStore.ReadCurrentAsync("Patient", patientId, CancellationToken.None));
    }
}

[Collection(SqliteSyntheaCollection.Name)]
public sealed class SyntheaImportOnSqlite(SqliteSyntheaStoreFixture fixture, ITestOutputHelper output) : SyntheaImportTests(fixture, output);

[Collection(PostgresSyntheaCollection.Name)]
public sealed class SyntheaImportOnPostgres(PostgresSyntheaStoreFixture fixture, ITestOutputHelper output) : SyntheaImportTests(fixture, output);

/// <summary>Bad input to the importer, on small fresh stores of each engine.</summary>
public abstract class BadImportTests(StoreKind kind) : IAsyncLifetime
{
    private TestStore _store = null!;
    private ServiceProvider _services = null!;
    private string _folder = null!;

    private protected RecordImporter Importer => _services.GetRequiredService<RecordImporter>();

    private protected RecordStore Store => _services.GetRequiredService<RecordStore>();

    public async Task InitializeAsync()
    {
        _store = await TestStore.CreateAsync(kind);
        _services = await StoreArgs.OpenAsync(_store.Options, CancellationToken.None);
        _folder = Path.Combine(_store.Folder, "input");
        Directory.CreateDirectory(_folder);
    }

    public async Task DisposeAsync()
    {
        await _services.DisposeAsync();
        await _store.DisposeAsync();
    }

    [Fact]
    public async Task A_bad_file_among_good_ones_is_reported_by_name_and_reason_and_the_others_still_load()
    {
        var good1 = Copy(SyntheaSamples.Files.First(f => Path.GetFileName(f).StartsWith("Jesús", StringComparison.Ordinal)));
        var malformed = Write("Ñandú_broken.json", """{"resourceType": "Bundle", "type": "transaction", "entry": [""");
        var (badTransaction, badIds) = BadTransaction("Zoë_tenth_entry_fails.json");
        var good2 = Copy(SyntheaSamples.Files.First(f => Path.GetFileName(f).StartsWith("Adán", StringComparison.Ordinal)));

        var results = new List<ImportResult>();
        foreach (var file in new[] { good1, malformed, badTransaction, good2 }) results.Add(await Importer.ImportFileAsync(file, null, CancellationToken.None));

        Assert.True(results[0].Ok);
        Assert.True(results[3].Ok);
        // Named by place and content hash, never by name (Synthea names files after their patients).
        Assert.Equal($"file 1 of 1 (sha256 {Sha12(malformed)})", results[1].Source);
        Assert.Equal("file 1 of 1", results[0].Source);
        Assert.Contains(results[1].Problems, p => p.Contains("Malformed JSON", StringComparison.Ordinal));
        Assert.Equal($"file 1 of 1 (sha256 {Sha12(badTransaction)})", results[2].Source);
        Assert.Contains(results[2].Problems, p => p.Contains("entry[9]", StringComparison.Ordinal));
        Assert.Equal(0, results[2].Resources);
        foreach (var id in badIds)
        {
            Assert.Null(await Store.ReadCurrentAsync("Patient", id, CancellationToken.None));
        }
        Assert.Equal(2, await Store.CountAsync("SELECT COUNT(*) FROM resources WHERE res_type = 'Patient'", CancellationToken.None));
    }

    [Fact]
    public async Task Ndjson_with_bad_lines_imports_the_good_lines_and_reports_each_bad_line_number()
    {
        var ids = Enumerable.Range(0, 6).Select(_ => Guid.NewGuid().ToString()).ToArray();
        var lines = new[]
        {
            PatientJson(ids[0], "Lineone"),
            PatientJson(ids[1], "Linetwo"),
            """{"resourceType": "Patient", "id": "broken" """, // line 3: malformed JSON
            PatientJson(ids[3], "Linefour"),
            "",
            // line 6 parses but cannot be stored: its reference is a urn:uuid that nothing in the file defines
            $$$"""{"resourceType": "Observation", "id": "{{{ids[4]}}}", "status": "final", "code": {"text": "x"}, "subject": {"reference": "urn:uuid:{{{Guid.NewGuid()}}}"}}""",
            PatientJson(ids[5], "Lineseven"),
        };
        var file = Write("patients.ndjson", string.Join("\n", lines) + "\n");

        var result = await Importer.ImportFileAsync(file, null, CancellationToken.None);

        Assert.False(result.Ok);
        Assert.Equal(4, result.Resources);
        Assert.Contains(result.Problems, p => p.StartsWith("line 3:", StringComparison.Ordinal));
        Assert.Contains(result.Problems, p => p.StartsWith("line 6:", StringComparison.Ordinal));
        Assert.Equal(2, result.Problems.Count(p => p.StartsWith("line ", StringComparison.Ordinal)));
        foreach (var id in new[] { ids[0], ids[1], ids[3], ids[5] })
        {
            Assert.NotNull(await Store.ReadCurrentAsync("Patient", id, CancellationToken.None));
        }
        Assert.Null(await Store.ReadCurrentAsync("Observation", ids[4], CancellationToken.None));
    }

    [Fact]
    public async Task The_import_command_exits_1_naming_the_bad_file_and_0_when_all_files_are_good()
    {
        var good1 = Copy(SyntheaSamples.Files.First(f => Path.GetFileName(f).StartsWith("Enrique", StringComparison.Ordinal)));
        var good2 = Copy(SyntheaSamples.Files.First(f => Path.GetFileName(f).StartsWith("Ali_", StringComparison.Ordinal)));
        var malformed = Write("Ñandú_broken.json", "{ not json");
        var store = StoreArgsFor();

        var mixed = await WardlineCli.RunAsync(["import", .. store, good1, malformed, good2]);

        Assert.True(mixed.ExitCode == 1, mixed.Output);
        Assert.Contains($"file 2 of 3 (sha256 {Sha12(malformed)}): Malformed JSON", mixed.Flat, StringComparison.Ordinal);
        Assert.Contains("2 of 3 files imported", mixed.Flat, StringComparison.Ordinal);
        Assert.Contains("sha256sum FILES | grep HEX", mixed.Flat, StringComparison.Ordinal);
        // Neither the output nor the log lines name a file: the names are the patients'.
        Assert.DoesNotContain("Ñandú", mixed.Output, StringComparison.Ordinal);
        Assert.DoesNotContain(Path.GetFileNameWithoutExtension(good1), mixed.Output, StringComparison.Ordinal);

        var clean = await WardlineCli.RunAsync(["import", .. store, good1, good2]);

        Assert.True(clean.ExitCode == 0, clean.Output);
        Assert.Contains("2 of 2 files imported", clean.Flat, StringComparison.Ordinal);
        Assert.Equal(2, await Store.CountAsync("SELECT COUNT(*) FROM resources WHERE res_type = 'Patient'", CancellationToken.None));
        Assert.Equal(0, await Store.CountAsync("SELECT COUNT(*) FROM resources WHERE version <> 1", CancellationToken.None));
    }

    [Fact]
    public async Task The_import_command_takes_a_folder_and_refuses_a_path_that_does_not_exist()
    {
        Copy(SyntheaSamples.Files[0]);
        Copy(SyntheaSamples.Files[1]);
        var store = StoreArgsFor();

        var folder = await WardlineCli.RunAsync(["import", .. store, _folder]);
        var missing = await WardlineCli.RunAsync(["import", .. store, Path.Combine(_folder, "nothing-here.json")]);

        Assert.True(folder.ExitCode == 0, folder.Output);
        Assert.Contains("2 of 2 files imported", folder.Flat, StringComparison.Ordinal);
        Assert.Equal(2, missing.ExitCode);
        Assert.Contains("nothing-here.json does not exist", missing.Flat, StringComparison.Ordinal);
    }

    private static string Sha12(string path) => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(path)))[..12];

    private string[] StoreArgsFor() => _store.Kind == StoreKind.Sqlite
        ? ["--data", _store.Options.DataDirectory!]
        : ["--db", _store.PostgresConnectionString!, "--keyring", _store.Options.KeyringPath!, "--witness", _store.Options.Ledger.WitnessPath!];

    private string Copy(string source)
    {
        var target = Path.Combine(_folder, Path.GetFileName(source));
        File.Copy(source, target);
        return target;
    }

    private string Write(string name, string content)
    {
        var path = Path.Combine(_folder, name);
        File.WriteAllText(path, content, new UTF8Encoding(false));
        return path;
    }

    /// <summary>A transaction of nine valid Patients whose tenth entry references a urn:uuid that is not in the Bundle.</summary>
    private (string Path, IReadOnlyList<string> Ids) BadTransaction(string name)
    {
        var ids = new List<string>();
        var entries = new JsonArray();
        for (var i = 0; i < 9; i++)
        {
            var id = Guid.NewGuid().ToString();
            ids.Add(id);
            entries.Add(new JsonObject
            {
                ["fullUrl"] = "urn:uuid:" + id,
                ["resource"] = JsonNode.Parse(PatientJson(id, "Tenthtest" + i)),
                ["request"] = new JsonObject { ["method"] = "POST", ["url"] = "Patient" },
            });
        }
        var observation = Guid.NewGuid().ToString();
        entries.Add(new JsonObject
        {
            ["fullUrl"] = "urn:uuid:" + observation,
            ["resource"] = JsonNode.Parse($$$"""{"resourceType": "Observation", "id": "{{{observation}}}", "status": "final", "code": {"text": "x"}, "subject": {"reference": "urn:uuid:{{{Guid.NewGuid()}}}"}}"""),
            ["request"] = new JsonObject { ["method"] = "POST", ["url"] = "Observation" },
        });
        var bundle = new JsonObject { ["resourceType"] = "Bundle", ["type"] = "transaction", ["entry"] = entries };
        return (Write(name, bundle.ToJsonString()), ids);
    }

    private static string PatientJson(string id, string family) =>
        JsonSerializer.Serialize(new { resourceType = "Patient", id, name = new[] { new { family, given = new[] { "Test" } } }, birthDate = "1970-01-01" });
}

public sealed class BadImportOnSqlite() : BadImportTests(StoreKind.Sqlite);

public sealed class BadImportOnPostgres() : BadImportTests(StoreKind.Postgres);
