using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Caching.Memory;
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
/// 256 random bits shown once; the table holds ASP.NET Core Identity password hashes of them.
/// </summary>
internal sealed partial class OAuthClients(SqlDialect dialect, GroupCommitter committer, TimeProvider time, IMemoryCache cache)
{
    /// <summary>How long the API trusts that a token's client is still registered (a removal here is seen at once).</summary>
    public static readonly TimeSpan CacheFor = TimeSpan.FromSeconds(10);

    public const string ClientCredentials = "client_credentials";
    public const string AuthorizationCode = "authorization_code";

    public static bool IsValidClientId(string id) => ClientIdShape().IsMatch(id);

    public async Task<OAuthClient?> FindAsync(string? clientId, CancellationToken ct) =>
        clientId is null || !IsValidClientId(clientId) ? null : (await ReadAsync(clientId, ct))?.Client;

    /// <summary>Whether the client is still registered; cached for <see cref="CacheFor"/>, for every API request with a client's token.</summary>
    public async ValueTask<bool> IsRegisteredAsync(string clientId, CancellationToken ct)
    {
        if (cache.TryGetValue(("oauth-client", clientId), out bool known)) return known;
        known = await FindAsync(clientId, ct) is not null;
        cache.Set(("oauth-client", clientId), known, CacheFor);
        return known;
    }

    /// <summary>The client if <paramref name="clientId"/> is registered and <paramref name="secret"/> is right (absent for public clients).</summary>
    public async Task<OAuthClient?> AuthenticateAsync(string? clientId, string? secret, CancellationToken ct)
    {
        var found = clientId is not null && IsValidClientId(clientId) ? await ReadAsync(clientId, ct) : null;
        if (found is null)
        {
            // The same work as a real check, so the answer does not tell which client ids exist.
            if (secret is not null) PasswordHashing.Verify(null, secret);
            return null;
        }
        var (client, hash) = found.Value;
        if (!client.Confidential) return secret is null ? client : null;
        return secret is not null && PasswordHashing.Verify(hash, secret) != PasswordVerificationResult.Failed ? client : null;
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
            RecordStore.Add(cmd, "@h", secret is null ? null : PasswordHashing.Hash(secret));
            RecordStore.Add(cmd, "@g", string.Join(' ', client.GrantTypes));
            RecordStore.Add(cmd, "@r", string.Join(' ', client.RedirectUris));
            RecordStore.Add(cmd, "@s", string.Join(' ', client.Scopes));
            RecordStore.Add(cmd, "@a", client.Account);
            RecordStore.Add(cmd, "@c", time.GetUtcNow().ToUnixTimeMilliseconds());
            return await cmd.ExecuteNonQueryAsync(token);
        });
        return (rows == 1, rows == 1 ? secret : null);
    }

    /// <summary>Removes a client: no new tokens, and its tokens stop at the API (at once here, within <see cref="CacheFor"/> elsewhere).</summary>
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
    /// sharing the store): the code is being replayed.
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
            return await cmd.ExecuteNonQueryAsync(token);
        });
        return rows == 1;
    }

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
