using System.Buffers;
using System.Data.Common;
using Microsoft.Data.Sqlite;
using Microsoft.Win32.SafeHandles;
using Wardline.Backup;
using Wardline.Backup.Format;
using Wardline.Backup.Stores;
using Wardline.Crypto;
using Wardline.Server.Modules.Records.Storage;

namespace Wardline.Server.Modules.Backup;

/// <summary>
/// A full backup of a SQLite store as its database file (docs/formats/backup.md, "Database image"; ADR 0010, 0012).
/// The store's own file is frozen by a read transaction while it is shipped (<see cref="TakeAsync"/>), or, where it
/// cannot be, copied beside the store by SQLite's online backup in one read transaction while writers go on. The image
/// is shipped in sealed pieces of <see cref="ChunkBytes"/>, and a restore writes the pieces back as the destination's
/// file. That makes a full backup and its restore a file read, zstd and AES-GCM, instead of reading, decoding and
/// inserting every row and rebuilding every index.
/// </summary>
internal static class SqliteImage
{
    /// <summary>Bytes of the file per image segment (a multiple of every SQLite page size).</summary>
    public static int ChunkBytes { get; set; } = 64 << 20;

    /// <summary>zstd level 1: the pages are mostly AES-GCM bodies and random index keys, where higher levels gain little and cost much.</summary>
    private const int CompressionLevel = 1;

    /// <summary>Segments sealed and stored at once (one per core here; each holds about three times <see cref="ChunkBytes"/> in memory).</summary>
    private const int Workers = 2;

    /// <summary>
    /// A consistent image of the store to ship: the file, how many of its bytes, and the connection and read
    /// transaction that fix its snapshot (the manifest's ledger state and table fingerprints are read on them).
    /// Disposing it ends the transaction; for a copy it also closes and removes the copy.
    /// </summary>
    public sealed class Snapshot(SqliteConnection connection, DbTransaction transaction, SafeFileHandle file, long length, string? copy) : IAsyncDisposable
    {
        public SqliteConnection Connection => connection;

        public DbTransaction Transaction => transaction;

        public SafeFileHandle File => file;

        public long Length => length;

        /// <summary>True when the store's own file is shipped (frozen by the read transaction), not a copy of it.</summary>
        public bool Live => copy is null;

        public async ValueTask DisposeAsync()
        {
            await transaction.DisposeAsync();
            await connection.DisposeAsync();
            if (copy is null) return; // the live file's handle stays open: see LiveHandles
            file.Dispose();
            Delete(copy);
        }
    }

    /// <summary>
    /// Handles on live store files, opened for a full backup and never closed while the process lives. On Linux,
    /// closing any descriptor of a file drops every POSIX lock the process holds on it, and SQLite's connections in
    /// this process hold such locks on the store's file; dropping them would let another process take the store
    /// for its own (delete the WAL it believes nobody uses). One handle per full backup, kept.
    /// </summary>
    private static readonly List<SafeFileHandle> LiveHandles = [];

    /// <summary>
    /// A consistent image of a SQLite store for a full backup. Preferably the store's own file, frozen (see
    /// <see cref="FreezeAsync"/>): nothing is copied, so the backup needs no free space the size of the store and
    /// does not write it all once more. Where the file cannot be frozen (not Linux, not in WAL mode, an older reader
    /// holding back the checkpoint), a copy made by SQLite's online backup (<see cref="CopyAsync"/>).
    /// </summary>
    public static async Task<Snapshot> TakeAsync(SqliteDialect source, string runId, IProgress<BackupProgress>? progress, CancellationToken ct)
    {
        if (OperatingSystem.IsLinux() && await FreezeAsync(source, ct) is { } live) return live;
        progress?.Report(new BackupProgress("copying the database", 0, 0));
        var path = await CopyAsync(source, runId, ct);
        SqliteConnection? c = null;
        try
        {
            c = Open(path);
            var tx = c.BeginTransaction(deferred: true);
            var file = System.IO.File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
            return new Snapshot(c, tx, file, RandomAccess.GetLength(file), path);
        }
        catch
        {
            if (c is not null) await c.DisposeAsync();
            Delete(path);
            throw;
        }
    }

