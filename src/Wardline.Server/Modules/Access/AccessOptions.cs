using System.Net;

namespace Wardline.Server.Modules.Access;

/// <summary>Access-control settings, bound from <c>Wardline:Access</c>.</summary>
public sealed class AccessOptions
{
    /// <summary>
    /// The policy file (YAML, docs/formats/policy.md). Unset: policy.yaml in the data directory, written
    /// from the built-in hospital policy on first start; with PostgreSQL and no file, the built-in policy.
    /// </summary>
    public string? PolicyPath { get; set; }

    /// <summary>Identifier system of the Organization resources that are departments; a user's department codes are values of it.</summary>
    public string DepartmentSystem { get; set; } = "https://wardline.example/department";

    /// <summary>Identifier system on a Patient naming the staff account of an employee-patient.</summary>
    public string StaffSystem { get; set; } = "https://wardline.example/staff";

    /// <summary>meta.tag system of patient flags: "vip" (restricted) and "research-consent".</summary>
    public string FlagsSystem { get; set; } = "https://wardline.example/flags";

    /// <summary>Time zone of the institution, for the policy's hour and weekday conditions (IANA id).</summary>
    public string TimeZone { get; set; } = "UTC";

    /// <summary>Networks that count as "internal" for the policy's network condition (CIDR). Loopback is always internal.</summary>
    public IList<string> InternalNetworks { get; } = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"];

    /// <summary>How long a care relationship lasts after its encounter, care team or episode ended.</summary>
    public int CareRelationGraceDays { get; set; } = 30;

    /// <summary>How long a break-glass grant lasts.</summary>
    public double BreakGlassHours { get; set; } = 4;

    /// <summary>How long a user's resolved attributes (roles, departments, care relationships) are reused before being read again.</summary>
    public int SubjectCacheSeconds { get; set; } = 15;

    public RateLimitOptions RateLimits { get; } = new();

    public NotifyOptions Notify { get; } = new();

    /// <summary>The issuer of Wardline's tokens (OAuth server, `wardline token`). Unset: the first server URL.</summary>
    public string? Issuer { get; set; }

    /// <summary>The audience Wardline's tokens carry and the API requires. Unset: the issuer's /fhir.</summary>
    public string? Audience { get; set; }

    /// <summary>An external OpenID Connect provider whose tokens the API also accepts; unset: none.</summary>
    public OAuth.ExternalOidcOptions? ExternalOidc { get; set; }

    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>(RateLimits.Validate());
        problems.AddRange(Notify.Validate());
        if (PolicyPath is not null && !File.Exists(PolicyPath))
            problems.Add($"Wardline:Access:PolicyPath: the file {PolicyPath} does not exist.");
        try
        {
            TimeZoneInfo.FindSystemTimeZoneById(TimeZone);
        }
        catch (Exception ex) when (ex is TimeZoneNotFoundException or InvalidTimeZoneException)
        {
            problems.Add($"Wardline:Access:TimeZone: '{TimeZone}' is not a known time zone.");
        }
        foreach (var n in InternalNetworks)
        {
            if (!IPNetwork.TryParse(n, out _)) problems.Add($"Wardline:Access:InternalNetworks: '{n}' is not a CIDR network.");
        }
        if (CareRelationGraceDays is < 0 or > 3650) problems.Add("Wardline:Access:CareRelationGraceDays must be from 0 to 3650.");
        if (BreakGlassHours is <= 0 or > 72) problems.Add("Wardline:Access:BreakGlassHours must be more than 0 and at most 72.");
        if (Issuer is not null && !(Uri.TryCreate(Issuer, UriKind.Absolute, out var issuer) && issuer.Scheme is "http" or "https" && issuer.Query.Length == 0))
            problems.Add("Wardline:Access:Issuer must be an absolute http(s) URL without a query.");
        if (ExternalOidc is not null) problems.AddRange(ExternalOidc.Validate());
        if (SubjectCacheSeconds is < 0 or > 300) problems.Add("Wardline:Access:SubjectCacheSeconds must be from 0 to 300.");
        return problems;
    }
}
