using System.Data.Common;
using System.Diagnostics;
using System.Globalization;
using Wardline.Backup;
using Wardline.Backup.Format;
using Wardline.Crypto;
using Wardline.Server.Modules.Records.Storage;

namespace Wardline.Server.Modules.Backup;

/// <summary>What a restore loaded, and what it could not (only with skip-damaged); <see cref="ImageElapsed"/>: the part of <see cref="Elapsed"/> spent writing a database image (zero without one).</summary>
internal sealed record RestoreReport(Manifest Manifest, int Objects, long Rows, long Bytes, IReadOnlyList<string> Damaged, TimeSpan Elapsed, TimeSpan ImageElapsed);

/// <summary>
/// Restores a backup into an empty store (docs/formats/backup.md, "Restore"): picks the manifest, checks the
/// keyring holds every key it needs before any work, builds the schema of the backup's version, loads every
/// object of the chain in order (each checked against its SHA-256, then authenticated), sets the ledger's size and
/// root from the manifest and upgrades the schema. Proving the result is the caller's next step: the ledger
/// verifier recomputes the tree (which must give the manifest's root) and checks every version against it.
/// </summary>
internal static class BackupRestorer
{
    /// <summary>
    /// The newest backup at or before the given point (ledger size, or time of the backup); the newest of all without one.
    /// Manifests that do not authenticate (planted, altered, or of another keyring) are passed over and handed to
    /// <paramref name="skipped"/>, so the operator sees them; none can stop a restore of the backups this keyring made.
    /// </summary>
    public static async Task<Manifest> ChooseAsync(IBackupStore store, ContentAuthenticator authenticator, DateTimeOffset? at, long? treeSize, CancellationToken ct,
        Action<string>? skipped = null)
    {
        var names = await BackupCatalog.ManifestNamesAsync(store, ct);
        if (names.Count == 0) throw new BackupRefusedException($"{store.Display} holds no backup (no manifest under manifests/)");
        var passed = 0;
        for (var i = names.Count - 1; i >= 0; i--)
        {
            // The ledger size leads the name: a manifest beyond --tree-size is skipped unread.
            if (treeSize is { } limit && BackupCatalog.SizeOf(names[i]) is { } named && named > limit) continue;
            Manifest m;
            try
            {
                m = await BackupCatalog.ReadAsync(store, authenticator, names[i], ct);
            }
            catch (BackupFormatException ex)
            {
                passed++;
                skipped?.Invoke(ex.Message);
                continue;
            }
            if (treeSize is { } n && m.LedgerSize > n) continue;
            if (at is { } t && m.Created > t) continue;
            return m;
        }
        var unsigned = passed > 0 ? $" ({passed} manifest{(passed == 1 ? " was" : "s were")} passed over: not signed by this keyring)" : "";
        throw new BackupRefusedException(treeSize is not null
            ? $"{store.Display} holds no backup of {treeSize} entries or fewer{unsigned}"
            : at is not null
                ? $"{store.Display} holds no backup taken at or before {at.Value.UtcDateTime.ToString("u", CultureInfo.InvariantCulture)}{unsigned}"
                : $"{store.Display} holds no backup this keyring signed{unsigned}");
    }

    /// <summary>Refuses, before any work, a keyring that lacks a key the backup was encrypted under.</summary>
    public static void CheckKeys(Manifest manifest, Keyring keyring)
    {
        var missing = manifest.Keks.Where(k => !keyring.KekIds.Contains(k)).ToList();
        if (missing.Count > 0)
        {
            throw new BackupRefusedException(
                $"backup {manifest.Id} is encrypted under key-encryption key{(missing.Count > 1 ? "s" : "")} {string.Join(", ", missing.Select(k => "'" + k + "'"))}, " +
                $"which the keyring at {keyring.Path} does not hold: give the keyring (or its escrow copy) that made the backup with --keyring");
        }
    }

    /// <summary>Throws unless the destination holds no Wardline tables (a restore never merges into existing data).</summary>
    public static async Task EnsureEmptyAsync(SqlDialect target, CancellationToken ct)
    {
        await using var c = await target.OpenAsync(ct);
        var tables = await BackupTables.ExistingTablesAsync(target, c, ct);
        if (tables.Count > 0 && await RestoreMarker.FindAsync(target, ct) is { } pending)
            throw new BackupRefusedException($"the destination is not empty: {RestoreMarker.Describe(pending, target)}");
        if (tables.Count > 0)
            throw new BackupRefusedException($"the destination ({target.Describe()}) is not empty: it holds {tables.Count} tables. A restore only goes into an empty store; give a new folder or an empty database.");
    }

