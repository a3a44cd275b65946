using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Logging;
using Wardline.Server.Modules.Access.Identity;
using Wardline.Server.Modules.Records.Storage;

namespace Wardline.Server.Modules.Access.OAuth;

/// <summary>A registered OAuth client. Confidential clients have a secret (only its hash is kept); public apps use PKCE alone.</summary>
/// <param name="Account">The service account a client-credentials client acts as (its token's subject).</param>
internal sealed record OAuthClient(
    string ClientId,
    string Display,
    bool Confidential,
    IReadOnlyList<string> GrantTypes,
    IReadOnlyList<string> RedirectUris,
    IReadOnlyList<string> Scopes,
    string? Account);

/// <summary>
/// The <c>oauth_clients</c> table and the redeemed authorization codes (schema step 6). Secrets are
/// 256 random bits made here and shown once; the table holds their SHA-256 (see <see cref="ClientSecrets"/>),
/// or, for clients registered before that, an ASP.NET Core Identity password hash, replaced by the SHA-256
/// at the client's next successful use.
/// </summary>
internal sealed partial class OAuthClients(SqlDialect dialect, GroupCommitter committer, TimeProvider time, IMemoryCache cache, ILogger<OAuthClients> log)
{
    private long _secretChecks;

    /// <summary>How long the API trusts that a token's client is still registered (a removal here is seen at once).</summary>
    public static readonly TimeSpan CacheFor = TimeSpan.FromSeconds(10);

    /// <summary>Codes this process saw replayed (rare: each is an attack or a broken client), so their tokens stop here at once.</summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, bool> _replayedHere = new(StringComparer.Ordinal);

    public const string ClientCredentials = "client_credentials";
    public const string AuthorizationCode = "authorization_code";

    public static bool IsValidClientId(string id) => ClientIdShape().IsMatch(id);

    public async Task<OAuthClient?> FindAsync(string? clientId, CancellationToken ct) =>
        clientId is null || !IsValidClientId(clientId) ? null : (await ReadAsync(clientId, ct))?.Client;

    /// <summary>
    /// When the client, as registered now, was registered (Unix ms), or null if it is not: a client removed and added again under
    /// the same id (how a leaked secret is replaced) gets a later instant, and tokens issued before it stop. Cached for
    /// <see cref="CacheFor"/>, for every API request with a client's token.
    /// </summary>
    public async ValueTask<long?> RegisteredSinceAsync(string clientId, CancellationToken ct)
    {
        if (cache.TryGetValue(("oauth-client", clientId), out long? since)) return since;
        if (IsValidClientId(clientId))
        {
            await using var c = await dialect.OpenAsync(ct);
            await using var cmd = c.CreateCommand();
            cmd.CommandText = "SELECT created FROM oauth_clients WHERE client_id = @id";
            RecordStore.Add(cmd, "@id", clientId);
            since = await cmd.ExecuteScalarAsync(ct) is { } value and not DBNull ? Convert.ToInt64(value, System.Globalization.CultureInfo.InvariantCulture) : null;
        }
        cache.Set(("oauth-client", clientId), since, CacheFor);
        return since;
    }

    /// <summary>How many client secrets this instance has checked, for unknown client ids too (for tests and diagnostics).</summary>
    public long SecretChecks => Interlocked.Read(ref _secretChecks);

    /// <summary>The client if <paramref name="clientId"/> is registered and <paramref name="secret"/> is right (absent for public clients).</summary>
    public async Task<OAuthClient?> AuthenticateAsync(string? clientId, string? secret, CancellationToken ct)
    {
        var found = clientId is not null && IsValidClientId(clientId) ? await ReadAsync(clientId, ct) : null;
        if (found is null)
        {
            // The same work as a real check (a SHA-256 compared with a dummy digest), so the answer does not tell which client ids exist.
            if (secret is not null) Check(null, secret);
            return null;
        }
        var (client, hash) = found.Value;
        if (!client.Confidential) return secret is null ? client : null;
        if (secret is null) return null;
        var verdict = Check(hash, secret);
        if (verdict == ClientSecrets.Verdict.LegacyMatch) await UpgradeAsync(client.ClientId, hash!, secret);
        return verdict == ClientSecrets.Verdict.Failed ? null : client;
    }

    private ClientSecrets.Verdict Check(string? hash, string secret)
    {
        Interlocked.Increment(ref _secretChecks);
        return ClientSecrets.Verify(hash, secret);
    }

    /// <summary>
    /// Replaces a legacy PBKDF2 hash by the SHA-256 once the secret is known to be right, so that no request
    /// for this client costs a PBKDF2 again. Only if the row still holds that hash (a client removed and added
    /// again meanwhile keeps its new secret); a failure leaves the legacy hash, which still works.
    /// </summary>
    private async Task UpgradeAsync(string clientId, string legacy, string secret)
    {
        try
        {
            await committer.RunAsync(async (c, tx, token) =>
            {
                await using var cmd = c.CreateCommand();
                cmd.Transaction = tx;
                cmd.CommandText = "UPDATE oauth_clients SET secret_hash = @h WHERE client_id = @id AND secret_hash = @old";
                RecordStore.Add(cmd, "@h", ClientSecrets.Hash(secret));
                RecordStore.Add(cmd, "@id", clientId);
                RecordStore.Add(cmd, "@old", legacy);
                return await cmd.ExecuteNonQueryAsync(token);
            });
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            Log.ClientSecretUpgradeFailed(log, clientId, ex.GetBaseException().Message);
        }
    }

