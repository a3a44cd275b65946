using System.Security.Cryptography;
using System.Text;
using Wardline.Ledger;

namespace Wardline.Server.Modules.Ledger;

/// <summary>
/// A place outside the database where signed tree heads are published (docs/formats/ledger-entry.md).
/// Once a head is there, the database cannot be rolled back or rewritten behind it unnoticed.
/// </summary>
internal interface IWitness
{
    string Describe();

    /// <summary>The head-signing public key the witness pinned at its first publication, or null.</summary>
    Task<byte[]?> PinnedKeyAsync(CancellationToken ct);

    /// <summary>Publishes a head (pinning its key if none is pinned yet); durable when it returns.</summary>
    Task PublishAsync(TreeHead head, byte[] publicKey, CancellationToken ct);

    /// <summary>Every head published, in the order of the tree's growth (by size; heads of one size by time).</summary>
    Task<IReadOnlyList<TreeHead>> HeadsAsync(CancellationToken ct);

    /// <summary>The newest head (the largest tree), or null when none was published: all the start-up check needs.</summary>
    async Task<TreeHead?> NewestAsync(CancellationToken ct) => await HeadsAsync(ct) is { Count: > 0 } heads ? heads[^1] : null;
}

/// <summary>A witness a proven restore can adopt: the store's configured one, a folder or a blob container.</summary>
internal interface IAdoptableWitness : IWitness
{
    /// <summary>
    /// After a proven restore to <paramref name="size"/> entries, sets aside the heads beyond it (they describe entries lost with the
    /// old database), so the restored store is not taken for a rollback. Returns where they were set aside, or null when none was beyond.
    /// </summary>
    Task<string?> RebaseAsync(long size, CancellationToken ct);
}

/// <summary>The pinned key's file: a PEM "PUBLIC KEY" (SubjectPublicKeyInfo).</summary>
internal static class WitnessPem
{
    public static string Format(byte[] publicKey) => new string(PemEncoding.Write("PUBLIC KEY", publicKey)) + "\n";

    public static byte[] Parse(string pem, string where)
    {
        try
        {
            return PemEncoding.TryFind(pem, out var fields) && pem[fields.Label].SequenceEqual("PUBLIC KEY")
                ? Convert.FromBase64String(pem[fields.Base64Data].ToString())
                : throw new LedgerFormatException($"{where} is not a PEM public key.");
        }
        catch (FormatException ex)
        {
            throw new LedgerFormatException($"{where} is not a PEM public key.", ex);
        }
    }
}