    public static async Task<RestoreReport> RestoreAsync(IBackupStore store, Manifest manifest, SqlDialect target, EnvelopeCipher cipher, bool skipDamaged, IProgress<BackupProgress>? progress, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        if (manifest.Schema > Migrations.Latest)
            throw new BackupRefusedException($"backup {manifest.Id} was made by a newer Wardline (schema {manifest.Schema}; this one knows {Migrations.Latest}): restore it with that version or newer");
        // A chain whose full backup is a SQLite database image starts with the image's pieces: on SQLite they become the
        // destination's file; on PostgreSQL they are written to a scratch file whose rows are then copied in.
        var images = manifest.Objects.TakeWhile(o => o.Kind == ManifestObject.ImageKind).ToList();
        var objects = manifest.Objects.Skip(images.Count).ToList();
        if (objects.Any(o => o.Kind == ManifestObject.ImageKind))
            throw new BackupFormatException($"manifest {manifest.Name} lists database image pieces after other objects; an image can only start a chain");
        await EnsureEmptyAsync(target, ct);
        // Before the first byte: until the caller proves the restored store and clears the mark, no server serves it.
        await RestoreMarker.SetAsync(target, manifest.Id, DateTimeOffset.UtcNow, RestorePending.Restoring, ct);
        var total = manifest.Objects.Count;
        string? scratch = null;
        if (images.Count > 0 && target is SqliteDialect sqlite)
        {
            await using (var open = await target.OpenAsync(ct)) Microsoft.Data.Sqlite.SqliteConnection.ClearPool((Microsoft.Data.Sqlite.SqliteConnection)open);
            await SqliteImage.WriteAsync(store, images, cipher, sqlite.File, i => progress?.Report(new BackupProgress("restoring", i, total)), ct);
            SqliteImage.EmptyRunLog(sqlite.File);
        }
        else
        {
            await Migrations.ApplyAsync(target, manifest.Schema, ct);
            if (images.Count > 0)
            {
                scratch = Path.Combine(Path.GetTempPath(), $"wardline-restore-{manifest.Chain}-{Guid.NewGuid():N}.db");
                await SqliteImage.WriteAsync(store, images, cipher, scratch, i => progress?.Report(new BackupProgress("restoring", i, total)), ct);
            }
        }
        var imageElapsed = images.Count > 0 ? clock.Elapsed : TimeSpan.Zero;
        try
        {
            return await LoadAsync(store, manifest, images, objects, scratch, target, cipher, skipDamaged, progress, clock, imageElapsed, ct);
        }
        finally
        {
            if (scratch is not null) SqliteImage.Delete(scratch);
        }
    }

