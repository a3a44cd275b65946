using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;
using Wardline.Backup;
using Wardline.Ledger;

namespace Wardline.Server.Modules.Ledger;

/// <summary>
/// A witness in a blob container or bucket (any backup target: <c>azure://</c>, <c>s3://</c>, <c>file:///</c>), whose
/// objects are written once and, where the target has immutability or Object Lock, locked for a retention period
/// (docs/formats/ledger-entry.md, "Witness"). Objects:
/// <list type="bullet">
/// <item><c>key.pub</c>: the pinned head-signing public key (PEM), created once; several servers may race, the store keeps the first.</item>
/// <item><c>heads/{size:D20}-{unix ms:D13}-{8 hex of SHA-256 of the head}.json</c>: one object a head, so names sort by size, then time.</item>
/// <item><c>rebases/{unix ms:D13}-{size:D20}.json</c>: written by a proven restore that adopts this witness; it names the heads beyond
/// that size, which describe entries lost with the old database. They stay in the store (they may be locked) and are no longer counted.</item>
/// </list>
/// A target that cannot be read is reported as <see cref="LedgerFormatException"/>, so the start-up check names it and the server
/// stays read-only rather than take writes it cannot vouch for.
/// </summary>
internal sealed partial class StoreWitness(IBackupStore store, int retainDays, TimeProvider time) : IAdoptableWitness, IAsyncDisposable
{
    private const string KeyName = "key.pub";
    private readonly SemaphoreSlim _prepare = new(1, 1);
    private readonly ConcurrentDictionary<string, TreeHead> _read = new(StringComparer.Ordinal);
    private volatile bool _prepared;
    private volatile bool _keySeen;

    public string Describe() => $"witness at {store.Display}";

    public async Task<byte[]?> PinnedKeyAsync(CancellationToken ct)
    {
        await PrepareAsync(ct);
        try
        {
            var pem = Encoding.ASCII.GetString(await store.GetAsync(KeyName, ct));
            return WitnessPem.Parse(pem, $"{store.Display}/{KeyName}");
        }
        catch (BackupStoreException ex) when (ex.Kind == BackupStoreErrorKind.NotFound)
        {
            return null;
        }
        catch (BackupStoreException ex)
        {
            throw Unreadable(ex);
        }
    }

    public async Task PublishAsync(TreeHead head, byte[] publicKey, CancellationToken ct)
    {
        await PrepareAsync(ct);
        var until = retainDays > 0 ? time.GetUtcNow().AddDays(retainDays) : (DateTimeOffset?)null;
        // The pin is written once: after this process has seen it, every head need not ask for it again.
        if (!_keySeen && await store.StatAsync(KeyName, ct) is null)
        {
            try
            {
                await store.PutAsync(KeyName, Encoding.ASCII.GetBytes(WitnessPem.Format(publicKey)), until, ct);
            }
            catch (BackupStoreException ex) when (ex.Kind == BackupStoreErrorKind.AlreadyExists)
            {
                // Another server pinned first; TreeHeads compares its key with the pin before every head.
            }
        }
        _keySeen = true;
        var json = head.ToJson();
        await store.PutAsync(HeadName(head, json), json, until, ct);
    }

