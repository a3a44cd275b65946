using System.Data.Common;
using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Wardline.Backup;
using Wardline.Backup.Format;
using Wardline.Crypto;
using Wardline.Server.Modules.Ledger;
using Wardline.Server.Modules.Records;
using Wardline.Server.Modules.Records.Storage;

namespace Wardline.Server.Modules.Backup;

/// <summary>Where a run is: a phase and how far through it (objects or entries), for progress bars and the console.</summary>
internal sealed record BackupProgress(string Phase, long Done, long Total);

/// <summary>
/// What a run did. <see cref="Status"/> is completed, unchanged (nothing new since the last backup) or failed;
/// <see cref="FullBecause"/> says why a full backup (a new chain) was taken, null for an incremental.
/// </summary>
internal sealed record BackupRunResult(string RunId, string Target, string Kind, string Status, Manifest? Manifest, int Stored, int Reused, long StoredBytes, TimeSpan Elapsed, string? Error)
{
    public string? FullBecause { get; init; }
}

/// <summary>
/// Takes one backup (docs/formats/backup.md): reads the store as of one snapshot, ships the ledger entries (and the
/// versions they wrote) after the newest backup on the target, the current state of the resources they touched,
/// and the small tables that changed, each as an encrypted segment; then writes the manifest that makes it a backup.
/// A run that fails leaves no manifest; the segments it stored are recorded and the next run reuses them.
/// </summary>
internal sealed class BackupWriter(SqlDialect dialect, RecordKeys keys, TimeProvider time, ILogger<BackupWriter> logger)
{
    /// <summary>Entries per ledger segment: about 8 to 30 MB of plaintext with the versions they wrote.</summary>
    public static int EntriesPerSegment { get; set; } = 8192;

    /// <summary>Resources per state segment.</summary>
    public static int ResourcesPerSegment { get; set; } = 8192;

