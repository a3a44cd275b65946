using System.Security.Cryptography;
using System.Text;
using Microsoft.IdentityModel.Tokens;
using Wardline.Server.Modules.Records;
using Wardline.Server.Modules.Records.Storage;

namespace Wardline.Server.Modules.Access.OAuth;

/// <summary>
/// The keys of Wardline's tokens: an ECDSA P-256 key that signs access tokens (ES256), and an AES key
/// that encrypts authorization codes. Each is made once, by the first server or command that needs it,
/// and stored sealed (AES-256-GCM under a data key wrapped by the keyring's KEK) in <c>oauth_keys</c>, so
/// every server sharing the store and keyring signs and validates with the same keys, and a copy of the
/// database alone cannot mint tokens.
/// </summary>
internal sealed class TokenKeys(SqlDialect dialect, RecordStore store, RecordKeys keys, GroupCommitter committer, TimeProvider time) : IDisposable
{
    private const string KeyType = "wardline:oauth-key";
    private readonly SemaphoreSlim _gate = new(1, 1);
    private Loaded? _loaded;

    public sealed record Loaded(ECDsaSecurityKey Signing, SymmetricSecurityKey Encryption)
    {
        public SigningCredentials SigningCredentials { get; } = new(Signing, SecurityAlgorithms.EcdsaSha256);
    }

    /// <summary>The keys, created on first use. Synchronous for configuration callbacks; the work happens once per process.</summary>
    public Loaded Current => _loaded ?? Task.Run(() => GetAsync(CancellationToken.None)).GetAwaiter().GetResult();

    public async Task<Loaded> GetAsync(CancellationToken ct)
    {
        if (_loaded is { } loaded) return loaded;
        await _gate.WaitAsync(ct);
        try
        {
            if (_loaded is not null) return _loaded;
            // The schema may not be up to date yet when the first caller is a configuration callback.
            await store.MigrateAsync(ct);
            var signing = await LoadOrCreateAsync("signing", () =>
            {
                using var ec = ECDsa.Create(ECCurve.NamedCurves.nistP256);
                return ec.ExportPkcs8PrivateKey();
            }, ct);
            var encryption = await LoadOrCreateAsync("encryption", () => RandomNumberGenerator.GetBytes(32), ct);
            var ecdsa = ECDsa.Create();
            ecdsa.ImportPkcs8PrivateKey(signing.Material, out _);
            _loaded = new Loaded(
                new ECDsaSecurityKey(ecdsa) { KeyId = signing.KeyId },
                new SymmetricSecurityKey(encryption.Material) { KeyId = encryption.KeyId });
            return _loaded;
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task<(string KeyId, byte[] Material)> LoadOrCreateAsync(string purpose, Func<byte[]> create, CancellationToken ct)
    {
        if (await ReadAsync(purpose, ct) is { } existing) return existing;
        var material = create();
        var keyId = Base64Url(SHA256.HashData(material))[..16];
        using var key = keys.Cipher.CreateDataKey(WrapContext(purpose));
        var sealedKey = keys.Cipher.Encrypt(key.DataKey, material, Context(purpose, keyId));
        // Several servers may start together: the first insert wins and everyone reads it back.
        await committer.RunAsync(async (c, tx, token) =>
        {
            await using var cmd = c.CreateCommand();
            cmd.Transaction = tx;
            cmd.CommandText = "INSERT INTO oauth_keys (purpose, key_id, wrapped_key, sealed, created) VALUES (@p, @k, @w, @s, @c) ON CONFLICT (purpose) DO NOTHING";
            RecordStore.Add(cmd, "@p", purpose);
            RecordStore.Add(cmd, "@k", keyId);
            RecordStore.Add(cmd, "@w", key.Wrapped);
            RecordStore.Add(cmd, "@s", sealedKey);
            RecordStore.Add(cmd, "@c", time.GetUtcNow().ToUnixTimeMilliseconds());
            return await cmd.ExecuteNonQueryAsync(token);
        });
        return await ReadAsync(purpose, ct) ?? throw new InvalidOperationException("The token key could not be stored.");
    }

    private async Task<(string KeyId, byte[] Material)?> ReadAsync(string purpose, CancellationToken ct)
    {
        await using var c = await dialect.OpenAsync(ct);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT key_id, wrapped_key, sealed FROM oauth_keys WHERE purpose = @p";
        RecordStore.Add(cmd, "@p", purpose);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        if (!await r.ReadAsync(ct)) return null;
        var keyId = r.GetString(0);
        var wrapped = (byte[])r.GetValue(1);
        var sealedKey = (byte[])r.GetValue(2);
        // Throws EnvelopeException if the row was tampered with or moved to another purpose.
        using var dataKey = keys.Unwrap(KeyType, purpose, wrapped);
        return (keyId, keys.Cipher.Decrypt(dataKey, sealedKey, Context(purpose, keyId)));
    }

    public void Dispose() => _gate.Dispose();

    /// <summary>What a key's data key is wrapped under (also for <c>keys rotate</c>, which re-wraps it).</summary>
    internal static byte[] WrapContext(string purpose) => RecordKeys.KeyContext(KeyType, purpose);

    private static byte[] Context(string purpose, string keyId) => Encoding.UTF8.GetBytes(KeyType + "/" + purpose + "/" + keyId);

    internal static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