    public async Task<IReadOnlyList<OAuthClient>> ListAsync(CancellationToken ct)
    {
        await using var c = await dialect.OpenAsync(ct);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT client_id, display, secret_hash, grant_types, redirect_uris, scopes, account FROM oauth_clients ORDER BY client_id";
        await using var r = await cmd.ExecuteReaderAsync(ct);
        var list = new List<OAuthClient>();
        while (await r.ReadAsync(ct)) list.Add(Read(r).Client);
        return list;
    }

    /// <summary>Registers a client; returns its secret (null for a public client), or null with false if the id is taken.</summary>
    public async Task<(bool Added, string? Secret)> AddAsync(OAuthClient client, CancellationToken ct)
    {
        var secret = client.Confidential ? "wlcs_" + TokenKeys.Base64Url(RandomNumberGenerator.GetBytes(32)) : null;
        var rows = await committer.RunAsync(async (c, tx, token) =>
        {
            await using var cmd = c.CreateCommand();
            cmd.Transaction = tx;
            cmd.CommandText = "INSERT INTO oauth_clients (client_id, display, secret_hash, grant_types, redirect_uris, scopes, account, created) " +
                "VALUES (@id, @d, @h, @g, @r, @s, @a, @c) ON CONFLICT (client_id) DO NOTHING";
            RecordStore.Add(cmd, "@id", client.ClientId);
            RecordStore.Add(cmd, "@d", client.Display);
            RecordStore.Add(cmd, "@h", secret is null ? null : ClientSecrets.Hash(secret));
            RecordStore.Add(cmd, "@g", string.Join(' ', client.GrantTypes));
            RecordStore.Add(cmd, "@r", string.Join(' ', client.RedirectUris));
            RecordStore.Add(cmd, "@s", string.Join(' ', client.Scopes));
            RecordStore.Add(cmd, "@a", client.Account);
            RecordStore.Add(cmd, "@c", time.GetUtcNow().ToUnixTimeMilliseconds());
            return await cmd.ExecuteNonQueryAsync(token);
        });
        return (rows == 1, rows == 1 ? secret : null);
    }

    /// <summary>Removes a client: no new tokens, and its tokens stop at the API (at once here, within <see cref="CacheFor"/> elsewhere), also if it is added again.</summary>
    public async Task<bool> RemoveAsync(string clientId, CancellationToken ct)
    {
        var removed = await committer.RunAsync(async (c, tx, token) =>
        {
            await using var cmd = c.CreateCommand();
            cmd.Transaction = tx;
            cmd.CommandText = "DELETE FROM oauth_clients WHERE client_id = @id";
            RecordStore.Add(cmd, "@id", clientId);
            return await cmd.ExecuteNonQueryAsync(token) == 1;
        });
        cache.Remove(("oauth-client", clientId));
        return removed;
    }

