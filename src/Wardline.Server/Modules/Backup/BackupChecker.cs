using Wardline.Backup;
using Wardline.Backup.Format;
using Wardline.Crypto;

namespace Wardline.Server.Modules.Backup;

/// <summary>What <c>backup verify</c> found: manifests and objects read back, and each problem, naming the object.</summary>
internal sealed record BackupCheckReport(int Manifests, int Objects, long Bytes, IReadOnlyList<string> Problems);

/// <summary>
/// Reads every backup on a target back: each manifest's tag, and every object each lists against its size and
/// SHA-256, then opens it (authenticated decryption and decompression) and parses its rows. Objects shared by
/// several manifests of a chain are read once.
/// </summary>
internal static class BackupChecker
{
    public static async Task<BackupCheckReport> CheckAsync(IBackupStore store, Keyring keyring, IProgress<BackupProgress>? progress, CancellationToken ct)
    {
        var authenticator = new ContentAuthenticator(keyring, BackupCatalog.ManifestPurpose);
        var cipher = new EnvelopeCipher(keyring);
        var problems = new List<string>();
        var names = await BackupCatalog.ManifestNamesAsync(store, ct);
        var objects = new Dictionary<string, ManifestObject>(StringComparer.Ordinal);
        foreach (var name in names)
        {
            try
            {
                var m = await BackupCatalog.ReadAsync(store, authenticator, name, ct);
                var missingKeys = m.Keks.Where(k => !keyring.KekIds.Contains(k)).ToList();
                if (missingKeys.Count > 0) problems.Add($"manifest {name} needs key-encryption keys this keyring lacks: {string.Join(", ", missingKeys)}");
                foreach (var o in m.Objects)
                {
                    if (objects.TryGetValue(o.Name, out var seen) && seen.Sha256 != o.Sha256) problems.Add($"manifests disagree on the SHA-256 of {o.Name}");
                    objects[o.Name] = o;
                }
            }
            catch (BackupFormatException ex)
            {
                problems.Add(ex.Message);
            }
        }
        long bytes = 0;
        var done = 0;
        foreach (var o in objects.Values.OrderBy(o => o.Name, StringComparer.Ordinal))
        {
            progress?.Report(new BackupProgress("reading back", done++, objects.Count));
            // The same reading a restore does: present, its size and SHA-256, then authenticated, decompressed and parsed.
            string? problem;
            if (o.Kind == ManifestObject.ImageKind)
            {
                var (_, piece, failed) = await BackupRestorer.FetchAsync(store, o, segment => SqliteImage.Open(cipher, o, segment), ct);
                piece?.Dispose();
                problem = failed;
            }
            else
            {
                problem = (await BackupRestorer.FetchAsync(store, o, cipher, ct)).Item3;
            }
            if (problem is not null) problems.Add($"{problem} ({BackupRestorer.Describe(o)})");
            else bytes += o.Bytes;
        }
        progress?.Report(new BackupProgress("reading back", objects.Count, objects.Count));
        return new BackupCheckReport(names.Count, objects.Count, bytes, problems);
    }
}
