using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
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
/// <item><c>rebases/{unix ms:D13}-{size:D20}.json</c>: written by a proven restore that adopts this witness. Heads beyond that size signed
/// before it describe entries lost with the old database; they stay in the store (they may be locked) and are no longer counted.</item>
/// </list>
/// A target that cannot be read is reported as <see cref="LedgerFormatException"/>, so the start-up check names it and the server
/// stays read-only rather than take writes it cannot vouch for.
/// </summary>
internal sealed class StoreWitness(IBackupStore store, int retainDays, TimeProvider time) : IAdoptableWitness, IAsyncDisposable
{
    private const string KeyName = "key.pub";
    private readonly SemaphoreSlim _prepare = new(1, 1);
    private readonly ConcurrentDictionary<string, TreeHead> _read = new(StringComparer.Ordinal);
    private volatile bool _prepared;

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
        if (await store.StatAsync(KeyName, ct) is null)
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
        var json = head.ToJson();
        await store.PutAsync(HeadName(head, json), json, until, ct);
    }

    public async Task<IReadOnlyList<TreeHead>> HeadsAsync(CancellationToken ct)
    {
        await PrepareAsync(ct);
        try
        {
            var rebases = new List<(DateTimeOffset At, long Size)>();
            await foreach (var o in store.ListAsync("rebases/", ct))
                rebases.Add(ParseRebase(o.Name, await store.GetAsync(o.Name, ct)));
            var names = new List<string>();
            await foreach (var o in store.ListAsync("heads/", ct)) names.Add(o.Name);
            // Heads are written once: each is fetched once a process, eight at a time.
            await Parallel.ForEachAsync(names.Where(n => !_read.ContainsKey(n)), new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = ct }, async (name, token) =>
            {
                var bytes = await store.GetAsync(name, token);
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
                _read[name] = head;
            });
            return [.. names.Select(n => _read[n]).Where(h => !rebases.Any(r => h.Size > r.Size && h.Timestamp <= r.At))];
        }
        catch (BackupStoreException ex)
        {
            throw Unreadable(ex);
        }
    }

    /// <summary>
    /// After a proven restore to <paramref name="size"/> entries: records that the heads beyond it, signed until now, describe
    /// entries lost with the old database, so the restored store is not taken for a rollback. Nothing is deleted or
    /// overwritten; the marker names the size and the time. Returns the marker's name, or null when no head was beyond the size.
    /// </summary>
    public async Task<string?> RebaseAsync(long size, CancellationToken ct)
    {
        var heads = await HeadsAsync(ct);
        if (!heads.Any(h => h.Size > size)) return null;
        var at = time.GetUtcNow();
        var name = $"rebases/{at.ToUnixTimeMilliseconds().ToString("D13", CultureInfo.InvariantCulture)}-{size.ToString("D20", CultureInfo.InvariantCulture)}.json";
        var body = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object> { ["size"] = size, ["atMs"] = at.ToUnixTimeMilliseconds() });
        await store.PutAsync(name, body, retainDays > 0 ? at.AddDays(retainDays) : null, ct);
        return $"{store.Display}/{name}";
    }

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

    private (DateTimeOffset, long) ParseRebase(string name, byte[] body)
    {
        try
        {
            using var doc = JsonDocument.Parse(body);
            var size = doc.RootElement.GetProperty("size").GetInt64();
            var at = DateTimeOffset.FromUnixTimeMilliseconds(doc.RootElement.GetProperty("atMs").GetInt64());
            if (size < 0) throw new FormatException("negative size");
            return (at, size);
        }
        catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException or FormatException or ArgumentOutOfRangeException)
        {
            throw new LedgerFormatException($"{store.Display}/{name} is not a rebase record ({{\"size\":N,\"atMs\":T}})", ex);
        }
    }

    private LedgerFormatException Unreadable(BackupStoreException ex) => new($"{store.Display} cannot be read ({ex.Kind}): {ex.Message}", ex);
}
