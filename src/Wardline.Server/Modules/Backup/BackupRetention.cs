using System.Globalization;
using Wardline.Backup;
using Wardline.Backup.Format;
using Wardline.Crypto;

namespace Wardline.Server.Modules.Backup;

/// <summary>What retention removed, and what it had to keep because the target holds it locked.</summary>
internal sealed record PruneReport(int ManifestsKept, int ManifestsRemoved, int ObjectsRemoved, int Locked);

/// <summary>
/// Retention (docs/operations/backup.md): keeps the newest backup, and the newest backup of each of the last N
/// hours, days, weeks and months; removes the other manifests, then every object no kept manifest lists and that
/// is older than the newest backup (so a run in progress, or a failed run waiting to be resumed, is never touched).
/// An object the target holds locked is left in place and counted: retention never removes what a lock protects.
/// </summary>
internal static class BackupRetention
{
    public static async Task<PruneReport> PruneAsync(IBackupStore store, Keyring keyring, BackupRetentionOptions retention, CancellationToken ct)
    {
        var authenticator = new ContentAuthenticator(keyring, BackupCatalog.ManifestPurpose);
        var names = await BackupCatalog.ManifestNamesAsync(store, ct);
        if (names.Count == 0) return new PruneReport(0, 0, 0, 0);
        var manifests = new List<Manifest>();
        foreach (var name in names) manifests.Add(await BackupCatalog.ReadAsync(store, authenticator, name, ct));
        var keep = Keep(manifests, retention);
        var newest = manifests[^1];
        int removedManifests = 0, removedObjects = 0, locked = 0;
        foreach (var m in manifests.Where(m => !keep.Contains(m)))
        {
            if (await TryDeleteAsync(store, m.Name, ct)) removedManifests++;
            else locked++;
        }
        var referenced = new HashSet<string>(keep.SelectMany(m => m.Objects.Select(o => o.Name)), StringComparer.Ordinal);
        await foreach (var o in store.ListAsync("segments/", ct))
        {
            if (referenced.Contains(o.Name)) continue;
            var run = o.Name.Split('/') is { Length: > 2 } parts ? parts[1] : null;
            if (run is null || string.CompareOrdinal(run, newest.Id) >= 0) continue;
            if (await TryDeleteAsync(store, o.Name, ct)) removedObjects++;
            else locked++;
        }
        return new PruneReport(keep.Count, removedManifests, removedObjects, locked);
    }

    /// <summary>The manifests retention keeps: the newest, and the newest in each of the last N hours, days, ISO weeks and months.</summary>
    public static HashSet<Manifest> Keep(IReadOnlyList<Manifest> manifests, BackupRetentionOptions retention)
    {
        var keep = new HashSet<Manifest>();
        if (manifests.Count == 0) return keep;
        keep.Add(manifests[^1]);
        void Newest(Func<DateTimeOffset, string> period, int count)
        {
            foreach (var group in manifests.GroupBy(m => period(m.Created.ToUniversalTime())).OrderByDescending(g => g.Key, StringComparer.Ordinal).Take(count))
                keep.Add(group.MaxBy(m => (m.LedgerSize, m.Id))!);
        }
        Newest(t => t.ToString("yyyyMMddHH", CultureInfo.InvariantCulture), retention.Hourly);
        Newest(t => t.ToString("yyyyMMdd", CultureInfo.InvariantCulture), retention.Daily);
        Newest(t => $"{ISOWeek.GetYear(t.UtcDateTime):D4}W{ISOWeek.GetWeekOfYear(t.UtcDateTime):D2}", retention.Weekly);
        Newest(t => t.ToString("yyyyMM", CultureInfo.InvariantCulture), retention.Monthly);
        return keep;
    }

    private static async Task<bool> TryDeleteAsync(IBackupStore store, string name, CancellationToken ct)
    {
        try
        {
            await store.DeleteAsync(name, ct);
            return true;
        }
        catch (BackupStoreException ex) when (ex.Kind == BackupStoreErrorKind.Locked)
        {
            return false;
        }
    }
}