    public async Task<BackupRunResult> RunAsync(IBackupStore store, BackupOptions options, bool forceFull, string trigger, IProgress<BackupProgress>? progress, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        var runId = Manifest.NewId(time.GetUtcNow());
        var cipher = keys.Cipher;
        var keyring = keys.Keyring;
        var authenticator = new ContentAuthenticator(keyring, BackupCatalog.ManifestPurpose);
        var fingerprints = new ContentAuthenticator(keyring, BackupCatalog.FingerprintPurpose);
        var kind = "pending"; // until the target's newest backup says whether this one is full
        string? fullBecause = null;
        var stored = 0;
        var reused = 0;
        long bytes = 0;
        long? from = null;
        SqliteImage.Snapshot? image = null;
        await RecordRunAsync(runId, store.Display, kind, trigger, ct);
        try
        {
            progress?.Report(new BackupProgress("reading the target", 0, 0));
            await store.PrepareAsync(ct);
            // While retention runs on the target it may be removing a failed run's segments: reuse none of them then.
            await using var lease = await BackupLease.ForBackupAsync(store, runId, ct);
            var mayReuse = lease.Others.Count == 0;
            if (!mayReuse) BackupLog.NotReusing(logger, runId, store.Display, lease.Others[0]);
            var prev = await BackupCatalog.LatestAsync(store, authenticator, ct, reason => BackupLog.ManifestSkipped(logger, runId, store.Display, reason));
            fullBecause = FullBecause(forceFull, prev, options, time.GetUtcNow());
            var full = fullBecause is not null;
            kind = full ? "full" : "incremental";
            // A full backup of a SQLite store ships the database file itself, frozen (or copied) in one snapshot; the
            // manifest's ledger state and table fingerprints are read in that snapshot.
            if (full && options.SqliteImage && dialect is SqliteDialect sqlite)
                image = await SqliteImage.TakeAsync(sqlite, runId, progress, ct);
            await using var own = image is null ? await dialect.OpenAsync(ct) : null;
            await using var ownTx = own is null ? null : await dialect.BeginSnapshotAsync(own, ct);
            var c = own ?? (DbConnection)image!.Connection;
            var tx = ownTx ?? image!.Transaction;
            var (size, root) = await LedgerNodes.ReadStateAsync(c, tx, forUpdate: false, ct);
            var head = (await LedgerNodes.ReadHeadsAsync(c, tx, newestOnly: true, ct)).LastOrDefault();
            from = full ? 0 : prev!.LedgerSize;
            if (size < from)
                throw new BackupRefusedException($"the store's ledger holds {size} entries, fewer than the {from} of the newest backup on {store.Display}: the store was rolled back or restored from an older backup. Take a full backup (--full): it starts a new epoch on the target, newer than the backups of the abandoned history, which stay restorable.");
            // A full backup of a store behind the newest backup (restored to an earlier point) starts a new epoch.
            var epoch = prev is null ? 0 : full && size < prev.LedgerSize ? prev.Epoch + 1 : prev.Epoch;
            await UpdateRunAsync(runId, kind, from, store.Immutability.Description, ct);

            // In restore order; segments being sealed and stored in the background are tasks until they are.
            var objects = new List<Task<ManifestObject>>();
            if (!full) objects.AddRange(prev!.Objects.Where(o => o.Kind != "table").Select(Task.FromResult));
            var pending = new Pending(store, options, runId, _ => Task.CompletedTask, logger);
            var ledgerPending = new Pending(store, options, runId, o => RecordSegmentAsync(runId, o, ct), logger);

            // Ledger segments: reuse those a failed run of the same chain already stored, then make the rest.
            // (An image holds them all.)
            var cursor = image is null ? from.Value : size;
            foreach (var done in image is null && mayReuse ? await ResumableAsync(store, from.Value, size, ct) : [])
            {
                objects.Add(Task.FromResult(done));
                cursor = done.To!.Value;
                reused++;
            }
            // What the two readers below share: the signed heads of the period (read here, in this snapshot: a head
            // signed since could name the same size) and the resources the period wrote (all of them in a full backup).
            var heads = cursor < size ? await BackupTables.ReadAsync(c, tx, "ledger_heads", "upsert", Sql($"SELECT * FROM ledger_heads WHERE size >= {cursor} AND size <= {size} ORDER BY size"), ["size"], ct) : null;
            var rids = image is null ? await ResourceIdsAsync(c, tx, full, from.Value, size, ct) : [];
            var progressOf = new SharedProgress(progress, size - cursor + rids.Count);
            progressOf.Add(0);

            // The ledger's entries below the snapshot's size, their subtree hashes and the versions they wrote never
            // change once committed, so another connection, whose snapshot is newer than this one's, reads the same
            // rows: the ledger segments are read there, on the other core, while this connection reads the resources.
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var ledgerObjects = heads is not null
                ? Task.Run(async () =>
                {
                    try
                    {
                        return await LedgerSegmentsAsync(ledgerPending, cipher, fingerprints, runId, cursor, size, heads, progressOf, stop.Token, ct);
                    }
                    catch
                    {
                        await stop.CancelAsync(); // no point reading the resources of a backup that has failed
                        throw;
                    }
                }, stop.Token)
                : Task.FromResult(new List<Task<ManifestObject>>());
            var resourceObjects = new List<Task<ManifestObject>>();
            try
            {
                var chunkNo = 0;
                for (var i = 0; i < rids.Count; i += ResourcesPerSegment)
                {
                    var chunk = rids.GetRange(i, Math.Min(ResourcesPerSegment, rids.Count - i));
                    var blocks = await ResourceBlocksAsync(c, tx, chunk, full, stop.Token);
                    var name = Sql($"segments/{runId}/resources-{chunkNo++:D6}.seg");
                    resourceObjects.Add(await pending.AddAsync(cipher, fingerprints, name, "resources", null, from.Value, size, blocks, ct));
                    progressOf.Add(chunk.Count);
                }
            }
            catch (Exception resourcesFailure)
            {
                await stop.CancelAsync();
                try
                {
                    await ledgerObjects;
                }
                catch (Exception ledgerFailure) when (ledgerFailure is not OperationCanceledException && resourcesFailure is OperationCanceledException && !ct.IsCancellationRequested)
                {
                    throw; // the ledger reader failed first, and its failure stopped the resources
                }
                catch (Exception)
                {
                    // The resources' failure is the one to report; the ledger reader stopped because of it.
                }
                throw;
            }
            objects.AddRange(await ledgerObjects);
            objects.AddRange(resourceObjects);

            // Whole tables, shipped again only when changed. An image holds them; their fingerprints go in the manifest
            // (and on into the next ones while they stay unchanged), so the next backup knows whether to ship them.
            var tablesChanged = false;
            var imageTables = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var table in BackupTables.Whole)
            {
                var block = await BackupTables.ReadAsync(c, tx, table, "replace", "SELECT * FROM " + table, null, ct);
                var payload = Payload([block]);
                var fingerprint = Convert.ToHexStringLower(fingerprints.Tag(payload));
                if (image is not null)
                {
                    imageTables[table] = fingerprint;
                    continue;
                }
                var before = prev?.Objects.FirstOrDefault(o => o.Kind == "table" && o.Table == table);
                if (!full && before is not null && before.Fingerprint == fingerprint)
                {
                    objects.Add(Task.FromResult(before));
                    continue;
                }
                if (!full && before is null && prev!.ImageTables?.GetValueOrDefault(table) == fingerprint)
                {
                    imageTables[table] = fingerprint;
                    continue;
                }
                tablesChanged = true;
                objects.Add(await pending.AddPayloadAsync(cipher, Sql($"segments/{runId}/table-{table}.seg"), "table", table, null, null, block.Rows.Count, () => payload, fingerprint, null, ct));
            }
            // An image's read transaction lasts until its pieces are shipped: it is what keeps a live file still.
            if (image is null) await tx.RollbackAsync(ct);
            await pending.DrainAsync();
            var (pieces, piecesReused) = image is null ? ([], 0)
                : await SqliteImage.ShipAsync(store, cipher, fingerprints, runId, image, RetainUntil(options), mayReuse ? await EarlierPiecesAsync(store, ct) : [],
                    o => RecordSegmentAsync(runId, o, ct), progress, ct);
            reused += piecesReused;
            List<ManifestObject> manifestObjects = [.. pieces, .. await Task.WhenAll(objects)];
            var piecesStored = pieces.Where(o => o.Name.StartsWith($"segments/{runId}/", StringComparison.Ordinal)).ToList();
            stored = pending.Count + ledgerPending.Count + piecesStored.Count;
            bytes = pending.Bytes + ledgerPending.Bytes + piecesStored.Sum(o => o.Bytes);

            if (!full && size == prev!.LedgerSize && !tablesChanged)
            {
                await lease.DisposeAsync();
                await FinishRunAsync(runId, "unchanged", size, 0, 0, 0, null, null, ct);
                // An idle store checks every interval: keep one "unchanged" row per target, not one a minute.
                await ExecAsync("DELETE FROM backup_runs WHERE target = @t AND status = 'unchanged' AND id <> @id", [("@t", store.Display), ("@id", runId)], ct);
                return new BackupRunResult(runId, store.Display, kind, "unchanged", prev, 0, 0, 0, clock.Elapsed, null);
            }

            var manifest = new Manifest
            {
                Format = Manifest.FormatFor(manifestObjects),
                Id = runId,
                Created = time.GetUtcNow(),
                Kind = kind,
                Chain = full ? runId : prev!.Chain,
                Epoch = epoch,
                Parent = full ? null : prev!.Name,
                Engine = dialect.Name,
                Schema = Migrations.Latest,
                LedgerFrom = from.Value,
                LedgerSize = size,
                LedgerRoot = Convert.ToHexStringLower(root),
                SignedHead = head is null ? null : System.Text.Encoding.UTF8.GetString(head.ToJson()),
                // Every KEK the keyring holds: segments are sealed under the active one, but the data keys inside them
                // are wrapped by whichever KEK wrapped them (a rotation re-wraps them without a ledger entry).
                Keks = [.. keyring.KekIds.Union(full ? [] : prev!.Keks)],
                Objects = manifestObjects,
                ImageTables = imageTables.Count > 0 ? imageTables : null,
                Immutability = store.Immutability.Description,
            };
            progress?.Report(new BackupProgress("manifest", 0, 1));
            await store.PutAsync(manifest.Name, manifest.Seal(authenticator), RetainUntil(options), ct);
            progress?.Report(new BackupProgress("manifest", 1, 1));
            await lease.DisposeAsync(); // what the run reused is listed now
            await FinishRunAsync(runId, "completed", size, stored, reused, bytes, manifest.Name, null, ct);
            // Recorded segments only serve to resume a failed run; a completed backup supersedes every earlier one.
            await ExecAsync("DELETE FROM backup_segments WHERE run_id IN (SELECT id FROM backup_runs WHERE target = @t AND id <= @id)", [("@t", store.Display), ("@id", runId)], ct);
            BackupLog.Completed(logger, runId, kind, store.Display, from.Value, size, stored, reused, bytes);
            return new BackupRunResult(runId, store.Display, kind, "completed", manifest, stored, reused, bytes, clock.Elapsed, null) { FullBecause = fullBecause };
        }
        catch (Exception ex) when (ex is BackupStoreException or BackupFormatException or BackupRefusedException or DbException or IOException)
        {
            var message = ex.Message;
            BackupLog.Failed(logger, runId, store.Display, message);
            await FinishRunAsync(runId, "failed", null, stored, reused, bytes, null, message, CancellationToken.None);
            return new BackupRunResult(runId, store.Display, kind, "failed", null, stored, reused, bytes, clock.Elapsed, message) { FullBecause = fullBecause };
        }
        catch (OperationCanceledException)
        {
            await FinishRunAsync(runId, "failed", null, stored, reused, bytes, null, "cancelled", CancellationToken.None);
            throw;
        }
        catch (Exception ex)
        {
            // A bug, not an expected failure: the run is still closed as failed (never left "running"), then it propagates.
            await FinishRunAsync(runId, "failed", null, stored, reused, bytes, null, "internal error: " + ex.GetType().Name, CancellationToken.None);
            throw;
        }
        finally
        {
            if (image is not null) await image.DisposeAsync();
        }
    }

    /// <summary>
    /// Reads the ledger segments of entries [<paramref name="from"/>, <paramref name="size"/>) on a connection of its
    /// own and hands each to <paramref name="pending"/>; returns their manifest entries in order, once all are stored.
    /// <paramref name="ct"/> stops the reading; an upload under way ends only with <paramref name="uploads"/>, so
    /// that what was stored before the other reader failed is whole (and a ledger segment can be resumed from).
    /// </summary>
    private async Task<List<Task<ManifestObject>>> LedgerSegmentsAsync(Pending pending, EnvelopeCipher cipher, ContentAuthenticator fingerprints, string runId, long from, long size, RowBlock heads, SharedProgress progress, CancellationToken ct, CancellationToken uploads)
    {
        var objects = new List<Task<ManifestObject>>();
        var headSize = Column(heads, "size");
        await using var c = await dialect.OpenAsync(ct);
        await using var tx = await dialect.BeginSnapshotAsync(c, ct);
        for (var a = from; a < size; a += EntriesPerSegment)
        {
            var b = Math.Min(size, a + EntriesPerSegment);
            var blocks = new List<RowBlock>
            {
                await BackupTables.ReadAsync(c, tx, "ledger_entries", "insert", Sql($"SELECT * FROM ledger_entries WHERE idx >= {a} AND idx < {b} ORDER BY idx"), null, ct),
                await BackupTables.ReadAsync(c, tx, "ledger_nodes", "insert", BackupTables.NodesSql(a, b), null, ct),
                await BackupTables.ReadAsync(c, tx, "resource_versions", "insert", Sql(
                    $"SELECT v.* FROM ledger_entries e JOIN resource_versions v ON v.res_type = e.res_type AND v.res_id = e.res_id AND v.version = e.version WHERE e.type = 'write' AND e.idx >= {a} AND e.idx < {b} ORDER BY e.idx"), null, ct),
            };
            // The heads of sizes a..b (one at a segment's boundary goes in both segments: an upsert by size).
            var segmentHeads = new RowBlock(heads.Table, heads.Mode, heads.Columns, heads.KeyColumns);
            foreach (var row in heads.Rows)
            {
                if (row[headSize] is long at && at >= a && at <= b)
                {
                    segmentHeads.Rows.Add(row);
                    segmentHeads.Keys.Add([at]);
                }
            }
            blocks.Add(segmentHeads);
            var name = Sql($"segments/{runId}/ledger-{a:D16}-{b:D16}.seg");
            ct.ThrowIfCancellationRequested();
            objects.Add(await pending.AddAsync(cipher, fingerprints, name, "ledger", null, a, b, blocks, uploads));
            progress.Add(b - a);
        }
        await pending.DrainAsync();
        return objects;
    }

    private static int Column(RowBlock block, string name)
    {
        for (var i = 0; i < block.Columns.Count; i++)
        {
            if (block.Columns[i] == name) return i;
        }
        throw new InvalidOperationException($"{block.Table} has no column {name}");
    }

    private static DateTimeOffset? RetainUntil(BackupOptions options) =>
        options.LockDays > 0 ? DateTimeOffset.UtcNow.AddDays(options.LockDays) : null;

    private static string Sql(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);

    internal static byte[] Payload(IEnumerable<RowBlock> blocks)
    {
        using var ms = new MemoryStream();
        foreach (var b in blocks) RowCodec.Write(ms, b);
        return ms.ToArray();
    }

    private static async Task<List<long>> ResourceIdsAsync(DbConnection c, DbTransaction tx, bool full, long from, long size, CancellationToken ct)
    {
        await using var cmd = c.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandTimeout = 0;
        cmd.CommandText = full
            ? "SELECT rid FROM resources ORDER BY rid"
            : Sql($"SELECT DISTINCT r.rid FROM ledger_entries e JOIN resources r ON r.res_type = e.res_type AND r.res_id = e.res_id WHERE e.type = 'write' AND e.idx >= {from} AND e.idx < {size} ORDER BY r.rid");
        var rids = new List<long>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) rids.Add(r.GetInt64(0));
        return rids;
    }

    /// <summary>The rows of every per-resource table for these resources; a full backup inserts them, an incremental one replaces each resource's rows.</summary>
    private static async Task<List<RowBlock>> ResourceBlocksAsync(DbConnection c, DbTransaction tx, List<long> rids, bool full, CancellationToken ct)
    {
        var where = full ? Sql($"rid BETWEEN {rids[0]} AND {rids[^1]}") : "rid IN (" + BackupTables.IdList(rids) + ")";
        var mode = full ? "insert" : "upsert";
        var ridKeys = rids.Select(r => new object?[] { r }).ToList();
        var blocks = new List<RowBlock>();
        var resources = await BackupTables.ReadAsync(c, tx, "resources", mode, "SELECT * FROM resources WHERE " + where + " ORDER BY rid", full ? null : ["rid"], ct);
        if (!full) resources.Keys.AddRange(ridKeys);
        blocks.Add(resources);
        var dataKeys = await BackupTables.ReadAsync(c, tx, "data_keys", mode,
            "SELECT k.* FROM data_keys k JOIN resources r ON r.res_type = k.res_type AND r.res_id = k.res_id WHERE r." + where + " ORDER BY r.rid", full ? null : ["res_type", "res_id"], ct);
        if (!full) dataKeys.Keys.AddRange(dataKeys.Rows.Select(row => new[] { row[Column(dataKeys, "res_type")], row[Column(dataKeys, "res_id")] }));
        blocks.Add(dataKeys);
        foreach (var table in new[] { "access_facts", "care_relations", "search_token", "search_ref", "search_date" })
        {
            var block = await BackupTables.ReadAsync(c, tx, table, mode, "SELECT * FROM " + table + " WHERE " + where, full ? null : ["rid"], ct);
            if (!full) block.Keys.AddRange(ridKeys);
            blocks.Add(block);
        }
        return blocks;
    }

    /// <summary>Ledger segments a failed run of this chain stored from <paramref name="from"/> on, still on the target, in order.</summary>
    private async Task<List<ManifestObject>> ResumableAsync(IBackupStore store, long from, long size, CancellationToken ct)
    {
        var found = new List<ManifestObject>();
        await using var c = await dialect.OpenAsync(ct);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT s.name, s.sha256, s.bytes, s.from_idx, s.to_idx, s.row_count, s.fingerprint FROM backup_segments s " +
            "JOIN backup_runs r ON r.id = s.run_id WHERE r.target = @t AND r.status = 'failed' AND r.ledger_from = @f AND s.kind = 'ledger' " +
            "AND r.id = (SELECT MAX(id) FROM backup_runs WHERE target = @t AND status = 'failed' AND ledger_from = @f) ORDER BY s.from_idx";
        Migrations.AddParam(cmd, "@t", store.Display);
        Migrations.AddParam(cmd, "@f", from);
        var candidates = new List<ManifestObject>();
        await using (var r = await cmd.ExecuteReaderAsync(ct))
        {
            while (await r.ReadAsync(ct))
            {
                candidates.Add(new ManifestObject
                {
                    Name = r.GetString(0), Sha256 = r.GetString(1), Bytes = r.GetInt64(2), Kind = "ledger",
                    From = r.GetInt64(3), To = r.GetInt64(4), Rows = r.GetInt64(5), Fingerprint = r.GetString(6),
                });
            }
        }
        var cursor = from;
        foreach (var o in candidates)
        {
            if (o.From != cursor || o.To > size) break;
            var info = await store.StatAsync(o.Name, ct);
            if (info is null || info.Length != o.Bytes) break;
            found.Add(o);
            cursor = o.To!.Value;
        }
        return found;
    }

    /// <summary>
    /// The image pieces failed runs stored on this target since its last completed backup (a completed one clears the
    /// record), by range and fingerprint, newest run first: what a new full backup of the image need not upload again.
    /// </summary>
    private async Task<Dictionary<(long From, long To, string Fingerprint), ManifestObject>> EarlierPiecesAsync(IBackupStore store, CancellationToken ct)
    {
        var found = new Dictionary<(long, long, string), ManifestObject>();
        await using var c = await dialect.OpenAsync(ct);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT s.name, s.sha256, s.bytes, s.from_idx, s.to_idx, s.fingerprint FROM backup_segments s " +
            "JOIN backup_runs r ON r.id = s.run_id WHERE r.target = @t AND r.status = 'failed' AND s.kind = @k ORDER BY r.id DESC";
        Migrations.AddParam(cmd, "@t", store.Display);
        Migrations.AddParam(cmd, "@k", ManifestObject.ImageKind);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            var o = new ManifestObject
            {
                Name = r.GetString(0), Sha256 = r.GetString(1), Bytes = r.GetInt64(2), Kind = ManifestObject.ImageKind,
                From = r.GetInt64(3), To = r.GetInt64(4), Fingerprint = r.GetString(5),
            };
            found.TryAdd((o.From.Value, o.To.Value, o.Fingerprint), o);
        }
        return found;
    }

    private async Task RecordRunAsync(string runId, string target, string kind, string trigger, CancellationToken ct) =>
        await ExecAsync("INSERT INTO backup_runs (id, target, kind, trigger_by, started, status, objects, stored_bytes, reused) VALUES (@id, @t, @k, @by, @s, 'running', 0, 0, 0)",
            [("@id", runId), ("@t", target), ("@k", kind), ("@by", trigger), ("@s", time.GetUtcNow().ToUnixTimeMilliseconds())], ct);

    private async Task UpdateRunAsync(string runId, string kind, long? from, string immutability, CancellationToken ct) =>
        await ExecAsync("UPDATE backup_runs SET kind = @k, ledger_from = @f, immutability = @i WHERE id = @id",
            [("@id", runId), ("@k", kind), ("@f", from), ("@i", immutability)], ct);

    private async Task FinishRunAsync(string runId, string status, long? size, int objects, int reused, long bytes, string? manifest, string? error, CancellationToken ct) =>
        await ExecAsync("UPDATE backup_runs SET status = @st, finished = @fin, ledger_size = COALESCE(@z, ledger_size), objects = @o, reused = @r, stored_bytes = @b, manifest = @m, error = @e WHERE id = @id",
            [("@id", runId), ("@st", status), ("@fin", time.GetUtcNow().ToUnixTimeMilliseconds()), ("@z", size), ("@o", objects), ("@r", reused), ("@b", bytes), ("@m", manifest), ("@e", error)], ct);

    private async Task RecordSegmentAsync(string runId, ManifestObject o, CancellationToken ct) =>
        await ExecAsync("INSERT INTO backup_segments (run_id, name, sha256, bytes, kind, from_idx, to_idx, row_count, fingerprint) VALUES (@r, @n, @s, @b, @k, @f, @t, @c, @p)",
            [("@r", runId), ("@n", o.Name), ("@s", o.Sha256), ("@b", o.Bytes), ("@k", o.Kind), ("@f", o.From ?? 0), ("@t", o.To ?? 0), ("@c", o.Rows), ("@p", o.Fingerprint)], ct);

    private async Task ExecAsync(string sql, (string Name, object? Value)[] args, CancellationToken ct)
    {
        await using var gate = await dialect.EnterWriteAsync(ct);
        await using var c = await dialect.OpenAsync(ct);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        foreach (var (name, value) in args) Migrations.AddParam(cmd, name, value);
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>
    /// Why the next backup must be full, starting a new chain (the reason the CLI, the API and the console give), or
    /// null when it can be incremental: asked for, nothing on the target yet, a schema the chain did not start with, or
    /// a chain past one of the bounds on restore time (<see cref="BackupOptions.FullEveryDays"/>,
    /// <see cref="BackupOptions.MaxChainObjects"/>, <see cref="BackupOptions.MaxIncrementalPercent"/>).
    /// </summary>
    internal static string? FullBecause(bool forced, Manifest? prev, BackupOptions options, DateTimeOffset now)
    {
        if (forced) return "a full backup was asked for";
        if (prev is null) return "the target holds no backup yet";
        if (prev.Schema != Migrations.Latest) return $"the store's schema changed since the chain began (version {prev.Schema}, now {Migrations.Latest})";
        if (BackupCatalog.TimeOf(prev.Chain) is { } chainStart && now - chainStart > TimeSpan.FromDays(options.FullEveryDays))
            return $"the chain began more than {options.FullEveryDays} days ago (FullEveryDays)";
        if (prev.Objects.Count > options.MaxChainObjects) return $"the chain has {prev.Objects.Count} objects, more than {options.MaxChainObjects} (MaxChainObjects)";
        if (BackupCatalog.IncrementalsOutweighFull(prev, options))
        {
            var (fullBytes, incrementalBytes) = BackupCatalog.ChainBytes(prev);
            var share = fullBytes > 0 ? (incrementalBytes * 100.0 / fullBytes).ToString("0.#", System.Globalization.CultureInfo.InvariantCulture) + "%" : "all";
            return $"the chain's incremental backups have stored {share} of its full backup's bytes, more than {options.MaxIncrementalPercent}% (MaxIncrementalPercent)";
        }
        return null;
    }

    /// <summary>One phase and one figure (entries and resources done) for the ledger and resource readers, which run at the same time.</summary>
    private sealed class SharedProgress(IProgress<BackupProgress>? progress, long total)
    {
        public const string Phase = "ledger entries, versions and resources";

        private long _done;

        public void Add(long done) => progress?.Report(new BackupProgress(Phase, Interlocked.Add(ref _done, done), total));
    }

    /// <summary>
    /// Encodes, seals and uploads segments on another core while the caller reads the next one from the store: one
    /// segment in flight. An object counts (and a ledger segment is recorded for a later run to resume from) only
    /// once its upload returned.
    /// </summary>
    private sealed class Pending(IBackupStore store, BackupOptions options, string runId, Func<ManifestObject, Task> stored, ILogger logger)
    {
        private Task<ManifestObject>? _inFlight;

        public int Count { get; private set; }

        public long Bytes { get; private set; }

        public Task<Task<ManifestObject>> AddAsync(EnvelopeCipher cipher, ContentAuthenticator fingerprints, string name, string kind, string? table, long? from, long? to, List<RowBlock> blocks, CancellationToken ct) =>
            AddPayloadAsync(cipher, name, kind, table, from, to, blocks.Sum(b => (long)b.Rows.Count), () => Payload(blocks), fingerprint: null, fingerprints, ct);

        /// <summary>Waits for the segment in flight, then starts this one; returns the task of this one's manifest entry.</summary>
        public async Task<Task<ManifestObject>> AddPayloadAsync(EnvelopeCipher cipher, string name, string kind, string? table, long? from, long? to, long rows, Func<byte[]> payload, string? fingerprint, ContentAuthenticator? fingerprints, CancellationToken ct)
        {
            await DrainAsync();
            var task = Task.Run(async () =>
            {
                var plain = payload();
                var segment = SegmentCodec.Seal(cipher, name, runId, plain);
                var o = new ManifestObject
                {
                    Name = name, Sha256 = SegmentCodec.Checksum(segment), Bytes = segment.Length, Kind = kind, Table = table, From = from, To = to, Rows = rows,
                    Fingerprint = fingerprint ?? Convert.ToHexStringLower(fingerprints!.Tag(plain)),
                };
                await store.PutAsync(name, segment, RetainUntil(options), ct);
                return o;
            }, ct);
            _inFlight = task;
            return task;
        }

        public async Task DrainAsync()
        {
            if (_inFlight is not { } f) return;
            _inFlight = null;
            var o = await f;
            BackupLog.SegmentStored(logger, runId, o.Name, o.Bytes);
            Count++;
            Bytes += o.Bytes;
            await stored(o);
        }
    }
}

/// <summary>A backup the writer will not take, with the reason and what to do.</summary>
internal sealed class BackupRefusedException(string message) : Exception(message);
