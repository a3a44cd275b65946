using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Wardline.Server.Modules.Access.OAuth;
using Wardline.Server.Modules.Records;

namespace Wardline.Server.Modules.Access;

/// <summary>Request rate limits, bound from <c>Wardline:Access:RateLimits</c>. A limit of 0 turns that limit off.</summary>
public sealed class RateLimitOptions
{
    /// <summary>Per signed-in user (bearer token or console session).</summary>
    public int UserPerMinute { get; set; } = 1200;

    /// <summary>Per OAuth client acting for itself (client credentials: an EHR integration engine).</summary>
    public int ClientPerMinute { get; set; } = 12000;

    /// <summary>Per remote address (an IPv6 address by its /64), for requests without a signed-in caller (sign-in pages, refused tokens), except the OAuth endpoints.</summary>
    public int AnonymousPerMinute { get; set; } = 300;

    /// <summary>
    /// Per remote address (an IPv6 address by its /64), for the OAuth endpoints: <c>/connect/token</c>,
    /// <c>/connect/authorize</c>, <c>/console/authorize</c> and OpenIddict's discovery and JWKS. Counted before
    /// authentication, because OpenIddict checks a client's credentials inside the authentication middleware and
    /// answers a refusal itself; these requests are not counted again under <see cref="AnonymousPerMinute"/>.
    /// </summary>
    public int TokenPerMinute { get; set; } = 300;

    public IEnumerable<string> Validate()
    {
        if (UserPerMinute is < 0 or > 1_000_000) yield return "Wardline:Access:RateLimits:UserPerMinute must be from 0 to 1000000.";
        if (ClientPerMinute is < 0 or > 10_000_000) yield return "Wardline:Access:RateLimits:ClientPerMinute must be from 0 to 10000000.";
        if (AnonymousPerMinute is < 0 or > 1_000_000) yield return "Wardline:Access:RateLimits:AnonymousPerMinute must be from 0 to 1000000.";
        if (TokenPerMinute is < 0 or > 1_000_000) yield return "Wardline:Access:RateLimits:TokenPerMinute must be from 0 to 1000000.";
    }
}

/// <summary>
/// ASP.NET Core's rate limiter, partitioned by who is calling: a user, an OAuth client, or (for
/// callers not signed in) the remote address (the client's, behind a proxy of <c>Wardline:TrustedProxies</c>:
/// the forwarded-headers middleware runs first). Token buckets allow a burst of ten seconds' worth and
/// refill every second. A refused request gets 429 with Retry-After (and an OperationOutcome on FHIR
/// routes); it has done nothing, so retrying later is always safe. The OAuth endpoints have their own
/// limit (<see cref="OAuthRateLimit"/>), applied before authentication.
/// </summary>
internal static class RateLimits
{
    public static IServiceCollection AddWardlineRateLimits(this IServiceCollection services, RateLimitOptions options)
    {
        services.AddSingleton(sp => new OAuthRateLimit(options.TokenPerMinute, sp.GetRequiredService<ILogger<OAuthRateLimit>>()));
        services.AddRateLimiter(r =>
        {
            r.GlobalLimiter = PartitionedRateLimiter.Create<HttpContext, string>(http =>
            {
                // Counted once, by the OAuth limit, before authentication had a chance to spend anything on them.
                if (OAuthRateLimit.Covers(http.Request.Path)) return RateLimitPartition.GetNoLimiter("oauth");
                var user = http.User;
                var (key, perMinute) = user.Identity?.IsAuthenticated == true
                    ? user.FindFirst("client_id") is { } client && user.Identity.Name is null
                        ? ("client:" + client.Value, options.ClientPerMinute)
                        : ("user:" + user.Identity.Name, options.UserPerMinute)
                    : ("ip:" + OAuthRateLimit.AddressKey(http.Connection.RemoteIpAddress), options.AnonymousPerMinute);
                return Partition(key, perMinute);
            });
            r.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
            r.OnRejected = async (context, ct) =>
            {
                var retry = RetryAfterSeconds(context.Lease);
                var response = context.HttpContext.Response;
                response.Headers.RetryAfter = retry.ToString(CultureInfo.InvariantCulture);
                if (context.HttpContext.Request.Path.StartsWithSegments("/fhir"))
                {
                    var outcome = FhirResponse.Error(429, Hl7.Fhir.Model.OperationOutcome.IssueType.Throttled,
                        $"Too many requests; try again in {retry} s.");
                    response.ContentType = "application/fhir+json";
                    await response.Body.WriteAsync(outcome.Json!, ct);
                }
            };
        });
        return services;
    }

    /// <summary>The OAuth endpoints' per-address limit; before <c>UseAuthentication</c>, where OpenIddict does its work.</summary>
    public static IApplicationBuilder UseWardlineOAuthRateLimit(this IApplicationBuilder app)
    {
        var limit = app.ApplicationServices.GetRequiredService<OAuthRateLimit>();
        return app.Use(limit.InvokeAsync);
    }

    /// <summary>A token bucket of <paramref name="perMinute"/> a minute with a burst of ten seconds' worth; none for 0.</summary>
    internal static RateLimitPartition<string> Partition(string key, int perMinute) =>
        perMinute <= 0
            ? RateLimitPartition.GetNoLimiter(key)
            : RateLimitPartition.GetTokenBucketLimiter(key, _ => new TokenBucketRateLimiterOptions
            {
                TokenLimit = Math.Max(1, perMinute / 6),
                TokensPerPeriod = Math.Max(1, perMinute / 60),
                ReplenishmentPeriod = TimeSpan.FromSeconds(perMinute >= 60 ? 1 : 60.0 / perMinute),
                QueueLimit = 0,
                AutoReplenishment = true,
            });