    /// <summary>
    /// Freezes the store's file for as long as the returned snapshot's read transaction lasts, or returns null.
    /// SQLite in WAL mode writes the database file only when a checkpoint copies WAL frames into it, and a
    /// checkpoint must first hold WAL read-lock 0 exclusively; a reader that begins while the WAL is wholly copied
    /// into the file reads the file alone and holds read-lock 0 shared (sqlite's wal.c, walTryBeginRead and
    /// walCheckpoint). So: take the write lock (no commit can happen), checkpoint passively, and if every frame is
    /// now in the file, begin the read before letting writers go. Writers then go on into the WAL while the file
    /// stays exactly the snapshot's.
    /// </summary>
    private static async Task<Snapshot?> FreezeAsync(SqliteDialect source, CancellationToken ct)
    {
        SqliteConnection? reader = null;
        DbTransaction? readTx = null;
        try
        {
            await using (await source.EnterWriteAsync(ct))
            await using (var writer = (SqliteConnection)await source.OpenAsync(ct))
            {
                if (!string.Equals(Scalar<string>(writer, null, "PRAGMA journal_mode"), "wal", StringComparison.OrdinalIgnoreCase)) return null;
                using var writeLock = writer.BeginTransaction(deferred: false);
                reader = (SqliteConnection)await source.OpenAsync(ct);
                long busy, log, copied;
                using (var cmd = reader.CreateCommand())
                {
                    cmd.CommandText = "PRAGMA wal_checkpoint(PASSIVE)";
                    using var r = cmd.ExecuteReader();
                    if (!r.Read()) return null;
                    (busy, log, copied) = (r.GetInt64(0), r.GetInt64(1), r.GetInt64(2));
                }
                if (busy != 0 || log != copied) return null;
                readTx = reader.BeginTransaction(System.Data.IsolationLevel.Serializable, deferred: true);
                Scalar<long>(reader, readTx, "SELECT COUNT(*) FROM sqlite_master"); // the read begins here, on the file alone
                writeLock.Rollback();
            }
            var length = Scalar<long>(reader, readTx, "PRAGMA page_count") * Scalar<long>(reader, readTx, "PRAGMA page_size");
            var file = System.IO.File.OpenHandle(source.File, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            lock (LiveHandles) LiveHandles.Add(file);
            if (RandomAccess.GetLength(file) < length) return null;
            var snapshot = new Snapshot(reader, readTx, file, length, copy: null);
            reader = null;
            readTx = null;
            return snapshot;
        }
        catch (SqliteException)
        {
            return null; // busy beyond the timeout, or the like: the copy is the safe way
        }
        finally
        {
            if (readTx is not null) await readTx.DisposeAsync();
            if (reader is not null) await reader.DisposeAsync();
        }
    }

    private static T Scalar<T>(SqliteConnection c, DbTransaction? tx, string sql)
    {
        using var cmd = c.CreateCommand();
        cmd.Transaction = (SqliteTransaction?)tx;
        cmd.CommandText = sql;
        return (T)Convert.ChangeType(cmd.ExecuteScalar()!, typeof(T), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// Copies the store into a new file beside it (<c>wardline.db.image-RUNID</c>, so the disk needs the store's size
    /// free once more) and returns its path. The copy is the store as it stands, like a frozen live file: in WAL mode
    /// (with no WAL of its own) and with the run log, which the restorer empties (<see cref="EmptyRunLog"/>).
    /// </summary>
    public static async Task<string> CopyAsync(SqliteDialect source, string runId, CancellationToken ct)
    {
        var path = source.File + ".image-" + runId;
        Delete(path);
        try
        {
            CreatePrivate(path).Dispose();
            await using var from = (SqliteConnection)await source.OpenAsync(ct);
            await using var to = Open(path);
            Exec(to, "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;");
            // The source's pages are read through a memory map for the copy: half the time of a read() call per page
            // (5.7 s instead of 10.8 s for 3.5 GB here). The pooled connection goes back without it.
            Exec(from, "PRAGMA mmap_size=1099511627776;");
            try
            {
                await Task.Run(() => from.BackupDatabase(to), ct);
            }
            finally
            {
                Exec(from, "PRAGMA mmap_size=0;");
            }
            return path;
        }
        catch
        {
            Delete(path);
            throw;
        }
    }

    /// <summary>A connection of its own to a copy or a restored file (no pool, so closing it releases the file).</summary>
    public static SqliteConnection Open(string path)
    {
        var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Mode = SqliteOpenMode.ReadWriteCreate, Pooling = false }.ToString());
        c.Open();
        return c;
    }

    /// <summary>A new file readable and writable by this account only (0600): a store's file, its copy, or a scratch image in the shared temp folder.</summary>
    private static FileStream CreatePrivate(string path)
    {
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None, Options = FileOptions.Asynchronous };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        return new FileStream(path, options);
    }

    /// <summary>Removes a database file and its journals, if there.</summary>
    public static void Delete(string path)
    {
        foreach (var p in new[] { path, path + "-wal", path + "-shm", path + "-journal" }) File.Delete(p);
    }

