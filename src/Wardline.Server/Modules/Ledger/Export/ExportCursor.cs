using System.Buffers.Binary;
using System.Data.Common;
using System.Security.Cryptography;
using System.Text;
using Wardline.Server.Modules.Records.Storage;

namespace Wardline.Server.Modules.Ledger.Export;

/// <summary>An entry as stored: its index and canonical bytes.</summary>
internal readonly record struct StoredEntry(long Index, byte[] Bytes);

/// <summary>
/// One target's cursor in <c>ledger_export_cursors</c>: the last index the target acknowledged, on a
/// connection held for as long as this server exports the target. On PostgreSQL the connection also holds
/// a session advisory lock on the target's name, so of several servers sharing the database only one
/// exports it; the lock goes with the session if this process dies. SQLite is one process's file.
/// </summary>
internal sealed class ExportCursor : IAsyncDisposable
{
    private readonly SqlDialect _dialect;
    private readonly DbConnection _connection;
    private readonly string _name;
    private readonly TimeProvider _time;

    private ExportCursor(SqlDialect dialect, DbConnection connection, string name, TimeProvider time, long acknowledged)
    {
        _dialect = dialect;
        _connection = connection;
        _name = name;
        _time = time;
        Acknowledged = acknowledged;
    }

    public string Name => _name;

    /// <summary>The last index delivered; -1 before the first.</summary>
    public long Acknowledged { get; private set; }

    /// <summary>Takes the target (null when another server holds it) and reads its cursor, creating it at -1.</summary>
    public static async Task<ExportCursor?> OpenAsync(SqlDialect dialect, string name, TimeProvider time, CancellationToken ct)
    {
        var c = await dialect.OpenAsync(ct);
        var locked = false;
        try
        {
            if (!dialect.InProcess)
            {
                await using var lockCmd = c.CreateCommand();
                lockCmd.CommandText = "SELECT pg_try_advisory_lock(@k)";
                Migrations.AddParam(lockCmd, "@k", LockKey(name));
                if (await lockCmd.ExecuteScalarAsync(ct) is not true)
                {
                    await c.DisposeAsync();
                    return null;
                }
                locked = true;
            }
            await WriteAsync(dialect, c, "INSERT INTO ledger_export_cursors (name, acknowledged, updated) VALUES (@n, -1, @t) ON CONFLICT (name) DO NOTHING",
                cmd =>
                {
                    Migrations.AddParam(cmd, "@n", name);
                    Migrations.AddParam(cmd, "@t", time.GetUtcNow().ToUnixTimeMilliseconds());
                }, ct);
            await using var read = c.CreateCommand();
            read.CommandText = "SELECT acknowledged FROM ledger_export_cursors WHERE name = @n";
            Migrations.AddParam(read, "@n", name);
            var acknowledged = Convert.ToInt64(await read.ExecuteScalarAsync(ct), System.Globalization.CultureInfo.InvariantCulture);
            return new ExportCursor(dialect, c, name, time, acknowledged);
        }
        catch
        {
            await ReleaseAsync(c, locked);
            throw;
        }
    }

    /// <summary>The stored cursor of a target, without taking it (for tests and status).</summary>
    public static async Task<long?> PeekAsync(SqlDialect dialect, string name, CancellationToken ct)
    {
        await using var c = await dialect.OpenAsync(ct);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT acknowledged FROM ledger_export_cursors WHERE name = @n";
        Migrations.AddParam(cmd, "@n", name);
        return await cmd.ExecuteScalarAsync(ct) is { } v and not DBNull ? Convert.ToInt64(v, System.Globalization.CultureInfo.InvariantCulture) : null;
    }

    /// <summary>Up to <paramref name="limit"/> entries after <paramref name="after"/>, in index order.</summary>
    public Task<List<StoredEntry>> ReadAsync(long after, int limit, CancellationToken ct) => ReadAsync(_connection, after, limit, ct);

    public static async Task<List<StoredEntry>> ReadAsync(DbConnection c, long after, int limit, CancellationToken ct)
    {
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT idx, entry FROM ledger_entries WHERE idx > @a ORDER BY idx LIMIT @n";
        Migrations.AddParam(cmd, "@a", after);
        Migrations.AddParam(cmd, "@n", limit);
        var rows = new List<StoredEntry>(Math.Min(limit, 1024));
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) rows.Add(new StoredEntry(r.GetInt64(0), (byte[])r.GetValue(1)));
        return rows;
    }

    /// <summary>Records that the target has everything up to <paramref name="index"/>; the cursor never moves back.</summary>
    public async Task AcknowledgeAsync(long index, CancellationToken ct)
    {
        if (index <= Acknowledged) return;
        await WriteAsync(_dialect, _connection, "UPDATE ledger_export_cursors SET acknowledged = @a, updated = @t WHERE name = @n AND acknowledged < @a", cmd =>
        {
            Migrations.AddParam(cmd, "@a", index);
            Migrations.AddParam(cmd, "@t", _time.GetUtcNow().ToUnixTimeMilliseconds());
            Migrations.AddParam(cmd, "@n", _name);
        }, ct);
        Acknowledged = index;
    }

    /// <summary>A one-statement write transaction; on SQLite it queues behind this process's other writers instead of meeting SQLITE_BUSY.</summary>
    private static async Task WriteAsync(SqlDialect dialect, DbConnection c, string sql, Action<DbCommand> parameters, CancellationToken ct)
    {
        await using var gate = await dialect.EnterWriteAsync(ct);
        await using var tx = await dialect.BeginWriteTransactionAsync(c, ct);
        await using (var cmd = c.CreateCommand())
        {
            cmd.Transaction = tx;
            cmd.CommandText = sql;
            parameters(cmd);
            await cmd.ExecuteNonQueryAsync(ct);
        }
        await tx.CommitAsync(ct);
    }

    /// <summary>The advisory lock's key: 64 bits of SHA-256 over the target's name, in a namespace of Wardline's own.</summary>
    internal static long LockKey(string name) =>
        BinaryPrimitives.ReadInt64BigEndian(SHA256.HashData(Encoding.UTF8.GetBytes("wardline:ledger-export:" + name)));

    public ValueTask DisposeAsync() => new(ReleaseAsync(_connection, !_dialect.InProcess));

    /// <summary>
    /// Pooled connections keep their session (no reset on close), so the lock is released before the
    /// connection goes back to the pool; a connection that cannot run the unlock is broken and is not pooled.
    /// </summary>
    private static async Task ReleaseAsync(DbConnection c, bool locked)
    {
        if (locked)
        {
            try
            {
                await using var cmd = c.CreateCommand();
                cmd.CommandText = "SELECT pg_advisory_unlock_all()";
                await cmd.ExecuteNonQueryAsync(CancellationToken.None);
            }
            catch (DbException)
            {
            }
            catch (InvalidOperationException)
            {
            }
        }
        await c.DisposeAsync();
    }
}
