using Wardline.Backup;
using Wardline.Backup.Format;
using Wardline.Crypto;

namespace Wardline.Server.Modules.Backup;

/// <summary>The backups on a target: its manifests, newest last (ordered by ledger size, then id, so clocks do not matter).</summary>
internal static partial class BackupCatalog
{
    public const string ManifestPurpose = "backup.manifest";
    public const string FingerprintPurpose = "backup.fingerprint";

    /// <summary>More than a manifest of <see cref="Manifest"/>'s largest chain can be: a bigger object is not read.</summary>
    public const long MaxManifestBytes = 16L * 1024 * 1024;

    /// <summary>Names of every manifest on the target, oldest first: only names of the form Wardline writes (<see cref="Manifest.NameFor"/>).</summary>
    public static async Task<List<string>> ManifestNamesAsync(IBackupStore store, CancellationToken ct)
    {
        var names = new List<string>();
        await foreach (var o in store.ListAsync("manifests/", ct))
        {
            if (ManifestName().IsMatch(o.Name)) names.Add(o.Name);
        }
        names.Sort(StringComparer.Ordinal);
        return names;
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"^manifests/(e[0-9]{4}-)?[0-9]{16}-[0-9]{8}-[0-9]{9}-[0-9a-f]{8}\.json$", System.Text.RegularExpressions.RegexOptions.CultureInvariant)]
    private static partial System.Text.RegularExpressions.Regex ManifestName();

    /// <summary>Reads and authenticates one manifest; one larger than <see cref="MaxManifestBytes"/> is refused unread.</summary>
    public static async Task<Manifest> ReadAsync(IBackupStore store, ContentAuthenticator authenticator, string name, CancellationToken ct)
    {
        if (await store.StatAsync(name, ct) is { } info && info.Length > MaxManifestBytes)
            throw new BackupFormatException($"manifest {name} is {info.Length} bytes, more than any manifest: it was not written by Wardline");
        return Manifest.Open(authenticator, name, await store.GetAsync(name, ct));
    }

    /// <summary>
    /// The newest backup whose manifest authenticates, or null when the target has none. Newer manifests that do not authenticate
    /// (planted, altered, or of another keyring) are passed to <paramref name="skipped"/> with the reason, not taken: an object
    /// anyone who can write to the target can put there must not stop every backup, restore and drill.
    /// </summary>
    public static async Task<Manifest?> LatestAsync(IBackupStore store, ContentAuthenticator authenticator, CancellationToken ct, Action<string>? skipped = null)
    {
        var names = await ManifestNamesAsync(store, ct);
        for (var i = names.Count - 1; i >= 0; i--)
        {
            try
            {
                return await ReadAsync(store, authenticator, names[i], ct);
            }
            catch (BackupFormatException ex)
            {
                skipped?.Invoke(ex.Message);
            }
        }
        return null;
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