    /// <summary>
    /// Seals the file in pieces (<c>segments/RUN/image-NNNNNN.seg</c>) and stores them, two at a time; returns their
    /// manifest entries in file order and how many were reused. <c>from</c>/<c>to</c> are each piece's byte range, and its
    /// fingerprint (a keyed hash of its bytes) lets a later run recognise it: a piece that a failed run already stored,
    /// with the same range and the same bytes, is reused rather than sealed and uploaded again (<paramref name="earlier"/>),
    /// and each piece stored is reported to <paramref name="stored"/> so the next run can do the same.
    /// </summary>
    public static async Task<(List<ManifestObject> Pieces, int Reused)> ShipAsync(
        IBackupStore store, EnvelopeCipher cipher, ContentAuthenticator fingerprints, string runId, Snapshot image, DateTimeOffset? retainUntil,
        IReadOnlyDictionary<(long From, long To, string Fingerprint), ManifestObject> earlier, Func<ManifestObject, Task> stored,
        IProgress<BackupProgress>? progress, CancellationToken ct)
    {
        var length = image.Length;
        var file = image.File;
        var count = (int)((length + ChunkBytes - 1) / ChunkBytes);
        var objects = new ManifestObject[count];
        var done = 0;
        var reused = 0;
        progress?.Report(new BackupProgress("database image", 0, length));
        await Parallel.ForAsync(0, count, new ParallelOptions { MaxDegreeOfParallelism = Workers, CancellationToken = ct }, async (i, token) =>
        {
            var from = (long)i * ChunkBytes;
            var size = (int)Math.Min(ChunkBytes, length - from);
            var name = FormattableString.Invariant($"segments/{runId}/image-{i:D6}.seg");
            // Pooled: 64 MB arrays made afresh for every piece cost more in page faults and zeroing than the compression.
            var plain = ArrayPool<byte>.Shared.Rent(size);
            byte[] segment;
            int sealedLength;
            string fingerprint;
            try
            {
                // A copy is read once: its pages go back to the kernel for the next pieces and the target's files. The
                // live file's stay: they are the server's working set.
                var read = image.Live ? await FilePages.ReadAsync(file, plain.AsMemory(0, size), from, token) : await FilePages.ReadOnceAsync(file, plain.AsMemory(0, size), from, token);
                if (read != size) throw new IOException($"the database image ended at byte {from + read}, before its {length} bytes");
                fingerprint = Convert.ToHexStringLower(fingerprints.Tag(plain.AsSpan(0, size)));
                // Reused only whole, and, on a target that locks, only when locked as long as this backup's own pieces would be:
                // an older run's lock ends sooner, and the manifest must not outlive what it lists.
                if (earlier.TryGetValue((from, from + size, fingerprint), out var kept) && await store.StatAsync(kept.Name, token) is { } info && info.Length == kept.Bytes
                    && (retainUntil is null || !store.Immutability.Supported || info.LockedUntil >= retainUntil))
                {
                    objects[i] = kept;
                    Interlocked.Increment(ref reused);
                    progress?.Report(new BackupProgress("database image", Math.Min(length, (long)Interlocked.Increment(ref done) * ChunkBytes), length));
                    return;
                }
                segment = SegmentCodec.SealPooled(cipher, name, runId, plain.AsSpan(0, size), CompressionLevel, out sealedLength);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(plain);
            }
            try
            {
                await store.PutAsync(name, segment.AsMemory(0, sealedLength), retainUntil, token);
                objects[i] = new ManifestObject
                {
                    Name = name, Sha256 = SegmentCodec.Checksum(segment.AsSpan(0, sealedLength)), Bytes = sealedLength, Kind = ManifestObject.ImageKind,
                    From = from, To = from + size, Fingerprint = fingerprint,
                };
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(segment);
            }
            await stored(objects[i]);
            progress?.Report(new BackupProgress("database image", Math.Min(length, (long)Interlocked.Increment(ref done) * ChunkBytes), length));
        });
        return ([.. objects], reused);
    }

