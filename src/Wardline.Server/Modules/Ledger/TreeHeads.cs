using System.Text;
using Wardline.Ledger;
using Wardline.Server.Modules.Records;
using Wardline.Server.Modules.Records.Storage;

namespace Wardline.Server.Modules.Ledger;

/// <summary>
/// Makes signed tree heads and publishes them to the witness. The signing key (ECDSA P-256) is created on
/// first use and kept in <c>ledger_keys</c> sealed under the keyring, so every server sharing the store signs
/// with the same key; the witness pins its public key, so a key swapped in the database is found.
/// </summary>
internal sealed class TreeHeads(SqlDialect dialect, RecordStore store, RecordKeys keys, GroupCommitter committer, IWitness witness, LedgerIntegrity integrity, TimeProvider time)
    : IDisposable
{
    private const string KeyType = "wardline:ledger-key";
    private readonly SemaphoreSlim _gate = new(1, 1);
    private TreeHeadSigner? _signer;

    public IWitness Witness => witness;

    /// <summary>
    /// Signs the tree as it stands and publishes the head, unless the newest published head already covers it.
    /// Refused while the ledger failed its check: a rolled-back or rewritten tree must not be vouched for.
    /// </summary>
    public async Task<TreeHead?> PublishAsync(bool force, CancellationToken ct)
    {
        if (integrity.Problem is { } problem) throw new LedgerReadOnlyException(problem);
        await _gate.WaitAsync(ct);
        try
        {
            var signer = await SignerAsync(ct);
            // A head the witness could not check against the key it pinned would vouch for nothing.
            if (await Witnessed(() => witness.PinnedKeyAsync(ct)) is { } pinned && !pinned.AsSpan().SequenceEqual(signer.PublicKey))
                throw new LedgerReadOnlyException("the head-signing key in the database is not the key the witness pinned; no head is published");
            var (size, root) = await integrity.StateAsync(ct);
            var last = await LastSizeAsync(ct);
            if (!force && size == last) return null;
            var head = signer.Sign(size, root, time.GetUtcNow());
            // The witness first: a head the database keeps a copy of is always in the witness already.
            await Witnessed(async () =>
            {
                await witness.PublishAsync(head, signer.PublicKey, ct);
                return true;
            });
            await committer.RunAsync(async (c, tx, token) =>
            {
                await using var cmd = c.CreateCommand();
                cmd.Transaction = tx;
                cmd.CommandText = "INSERT INTO ledger_heads (size, root, at, key_id, signature) VALUES (@s, @r, @a, @k, @g) ON CONFLICT (size) DO NOTHING";
                Migrations.AddParam(cmd, "@s", head.Size); Migrations.AddParam(cmd, "@r", head.Root);
                Migrations.AddParam(cmd, "@a", head.Timestamp.ToUnixTimeMilliseconds()); Migrations.AddParam(cmd, "@k", head.KeyId);
                Migrations.AddParam(cmd, "@g", head.Signature);
                return await cmd.ExecuteNonQueryAsync(token);
            });
            return head;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>The newest head signed into the database (the witness holds the same ones, and is what counts).</summary>
    public async Task<TreeHead?> LatestAsync(CancellationToken ct)
    {
        await using var c = await dialect.OpenAsync(ct);
        return (await LedgerNodes.ReadHeadsAsync(c, null, newestOnly: true, ct)).SingleOrDefault();
    }

    private async Task<long> LastSizeAsync(CancellationToken ct) => (await LatestAsync(ct))?.Size ?? -1;

    /// <summary>The public key the database holds for signing heads.</summary>
    public async Task<byte[]> PublicKeyAsync(CancellationToken ct) => (await SignerAsync(ct)).PublicKey;

    private async Task<TreeHeadSigner> SignerAsync(CancellationToken ct)
    {
        if (_signer is { } s) return s;
        if (await ReadAsync(ct) is { } existing) return _signer = existing;
        // A witness that pinned a key means there was one: its loss from the database is a finding, not a cue to start over.
        if (await Witnessed(() => witness.PinnedKeyAsync(ct)) is not null)
            throw new LedgerReadOnlyException("the head-signing key the witness pinned is missing from the database; no new key is made");
        using var fresh = TreeHeadSigner.Create();
        var material = fresh.ExportPrivateKey();
        using var key = keys.Cipher.CreateDataKey(WrapContext(fresh.KeyId));
        var sealedKey = keys.Cipher.Encrypt(key.DataKey, material, Context(fresh.KeyId));
        // Several servers may start together: the first key stored wins and everyone reads it back. No constraint
        // makes the table hold one row, so the check and the insert run under the store's set-up lock: without it, two
        // PostgreSQL transactions can both find the table empty, and the later-committed key can sort first. The
        // transaction is its own, as migrations' are, so the lock is never taken after a group's row locks.
        await using (var gate = await dialect.EnterWriteAsync(ct))
        await using (var c = await dialect.OpenAsync(ct))
        await using (var tx = await dialect.BeginWriteTransactionAsync(c, ct))
        {
            await dialect.LockForMigrationAsync(c, tx, ct);
            await using var cmd = c.CreateCommand();
            cmd.Transaction = tx;
            cmd.CommandText = "INSERT INTO ledger_keys (key_id, public_key, wrapped_key, sealed, created) " +
                "SELECT @k, @p, @w, @s, @c WHERE NOT EXISTS (SELECT 1 FROM ledger_keys)";
            Migrations.AddParam(cmd, "@k", fresh.KeyId); Migrations.AddParam(cmd, "@p", fresh.PublicKey);
            Migrations.AddParam(cmd, "@w", key.Wrapped); Migrations.AddParam(cmd, "@s", sealedKey);
            Migrations.AddParam(cmd, "@c", time.GetUtcNow().ToUnixTimeMilliseconds());
            await cmd.ExecuteNonQueryAsync(ct);
            await tx.CommitAsync(ct);
        }
        return _signer = await ReadAsync(ct) ?? throw new InvalidOperationException("The ledger key could not be stored.");
    }

    private async Task<TreeHeadSigner?> ReadAsync(CancellationToken ct)
    {
        await store.MigrateAsync(ct);
        await using var c = await dialect.OpenAsync(ct);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT key_id, wrapped_key, sealed FROM ledger_keys ORDER BY created, key_id LIMIT 1";
        await using var r = await cmd.ExecuteReaderAsync(ct);
        if (!await r.ReadAsync(ct)) return null;
        var keyId = r.GetString(0);
        // Throws EnvelopeException if the row was tampered with.
        using var dataKey = keys.Unwrap(KeyType, keyId, (byte[])r.GetValue(1));
        return TreeHeadSigner.Import(keys.Cipher.Decrypt(dataKey, (byte[])r.GetValue(2), Context(keyId)));
    }

    /// <summary>Runs a call on the witness; a witness that cannot be read or written is reported as such, not as a server error.</summary>
    private async Task<T> Witnessed<T>(Func<Task<T>> call)
    {
        try
        {
            return await call();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or Wardline.Backup.BackupStoreException or LedgerFormatException)
        {
            throw new WitnessUnavailableException($"no head is published: the {witness.Describe()} cannot be used ({ex.Message})", ex);
        }
    }

    /// <summary>What a signing key's data key is wrapped under (also for <c>keys rotate</c>, which re-wraps it).</summary>
    internal static byte[] WrapContext(string keyId) => RecordKeys.KeyContext(KeyType, keyId);

    private static byte[] Context(string keyId) => Encoding.UTF8.GetBytes(KeyType + "/" + keyId);

    public void Dispose()
    {
        _gate.Dispose();
        _signer?.Dispose();
    }
}

/// <summary>The ledger failed its check, so the server refuses changes until an operator has looked (503).</summary>
internal sealed class LedgerReadOnlyException(string problem) : Exception("The server is read-only: " + problem);

/// <summary>The witness could not be read or written, so no head was published; the ledger itself is unharmed.</summary>
internal sealed class WitnessUnavailableException(string message, Exception inner) : Exception(message, inner);