    /// <summary>Loads the chain's row objects (all of them, or those after its image) and an image's rows for another engine, then sets the ledger state and upgrades.</summary>
    private static async Task<RestoreReport> LoadAsync(IBackupStore store, Manifest manifest, List<ManifestObject> images, List<ManifestObject> objects, string? scratch, SqlDialect target, EnvelopeCipher cipher, bool skipDamaged, IProgress<BackupProgress>? progress, Stopwatch clock, TimeSpan imageElapsed, CancellationToken ct)
    {
        var damaged = new List<string>();
        long rows = 0, bytes = images.Sum(o => o.Bytes);
        var total = manifest.Objects.Count;
        // A bulk load: the destination is new, so an interrupted restore is simply run again into an empty store.
        // Commits are not flushed one by one (the last one is), several segments go in one transaction, and the
        // secondary indexes are dropped while the chain's full backup loads and built once after it (incremental
        // segments replace rows by key, which needs them). An image restored as the SQLite file has its indexes.
        await using var c = await target.OpenAsync(ct);
        await BulkModeAsync(target, c, on: true, ct);
        var loadsFull = scratch is not null || (images.Count == 0 && objects.Count > 0 && BackupCatalog.OfFullBackup(manifest, objects[0]));
        var indexes = loadsFull ? await DropSecondaryIndexesAsync(target, c, ct) : [];
        var tx = await c.BeginTransactionAsync(ct);
        long inTransaction = 0;
        // A commit every 128 MB of segments (rows of an image count 1 KB each), so no one transaction grows without bound.
        async Task LoadedAsync(long added)
        {
            inTransaction += added;
            if (inTransaction <= 128L * 1024 * 1024) return;
            await tx.CommitAsync(ct);
            await tx.DisposeAsync();
            tx = await c.BeginTransactionAsync(ct);
            inTransaction = 0;
        }
        try
        {
            if (scratch is not null)
            {
                progress?.Report(new BackupProgress("restoring", images.Count, total));
                await SqliteImage.CopyRowsAsync(scratch, target, c, () => tx, n =>
                {
                    rows += n;
                    return LoadedAsync(n * 1024L);
                }, ct);
            }
            Task<(ManifestObject, List<RowBlock>?, string?)>? next = objects.Count > 0 ? FetchAsync(store, objects[0], cipher, ct) : null;
            for (var i = 0; i < objects.Count; i++)
            {
                progress?.Report(new BackupProgress("restoring", images.Count + i, total));
                var (o, blocks, problem) = await next!;
                next = i + 1 < objects.Count ? FetchAsync(store, objects[i + 1], cipher, ct) : null;
                if (problem is not null)
                {
                    if (!skipDamaged)
                    {
                        if (next is not null) _ = next.ContinueWith(t => t.Exception, TaskScheduler.Default);
                        throw new BackupRefusedException(problem + ". The restore stopped; the destination is incomplete and must not be used. Run again with --skip-damaged to restore everything else and get a list of what is missing.");
                    }
                    damaged.Add($"{problem} (it held {Describe(o)})");
                    continue;
                }
                if (indexes.Count > 0 && !BackupCatalog.OfFullBackup(manifest, o))
                {
                    await CreateIndexesAsync(c, tx, indexes, ct);
                    indexes = [];
                }
                bytes += o.Bytes;
                foreach (var block in blocks!)
                {
                    await BackupTables.ApplyAsync(target, c, tx, block, ct);
                    rows += block.Rows.Count;
                }
                await LoadedAsync(o.Bytes);
            }
            if (indexes.Count > 0) await CreateIndexesAsync(c, tx, indexes, ct);
            await tx.CommitAsync(ct);
        }
        finally
        {
            await tx.DisposeAsync();
        }
        await BulkModeAsync(target, c, on: false, ct);
        progress?.Report(new BackupProgress("restoring", total, total));

        await using (var last = await target.BeginWriteTransactionAsync(c, ct))
        {
            await using (var cmd = c.CreateCommand())
            {
                cmd.Transaction = last;
                cmd.CommandText = "UPDATE ledger_state SET size = @s, root = @r WHERE id = 1";
                Migrations.AddParam(cmd, "@s", manifest.LedgerSize);
                Migrations.AddParam(cmd, "@r", Convert.FromHexString(manifest.LedgerRoot));
                await cmd.ExecuteNonQueryAsync(ct);
            }
            if (!target.InProcess)
            {
                foreach (var (table, column) in BackupTables.Identities)
                {
                    await BackupTables.ExecAsync(c, last, $"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), COALESCE((SELECT MAX({column}) FROM {table}), 0) + 1, false)", ct);
                }
            }
            await last.CommitAsync(ct);
        }
        // The load wrote the file without a journal and without flushing: the checkpoint copies the last commit's
        // frames into it and then fsyncs the file, which makes everything written before durable too.
        if (target.InProcess) await BackupTables.ExecAsync(c, null, "PRAGMA wal_checkpoint(TRUNCATE)", ct);
        await Migrations.ApplyAsync(target, ct);
        return new RestoreReport(manifest, total - damaged.Count, rows, bytes, damaged, clock.Elapsed, imageElapsed);
    }

    /// <summary>Reads an object and opens it as row blocks; a problem (missing, wrong checksum, fails to open) is returned, naming the object.</summary>
    internal static Task<(ManifestObject, List<RowBlock>?, string?)> FetchAsync(IBackupStore store, ManifestObject o, EnvelopeCipher cipher, CancellationToken ct) =>
        FetchAsync(store, o, segment => RowCodec.ReadAll(SegmentCodec.Open(cipher, o.Name, segment)), ct);

