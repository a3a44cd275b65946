using System.Data.Common;
using System.Text;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Wardline.Server.Modules.Records.Storage;

/// <summary>
/// What differs between the two engines. Everything else (schema shape, queries) is shared, so
/// one conformance suite exercises one store implementation on both.
/// </summary>
internal abstract class SqlDialect : IAsyncDisposable
{
    public abstract string Name { get; }

    public abstract string BlobType { get; }

    /// <summary>A blob literal from hex digits, for schema steps.</summary>
    public string HexBlob(string hex) => InProcess ? $"X'{hex}'" : $"'\\x{hex}'::bytea";

    /// <summary>Appended to CREATE TABLE for tables that are only ever read through their primary key.</summary>
    public virtual string ClusteredTableSuffix => "";

    /// <summary>A 64-bit column the database numbers itself, in commit order for one writer.</summary>
    public abstract string AutoIdColumn { get; }

    public abstract ValueTask<DbConnection> OpenAsync(CancellationToken ct);

    /// <summary>True for an in-process engine: a statement costs no round trip, so per-row prepared inserts
    /// beat big multi-row ones, and kept prepared statements beat pooled connections.</summary>
    public virtual bool InProcess => false;

    /// <summary>Begins a write transaction; returns a releaser that must be disposed after commit or rollback.</summary>
    public abstract ValueTask<IAsyncDisposable> EnterWriteAsync(CancellationToken ct);

    public abstract ValueTask<DbTransaction> BeginWriteTransactionAsync(DbConnection connection, CancellationToken ct);

    /// <summary>A read-only transaction that sees one consistent snapshot of the store and blocks no writer.</summary>
    public abstract ValueTask<DbTransaction> BeginSnapshotAsync(DbConnection connection, CancellationToken ct);

    /// <summary>Serialises one-time set-up across processes (several servers may start at once): schema migration, the ledger's signing key.</summary>
    public abstract Task LockForMigrationAsync(DbConnection connection, DbTransaction tx, CancellationToken ct);

    /// <summary>
    /// Inserts rows. SQLite runs in-process, so one prepared single-row statement executed per
    /// row is cheapest; PostgreSQL is a round trip away, so rows go in multi-row statements.
    /// </summary>
    public async Task InsertRowsAsync(DbConnection c, DbTransaction tx, string target, int columns, int rowCount, Action<int, Action<object?>> fill, CancellationToken ct)
    {
        if (InProcess)
        {
            SqliteRows.Insert((SqliteConnection)c, "INSERT INTO " + target + " VALUES (" + string.Join(", ", Enumerable.Repeat("?", columns)) + ")", columns, rowCount, fill, ct);
            return;
        }
        await using var cmd = c.CreateCommand();
        cmd.Transaction = tx;
        var sb = new StringBuilder("INSERT INTO ").Append(target).Append(" VALUES ");
        var n = 0;
        for (var i = 0; i < rowCount; i++)
        {
            sb.Append(i > 0 ? ", (" : "(");
            var col = 0;
            fill(i, value =>
            {
                var name = "@v" + n++;
                sb.Append(col++ > 0 ? ", " : "").Append(name);
                Migrations.AddParam(cmd, name, value);
            });
            if (col != columns) throw new InvalidOperationException("row shape mismatch");
            sb.Append(')');
        }
        cmd.CommandText = sb.ToString();
        await cmd.ExecuteNonQueryAsync(ct);
    }

    public abstract bool IsUniqueViolation(DbException ex);

    /// <summary>A description of where the data lives, without credentials.</summary>
    public abstract string Describe();

    public abstract ValueTask DisposeAsync();

    public static SqlDialect Sqlite(string databaseFile) => new SqliteDialect(databaseFile);

    public static SqlDialect Postgres(string connectionString) => new PostgresDialect(connectionString);
}

internal sealed class SqliteDialect : SqlDialect
{
    private readonly string _connectionString;
    private readonly string _file;

    // SQLite has one writer at a time; queueing writers here avoids SQLITE_BUSY spins inside one process.
    private readonly SemaphoreSlim _writeGate = new(1, 1);
    private volatile bool _walEnabled;

