using System.Text.Json;
using Wardline.Backup;
using Wardline.Backup.Format;

namespace Wardline.Server.Modules.Backup;

/// <summary>
/// Keeps a backup run's reuse of what failed runs stored and retention's removal of segments no backup lists from
/// overlapping on one target, whoever runs them: the server, another server, <c>wardline backup prune</c> on another
/// machine. Each first writes its lease (<c>leases/backup-ID.json</c> or <c>leases/prune-ID.json</c>), then lists the
/// leases and looks for the other kind's. With a target that lists what was written before the listing (Azure, S3, a
/// folder), of two that overlap at least one sees the other: a backup that sees a prune reuses nothing and uploads
/// afresh; a prune that sees a backup removes no unlisted segment this time. Neither waits.
/// A lease written more than <see cref="Life"/> before the one just written (by the target's own clock, so the
/// servers' clocks do not matter) was left by a process that died: it is ignored, and prune removes it. A lease the
/// target will not let Wardline delete (a default retention on the container or bucket) is marked ended instead.
/// </summary>
internal sealed class BackupLease : IAsyncDisposable
{
    public const string Prefix = "leases/";

    /// <summary>
    /// How long a lease counts unless ended: far longer than any backup or prune runs (a first full backup over a slow link
    /// included). A process that dies holding one stops the other kind's work on the target (pruning segments, or reusing
    /// a failed run's) until then.
    /// </summary>
    public static readonly TimeSpan Life = TimeSpan.FromDays(7);

    private readonly IBackupStore _store;
    private int _released;

    private BackupLease(IBackupStore store, string name, IReadOnlyList<string> others, IReadOnlyList<string> stale, IReadOnlyList<string> ended)
    {
        _store = store;
        Name = name;
        Others = others;
        Stale = stale;
        Ended = ended;
    }

    /// <summary>This lease's object.</summary>
    public string Name { get; }

    /// <summary>Live leases of the other kind (a backup's, for a prune; a prune's, for a backup).</summary>
    public IReadOnlyList<string> Others { get; }

    /// <summary>Leases of either kind (and end markers) older than <see cref="Life"/>: left by processes that died.</summary>
    public IReadOnlyList<string> Stale { get; }

    /// <summary>Leases marked ended because the target would not let them be deleted: removable, then their markers, once it does.</summary>
    public IReadOnlyList<string> Ended { get; }

    /// <summary>Removes what is left of leases: the stale ones, and the ended ones with their markers (a marker only once its lease is gone).</summary>
    public async Task RemoveLeftoversAsync(Func<string, Task<bool>> tryDelete)
    {
        foreach (var leftover in Stale) await tryDelete(leftover);
        foreach (var lease in Ended)
        {
            if (await tryDelete(lease)) await tryDelete(lease + EndedSuffix);
        }
    }

    public static Task<BackupLease> ForBackupAsync(IBackupStore store, string runId, CancellationToken ct) => TakeAsync(store, "backup", "prune", runId, ct);

    public static Task<BackupLease> ForPruneAsync(IBackupStore store, CancellationToken ct) => TakeAsync(store, "prune", "backup", Manifest.NewId(DateTimeOffset.UtcNow), ct);

    private static async Task<BackupLease> TakeAsync(IBackupStore store, string kind, string other, string id, CancellationToken ct)
    {
        var name = $"{Prefix}{kind}-{id}.json";
        await store.PutAsync(name, JsonSerializer.SerializeToUtf8Bytes(new { kind, id, host = Environment.MachineName }), null, ct);
        try
        {
            // The target's time now: when it stored this lease. Without one (a target that does not say), every lease counts.
            var now = (await store.StatAsync(name, ct))?.LastModified;
            var all = new List<BackupObjectInfo>();
            await foreach (var o in store.ListAsync(Prefix, ct)) all.Add(o);
            var ended = all.Where(o => o.Name.EndsWith(EndedSuffix, StringComparison.Ordinal)).Select(o => o.Name[..^EndedSuffix.Length]).ToHashSet(StringComparer.Ordinal);
            var others = new List<string>();
            var stale = new List<string>();
            var endedLeases = new List<string>();
            foreach (var o in all)
            {
                if (o.Name == name) continue;
                if (now is { } n && o.LastModified is { } written && n - written > Life) stale.Add(o.Name);
                else if (ended.Contains(o.Name)) endedLeases.Add(o.Name);
                else if (o.Name.StartsWith($"{Prefix}{other}-", StringComparison.Ordinal) && o.Name.EndsWith(".json", StringComparison.Ordinal)) others.Add(o.Name);
            }
            return new BackupLease(store, name, others, stale, endedLeases);
        }
        catch
        {
            await ReleaseAsync(store, name); // a lease nobody holds would stop the other kind for Life
            throw;
        }
    }

    /// <summary>Ends the lease (once; a backup as soon as its manifest is stored). See <see cref="ReleaseAsync"/>.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _released, 1) == 1) return;
        await ReleaseAsync(_store, Name);
    }

    /// <summary>
    /// Removes a lease; where the target holds it locked (a default retention on the container or bucket), marks it ended
    /// instead (<c>NAME.ended</c>), so that it stops counting at once. One that can be neither (the target is down) goes stale
    /// after <see cref="Life"/>.
    /// </summary>
    private static async Task ReleaseAsync(IBackupStore store, string name)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try
        {
            await store.DeleteAsync(name, timeout.Token);
        }
        catch (BackupStoreException ex) when (ex.Kind == BackupStoreErrorKind.Locked)
        {
            try
            {
                await store.PutAsync(name + EndedSuffix, "{}"u8.ToArray(), null, timeout.Token);
            }
            catch (Exception inner) when (inner is BackupStoreException or OperationCanceledException)
            {
            }
        }
        catch (Exception ex) when (ex is BackupStoreException or OperationCanceledException)
        {
        }
    }

    private const string EndedSuffix = ".ended";
}
