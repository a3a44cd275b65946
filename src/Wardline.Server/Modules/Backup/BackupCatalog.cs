using Wardline.Backup;
using Wardline.Backup.Format;
using Wardline.Crypto;

namespace Wardline.Server.Modules.Backup;

/// <summary>The backups on a target: its manifests, newest last (ordered by ledger size, then id, so clocks do not matter).</summary>
internal static class BackupCatalog
{
    public const string ManifestPurpose = "backup.manifest";
    public const string FingerprintPurpose = "backup.fingerprint";

    /// <summary>Names of every manifest on the target, oldest first.</summary>
    public static async Task<List<string>> ManifestNamesAsync(IBackupStore store, CancellationToken ct)
    {
        var names = new List<string>();
        await foreach (var o in store.ListAsync("manifests/", ct))
        {
            if (o.Name.EndsWith(".json", StringComparison.Ordinal)) names.Add(o.Name);
        }
        names.Sort(StringComparer.Ordinal);
        return names;
    }

    /// <summary>Reads and authenticates one manifest.</summary>
    public static async Task<Manifest> ReadAsync(IBackupStore store, ContentAuthenticator authenticator, string name, CancellationToken ct) =>
        Manifest.Open(authenticator, name, await store.GetAsync(name, ct));

    /// <summary>The newest backup, or null when the target has none. A newest manifest that does not authenticate is an error, not skipped: it means another keyring or tampering.</summary>
    public static async Task<Manifest?> LatestAsync(IBackupStore store, ContentAuthenticator authenticator, CancellationToken ct)
    {
        var names = await ManifestNamesAsync(store, ct);
        return names.Count == 0 ? null : await ReadAsync(store, authenticator, names[^1], ct);
    }

    /// <summary>The ledger size a manifest's name starts with, or null for a name not of that form.</summary>
    public static long? SizeOf(string manifestName)
    {
        var start = "manifests/".Length;
        // An epoch after a rollback prefixes the size: e0001-<size>-<id>.json.
        if (manifestName.Length > start + 6 && manifestName[start] == 'e') start += 6;
        return manifestName.Length > start + 16 && long.TryParse(manifestName.AsSpan(start, 16), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n) ? n : null;
    }

    /// <summary>
    /// Whether an object of a chain's manifest belongs to its full backup: stored by the full backup's run (whose id is
    /// the chain's), or by an earlier run that failed and whose segments the full backup reused (run ids begin with the
    /// time, so they sort in the order the runs began). Incremental backups, and failed runs they reused, came after.
    /// </summary>
    public static bool OfFullBackup(Manifest m, ManifestObject o)
    {
        const string prefix = "segments/";
        if (!o.Name.StartsWith(prefix, StringComparison.Ordinal)) return false;
        var slash = o.Name.IndexOf('/', prefix.Length);
        if (slash <= prefix.Length) return false;
        return o.Name.AsSpan(prefix.Length, slash - prefix.Length).CompareTo(m.Chain, StringComparison.Ordinal) <= 0;
    }

    /// <summary>The bytes a chain has stored: its full backup's objects (<see cref="OfFullBackup"/>, with whole tables later backups reuse) and the rest, which incremental backups added.</summary>
    public static (long Full, long Incremental) ChainBytes(Manifest m)
    {
        long full = 0, incremental = 0;
        foreach (var o in m.Objects)
        {
            if (OfFullBackup(m, o)) full += o.Bytes;
            else incremental += o.Bytes;
        }
        return (full, incremental);
    }

    /// <summary>
    /// Whether the chain's incrementals have outgrown <see cref="BackupOptions.MaxIncrementalPercent"/> of its full
    /// backup (and <see cref="BackupOptions.MinIncrementalMiB"/>), so the next backup should start a new chain.
    /// </summary>
    public static bool IncrementalsOutweighFull(Manifest m, BackupOptions options)
    {
        if (options.MaxIncrementalPercent <= 0) return false;
        var (full, incremental) = ChainBytes(m);
        return incremental >= (long)options.MinIncrementalMiB << 20 && incremental * 100 > full * (long)options.MaxIncrementalPercent;
    }

    /// <summary>When a backup id was made (its id starts with the time), for the age of a chain.</summary>
    public static DateTimeOffset? TimeOf(string id) =>
        DateTimeOffset.TryParseExact(id.Length >= 18 ? id[..18] : id, "yyyyMMdd'-'HHmmssfff", System.Globalization.CultureInfo.InvariantCulture,
            System.Globalization.DateTimeStyles.AssumeUniversal | System.Globalization.DateTimeStyles.AdjustToUniversal, out var t) ? t : null;
}
