using Npgsql;
using Wardline.Server.Hosting;
using Wardline.Server.Tests.Infrastructure;

namespace Wardline.Server.Tests.Modules.Ledger.Infrastructure;

/// <summary>
/// An older copy of a store's database, to restore later as an operator rolling back would. SQLite: the file
/// (taken with VACUUM INTO, so the WAL is included), copied back over the store's own. PostgreSQL: a database
/// made with CREATE DATABASE ... TEMPLATE, which the restored options point at, with the same keyring and witness.
/// </summary>
internal sealed class Snapshot : IAsyncDisposable
{
    private readonly TestStore _store;
    private readonly string? _copy;
    private readonly string? _database;

    private Snapshot(TestStore store, string? copy, string? database)
    {
        _store = store;
        _copy = copy;
        _database = database;
    }

    /// <summary>Takes the copy; the store must have no server running on it.</summary>
    public static async Task<Snapshot> TakeAsync(TestStore store)
    {
        LedgerTestKit.ReleasePools();
        if (store.Kind == StoreKind.Sqlite)
        {
            var copy = Path.Combine(store.Folder, "older-" + Guid.NewGuid().ToString("N")[..8] + ".db");
            await LedgerTestKit.ExecAsync(store.Options, $"VACUUM INTO '{copy}'");
            return new Snapshot(store, copy, null);
        }
        var source = new NpgsqlConnectionStringBuilder(store.PostgresConnectionString).Database!;
        var name = source + "_older";
        await AdminAsync($"CREATE DATABASE {name} TEMPLATE {source}");
        return new Snapshot(store, null, name);
    }

    /// <summary>Puts the older copy in place; returns the options of a server (or the CLI) on the restored store.</summary>
    public Task<WardlineOptions> RestoreAsync()
    {
        LedgerTestKit.ReleasePools();
        var options = _store.SharedOptions();
        if (_copy is not null)
        {
            var file = LedgerTestKit.SqliteFile(options);
            File.Delete(file + "-wal");
            File.Delete(file + "-shm");
            File.Copy(_copy, file, overwrite: true);
        }
        else
        {
            options.PostgresConnectionString = new NpgsqlConnectionStringBuilder(_store.PostgresConnectionString) { Database = _database }.ConnectionString;
        }
        return Task.FromResult(options);
    }

    private static async Task AdminAsync(string sql)
    {
        await using var c = new NpgsqlConnection(TestStore.AdminConnectionString());
        await c.OpenAsync();
        await using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        await cmd.ExecuteNonQueryAsync();
    }

    public async ValueTask DisposeAsync()
    {
        if (_database is not null)
        {
            NpgsqlConnection.ClearAllPools();
            await AdminAsync($"DROP DATABASE IF EXISTS {_database} WITH (FORCE)");
        }
    }
}
