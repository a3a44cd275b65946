using Wardline.Policy;

namespace Wardline.Server.Modules.Access;

/// <summary>
/// SMART on FHIR scopes of a token (v2 <c>patient/Observation.rs</c>, <c>user/*.cruds</c>,
/// <c>system/*.rs</c>; v1 <c>.read</c>, <c>.write</c>, <c>.*</c>). Scopes only narrow what the user's own
/// permissions allow: the policy is still asked for every resource. A patient-context scope is limited
/// to the token's launch patient. Scopes this server does not understand (v2 query granularity
/// such as <c>?category=</c>) grant nothing, so they can never widen access by being ignored.
/// </summary>
internal sealed class SmartScopes
{
    private readonly List<(string Context, string Type, string Permissions)> _grants = [];

    private SmartScopes(string? patient) => Patient = patient;

    /// <summary>The launch patient, when the token has patient-context scopes.</summary>
    public string? Patient { get; }

    public IReadOnlyList<string> Granted => [.. _grants.Select(g => $"{g.Context}/{g.Type}.{g.Permissions}")];

    /// <summary>Parses a space-separated scope string. Patient-context scopes without a launch patient grant nothing.</summary>
    public static SmartScopes Parse(string scope, string? launchPatient)
    {
        var s = new SmartScopes(launchPatient);
        foreach (var item in scope.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            var slash = item.IndexOf('/', StringComparison.Ordinal);
            var dot = item.LastIndexOf('.');
            if (slash <= 0 || dot < slash || item.Contains('?', StringComparison.Ordinal)) continue;
            var context = item[..slash];
            if (context is not ("patient" or "user" or "system")) continue;
            if (context == "patient" && launchPatient is null) continue;
            var type = item[(slash + 1)..dot];
            var permissions = item[(dot + 1)..] switch
            {
                "read" => "rs",
                "write" => "cud",
                "*" => "cruds",
                var p when IsV2(p) => p,
                _ => null,
            };
            if (permissions is null || type.Length == 0) continue;
            s._grants.Add((context, type, permissions));
        }
        return s;
    }

    /// <summary>v2 permissions: a non-empty subsequence of "cruds", in that order.</summary>
    private static bool IsV2(string p)
    {
        var at = 0;
        foreach (var ch in p)
        {
            var i = "cruds".IndexOf(ch, at);
            if (i < 0) return false;
            at = i + 1;
        }
        return p.Length > 0;
    }

    public static bool IsResourceScope(string scope) =>
        scope.StartsWith("patient/", StringComparison.Ordinal) || scope.StartsWith("user/", StringComparison.Ordinal) || scope.StartsWith("system/", StringComparison.Ordinal);

    /// <summary>Whether any scope allows <paramref name="action"/> on <paramref name="type"/> at all (patient scopes: for the launch patient).</summary>
    public bool Allows(string type, PolicyAction action) => Allows(type, action, Patient, anyPatient: true);

    /// <summary>Whether a scope allows <paramref name="action"/> on this resource, whose patient is <paramref name="patient"/>.</summary>
    public bool Allows(string type, PolicyAction action, string? patient) => Allows(type, action, patient, anyPatient: false);

    private bool Allows(string type, PolicyAction action, string? patient, bool anyPatient)
    {
        var letter = action switch
        {
            PolicyAction.Create => 'c',
            PolicyAction.Read => 'r',
            PolicyAction.Update => 'u',
            PolicyAction.Delete => 'd',
            PolicyAction.Search => 's',
            _ => '\0',
        };
        foreach (var (context, t, permissions) in _grants)
        {
            if (t != "*" && t != type) continue;
            if (!permissions.Contains(letter, StringComparison.Ordinal)) continue;
            if (context == "patient" && !anyPatient && (patient is null || patient != Patient)) continue;
            return true;
        }
        return false;
    }
}
