using System.Security.Cryptography;
using Microsoft.Extensions.Caching.Memory;
using Wardline.Server.Modules.Access.Identity;
using Wardline.Server.Modules.Records.Storage;
using Wardline.Server.Pipeline;

namespace Wardline.Server.Modules.Access;

/// <summary>
/// Operator-issued bearer tokens (`wardline token`) for local accounts. Only a SHA-256 of each token
/// is stored, so a copy of the database cannot be used to sign in. A token works while its account
/// is enabled and unexpired: disabling an account stops its tokens at once in this process, and
/// within <see cref="AccountStore.CacheFor"/> on other servers sharing the store.
/// </summary>
internal sealed class AccessTokens(
    SqlDialect dialect, TimeProvider time, IMemoryCache cache, AccountStore accounts, AccountService accountService, IAccessRecorder recorder)
{
    public const string Prefix = "wl_";
    private static readonly TimeSpan CacheFor = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Makes sure a token-only account (no password, no roles) exists, for tests and tools that only
    /// need a signed-in caller. Real accounts are made with <see cref="AccountService.CreateAsync"/>.
    /// </summary>
    public async Task AddUserAsync(string name, string display, CancellationToken ct)
    {
        var result = await accountService.CreateAsync(Account.New(name, display), null, "operator", ct);
        if (result is not (AccountResult.Done or AccountResult.AlreadyExists))
            throw new InvalidOperationException($"The account could not be created: {result}");
    }

    /// <summary>Issues a token for an existing, enabled, unexpired account. Returns null if there is no such account.</summary>
    public async Task<string?> IssueAsync(string user, TimeSpan lifetime, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        if (await accounts.FindAsync(user, ct) is not { } account || !account.IsActive(now)) return null;
        await using var c = await dialect.OpenAsync(ct);
        var token = Prefix + Base64Url(RandomNumberGenerator.GetBytes(32));
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "INSERT INTO api_tokens (token_hash, user_name, created, expires) VALUES (@h, @u, @c, @e)";
        RecordStore.Add(cmd, "@h", SHA256.HashData(System.Text.Encoding.ASCII.GetBytes(token)));
        RecordStore.Add(cmd, "@u", user);
        RecordStore.Add(cmd, "@c", now.ToUnixTimeMilliseconds());
        RecordStore.Add(cmd, "@e", now.Add(lifetime).ToUnixTimeMilliseconds());
        await cmd.ExecuteNonQueryAsync(ct);
        await recorder.RecordAsync(new SecurityEvent(now, SecurityEventKind.TokenIssued, user, "operator", "succeeded",
            $"bearer token valid {lifetime.TotalMinutes:0} minutes", null, null), ct);
        return token;
    }

    /// <summary>The account a token belongs to, if the token is known and unexpired and its account enabled and unexpired.</summary>
    public async ValueTask<string?> ValidateAsync(string token, CancellationToken ct)
    {
        if (!token.StartsWith(Prefix, StringComparison.Ordinal) || token.Length > 100) return null;
        var hash = SHA256.HashData(System.Text.Encoding.ASCII.GetBytes(token));
        var cacheKey = "tok:" + Convert.ToHexString(hash);
        if (!cache.TryGetValue(cacheKey, out (string User, long Expires) entry))
        {
            await using var c = await dialect.OpenAsync(ct);
            await using var cmd = c.CreateCommand();
            cmd.CommandText = "SELECT user_name, expires FROM api_tokens WHERE token_hash = @h";
            RecordStore.Add(cmd, "@h", hash);
            await using var r = await cmd.ExecuteReaderAsync(ct);
            if (!await r.ReadAsync(ct)) return null;
            entry = (r.GetString(0), r.GetInt64(1));
            cache.Set(cacheKey, entry, CacheFor);
        }
        var now = time.GetUtcNow();
        if (entry.Expires <= now.ToUnixTimeMilliseconds()) return null;
        // The account is looked up on every use (it is cached, and dropped from the cache when it changes here).
        return await accounts.FindAsync(entry.User, ct) is { } account && account.IsActive(now) ? entry.User : null;
    }

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
