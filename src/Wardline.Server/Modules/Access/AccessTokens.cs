using System.Security.Claims;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Wardline.Server.Modules.Access.Identity;
using Wardline.Server.Modules.Access.OAuth;
using Wardline.Server.Pipeline;

namespace Wardline.Server.Modules.Access;

/// <summary>
/// Wardline's access tokens: JWTs (type <c>at+jwt</c>, ES256) signed with the store's sealed token key
/// (<see cref="TokenKeys"/>) for the issuer and audience of <see cref="TokenSettings"/>. The OAuth
/// endpoints (Modules/Access/OAuth) issue them to clients; <see cref="IssueAsync(string, TimeSpan, string?, CancellationToken)"/>
/// issues them to operators (`wardline token`). <see cref="ValidateAsync(string, CancellationToken)"/> is the one check
/// every Wardline token passes at the API: signature, issuer, audience, type and lifetime, then the
/// account must still be enabled and unexpired, the token issued after the account's last password change, MFA reset
/// or disabling (<see cref="Account.TokensAfter"/>), its client still registered and its authorization code never
/// replayed. Each of these stops a token at once in this process, and within <see cref="AccountStore.CacheFor"/> on
/// other servers sharing the store.
/// </summary>
internal sealed class AccessTokens(
    TokenKeys keys, TokenSettings settings, TimeProvider time, AccountStore accounts, AccountService accountService, OAuthClients clients, IAccessRecorder recorder,
    IMemoryCache cache)
{
    /// <summary>How long a verified signature is trusted for the same token string (never past the token's expiry).</summary>
    private static readonly TimeSpan VerifiedFor = TimeSpan.FromSeconds(30);

    public const string TokenType = "at+jwt";
    private static readonly TimeSpan ClockSkew = TimeSpan.FromSeconds(30);
    private static readonly JsonWebTokenHandler Handler = new() { MapInboundClaims = false };

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

    /// <summary>Issues an operator token (all of the user's own permissions) for an existing, enabled, unexpired account; null if there is none.</summary>
    public Task<string?> IssueAsync(string user, TimeSpan lifetime, CancellationToken ct) => IssueAsync(user, lifetime, null, ct);

    /// <summary>
    /// Issues an operator token for an existing, enabled, unexpired account, optionally narrowed to SMART
    /// <paramref name="scope"/>s. Returns null if there is no such account. The token says "amr": pwd, mfa:
    /// it is an operator-vouched sign-in, issued by someone holding the store and its keyring on the
    /// server's own command line, which is a second factor beyond the account.
    /// </summary>
    public async Task<string?> IssueAsync(string user, TimeSpan lifetime, string? scope, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        if (await accounts.FindAsync(user, ct) is not { } account || !account.IsActive(now)) return null;
        var claims = new Dictionary<string, object>(StringComparer.Ordinal)
        {
            ["sub"] = account.Name,
            ["name"] = account.Name,
            ["amr"] = new[] { "pwd", "mfa" },
            ["jti"] = Guid.NewGuid().ToString("N"),
            [TokenSettings.IssuedMsClaim] = now.ToUnixTimeMilliseconds(),
        };
        if (!string.IsNullOrWhiteSpace(scope)) claims["scope"] = scope.Trim();
        var loaded = await keys.GetAsync(ct);
        var token = Handler.CreateToken(new SecurityTokenDescriptor
        {
            TokenType = TokenType,
            Issuer = settings.MintIssuer,
            Audience = settings.MintAudience,
            IssuedAt = now.UtcDateTime,
            NotBefore = now.UtcDateTime,
            Expires = now.Add(lifetime).UtcDateTime,
            Claims = claims,
            SigningCredentials = loaded.SigningCredentials,
        });
        await recorder.RecordAsync(new SecurityEvent(now, SecurityEventKind.TokenIssued, user, "operator", "succeeded",
            $"bearer token (JWT) valid {lifetime.TotalMinutes:0} minutes{(scope is null ? "" : " scope " + scope)}", null, null), ct);
        return token;
    }

    /// <summary>The account a token belongs to, if it is a valid Wardline token of an enabled, unexpired account.</summary>
    public async ValueTask<string?> ValidateAsync(string token, CancellationToken ct) =>
        (await ValidateTokenAsync(token, ct))?.FindFirst("sub")?.Value;

    /// <summary>The claims of a valid Wardline token whose account is enabled and unexpired, else null (no reason: the caller learns nothing).</summary>
    public async Task<ClaimsIdentity?> ValidateTokenAsync(string token, CancellationToken ct)
    {
        if (token.Length is 0 or > 8192) return null;
        var now = time.GetUtcNow();
        // An ECDSA verification costs more than the rest of a read: a token seen in the last seconds is
        // not verified again (keyed by its SHA-256; its lifetime still ends at its own expiry). The
        // account and client checks below run on every request.
        var cacheKey = ("jwt", Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(token))));
        ClaimsIdentity identity;
        if (cache.TryGetValue(cacheKey, out (ClaimsIdentity Identity, DateTimeOffset Expires) hit) && hit.Expires > now - ClockSkew)
        {
            identity = hit.Identity.Clone();
        }
        else
        {
            var loaded = await keys.GetAsync(ct);
            var result = await Handler.ValidateTokenAsync(token, Parameters(loaded));
            if (!result.IsValid) return null;
            identity = result.ClaimsIdentity;
            var expires = result.SecurityToken.ValidTo is { } to && to > DateTime.MinValue ? new DateTimeOffset(to, TimeSpan.Zero) : now;
            var keep = expires - now;
            if (keep > TimeSpan.Zero) cache.Set(cacheKey, (identity.Clone(), expires), keep < VerifiedFor ? keep : VerifiedFor);
        }
        if (identity.FindFirst("sub")?.Value is not { Length: > 0 } user) return null;
        // A removed client's tokens stop too (an app's or a system's; operator tokens name no client), also once it is added again.
        if (identity.FindFirst("client_id")?.Value is { } client && (await clients.RegisteredSinceAsync(client, ct) is not { } since || IssuedMs(identity) < since)) return null;
        // A token issued for an authorization code that was later replayed: the code leaked, so its token may have too.
        if (identity.FindFirst(TokenSettings.GrantClaim)?.Value is { } grant && await clients.IsGrantRevokedAsync(grant, ct)) return null;
        if (await accounts.FindAsync(user, ct) is not { } account || !account.IsActive(now)) return null;
        // Issued before the account's password change, MFA reset or disabling: refused, whatever its expiry says.
        return account.TokensAfter is { } after && IssuedMs(identity) < after.ToUnixTimeMilliseconds() ? null : identity;
    }

    /// <summary>
    /// When the token was issued, in Unix ms: its <see cref="TokenSettings.IssuedMsClaim"/>, else (a token minted before that
    /// claim existed) the last millisecond of its "iat" second, else 0 (a token that says nothing counts as old).
    /// </summary>
    internal static long IssuedMs(ClaimsIdentity identity)
    {
        if (long.TryParse(identity.FindFirst(TokenSettings.IssuedMsClaim)?.Value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var ms)) return ms;
        return long.TryParse(identity.FindFirst("iat")?.Value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var seconds) && seconds < long.MaxValue / 1000
            ? seconds * 1000 + 999
            : 0;
    }

    private TokenValidationParameters Parameters(TokenKeys.Loaded loaded) => new()
    {
        ValidIssuers = settings.ValidIssuers,
        ValidAudiences = settings.ValidAudiences,
        IssuerSigningKey = loaded.Signing,
        ValidAlgorithms = [SecurityAlgorithms.EcdsaSha256],
        ValidTypes = [TokenType],
        RequireSignedTokens = true,
        RequireExpirationTime = true,
        RequireAudience = true,
        ValidateIssuerSigningKey = true,
        // The server's clock (a TimeProvider, so tests can move it), with a little skew between servers.
        LifetimeValidator = (notBefore, expires, _, _) =>
        {
            var now = time.GetUtcNow().UtcDateTime;
            return expires is { } e && e.ToUniversalTime() > now - ClockSkew && (notBefore is not { } n || n.ToUniversalTime() <= now + ClockSkew);
        },
    };
}
