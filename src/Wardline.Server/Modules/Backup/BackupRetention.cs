using System.Globalization;
using Wardline.Backup;
using Wardline.Backup.Format;
using Wardline.Crypto;

namespace Wardline.Server.Modules.Backup;

/// <summary>What retention removed, what it had to keep because the target holds it locked, and manifests it could not read (kept, untouched).</summary>
/// <param name="RunningBackup">The lease of a backup running on the target (<see cref="BackupLease"/>), if one was: no segment was removed, since the run may be reusing ones no backup lists yet.</param>
internal sealed record PruneReport(int ManifestsKept, int ManifestsRemoved, int ObjectsRemoved, int Locked, int Unreadable = 0, string? RunningBackup = null);

/// <summary>
/// Retention (docs/operations/backup.md): keeps the newest backup, and the newest backup of each of the last N
/// hours, days, weeks and months; removes the other manifests, then every segment no remaining manifest lists
/// and that the target last modified more than <see cref="Grace"/> before its newest object (the target's own clock,
/// so a run in progress, or a failed run waiting to be resumed, is never touched, whatever the servers' clocks say).
/// While a backup runs on the target (<see cref="BackupLease"/>) no segment is removed at all: the run may be reusing
/// a failed run's segments, which no manifest lists until it ends. An object the target holds locked stays, and so do the segments of a manifest that stays; a manifest that does
/// not authenticate (another keyring, damage) is left alone and reported.
/// </summary>
internal static class BackupRetention
{
    /// <summary>How long a segment no backup lists is left alone: a run in progress, or one a later run resumes.</summary>
    public static readonly TimeSpan Grace = TimeSpan.FromHours(24);

    public static async Task<PruneReport> PruneAsync(IBackupStore store, Keyring keyring, BackupRetentionOptions retention, CancellationToken ct)
    {
        var authenticator = new ContentAuthenticator(keyring, BackupCatalog.ManifestPurpose);
        await using var lease = await BackupLease.ForPruneAsync(store, ct);
        await lease.RemoveLeftoversAsync(name => TryDeleteAsync(store, name, ct));
        var running = lease.Others.Count > 0 ? lease.Others[0] : null;
        var names = await BackupCatalog.ManifestNamesAsync(store, ct);
        if (names.Count == 0) return new PruneReport(0, 0, 0, 0, 0, running);
        var manifests = new List<Manifest>();
        var unreadable = 0;
        foreach (var name in names)
        {
            try
            {
                manifests.Add(await BackupCatalog.ReadAsync(store, authenticator, name, ct));
            }
            catch (Exception ex) when (ex is BackupFormatException || (ex is BackupStoreException failed && failed.Kind is not BackupStoreErrorKind.Unreachable))
            {
                // Not this keyring's, or one object the target will not hand over (archived, encrypted with another key):
                // left, and the rest pruned. A target that cannot be reached at all stops the prune.
                unreadable++;
            }
        }
        if (manifests.Count == 0) return new PruneReport(0, 0, 0, 0, unreadable, running);
        var keep = Keep(manifests, retention);
        int removedManifests = 0, removedObjects = 0, locked = 0;
        foreach (var m in manifests.Where(m => !keep.Contains(m)))
        {
            if (await TryDeleteAsync(store, m.Name, ct)) removedManifests++;
            else
            {
                locked++;
                keep.Add(m); // it stays, so what it lists stays restorable
            }
        }
        // A segment no readable manifest lists may be listed by one this keyring cannot read (another installation's on a
        // shared target, or one the target would not hand over): none is removed while such a manifest is there.
        if (running is not null || unreadable > 0) return new PruneReport(keep.Count, removedManifests, 0, locked, unreadable, running);
        var referenced = new HashSet<string>(keep.SelectMany(m => m.Objects.Select(o => o.Name)), StringComparer.Ordinal);
        var segments = new List<BackupObjectInfo>();
        await foreach (var o in store.ListAsync("segments/", ct)) segments.Add(o);
        var newest = segments.Max(o => o.LastModified);
        foreach (var o in segments)
        {
            if (referenced.Contains(o.Name)) continue;
            if (newest is null || o.LastModified is not { } modified || newest.Value - modified < Grace) continue;
            if (await TryDeleteAsync(store, o.Name, ct)) removedObjects++;
            else locked++;
        }
        return new PruneReport(keep.Count, removedManifests, removedObjects, locked, unreadable);
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
