using System.Security.Cryptography;
using Microsoft.Extensions.Caching.Memory;
using Wardline.Server.Modules.Records.Storage;

namespace Wardline.Server.Modules.Access;

internal sealed record WardlineUser(string Name, string Display, bool Disabled);

/// <summary>
/// The interim sign-in: opaque bearer tokens issued by an operator (`wardline token`) for named
/// users. Only a SHA-256 of each token is stored, so a copy of the database cannot be used to
/// sign in. The access-control issue replaces this with identities, MFA and OAuth tokens.
/// </summary>
internal sealed class AccessTokens(SqlDialect dialect, TimeProvider time, IMemoryCache cache)
{
    public const string Prefix = "wl_";
    private static readonly TimeSpan CacheFor = TimeSpan.FromSeconds(30);

    public async Task AddUserAsync(string name, string display, CancellationToken ct)
    {
        await using var c = await dialect.OpenAsync(ct);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "INSERT INTO users (name, display, created, disabled) VALUES (@n, @d, @c, 0) ON CONFLICT (name) DO UPDATE SET display = @d";
        RecordStore.Add(cmd, "@n", name);
        RecordStore.Add(cmd, "@d", display);
        RecordStore.Add(cmd, "@c", time.GetUtcNow().ToUnixTimeMilliseconds());
        await cmd.ExecuteNonQueryAsync(ct);
    }

    public async Task<IReadOnlyList<WardlineUser>> ListUsersAsync(CancellationToken ct)
    {
        await using var c = await dialect.OpenAsync(ct);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT name, display, disabled FROM users ORDER BY name";
        var list = new List<WardlineUser>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) list.Add(new WardlineUser(r.GetString(0), r.GetString(1), r.GetInt32(2) != 0));
        return list;
    }

    /// <summary>Issues a token for an existing, enabled user. Returns null if there is no such user.</summary>
    public async Task<string?> IssueAsync(string user, TimeSpan lifetime, CancellationToken ct)
    {
        await using var c = await dialect.OpenAsync(ct);
        await using (var check = c.CreateCommand())
        {
            check.CommandText = "SELECT COUNT(*) FROM users WHERE name = @n AND disabled = 0";
            RecordStore.Add(check, "@n", user);
            if (Convert.ToInt64(await check.ExecuteScalarAsync(ct), System.Globalization.CultureInfo.InvariantCulture) == 0) return null;
        }
        var token = Prefix + Base64Url(RandomNumberGenerator.GetBytes(32));
        var now = time.GetUtcNow();
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "INSERT INTO api_tokens (token_hash, user_name, created, expires) VALUES (@h, @u, @c, @e)";
        RecordStore.Add(cmd, "@h", SHA256.HashData(System.Text.Encoding.ASCII.GetBytes(token)));
        RecordStore.Add(cmd, "@u", user);
        RecordStore.Add(cmd, "@c", now.ToUnixTimeMilliseconds());
        RecordStore.Add(cmd, "@e", now.Add(lifetime).ToUnixTimeMilliseconds());
        await cmd.ExecuteNonQueryAsync(ct);
        return token;
    }

    /// <summary>The user a token belongs to, if the token is known, unexpired and its user enabled.</summary>
    public async ValueTask<string?> ValidateAsync(string token, CancellationToken ct)
    {
        if (!token.StartsWith(Prefix, StringComparison.Ordinal) || token.Length > 100) return null;
        var hash = SHA256.HashData(System.Text.Encoding.ASCII.GetBytes(token));
        var cacheKey = "tok:" + Convert.ToHexString(hash);
        if (cache.TryGetValue(cacheKey, out (string User, long Expires) hit))
        {
            return hit.Expires > time.GetUtcNow().ToUnixTimeMilliseconds() ? hit.User : null;
        }
        await using var c = await dialect.OpenAsync(ct);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT t.user_name, t.expires FROM api_tokens t JOIN users u ON u.name = t.user_name WHERE t.token_hash = @h AND u.disabled = 0";
        RecordStore.Add(cmd, "@h", hash);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        if (!await r.ReadAsync(ct)) return null;
        var entry = (r.GetString(0), r.GetInt64(1));
        cache.Set(cacheKey, entry, CacheFor);
        return entry.Item2 > time.GetUtcNow().ToUnixTimeMilliseconds() ? entry.Item1 : null;
    }

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