    public SqliteDialect(string file)
    {
        _file = file;
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = file,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Cache = SqliteCacheMode.Private,
            Pooling = true,
            DefaultTimeout = 30,
        }.ToString();
    }

    public override string Name => "sqlite";

    /// <summary>The database file (backups copy it as an image, and a restore writes one in its place).</summary>
    public string File => _file;

    public override bool InProcess => true;

    public override string ClusteredTableSuffix => " WITHOUT ROWID";

    public override string BlobType => "BLOB";

    public override string AutoIdColumn => "INTEGER PRIMARY KEY AUTOINCREMENT";

    public override async ValueTask<DbConnection> OpenAsync(CancellationToken ct)
    {
        var c = new SqliteConnection(_connectionString);
        await c.OpenAsync(ct);
        if (!_walEnabled)
        {
            // WAL is a property of the file: set once, it stays.
            using var cmd = c.CreateCommand();
            cmd.CommandText = "PRAGMA journal_mode=WAL;";
            await cmd.ExecuteNonQueryAsync(ct);
            _walEnabled = true;
        }
        return c;
    }

    public override async ValueTask<IAsyncDisposable> EnterWriteAsync(CancellationToken ct)
    {
        await _writeGate.WaitAsync(ct);
        return new Releaser(_writeGate);
    }

    public override async ValueTask<DbTransaction> BeginWriteTransactionAsync(DbConnection connection, CancellationToken ct)
    {
        // Set on every write transaction, since pooled connections are shared with readers: commits are
        // fsync'd (FULL), the B-trees keyed by random hashes get a 64 MiB page cache, and checkpoints
        // run every 64 MiB of WAL rather than every 4 MiB, which would checkpoint after almost every bulk write.
        using (var cmd = connection.CreateCommand())
        {
            cmd.CommandText = "PRAGMA synchronous=FULL; PRAGMA cache_size=-65536; PRAGMA wal_autocheckpoint=16384;";
            await cmd.ExecuteNonQueryAsync(ct);
        }
        return ((SqliteConnection)connection).BeginTransaction(deferred: false);
    }

    // Deferred: the snapshot starts at the first read, and no write lock is taken (WAL lets the writer go on).
    public override ValueTask<DbTransaction> BeginSnapshotAsync(DbConnection connection, CancellationToken ct) =>
        ValueTask.FromResult<DbTransaction>(((SqliteConnection)connection).BeginTransaction(System.Data.IsolationLevel.Serializable, deferred: true));

    public override Task LockForMigrationAsync(DbConnection connection, DbTransaction tx, CancellationToken ct) =>
        Task.CompletedTask; // BEGIN IMMEDIATE already excludes every other writer of the file.

    public override bool IsUniqueViolation(DbException ex) => ex is SqliteException { SqliteErrorCode: 19 };

    public override string Describe() => $"SQLite file {_file}";

    public override ValueTask DisposeAsync()
    {
        _writeGate.Dispose();
        SqliteConnection.ClearAllPools();
        return ValueTask.CompletedTask;
    }

    private sealed class Releaser(SemaphoreSlim gate) : IAsyncDisposable
    {
        public ValueTask DisposeAsync()
        {
            gate.Release();
            return ValueTask.CompletedTask;
        }
    }
}

internal sealed class PostgresDialect : SqlDialect
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly string _description;

    public PostgresDialect(string connectionString)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        _description = $"PostgreSQL database {builder.Database} on {builder.Host}:{builder.Port}";
        // Wardline keeps no session state on its connections (no temp tables, prepared-statement names
        // or SET), so the DISCARD ALL round trip Npgsql sends on every return to the pool is pure cost.
        builder.NoResetOnClose = true;
        // The hot statements (read by id, the access-log insert) are the same text every time:
        // prepared once per connection, PostgreSQL skips parsing and planning them.
        builder.MaxAutoPrepare = 32;
        builder.AutoPrepareMinUsages = 2;
        // PostgreSQL's error details quote row values ("Key (x)=(...) already exists"): never let them reach an exception
        // message that is logged or printed, whatever the configured connection string says.
        builder.IncludeErrorDetail = false;
        _dataSource = NpgsqlDataSource.Create(builder.ConnectionString);
    }

    public override string Name => "postgres";

    public override string BlobType => "BYTEA";

    public override string AutoIdColumn => "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY";

    public override async ValueTask<DbConnection> OpenAsync(CancellationToken ct) => await _dataSource.OpenConnectionAsync(ct);

    public override ValueTask<IAsyncDisposable> EnterWriteAsync(CancellationToken ct) => ValueTask.FromResult<IAsyncDisposable>(NoGate.Instance);

    public override async ValueTask<DbTransaction> BeginWriteTransactionAsync(DbConnection connection, CancellationToken ct) =>
        await ((NpgsqlConnection)connection).BeginTransactionAsync(ct);

    public override async ValueTask<DbTransaction> BeginSnapshotAsync(DbConnection connection, CancellationToken ct) =>
        await ((NpgsqlConnection)connection).BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, ct);

    public override async Task LockForMigrationAsync(DbConnection connection, DbTransaction tx, CancellationToken ct)
    {
        await using var cmd = connection.CreateCommand();
        cmd.Transaction = tx;
        // Transaction-scoped advisory lock: released by commit or rollback, even if this process dies.
        cmd.CommandText = "SELECT pg_advisory_xact_lock(727274)";
        await cmd.ExecuteNonQueryAsync(ct);
    }

    public override bool IsUniqueViolation(DbException ex) => ex is PostgresException { SqlState: PostgresErrorCodes.UniqueViolation };

    public override string Describe() => _description;

    public override ValueTask DisposeAsync() => _dataSource.DisposeAsync();

    private sealed class NoGate : IAsyncDisposable
    {
        public static readonly NoGate Instance = new();

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
