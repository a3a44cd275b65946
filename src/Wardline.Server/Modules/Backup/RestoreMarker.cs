using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Wardline.Server.Modules.Records.Storage;

namespace Wardline.Server.Modules.Backup;

/// <summary>A restore that has not (yet) proven its store: the backup it restores, when it began, and what state it stopped in.</summary>
internal sealed record RestorePending(string Backup, DateTimeOffset Started, string State)
{
    public const string Restoring = "restoring";

    public const string NotProven = "not proven";
}

/// <summary>
/// Marks a store as the destination of a restore that has not proven it, so that no server serves it: set before the
/// restore writes anything, cleared only once the restored store is proven to be the backed-up data. A restore that
/// stops part-way (power cut, kill, full disk, a damaged segment) or whose proof fails leaves the mark, and a server
/// started on that store refuses to start, naming it; a later restore into the same folder moves the unfinished store
/// aside. On SQLite the mark is a file beside the database (<c>wardline.db.restore-pending</c>), so that writing the
/// database image over the file cannot lose it; on PostgreSQL, a table (<c>restore_pending</c>) in the restored database.
/// It guards against mistakes, not against an attacker who can already write the store's files or tables.
/// </summary>
internal static class RestoreMarker
{
    private const string Suffix = ".restore-pending";

    private const string Table = "restore_pending";

    /// <summary>The file that marks a SQLite store (null for PostgreSQL).</summary>
    public static string? FileOf(SqlDialect dialect) => dialect is SqliteDialect sqlite ? FileOf(sqlite.File) : null;

    /// <summary>The file that marks the SQLite database <paramref name="databaseFile"/>.</summary>
    public static string FileOf(string databaseFile) => databaseFile + Suffix;

    /// <summary>
    /// Holds the folder of the SQLite database <paramref name="databaseFile"/> for one restore, from before it looks at
    /// what the folder holds until its proof is done: a second restore into the folder (which would move the first one's
    /// unfinished files aside while it writes them) is refused instead. The lock (an exclusive advisory lock on
    /// <c>wardline.db.restore-lock</c>) ends with the process, however it ends; the empty file stays. It is advisory (flock):
    /// it stops another Wardline restore, not other programs, and not a process run with DOTNET_SYSTEM_IO_DISABLEFILELOCKING.
    /// </summary>
    public static IDisposable LockFolder(string databaseFile)
    {
        var file = databaseFile + ".restore-lock";
        try
        {
            return new FileStream(file, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException)
        {
            throw new BackupRefusedException($"another restore into {Path.GetDirectoryName(Path.GetFullPath(databaseFile))} is running (it holds {Path.GetFileName(file)}): " +
                "wait for it to end, or stop it, then run this one again; two restores into one folder would overwrite each other");
        }
        catch (UnauthorizedAccessException)
        {
            throw new BackupRefusedException($"{file} cannot be opened for writing by this user (left by a restore run as another user?): " +
                "run the restore as the user that owns the folder, or remove the file if no restore is running");
        }
    }

    /// <summary>
    /// Marks the store (or updates its mark) as holding an unproven restore of <paramref name="backup"/>. On SQLite the file is
    /// flushed before it is renamed into place; the folder itself is not flushed (.NET opens no directory handle), so a power
    /// cut in the first seconds could lose a new mark along with the empty database the restore had just begun.
    /// </summary>
    public static async Task SetAsync(SqlDialect dialect, string backup, DateTimeOffset started, string state, CancellationToken ct)
    {
        var json = new JsonObject
        {
            ["backup"] = backup,
            ["started"] = started.UtcDateTime.ToString("O", CultureInfo.InvariantCulture),
            ["state"] = state,
        }.ToJsonString();
        if (FileOf(dialect) is { } file)
        {
            // Written beside, flushed, then renamed over: a reader sees the old mark or the new one, never half of one.
            var temporary = file + ".tmp";
            await using (var s = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None))
            {
                await s.WriteAsync(System.Text.Encoding.UTF8.GetBytes(json), ct);
                s.Flush(flushToDisk: true);
            }
            File.Move(temporary, file, overwrite: true);
            return;
        }
        await using var c = await dialect.OpenAsync(ct);
        await using var tx = await c.BeginTransactionAsync(ct);
        await BackupTables.ExecAsync(c, tx, $"CREATE TABLE IF NOT EXISTS {Table} (id INTEGER PRIMARY KEY, mark TEXT NOT NULL)", ct);
        await using (var cmd = c.CreateCommand())
        {
            cmd.Transaction = tx;
            cmd.CommandText = $"DELETE FROM {Table}; INSERT INTO {Table} (id, mark) VALUES (1, @m)";
            Migrations.AddParam(cmd, "@m", json);
            await cmd.ExecuteNonQueryAsync(ct);
        }
        await tx.CommitAsync(ct);
    }

