using System.Globalization;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Wardline.Server.Modules.Records;

namespace Wardline.Server.Modules.Access;

/// <summary>Request rate limits, bound from <c>Wardline:Access:RateLimits</c>. A limit of 0 turns that limit off.</summary>
public sealed class RateLimitOptions
{
    /// <summary>Per signed-in user (bearer token or console session).</summary>
    public int UserPerMinute { get; set; } = 1200;

    /// <summary>Per OAuth client acting for itself (client credentials: an EHR integration engine).</summary>
    public int ClientPerMinute { get; set; } = 12000;

    /// <summary>Per remote address, for requests without a signed-in caller (sign-in pages, token endpoint, refused tokens).</summary>
    public int AnonymousPerMinute { get; set; } = 300;

    public IEnumerable<string> Validate()
    {
        if (UserPerMinute is < 0 or > 1_000_000) yield return "Wardline:Access:RateLimits:UserPerMinute must be from 0 to 1000000.";
        if (ClientPerMinute is < 0 or > 10_000_000) yield return "Wardline:Access:RateLimits:ClientPerMinute must be from 0 to 10000000.";
        if (AnonymousPerMinute is < 0 or > 1_000_000) yield return "Wardline:Access:RateLimits:AnonymousPerMinute must be from 0 to 1000000.";
    }
}

/// <summary>
/// ASP.NET Core's rate limiter, partitioned by who is calling: a user, an OAuth client, or (for
/// callers not signed in) the remote address. Token buckets allow a burst of ten seconds' worth and
/// refill every second. A refused request gets 429 with Retry-After (and an OperationOutcome on FHIR
/// routes); it has done nothing, so retrying later is always safe.
/// </summary>
internal static class RateLimits
{
    public static IServiceCollection AddWardlineRateLimits(this IServiceCollection services, RateLimitOptions options)
    {
        services.AddRateLimiter(r =>
        {
            r.GlobalLimiter = PartitionedRateLimiter.Create<HttpContext, string>(http =>
            {
                var user = http.User;
                var (key, perMinute) = user.Identity?.IsAuthenticated == true
                    ? user.FindFirst("client_id") is { } client && user.Identity.Name is null
                        ? ("client:" + client.Value, options.ClientPerMinute)
                        : ("user:" + user.Identity.Name, options.UserPerMinute)
                    : ("ip:" + http.Connection.RemoteIpAddress, options.AnonymousPerMinute);
                return perMinute <= 0
                    ? RateLimitPartition.GetNoLimiter(key)
                    : RateLimitPartition.GetTokenBucketLimiter(key, _ => new TokenBucketRateLimiterOptions
                    {
                        TokenLimit = Math.Max(1, perMinute / 6),
                        TokensPerPeriod = Math.Max(1, perMinute / 60),
                        ReplenishmentPeriod = TimeSpan.FromSeconds(perMinute >= 60 ? 1 : 60.0 / perMinute),
                        QueueLimit = 0,
                        AutoReplenishment = true,
                    });
            });
            r.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
            r.OnRejected = async (context, ct) =>
            {
                var retry = context.Lease.TryGetMetadata(MetadataName.RetryAfter, out var after) ? Math.Max(1, (int)Math.Ceiling(after.TotalSeconds)) : 1;
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
}