    /// <summary>
    /// Reads an object, checks its length and SHA-256, then opens it with <paramref name="open"/> (which authenticates,
    /// decompresses and parses it, throwing <see cref="BackupFormatException"/>) on a worker thread; a problem is
    /// returned, naming the object.
    /// </summary>
    internal static async Task<(ManifestObject, T?, string?)> FetchAsync<T>(IBackupStore store, ManifestObject o, Func<byte[], T> open, CancellationToken ct)
        where T : class
    {
        byte[] bytes;
        try
        {
            // Its size first: an object replaced by a far larger one is refused before anything is downloaded.
            var info = await store.StatAsync(o.Name, ct);
            if (info is null) return (o, null, $"segment {o.Name} is missing from {store.Display}");
            if (info.Length != o.Bytes) return (o, null, $"segment {o.Name} is {info.Length} bytes, the manifest says {o.Bytes}: it was truncated or replaced");
            bytes = await store.GetAsync(o.Name, ct);
        }
        catch (BackupStoreException ex) when (ex.Kind == BackupStoreErrorKind.NotFound)
        {
            return (o, null, $"segment {o.Name} is missing from {store.Display}");
        }
        if (bytes.Length != o.Bytes) return (o, null, $"segment {o.Name} is {bytes.Length} bytes, the manifest says {o.Bytes}: it was truncated or replaced");
        try
        {
            return await Task.Run(() => SegmentCodec.Checksum(bytes) != o.Sha256
                ? (o, (T?)null, $"segment {o.Name} does not match its SHA-256 in the manifest: it is corrupted or was altered")
                : (o, open(bytes), (string?)null), ct);
        }
        catch (BackupFormatException ex)
        {
            return (o, null, ex.Message);
        }
    }

    /// <summary>
    /// SQLite: no journal while the new file loads (pages are written once, into the file, not first into the WAL
    /// and again at the checkpoint), commits not flushed, a larger page cache; PostgreSQL: asynchronous commit.
    /// Off again puts the file back in WAL mode (checked; the caller's final checkpoint then fsyncs the file). Leaving
    /// WAL needs the only connection to the file, so the pool's idle ones (schema and emptiness checks) are closed first.
    /// </summary>
    private static async Task BulkModeAsync(SqlDialect target, DbConnection c, bool on, CancellationToken ct)
    {
        if (!target.InProcess)
        {
            await BackupTables.ExecAsync(c, null, on ? "SET synchronous_commit = off" : "SET synchronous_commit = on", ct);
            return;
        }
        if (on) Microsoft.Data.Sqlite.SqliteConnection.ClearPool((Microsoft.Data.Sqlite.SqliteConnection)c);
        await BackupTables.ExecAsync(c, null, on
            ? "PRAGMA synchronous=OFF; PRAGMA cache_size=-262144; PRAGMA journal_mode=OFF;"
            : "PRAGMA synchronous=FULL; PRAGMA journal_mode=WAL;", ct);
        if (!on)
        {
            await using var cmd = c.CreateCommand();
            cmd.CommandText = "PRAGMA journal_mode";
            var mode = (string?)await cmd.ExecuteScalarAsync(ct);
            if (!string.Equals(mode, "wal", StringComparison.OrdinalIgnoreCase))
                throw new InvalidOperationException($"the restored store did not return to WAL mode (it is in '{mode}' mode)");
        }
    }

    /// <summary>Drops every index that is not a primary key or constraint, returning the statements that make them again.</summary>
    private static async Task<List<string>> DropSecondaryIndexesAsync(SqlDialect target, DbConnection c, CancellationToken ct)
    {
        var indexes = new List<(string Name, string Sql)>();
        await using (var cmd = c.CreateCommand())
        {
            cmd.CommandText = target.InProcess
                ? "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
                : "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() AND indexname NOT IN (SELECT conname FROM pg_constraint)";
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct)) indexes.Add((r.GetString(0), r.GetString(1)));
        }
        foreach (var (name, _) in indexes) await BackupTables.ExecAsync(c, null, $"DROP INDEX {name}", ct);
        return [.. indexes.Select(i => i.Sql)];
    }

    private static async Task CreateIndexesAsync(DbConnection c, DbTransaction tx, List<string> indexes, CancellationToken ct)
    {
        foreach (var sql in indexes) await BackupTables.ExecAsync(c, tx, sql, ct);
    }

    /// <summary>What an object holds, in words, for the list of what a damaged restore is missing.</summary>
    public static string Describe(ManifestObject o) => o.Kind switch
    {
        "ledger" => $"ledger entries {o.From} to {o.To - 1} and the resource versions they wrote",
        "resources" => $"the current state (index, access facts, data keys) of resources written in entries {o.From} to {o.To - 1}",
        "table" => $"the table {o.Table}",
        ManifestObject.ImageKind => $"bytes {o.From} to {o.To - 1} of the full backup's database image",
        _ => o.Kind,
    };
}
