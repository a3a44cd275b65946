using System.Net;
using System.Security.Claims;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Caching.Memory;
using Wardline.Policy;
using Wardline.Server.Modules.Access.Identity;
using Wardline.Server.Modules.Ledger;
using Wardline.Server.Modules.Records;
using Wardline.Server.Modules.Records.Storage;

namespace Wardline.Server.Modules.Access;

/// <summary>
/// Turns an authenticated request into an <see cref="AccessScope"/>: the account's roles, tier and
/// departments (department codes resolved to the Organization ids records carry), its current care
/// relationships and break-glass grants, and the request's context (purpose of use, local hour and
/// weekday, MFA, network). Resolved subjects are reused for <see cref="AccessOptions.SubjectCacheSeconds"/>.
/// </summary>
internal sealed class AccessSubjects(
    AccessOptions options, PolicyHolder policy, AccountStore accounts, RecordStore store, RecordService records,
    BreakGlass breakGlass, IMemoryCache cache, TimeProvider time)
{
    public const string PurposeHeader = "X-Purpose-Of-Use";

    /// <summary>Purposes of use a request may declare (HL7 v3 PurposeOfUse).</summary>
    public static readonly IReadOnlySet<string> Purposes = new HashSet<string>(StringComparer.Ordinal)
    {
        "TREAT", "ETREAT", "HPAYMT", "HOPERAT", "HRESCH", "PUBHLTH", "HSYSADMIN", "PATRQT", "COVERAGE", "HMARKT", "HLEGAL",
    };

    private readonly TimeZoneInfo _zone = TimeZoneInfo.FindSystemTimeZoneById(options.TimeZone);
    private readonly IPNetwork[] _internal = [.. options.InternalNetworks.Select(n => IPNetwork.Parse(n))];

    /// <summary>The scope of an authenticated request, or a reason the request fails closed (401).</summary>
    public async Task<(AccessScope? Scope, string? Problem)> ForRequestAsync(HttpContext http, CancellationToken ct)
    {
        var principal = http.User;
        var name = principal.Identity?.Name;
        if (principal.Identity?.IsAuthenticated != true || string.IsNullOrEmpty(name)) return (null, "not authenticated");
        // A user of the external OpenID Connect provider without a local account brings its own (OAuth/ExternalOidc.cs).
        var account = await accounts.FindAsync(name, ct) ?? OAuth.ExternalOidc.Account(principal);
        if (account is null) return (null, "unknown account");

        var purposeHeader = http.Request.Headers[PurposeHeader].ToString();
        var purpose = purposeHeader.Length == 0 ? "TREAT" : purposeHeader.Trim().ToUpperInvariant();
        if (!Purposes.Contains(purpose)) return (null, $"purpose of use must be one of {string.Join(", ", Purposes.Order(StringComparer.Ordinal))}");

        var subject = await SubjectAsync(account, ct);
        var context = Context(purpose, Mfa(principal), http.Connection.RemoteIpAddress);
        SmartScopes? scopes = null;
        // A narrowed token reaches FHIR through its resource scopes only: one with API scopes alone reaches none of it.
        if (ApiScopes.Narrowed(principal))
        {
            scopes = SmartScopes.Parse(principal.FindFirst("scope")!.Value, principal.FindFirst("patient")?.Value);
        }
        var actor = new LedgerActor(account.Name, principal.FindFirst("client_id")?.Value, http.TraceIdentifier, http.Connection.RemoteIpAddress?.ToString());
        return (AccessScope.For(account.Name, policy.Current, subject, context, Sql(account), scopes, actor), null);
    }

    /// <summary>A subject for the explainer and the CLI: the named account as it stands now, with a chosen context.</summary>
    public async Task<(Subject Subject, AccessSqlSubject Sql)?> ForAccountAsync(string name, CancellationToken ct)
    {
        var account = await accounts.FindAsync(name, ct);
        return account is null ? null : (await SubjectAsync(account, ct), Sql(account));
    }

    public RequestContext Context(string purpose, bool mfa, IPAddress? remote)
    {
        var now = time.GetUtcNow();
        var local = TimeZoneInfo.ConvertTime(now, _zone);
        var weekday = local.DayOfWeek == DayOfWeek.Sunday ? 7 : (int)local.DayOfWeek;
        return new RequestContext(purpose, now.ToUnixTimeSeconds(), local.Hour, weekday, mfa, IsInternal(remote) ? "internal" : "external");
    }

    private bool IsInternal(IPAddress? ip)
    {
        if (ip is null) return false;
        if (ip.IsIPv4MappedToIPv6) ip = ip.MapToIPv4();
        return IPAddress.IsLoopback(ip) || _internal.Any(n => n.Contains(ip));
    }

    /// <summary>MFA was part of this sign-in: the token or cookie says so in "amr" (RFC 8176).</summary>
    private static bool Mfa(ClaimsPrincipal principal) =>
        principal.FindAll("amr").Any(c => c.Value is "mfa" or "otp");

    private AccessSqlSubject Sql(Account account) =>
        new(account.PractitionerId, CareSince());

    private long CareSince() => time.GetUtcNow().AddDays(-options.CareRelationGraceDays).ToUnixTimeSeconds();

    /// <summary>Forgets a cached subject (after an account, care or break-glass change in this process).</summary>
    public void Invalidate(string name) => cache.Remove(("subject", name));

    /// <summary>
    /// Makes account changes and new break-glass grants in this process reach the next request at once,
    /// not after the cache time (other servers sharing the store see them within it).
    /// </summary>
    public AccessSubjects Subscribed()
    {
        accounts.Changed += Invalidate;
        breakGlass.Granted += Invalidate;
        return this;
    }

    private async Task<Subject> SubjectAsync(Account account, CancellationToken ct)
    {
        if (cache.TryGetValue(("subject", account.Name), out Subject? cached) && cached is not null) return cached;
        var departments = new List<string>();
        foreach (var code in account.Departments)
        {
            departments.AddRange(await DepartmentIdsAsync(code, ct));
        }
        var care = account.PractitionerId is { } practitioner
            ? await store.CarePatientsAsync(practitioner, CareSince(), ct)
            : new HashSet<string>(StringComparer.Ordinal);
        var grants = await breakGlass.ActiveGrantsAsync(account.Name, ct);
        ShiftWindow? shift = account.ShiftStartHour is { } s && account.ShiftEndHour is { } e ? new ShiftWindow(s, e) : null;
        var subject = new Subject(account.Name, account.Roles, account.Tier, departments, account.Treats, !account.Disabled,
            account.Expires?.ToUnixTimeSeconds() ?? long.MaxValue, shift, care, grants);
        if (options.SubjectCacheSeconds > 0)
        {
            // Grants expire on their own: never keep a subject past its earliest grant's end.
            var until = TimeSpan.FromSeconds(options.SubjectCacheSeconds);
            foreach (var g in grants.Values)
            {
                var left = DateTimeOffset.FromUnixTimeSeconds(g) - time.GetUtcNow();
                if (left < until) until = left > TimeSpan.Zero ? left : TimeSpan.FromMilliseconds(1);
            }
            cache.Set(("subject", account.Name), subject, until);
        }
        return subject;
    }

    /// <summary>The Organization ids of a department code (identifier in <see cref="AccessOptions.DepartmentSystem"/>).</summary>
    public async Task<IReadOnlyList<string>> DepartmentIdsAsync(string code, CancellationToken ct)
    {
        if (cache.TryGetValue(("department", code), out IReadOnlyList<string>? ids) && ids is not null) return ids;
        var query = "identifier=" + Uri.EscapeDataString(options.DepartmentSystem + "|" + code);
        var (matches, _) = await records.ConditionalMatchAsync("Organization", query, AccessScope.Operator, ct);
        ids = [.. matches.Select(m => m.Id)];
        cache.Set(("department", code), ids, TimeSpan.FromMinutes(ids.Count == 0 ? 0.1 : 5));
        return ids;
    }
}
