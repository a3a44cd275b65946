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
/// servers' clocks do not matter) was left by a process that died: it is ignored, and prune removes it.
/// </summary>
internal sealed class BackupLease : IAsyncDisposable
{
    public const string Prefix = "leases/";

    /// <summary>How long a lease counts: far longer than any backup or prune runs.</summary>
    public static readonly TimeSpan Life = TimeSpan.FromHours(24);

    private readonly IBackupStore _store;
    private int _released;

    private BackupLease(IBackupStore store, string name, IReadOnlyList<string> others, IReadOnlyList<string> stale)
    {
        _store = store;
        Name = name;
        Others = others;
        Stale = stale;
    }

    /// <summary>This lease's object.</summary>
    public string Name { get; }

    /// <summary>Live leases of the other kind (a backup's, for a prune; a prune's, for a backup).</summary>
    public IReadOnlyList<string> Others { get; }

    /// <summary>Leases of either kind older than <see cref="Life"/>: left by processes that died.</summary>
    public IReadOnlyList<string> Stale { get; }

    public static Task<BackupLease> ForBackupAsync(IBackupStore store, string runId, CancellationToken ct) => TakeAsync(store, "backup", "prune", runId, ct);

    public static Task<BackupLease> ForPruneAsync(IBackupStore store, CancellationToken ct) => TakeAsync(store, "prune", "backup", Manifest.NewId(DateTimeOffset.UtcNow), ct);

    private static async Task<BackupLease> TakeAsync(IBackupStore store, string kind, string other, string id, CancellationToken ct)
    {
        var name = $"{Prefix}{kind}-{id}.json";
        await store.PutAsync(name, JsonSerializer.SerializeToUtf8Bytes(new { kind, id, host = Environment.MachineName }), null, ct);
        // The target's time now: when it stored this lease. Without one (a target that does not say), every lease counts.
        var now = (await store.StatAsync(name, ct))?.LastModified;
        var others = new List<string>();
        var stale = new List<string>();
        await foreach (var o in store.ListAsync(Prefix, ct))
        {
            if (o.Name == name) continue;
            if (now is { } n && o.LastModified is { } written && n - written > Life) stale.Add(o.Name);
            else if (o.Name.StartsWith($"{Prefix}{other}-", StringComparison.Ordinal)) others.Add(o.Name);
        }
        return new BackupLease(store, name, others, stale);
    }

    /// <summary>Removes the lease (once; a backup as soon as its manifest is stored). One that cannot be removed (the target is down, or locks everything) goes stale after <see cref="Life"/>.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _released, 1) == 1) return;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try
        {
            await _store.DeleteAsync(Name, timeout.Token);
        }
        catch (Exception ex) when (ex is BackupStoreException or OperationCanceledException)
        {
        }
    }
}