    public async Task<IReadOnlyList<TreeHead>> HeadsAsync(CancellationToken ct)
    {
        var names = await HeadNamesAsync(ct);
        try
        {
            // Heads are written once: each is fetched once a process, eight at a time.
            await Parallel.ForEachAsync(names.Where(n => !_read.ContainsKey(n)), new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = ct },
                async (name, token) => await FetchAsync(name, token));
        }
        catch (BackupStoreException ex)
        {
            throw Unreadable(ex);
        }
        return [.. names.Select(n => _read[n])];
    }

    /// <summary>The newest head from the names alone, then that one object: a start-up check costs a listing and one read.</summary>
    public async Task<TreeHead?> NewestAsync(CancellationToken ct)
    {
        var names = await HeadNamesAsync(ct);
        if (names.Count == 0) return null;
        try
        {
            return _read.TryGetValue(names[^1], out var head) ? head : await FetchAsync(names[^1], ct);
        }
        catch (BackupStoreException ex)
        {
            throw Unreadable(ex);
        }
    }

    /// <summary>
    /// After a proven restore to <paramref name="size"/> entries: records that the heads beyond it describe entries lost with the
    /// old database, so the restored store is not taken for a rollback. The record lists those heads by name, so heads published
    /// after it count whatever the clocks say. Nothing is deleted or overwritten. Returns the record's name, or null when no head
    /// was beyond the size.
    /// </summary>
    public async Task<string?> RebaseAsync(long size, CancellationToken ct)
    {
        var beyond = (await HeadNamesAsync(ct)).Where(n => SizeOf(n) > size).ToList();
        if (beyond.Count == 0) return null;
        var at = time.GetUtcNow();
        var name = $"rebases/{at.ToUnixTimeMilliseconds().ToString("D13", CultureInfo.InvariantCulture)}-{size.ToString("D20", CultureInfo.InvariantCulture)}.json";
        var body = JsonSerializer.SerializeToUtf8Bytes(new RebaseRecord(size, at.ToUnixTimeMilliseconds(), beyond));
        try
        {
            await store.PutAsync(name, body, retainDays > 0 ? at.AddDays(retainDays) : null, ct);
        }
        catch (BackupStoreException ex)
        {
            throw new LedgerFormatException($"{store.Display}: the rebase record could not be written ({ex.Kind}): {ex.Message}", ex);
        }
        return $"{store.Display}/{name}";
    }

    /// <summary>The names of the heads that count, in size order (then time): every head not set aside by a rebase record.</summary>
    private async Task<List<string>> HeadNamesAsync(CancellationToken ct)
    {
        await PrepareAsync(ct);
        try
        {
            // A folder witness given as file:/// would read as an empty container, and a rollback would pass unnoticed.
            if (await store.StatAsync("heads.jsonl", ct) is not null)
                throw new LedgerFormatException($"{store.Display} is a witness folder (it holds heads.jsonl): configure it as Wardline:Ledger:WitnessPath, or give it to --witness as a path");
            var setAside = new HashSet<string>(StringComparer.Ordinal);
            await foreach (var o in store.ListAsync("rebases/", ct))
                setAside.UnionWith(ParseRebase(o.Name, await store.GetAsync(o.Name, ct)).Heads);
            var names = new List<string>();
            await foreach (var o in store.ListAsync("heads/", ct))
            {
                if (!HeadNamePattern().IsMatch(o.Name)) throw new LedgerFormatException($"{store.Display}/{o.Name} is not a head's name (heads/SIZE-MS-HASH.json)");
                if (!setAside.Contains(o.Name)) names.Add(o.Name);
            }
            return names;
        }
        catch (BackupStoreException ex)
        {
            throw Unreadable(ex);
        }
    }

    private async Task<TreeHead> FetchAsync(string name, CancellationToken ct)
    {
        var bytes = await store.GetAsync(name, ct);
        TreeHead head;
        try
        {
            head = TreeHead.FromJson(bytes);
        }
        catch (LedgerFormatException ex)
        {
            throw new LedgerFormatException($"{store.Display}/{name}: {ex.Message}", ex);
        }
        if (name != HeadName(head, bytes)) throw new LedgerFormatException($"{store.Display}/{name} holds a head its name does not describe (size {head.Size})");
        return _read[name] = head;
    }

    private static long SizeOf(string headName) => long.Parse(headName.AsSpan(6, 20), NumberStyles.None, CultureInfo.InvariantCulture);

    public async ValueTask DisposeAsync()
    {
        await store.DisposeAsync();
        _prepare.Dispose();
    }

    private async Task PrepareAsync(CancellationToken ct)
    {
        if (_prepared) return;
        await _prepare.WaitAsync(ct);
        try
        {
            if (_prepared) return;
            await store.PrepareAsync(ct);
            _prepared = true;
        }
        catch (BackupStoreException ex)
        {
            throw Unreadable(ex);
        }
        finally
        {
            _prepare.Release();
        }
    }

    private static string HeadName(TreeHead head, byte[] json) =>
        string.Create(CultureInfo.InvariantCulture, $"heads/{head.Size:D20}-{head.Timestamp.ToUnixTimeMilliseconds():D13}-{Convert.ToHexStringLower(SHA256.HashData(json).AsSpan(0, 4))}.json");

    private RebaseRecord ParseRebase(string name, byte[] body)
    {
        try
        {
            var record = JsonSerializer.Deserialize<RebaseRecord>(body);
            if (record is null || record.Size < 0 || record.Heads is null) throw new FormatException("incomplete");
            return record;
        }
        catch (Exception ex) when (ex is JsonException or FormatException or NotSupportedException)
        {
            throw new LedgerFormatException($"{store.Display}/{name} is not a rebase record ({{\"size\":N,\"atMs\":T,\"heads\":[names]}})", ex);
        }
    }

    /// <summary>A proven restore's record: the size restored to, when, and the heads beyond it it set aside.</summary>
    private sealed record RebaseRecord(
        [property: JsonPropertyName("size")] long Size,
        [property: JsonPropertyName("atMs")] long AtMs,
        [property: JsonPropertyName("heads")] IReadOnlyList<string> Heads);

    [GeneratedRegex(@"^heads/\d{20}-\d{13}-[0-9a-f]{8}\.json$")]
    private static partial Regex HeadNamePattern();

    private LedgerFormatException Unreadable(BackupStoreException ex) => new($"{store.Display} cannot be read ({ex.Kind}): {ex.Message}", ex);
}