    /// <summary>
    /// Records an authorization code as redeemed. False if it was redeemed before (on any server
    /// sharing the store): the code is being replayed, and is marked so, which revokes the token issued
    /// for it the first time (<see cref="IsGrantRevokedAsync"/>; RFC 6749 section 4.1.2). The row is kept
    /// a day past the code's expiry, longer than any token issued for it lives.
    /// </summary>
    public async Task<bool> RedeemCodeAsync(string codeId, string clientId, DateTimeOffset expires, CancellationToken ct)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        var rows = await committer.RunAsync(async (c, tx, token) =>
        {
            await using (var prune = c.CreateCommand())
            {
                // Codes live minutes; rows a day past their expiry are of no further use.
                prune.Transaction = tx;
                prune.CommandText = "DELETE FROM oauth_redeemed_codes WHERE expires < @old";
                RecordStore.Add(prune, "@old", now - (long)TimeSpan.FromDays(1).TotalMilliseconds);
                await prune.ExecuteNonQueryAsync(token);
            }
            await using var cmd = c.CreateCommand();
            cmd.Transaction = tx;
            cmd.CommandText = "INSERT INTO oauth_redeemed_codes (code_id, client_id, redeemed, expires) VALUES (@id, @cl, @now, @e) ON CONFLICT (code_id) DO NOTHING";
            RecordStore.Add(cmd, "@id", codeId);
            RecordStore.Add(cmd, "@cl", clientId);
            RecordStore.Add(cmd, "@now", now);
            RecordStore.Add(cmd, "@e", expires.ToUnixTimeMilliseconds());
            if (await cmd.ExecuteNonQueryAsync(token) == 1) return 1;
            await using var mark = c.CreateCommand();
            mark.Transaction = tx;
            mark.CommandText = "UPDATE oauth_redeemed_codes SET replayed = @now WHERE code_id = @id AND replayed IS NULL";
            RecordStore.Add(mark, "@id", codeId);
            RecordStore.Add(mark, "@now", now);
            await mark.ExecuteNonQueryAsync(token);
            return 0;
        });
        if (rows == 1) return true;
        // Known here at once, whatever a check that read the row just before the mark caches.
        _replayedHere[codeId] = true;
        cache.Remove(GrantKey(codeId));
        return false;
    }

    /// <summary>
    /// Whether the authorization code a token was issued for (its <see cref="TokenSettings.GrantClaim"/>) has since been
    /// replayed: checked on every request; cached like a client (a replay on this server counts at once, on another within
    /// <see cref="CacheFor"/>).
    /// </summary>
    public async ValueTask<bool> IsGrantRevokedAsync(string codeId, CancellationToken ct)
    {
        if (_replayedHere.ContainsKey(codeId)) return true;
        var key = GrantKey(codeId);
        if (cache.TryGetValue(key, out bool revoked)) return revoked;
        await using (var c = await dialect.OpenAsync(ct))
        await using (var cmd = c.CreateCommand())
        {
            // A token names a code that was redeemed to issue it; no row (pruned a day after the code expired, past the
            // token's own life, or a store restored from before it) is not a replay.
            cmd.CommandText = "SELECT replayed FROM oauth_redeemed_codes WHERE code_id = @id";
            RecordStore.Add(cmd, "@id", codeId);
            revoked = await cmd.ExecuteScalarAsync(ct) is { } value and not DBNull;
        }
        cache.Set(key, revoked, CacheFor);
        return revoked;
    }

    private static (string, string) GrantKey(string codeId) => ("oauth-grant", codeId);

    private async Task<(OAuthClient Client, string? Hash)?> ReadAsync(string clientId, CancellationToken ct)
    {
        await using var c = await dialect.OpenAsync(ct);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT client_id, display, secret_hash, grant_types, redirect_uris, scopes, account FROM oauth_clients WHERE client_id = @id";
        RecordStore.Add(cmd, "@id", clientId);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        return await r.ReadAsync(ct) ? Read(r) : null;
    }

    private static (OAuthClient Client, string? Hash) Read(System.Data.Common.DbDataReader r)
    {
        var hash = r.IsDBNull(2) ? null : r.GetString(2);
        return (new OAuthClient(r.GetString(0), r.GetString(1), hash is not null, Split(r.GetString(3)), Split(r.GetString(4)), Split(r.GetString(5)),
            r.IsDBNull(6) ? null : r.GetString(6)), hash);
    }

    private static string[] Split(string s) => s.Split(' ', StringSplitOptions.RemoveEmptyEntries);

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    private static partial Regex ClientIdShape();
}

/// <summary>
/// Stored client secrets. A secret is 256 bits from the system's random generator, so its SHA-256 is as hard to
/// invert as the secret is to guess: a password hash (salt, 210,000 PBKDF2 iterations) adds nothing against an
/// attacker holding the table, and cost ~0.1 s of a core per token request, right or wrong, which anyone could
/// ask for. Stored as <c>sha256:</c> and 64 hex digits; compared in constant time. Any other stored value is a
/// legacy ASP.NET Core Identity hash and is checked as one.
/// </summary>
internal static class ClientSecrets
{
    public const string Prefix = "sha256:";

    internal enum Verdict
    {
        Failed,
        Match,
        LegacyMatch,
    }

    // Compared with when there is no stored digest (unknown client id, unreadable row): the same work as a real check.
    private static readonly byte[] Dummy = RandomNumberGenerator.GetBytes(SHA256.HashSizeInBytes);

    public static string Hash(string secret) => Prefix + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(secret)));

    /// <summary>Checks <paramref name="secret"/> against a stored value; null (no client) always fails, after the same work as a SHA-256 one.</summary>
    public static Verdict Verify(string? stored, string secret)
    {
        if (stored is not null && !stored.StartsWith(Prefix, StringComparison.Ordinal))
        {
            return PasswordHashing.Verify(stored, secret) == PasswordVerificationResult.Failed ? Verdict.Failed : Verdict.LegacyMatch;
        }
        Span<byte> expected = stackalloc byte[SHA256.HashSizeInBytes];
        var readable = stored is not null
            && stored.Length == Prefix.Length + 2 * SHA256.HashSizeInBytes
            && Convert.FromHexString(stored.AsSpan(Prefix.Length), expected, out _, out var written) == OperationStatus.Done
            && written == SHA256.HashSizeInBytes;
        if (!readable) Dummy.CopyTo(expected);
        Span<byte> actual = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(Encoding.UTF8.GetBytes(secret), actual);
        return CryptographicOperations.FixedTimeEquals(actual, expected) && readable ? Verdict.Match : Verdict.Failed;
    }
}
