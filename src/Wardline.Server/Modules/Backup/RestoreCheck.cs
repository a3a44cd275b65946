using Wardline.Backup.Format;
using Wardline.Ledger;
using Wardline.Server.Modules.Ledger;
using Wardline.Server.Modules.Records;
using Wardline.Server.Modules.Records.Storage;

namespace Wardline.Server.Modules.Backup;

/// <summary>The verdict on a restored store: the ledger verifier's report, and how far the witness saw the ledger go past the backup.</summary>
/// <param name="WitnessBeyond">The newest head the witness holds beyond the restored ledger (entries recorded after the backup, lost up to the RPO), or null.</param>
internal sealed record RestoreVerdict(VerifyReport Report, TreeHead? WitnessBeyond, string WitnessDescription)
{
    public bool Proven => Report.Problems.Count == 0;
}

/// <summary>
/// Proves a restored store is the data the backup held, unaltered: the full ledger verification (every entry,
/// subtree hash and signed head, and every resource version against the SHA-256 its write entry recorded) run
/// against the witness's heads up to the restored size, and the tree's root against the authenticated manifest's.
/// Heads the witness holds beyond the restored size are the entries written after the backup: reported, not failed.
/// With a facts extractor, each present resource's access facts, care relations and search index are also held to its
/// content: a backup of a store whose derived rows were changed behind Wardline's back carries the change, and only this
/// check finds it (<c>wardline restore --derived</c>, and drills unless <see cref="BackupOptions.DrillDerived"/> is off).
/// </summary>
internal static class RestoreCheck
{
    public static async Task<RestoreVerdict> VerifyAsync(SqlDialect restored, RecordKeys keys, IWitness? witness, Manifest manifest, CancellationToken ct,
        Access.Facts.FactsExtractor? derived = null)
    {
        IWitness bounded = witness is null ? new ManifestWitness(manifest, restored) : new BoundedWitness(witness, manifest.LedgerSize);
        var report = await new LedgerVerifier(restored, keys, bounded, derived).VerifyAsync(LedgerVerifier.Depth.Full, ct, derived is not null);
        TreeHead? beyond = null;
        if (witness is not null)
        {
            try
            {
                beyond = (await witness.HeadsAsync(ct)).Where(h => h.Size > manifest.LedgerSize).MaxBy(h => h.Size);
            }
            catch (LedgerFormatException)
            {
                // Reported by the verifier already.
            }
        }
        return new RestoreVerdict(report, beyond, bounded.Describe());
    }

    /// <summary>The witness as it stood when the ledger had the restored size: heads beyond it are the RPO, not a rollback.</summary>
    private sealed class BoundedWitness(IWitness inner, long maxSize) : IWitness
    {
        public string Describe() => inner.Describe() + $" (heads up to size {maxSize})";

        /// <summary>The pinned key, once the witness had a head within the restored size (a key made after the backup is not the restored store's).</summary>
        public async Task<byte[]?> PinnedKeyAsync(CancellationToken ct) => (await HeadsAsync(ct)).Count > 0 ? await inner.PinnedKeyAsync(ct) : null;

        public Task PublishAsync(TreeHead head, byte[] publicKey, CancellationToken ct) => throw new InvalidOperationException("a restore check publishes nothing");

        public async Task<IReadOnlyList<TreeHead>> HeadsAsync(CancellationToken ct) => [.. (await inner.HeadsAsync(ct)).Where(h => h.Size <= maxSize)];
    }

    /// <summary>
    /// With no witness at hand (a new machine, the witness lost with the server), the authenticated manifest
    /// vouches for the restored ledger: its signed head (whose key the restored store holds) and, through the
    /// recorded state the restore set from it, its root.
    /// </summary>
    private sealed class ManifestWitness(Manifest manifest, SqlDialect restored) : IWitness
    {
        public string Describe() => $"backup manifest {manifest.Name} (no witness given)";

        public async Task<byte[]?> PinnedKeyAsync(CancellationToken ct)
        {
            if (manifest.SignedHead is null) return null;
            var head = TreeHead.FromJson(System.Text.Encoding.UTF8.GetBytes(manifest.SignedHead));
            await using var c = await restored.OpenAsync(ct);
            await using var cmd = c.CreateCommand();
            cmd.CommandText = "SELECT public_key FROM ledger_keys";
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
            {
                var key = (byte[])r.GetValue(0);
                if (TreeHeadSigner.KeyIdOf(key) == head.KeyId) return key;
            }
            return null;
        }

        public Task PublishAsync(TreeHead head, byte[] publicKey, CancellationToken ct) => throw new InvalidOperationException("a restore check publishes nothing");

        public Task<IReadOnlyList<TreeHead>> HeadsAsync(CancellationToken ct) =>
            Task.FromResult<IReadOnlyList<TreeHead>>(manifest.SignedHead is null ? [] : [TreeHead.FromJson(System.Text.Encoding.UTF8.GetBytes(manifest.SignedHead))]);
    }
}