    /// <summary>
    /// Writes a chain's image pieces as the file <paramref name="path"/>, each checked (present, size, SHA-256,
    /// authenticated, exactly its byte range), two at a time at their own offsets, and flushes the file to disk. The
    /// ranges must tile the file from byte 0 (checked before anything is read). A damaged piece stops the restore: a
    /// database file cannot be restored in part, so nothing is skipped.
    /// </summary>
    public static async Task WriteAsync(IBackupStore store, IReadOnlyList<ManifestObject> pieces, EnvelopeCipher cipher, string path, Action<int> progress, CancellationToken ct)
    {
        long end = 0;
        foreach (var o in pieces)
        {
            if (o.From != end || o.To is not { } to || to <= end)
                throw Stopped($"segment {o.Name} holds bytes {o.From} to {o.To} of the database image, but the pieces before it end at byte {end}");
            end = to;
        }
        Delete(path);
        await using var stream = CreatePrivate(path);
        var file = stream.SafeFileHandle;
        var done = 0;
        // Two writers: the kernel's copy into the page cache is a large share of a restore's CPU, and one thread's
        // writes would leave the other core idle behind it.
        await Parallel.ForAsync(0, pieces.Count, new ParallelOptions { MaxDegreeOfParallelism = Workers, CancellationToken = ct }, async (i, token) =>
        {
            var (o, piece, problem) = await BackupRestorer.FetchAsync(store, pieces[i], segment => Open(cipher, pieces[i], segment), token);
            if (problem is not null) throw Stopped(problem);
            using (piece)
            {
                await FilePages.WriteAsync(file, piece!.Bytes, o.From!.Value, token);
            }
            progress(Interlocked.Increment(ref done));
        });
        RandomAccess.FlushToDisk(file);
    }

    /// <summary>
    /// Empties the run log of a database written from an image: <c>backup_runs</c>, <c>backup_segments</c> and
    /// <c>backup_watch</c> describe the backed-up server's targets and are never restored. (Images hold them; those made
    /// before ADR 0012 were emptied when made, and this does nothing to them; those made before migration 17 have no
    /// <c>backup_watch</c>.)
    /// </summary>
    public static void EmptyRunLog(string path)
    {
        using var c = Open(path);
        Exec(c, "DELETE FROM backup_runs; DELETE FROM backup_segments;");
        if (Scalar<long>(c, null, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'backup_watch'") > 0) Exec(c, "DELETE FROM backup_watch;");
    }

    /// <summary>Opens an image piece into a pooled buffer and checks that it holds exactly its byte range.</summary>
    public static Piece Open(EnvelopeCipher cipher, ManifestObject o, byte[] segment)
    {
        var buffer = SegmentCodec.OpenPooled(cipher, o.Name, segment, out var length);
        if (length == o.To - o.From) return new Piece(buffer, length);
        ArrayPool<byte>.Shared.Return(buffer);
        throw new BackupFormatException($"segment {o.Name} holds {length} bytes, but its range in the manifest is {o.To - o.From}");
    }

    /// <summary>An opened image piece in a pooled buffer; disposing gives the buffer back.</summary>
    public sealed class Piece(byte[] buffer, int length) : IDisposable
    {
        private byte[]? _buffer = buffer;

        public ReadOnlyMemory<byte> Bytes => (_buffer ?? throw new ObjectDisposedException(nameof(Piece))).AsMemory(0, length);

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _buffer, null) is { } b) ArrayPool<byte>.Shared.Return(b);
        }
    }

    private static BackupRefusedException Stopped(string problem) =>
        new(problem + ". It is part of the full backup's database image, which cannot be restored in part, so the restore stopped; " +
            "the destination is incomplete and must not be used. Restore an older backup chain instead (--at or --tree-size before this chain's full backup).");

    /// <summary>
    /// Copies every restored table of an image file into another engine's store (PostgreSQL), in blocks, the way row
    /// segments are applied: the same tables in the same order as a row backup, values converted the same way.
    /// </summary>
    public static async Task CopyRowsAsync(string path, SqlDialect target, DbConnection c, Func<DbTransaction> transaction, Func<long, Task> applied, CancellationToken ct)
    {
        await using var image = Open(path);
        var held = new HashSet<string>(StringComparer.Ordinal);
        await using (var cmd = image.CreateCommand())
        {
            cmd.CommandText = "SELECT name FROM sqlite_master WHERE type = 'table'";
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct)) held.Add(r.GetString(0));
        }
        // An image of an older schema lacks the tables later migrations add; they are made (empty) by the upgrade after the load.
        foreach (var table in BackupTables.Ledger.Concat(BackupTables.ByResource).Concat(BackupTables.Whole).Where(held.Contains))
        {
            // Whole tables replace what the schema's migrations seeded (search parameters, the migrations' own rows).
            if (BackupTables.Whole.Contains(table)) await BackupTables.ExecAsync(c, transaction(), "DELETE FROM " + table, ct);
            await BackupTables.ReadBlocksAsync(image, null, table, "insert", "SELECT * FROM " + table, null, 4096, async block =>
            {
                await BackupTables.ApplyAsync(target, c, transaction(), block, ct);
                await applied(block.Rows.Count);
            }, ct);
        }
    }

    private static void Exec(SqliteConnection c, string sql)
    {
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        cmd.ExecuteNonQuery();
    }
}
