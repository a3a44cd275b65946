using Npgsql;
using Wardline.Server.Hosting;

namespace Wardline.Server.Tests.Infrastructure;

public enum StoreKind
{
    Sqlite,
    Postgres,
}

/// <summary>
/// A fresh, empty store of either engine: a temporary folder for SQLite, a new database on the
/// test PostgreSQL (started by test.sh; WARDLINE_TEST_POSTGRES) with its keyring in a temporary folder.
/// </summary>
public sealed class TestStore : IAsyncDisposable
{
    private readonly string? _database;

    private TestStore(StoreKind kind, string folder, string? database, WardlineOptions options)
    {
        Kind = kind;
        Folder = folder;
        _database = database;
        Options = options;
    }

    public StoreKind Kind { get; }

    /// <summary>A temporary folder owned by this store (the SQLite data folder, or where the keyring lives).</summary>
    public string Folder { get; }

    public WardlineOptions Options { get; }

    public string? PostgresConnectionString => Options.PostgresConnectionString;

    public static async Task<TestStore> CreateAsync(StoreKind kind)
    {
        var folder = Directory.CreateTempSubdirectory("wardline-test-").FullName;
        if (kind == StoreKind.Sqlite)
        {
            return new TestStore(kind, folder, null, new WardlineOptions { DataDirectory = Path.Combine(folder, "data") });
        }
        var admin = AdminConnectionString();
        var name = "wl_" + Guid.NewGuid().ToString("N")[..16];
        await using (var c = new NpgsqlConnection(admin))
        {
            await c.OpenAsync();
            await using var cmd = c.CreateCommand();
            cmd.CommandText = $"CREATE DATABASE {name}";
            await cmd.ExecuteNonQueryAsync();
        }
        var cs = new NpgsqlConnectionStringBuilder(admin) { Database = name }.ConnectionString;
        return new TestStore(kind, folder, name, new WardlineOptions
        {
            PostgresConnectionString = cs,
            KeyringPath = Path.Combine(folder, "keys", "keyring.json"),
            Ledger = { WitnessPath = Path.Combine(folder, "witness") },
        });
    }

    /// <summary>Another server's view of the same store (same database, same keyring).</summary>
    public WardlineOptions SharedOptions() => new()
    {
        DataDirectory = Options.DataDirectory,
        PostgresConnectionString = Options.PostgresConnectionString,
        KeyringPath = Options.KeyringPath,
        Ledger = { WitnessPath = Options.Ledger.WitnessPath },
    };

    public static string AdminConnectionString() =>
        Environment.GetEnvironmentVariable("WARDLINE_TEST_POSTGRES")
        ?? throw new InvalidOperationException("WARDLINE_TEST_POSTGRES is not set: run the tests with ./test.sh, which starts PostgreSQL.");

    public async ValueTask DisposeAsync()
    {
        if (_database is not null)
        {
            NpgsqlConnection.ClearAllPools();
            await using var c = new NpgsqlConnection(AdminConnectionString());
            await c.OpenAsync();
            await using var cmd = c.CreateCommand();
            cmd.CommandText = $"DROP DATABASE IF EXISTS {_database} WITH (FORCE)";
            await cmd.ExecuteNonQueryAsync();
        }
        try
        {
            Directory.Delete(Folder, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