    internal static int RetryAfterSeconds(RateLimitLease lease) =>
        lease.TryGetMetadata(MetadataName.RetryAfter, out var after) ? Math.Max(1, (int)Math.Ceiling(after.TotalSeconds)) : 1;
}

/// <summary>
/// The per-address limit of the OAuth endpoints (<see cref="RateLimitOptions.TokenPerMinute"/>). It runs before
/// authentication: OpenIddict handles these endpoints inside the authentication middleware, checks a client's
/// secret there and writes a refusal itself, so a request with wrong credentials never reached the general
/// limiter, and an unauthenticated caller could make the server check secrets without bound. A refused request
/// has done nothing (its body is not read), gets 429 with Retry-After and an RFC 6749-shaped error, and is
/// counted in a log line at most every <see cref="ReportEvery"/> (never one line, nor one audit entry, per
/// refusal: a flood must not turn into a flood of writes).
/// </summary>
internal sealed class OAuthRateLimit : IAsyncDisposable
{
    public static readonly TimeSpan ReportEvery = TimeSpan.FromSeconds(10);

    private readonly PartitionedRateLimiter<HttpContext>? _limiter;
    private readonly int _perMinute;
    private readonly ILogger<OAuthRateLimit> _log;
    private long _refused;
    private long _refusedSinceReport;
    private long _nextReport;

    public OAuthRateLimit(int perMinute, ILogger<OAuthRateLimit> log)
    {
        _perMinute = perMinute;
        _log = log;
        _limiter = perMinute <= 0
            ? null
            : PartitionedRateLimiter.Create<HttpContext, string>(http => RateLimits.Partition(AddressKey(http.Connection.RemoteIpAddress), perMinute));
    }

    /// <summary>Requests refused by this limit since the server started (for tests and diagnostics).</summary>
    public long Refused => Interlocked.Read(ref _refused);

    /// <summary>The paths OpenIddict serves from the authentication middleware (a test holds this to its configured endpoints).</summary>
    public static bool Covers(PathString path) =>
        path.StartsWithSegments("/connect")
        || path.StartsWithSegments(OAuthModule.ConsoleAuthorizePath)
        || path.StartsWithSegments("/.well-known/openid-configuration")
        || path.StartsWithSegments("/.well-known/oauth-authorization-server")
        || path.StartsWithSegments("/.well-known/jwks");

    /// <summary>
    /// The partition of an address: IPv4 (also IPv4-mapped IPv6) by the address, IPv6 by its /64, since one
    /// host or home network is commonly given a whole /64 and could otherwise rotate through its addresses.
    /// </summary>
    internal static string AddressKey(IPAddress? address)
    {
        if (address is null) return "none";
        if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
        if (address.AddressFamily != AddressFamily.InterNetworkV6) return address.ToString();
        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out _);
        bytes[8..].Clear();
        return new IPAddress(bytes).ToString() + "/64";
    }

    public async Task InvokeAsync(HttpContext http, RequestDelegate next)
    {
        if (_limiter is null || !Covers(http.Request.Path))
        {
            await next(http);
            return;
        }
        using var lease = _limiter.AttemptAcquire(http);
        if (lease.IsAcquired)
        {
            await next(http);
            return;
        }
        Interlocked.Increment(ref _refused);
        Report(http.Connection.RemoteIpAddress);
        var retry = RateLimits.RetryAfterSeconds(lease);
        var response = http.Response;
        response.StatusCode = StatusCodes.Status429TooManyRequests;
        response.Headers.RetryAfter = retry.ToString(CultureInfo.InvariantCulture);
        response.Headers.CacheControl = "no-store";
        response.ContentType = "application/json;charset=UTF-8";
        // RFC 6749 has no error code for a rate limit. "temporarily_unavailable" is its code for "unable to handle the
        // request due to a temporary overloading" (section 4.1.2.1), the registered code closest in meaning, and one
        // OAuth client libraries treat as worth retrying; the status (429, RFC 6585) and Retry-After say the rest. The
        // same shape as every other answer of these endpoints, so a client reads "error" as it always does, rather
        // than a ProblemDetails body it was never written for. At the authorization endpoints the error cannot go to
        // the client's redirect URI: checking that URI is the work this limit exists to hold back.
        await JsonSerializer.SerializeAsync(response.Body, new Dictionary<string, string>
        {
            ["error"] = "temporarily_unavailable",
            ["error_description"] = $"Too many requests from this address; try again in {retry} s.",
        }, cancellationToken: http.RequestAborted);
    }

    /// <summary>One log line per <see cref="ReportEvery"/> at most, counting the refusals since the last.</summary>
    private void Report(IPAddress? address)
    {
        Interlocked.Increment(ref _refusedSinceReport);
        var now = Environment.TickCount64;
        var due = Volatile.Read(ref _nextReport);
        if (now < due || Interlocked.CompareExchange(ref _nextReport, now + (long)ReportEvery.TotalMilliseconds, due) != due) return;
        Log.OAuthRateLimited(_log, Interlocked.Exchange(ref _refusedSinceReport, 0), _perMinute, AddressKey(address));
    }

    public ValueTask DisposeAsync() => _limiter?.DisposeAsync() ?? ValueTask.CompletedTask;
}