/// <summary>
/// A folder witness: key.pub (the pinned public key, PEM), heads.jsonl (every head, one JSON per line,
/// appended and fsync'd) and latest.json (the newest head, replaced atomically).
/// </summary>
internal sealed class FolderWitness(string folder) : IAdoptableWitness, IDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);

    private string KeyFile => Path.Combine(folder, "key.pub");

    private string HeadsFile => Path.Combine(folder, "heads.jsonl");

    public string Describe() => $"witness folder {folder}";

    public async Task<byte[]?> PinnedKeyAsync(CancellationToken ct) =>
        File.Exists(KeyFile) ? WitnessPem.Parse(await File.ReadAllTextAsync(KeyFile, ct), KeyFile) : null;

    public async Task PublishAsync(TreeHead head, byte[] publicKey, CancellationToken ct)
    {
        await _gate.WaitAsync(ct);
        try
        {
            Directory.CreateDirectory(folder);
            if (!File.Exists(KeyFile))
            {
                // Several servers may publish at once: the key is written under a unique name, then linked
                // into place only if no key is there yet, so the first one pins and the others find it.
                var temp = KeyFile + "." + Guid.NewGuid().ToString("N") + ".tmp";
                await WriteDurablyAsync(temp, Encoding.ASCII.GetBytes(WitnessPem.Format(publicKey)), rename: null, ct);
                try
                {
                    File.Move(temp, KeyFile, overwrite: false);
                }
                catch (IOException) when (File.Exists(KeyFile))
                {
                    File.Delete(temp);
                }
            }
            var line = head.ToJson().Concat("\n"u8.ToArray()).ToArray();
            // One write per line in append mode: lines from several servers interleave whole, never torn.
            await using (var s = new FileStream(HeadsFile, FileMode.Append, FileAccess.Write, FileShare.ReadWrite))
            {
                await s.WriteAsync(line, ct);
                s.Flush(flushToDisk: true);
            }
            var latest = Path.Combine(folder, "latest.json");
            await WriteDurablyAsync(latest + "." + Guid.NewGuid().ToString("N") + ".tmp", head.ToJson(), rename: latest, ct);
        }
        finally
        {
            _gate.Release();
        }
    }

    public async Task<IReadOnlyList<TreeHead>> HeadsAsync(CancellationToken ct)
    {
        if (!File.Exists(HeadsFile)) return [];
        var heads = new List<TreeHead>();
        var n = 0;
        foreach (var line in await File.ReadAllLinesAsync(HeadsFile, ct))
        {
            n++;
            if (line.Length == 0) continue;
            try
            {
                heads.Add(TreeHead.FromJson(Encoding.UTF8.GetBytes(line)));
            }
            catch (LedgerFormatException ex)
            {
                throw new LedgerFormatException($"{HeadsFile} line {n}: {ex.Message}", ex);
            }
        }
        return heads;
    }

    /// <summary>How much of the end of heads.jsonl the start-up check reads: about 150 heads.</summary>
    internal const int TailBytes = 64 * 1024;

    /// <summary>
    /// The newest head (the largest tree; of one size, the latest) among the lines in the last <see cref="TailBytes"/> of
    /// heads.jsonl. Heads are appended as they are signed, and lines from several servers interleave only by moments, so the
    /// largest tree is among them: the start-up check reads a bounded tail, not a file that grows by a line every interval
    /// (up to 8,640 a day). A full verification reads every line (<see cref="HeadsAsync"/>).
    /// </summary>
    public async Task<TreeHead?> NewestAsync(CancellationToken ct)
    {
        if (!File.Exists(HeadsFile)) return null;
        byte[] tail;
        long start;
        await using (var s = new FileStream(HeadsFile, FileMode.Open, FileAccess.Read, FileShare.ReadWrite))
        {
            start = Math.Max(0, s.Length - TailBytes);
            s.Position = start;
            tail = new byte[s.Length - start];
            await s.ReadExactlyAsync(tail, ct);
        }
        ReadOnlySpan<byte> span = tail;
        // A tail that starts inside a line skips that line's end; one with no line end at all is inside one long line.
        if (start > 0)
        {
            var end = span.IndexOf((byte)'\n');
            span = end < 0 ? [] : span[(end + 1)..];
        }
        TreeHead? newest = null;
        foreach (var range in span.Split((byte)'\n'))
        {
            var line = span[range];
            if (line.IsEmpty) continue;
            TreeHead head;
            try
            {
                head = TreeHead.FromJson(line);
            }
            catch (LedgerFormatException ex)
            {
                throw new LedgerFormatException($"{HeadsFile} near its end: {ex.Message}", ex);
            }
            if (newest is null || head.Size > newest.Size || (head.Size == newest.Size && head.Timestamp > newest.Timestamp)) newest = head;
        }
        // A tail with no whole line (a head longer than the tail): read them all.
        return newest ?? (start > 0 && await HeadsAsync(ct) is { Count: > 0 } all ? all.MaxBy(h => (h.Size, h.Timestamp)) : null);
    }

    /// <summary>
    /// After a proven restore to <paramref name="size"/> entries: the heads the witness holds beyond it describe
    /// entries that were lost with the old database (they fall within the recovery point). They are moved, never
    /// deleted, to heads-before-restore-&lt;time&gt;.jsonl, and heads.jsonl keeps the heads up to the restored size, so
    /// the restored store is not taken for a rollback and can take writes again. The pinned key stays. Returns the
    /// archive's path, or null when no head was beyond the size. The restore records this in the ledger. When no head
    /// is left, the pinned key is archived beside them too.
    /// </summary>
    public async Task<string?> RebaseAsync(long size, CancellationToken ct)
    {
        await _gate.WaitAsync(ct);
        try
        {
            if (!File.Exists(HeadsFile)) return null;
            var lines = await File.ReadAllLinesAsync(HeadsFile, ct);
            var kept = new List<TreeHead>();
            var beyond = false;
            foreach (var line in lines.Where(l => l.Length > 0))
            {
                var head = TreeHead.FromJson(Encoding.UTF8.GetBytes(line));
                if (head.Size <= size) kept.Add(head);
                else beyond = true;
            }
            if (!beyond) return null;
            var archive = Path.Combine(folder, $"heads-before-restore-{DateTime.UtcNow:yyyyMMdd'T'HHmmss'Z'}.jsonl");
            File.Move(HeadsFile, archive, overwrite: false);
            var content = kept.SelectMany(h => h.ToJson().Concat("\n"u8.ToArray())).ToArray();
            await WriteDurablyAsync(HeadsFile + "." + Guid.NewGuid().ToString("N") + ".tmp", content, rename: HeadsFile, ct);
            var latest = Path.Combine(folder, "latest.json");
            if (kept.Count > 0) await WriteDurablyAsync(latest + "." + Guid.NewGuid().ToString("N") + ".tmp", kept[^1].ToJson(), rename: latest, ct);
            else
            {
                // No head is left: the key was pinned after the backup, by a store that no longer exists; the restored
                // store pins its own at its first head.
                File.Delete(latest);
                if (File.Exists(KeyFile)) File.Move(KeyFile, Path.ChangeExtension(archive, ".pub"), overwrite: false);
            }
            return archive;
        }
        finally
        {
            _gate.Release();
        }
    }

    public void Dispose() => _gate.Dispose();

    /// <summary>Writes <paramref name="temp"/> and flushes it to disk, then renames it over <paramref name="rename"/>, if given.</summary>
    private static async Task WriteDurablyAsync(string temp, byte[] bytes, string? rename, CancellationToken ct)
    {
        await using (var s = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
        {
            await s.WriteAsync(bytes, ct);
            s.Flush(flushToDisk: true);
        }
        if (rename is not null) File.Move(temp, rename, overwrite: true);
    }
}
