using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Wardline.Cli;
using Wardline.Server.Modules.Records;
using Wardline.Server.Modules.Records.Storage;
using Wardline.Server.Tests.Infrastructure;

namespace Wardline.Server.Tests.EndToEnd;

/// <summary>
/// One store per engine with all 40 Synthea bundles imported in-process (RecordImporter through the
/// same services the CLI opens), shared by the tests of a class because the import takes seconds.
/// </summary>
public abstract class SyntheaStoreFixture(StoreKind kind) : IAsyncLifetime
{
    private ServiceProvider? _services;
    private List<ImportResult> _results = [];

    public StoreKind Kind => kind;

    public TestStore Store { get; private set; } = null!;

    public TimeSpan ImportTime { get; private set; }

    internal IReadOnlyList<ImportResult> Results => _results;

    internal IServiceProvider Services => _services!;

    internal RecordStore RecordStore => Services.GetRequiredService<RecordStore>();

    internal RecordImporter Importer => Services.GetRequiredService<RecordImporter>();

    public async Task InitializeAsync()
    {
        Store = await TestStore.CreateAsync(kind);
        _services = await StoreArgs.OpenAsync(Store.Options, CancellationToken.None);
        var watch = Stopwatch.StartNew();
        _results = await ImportAllAsync();
        ImportTime = watch.Elapsed;
    }

    /// <summary>Imports every Synthea file, one after the other as `wardline import` does.</summary>
    internal async Task<List<ImportResult>> ImportAllAsync()
    {
        var results = new List<ImportResult>();
        foreach (var file in SyntheaSamples.Files)
        {
            results.Add(await Importer.ImportFileAsync(file, null, CancellationToken.None));
        }
        return results;
    }

    /// <summary>Current (not deleted) resources of one type, straight from the database.</summary>
    internal Task<long> CountAsync(string type) =>
        RecordStore.CountAsync($"SELECT COUNT(*) FROM resources WHERE res_type = '{type}' AND deleted = 0", CancellationToken.None);

    public async Task DisposeAsync()
    {
        if (_services is not null) await _services.DisposeAsync();
        await Store.DisposeAsync();
    }
}

public sealed class SqliteSyntheaStoreFixture() : SyntheaStoreFixture(StoreKind.Sqlite);

public sealed class PostgresSyntheaStoreFixture() : SyntheaStoreFixture(StoreKind.Postgres);

/// <summary>The test classes that share the imported SQLite store (they run one after another).</summary>
[CollectionDefinition(Name)]
public sealed class SqliteSyntheaCollection : ICollectionFixture<SqliteSyntheaStoreFixture>
{
    public const string Name = "Synthea store on SQLite";
}

/// <summary>The test classes that share the imported PostgreSQL store (they run one after another).</summary>
[CollectionDefinition(Name)]
public sealed class PostgresSyntheaCollection : ICollectionFixture<PostgresSyntheaStoreFixture>
{
    public const string Name = "Synthea store on PostgreSQL";
}