    /// <summary>Removes the mark: the restored store is proven.</summary>
    public static async Task ClearAsync(SqlDialect dialect, CancellationToken ct)
    {
        if (FileOf(dialect) is { } file)
        {
            File.Delete(file);
            return;
        }
        await using var c = await dialect.OpenAsync(ct);
        await BackupTables.ExecAsync(c, null, $"DROP TABLE IF EXISTS {Table}", ct);
    }

    /// <summary>The store's mark, or null when it holds no unproven restore. A mark that cannot be read still marks the store.</summary>
    public static async Task<RestorePending?> FindAsync(SqlDialect dialect, CancellationToken ct)
    {
        if (dialect is SqliteDialect sqlite) return Find(sqlite.File);
        await using var c = await dialect.OpenAsync(ct);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = $"SELECT to_regclass('{Table}') IS NOT NULL";
        if (await cmd.ExecuteScalarAsync(ct) is not true) return null;
        cmd.CommandText = $"SELECT mark FROM {Table} ORDER BY id LIMIT 1";
        return Parse(await cmd.ExecuteScalarAsync(ct) as string);
    }

    /// <summary>The mark of the SQLite database <paramref name="databaseFile"/>, or null.</summary>
    public static RestorePending? Find(string databaseFile)
    {
        var file = FileOf(databaseFile);
        if (!File.Exists(file)) return null;
        try
        {
            return Parse(File.ReadAllText(file));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return Parse(null);
        }
    }

    /// <summary>What a server, a command or a restore says of a marked store.</summary>
    public static string Describe(RestorePending pending, SqlDialect dialect) =>
        FileOf(dialect) is { } file ? Describe(pending, dialect.Describe(), FolderAdvice, $"the file {file}") : Describe(pending, dialect.Describe(), DatabaseAdvice, $"the table {Table}");

    /// <summary>What a server says of a marked SQLite database <paramref name="databaseFile"/>.</summary>
    public static string Describe(RestorePending pending, string databaseFile) =>
        Describe(pending, $"SQLite file {databaseFile}", FolderAdvice, $"the file {FileOf(databaseFile)}");

    private const string FolderAdvice = "Run `wardline restore` again into this folder (the unfinished store is moved aside as evidence)";

    private const string DatabaseAdvice = "Drop and re-create the database, then run `wardline restore` again into it";

    private static string Describe(RestorePending pending, string store, string advice, string mark)
    {
        var what = pending.State == RestorePending.NotProven
            ? "a restore whose proof failed"
            : "an unfinished restore (it stopped before its proof, or is still running)";
        var started = pending.Started == DateTimeOffset.MinValue ? "" : $", started {pending.Started.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture)} UTC";
        return $"{store} holds {what} of backup {pending.Backup}{started}: it is not proven to be the backed-up data and is not served. " +
            $"{advice}; to serve it anyway after investigating, remove {mark}.";
    }

    private static RestorePending Parse(string? json)
    {
        try
        {
            if (json is not null && JsonNode.Parse(json) is JsonObject o &&
                o["backup"]?.GetValue<string>() is { } backup && o["state"]?.GetValue<string>() is { } state &&
                DateTimeOffset.TryParse(o["started"]?.GetValue<string>(), CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var started))
            {
                return new RestorePending(backup, started, state);
            }
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException or FormatException)
        {
            // Unreadable: the store is still marked.
        }
        return new RestorePending("(unknown: the mark is unreadable)", DateTimeOffset.MinValue, RestorePending.Restoring);
    }
}
