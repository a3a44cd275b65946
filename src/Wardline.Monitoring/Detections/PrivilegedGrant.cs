using System.Text;

namespace Wardline.Monitoring.Detections;

/// <summary>
/// An account given powerful access: tier 1 with a clinical role (the policy's full access), break-glass
/// approval, or a powerful role (administrator, privacy or security officer). Nothing else reviews these
/// grants: an administrator could give an account, or their own, every chart. So every grant is a finding,
/// for the privacy and security office to check after the fact (the second person); a legitimate grant is
/// closed as legitimate. Read from the ledger's AccountCreated and AccountChanged entries, whose detail is
/// AccountRules.Describe ("roles=a,b tier=N departments=.. treats=.. break-glass=yes|no", and for a
/// change "changed f,g; now ..."): a change reports only what its changed fields granted, so a new display
/// name on a powerful account is nothing. What each account held is remembered from its earlier entries
/// (warm-up included), so a change of roles that keeps a role it had is not a grant of it; for an account
/// the examined history never described, a changed role list is reported with what it now includes.
/// A grant to the actor's own account is reported a step above the configured severity.
/// </summary>
internal sealed class PrivilegedGrant : Detection
{
    /// <summary>Accounts remembered at most; beyond it the memory starts again (a forgotten account's next role change is reported as of unknown history).</summary>
    private const int MaxAccounts = 100_000;

    private static readonly DetectionInfo Description = new(
        "privileged-grant", "Powerful access granted", Severity.High, Suppressible: false,
        "An account was created or changed with powerful access: tier 1 (full access) with a clinical role, break-glass approval, or a powerful role such as administrator. Nothing else makes a second person look at such a grant; an administrator could give an account, or their own, every chart. Every grant is reported, to be confirmed as approved or closed as a violation; one to the granter's own account a step more severe.",
        [],
        [
            new DetectionList("powerful-roles", ["administrator", "privacy_officer", "security_officer"], "roles whose grant is reported whatever the tier"),
            new DetectionList("clinical-roles", ["physician", "nurse", "psychiatrist", "pharmacist", "lab_tech", "social_worker", "executive", "integration_engine"],
                "roles that read charts (the built-in policy's clinical roles); one of them with tier 1 is full access"),
        ]);

    private readonly Dictionary<string, Held> _held = new(StringComparer.Ordinal);
    private HashSet<string> _powerful = [];
    private HashSet<string> _clinical = [];

    public override DetectionInfo Info => Description;

    protected override void OnConfigured(DetectionSettings settings)
    {
        _powerful = new HashSet<string>(settings.List("powerful-roles"), StringComparer.Ordinal);
        _clinical = new HashSet<string>(settings.List("clinical-roles"), StringComparer.Ordinal);
    }

    public override void Examine(MonitorEvent e, MonitorContext ctx)
    {
        if (e.Kind != EntryKind.Security || e.Event is not ("AccountCreated" or "AccountChanged") || e.User is not { } user || e.Detail is not { } detail) return;
        if (e.Outcome is not (null or "succeeded")) return;
        var created = e.Event == "AccountCreated";
        string[] changed = [];
        var described = detail;
        if (!created)
        {
            // "changed roles,tier; now roles=..."; other changes ("enabled", "unlocked ...") say nothing of the grants.
            const string Now = "; now ";
            var at = detail.IndexOf(Now, StringComparison.Ordinal);
            if (!detail.StartsWith("changed ", StringComparison.Ordinal) || at < 0) return;
            changed = detail["changed ".Length..at].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            described = detail[(at + Now.Length)..];
        }
        if (Held.Parse(described) is not { } now) return;
        _held.TryGetValue(user, out var before);
        if (_held.Count >= MaxAccounts && before is null) _held.Clear();
        _held[user] = now;

        var rolesChanged = created || changed.Contains("roles");
        var tierChanged = created || changed.Contains("tier");
        // What the entry certainly granted, and the roles a change of roles left the account with when what it held before is not known.
        var granted = new List<string>();
        var unsure = new List<string>();

        var clinical = now.Roles.Where(_clinical.Contains).ToList();
        if (now.Tier == 1 && clinical.Count > 0 && (tierChanged || rolesChanged))
        {
            if (tierChanged || (before is not null && !(before.Tier == 1 && before.Roles.Any(_clinical.Contains))))
                granted.Add($"tier 1 (full access) with the clinical role{(clinical.Count > 1 ? "s" : "")} {And(clinical)}");
            else if (before is null)
                unsure.Add($"the clinical role{(clinical.Count > 1 ? "s" : "")} {And(clinical)} at tier 1 (full access)");
        }
        if (now.BreakGlass && (created || changed.Contains("break-glass")))
            granted.Add("break-glass approval");
        if (rolesChanged)
        {
            var powerful = now.Roles.Where(_powerful.Contains).ToList();
            if (created || before is not null)
            {
                var added = powerful.Where(r => created || !before!.Roles.Contains(r)).ToList();
                if (added.Count > 0) granted.Add($"the {And(added)} role{(added.Count > 1 ? "s" : "")}");
            }
            else if (powerful.Count > 0)
            {
                unsure.Insert(0, And(powerful));
            }
        }
        if ((granted.Count == 0 && unsure.Count == 0) || ctx.Warming) return;

        var self = e.Actor is { } actor && string.Equals(actor, user, StringComparison.Ordinal);
        var evidence = new StringBuilder(Who(e.Actor));
        var whom = self ? "their own account" : "account " + user;
        if (granted.Count > 0) evidence.Append(" gave ").Append(whom).Append(' ').Append(And(granted));
        if (unsure.Count > 0)
        {
            evidence.Append(granted.Count > 0 ? " and changed its roles" : " changed the roles of " + whom);
            evidence.Append(", which now include ").Append(And(unsure));
        }
        var configured = ctx.Config.For(Info.Id).Severity;
        ctx.Report(this, user, null, e.AtMs, [e.Index], evidence.ToString(),
            severity: self && configured < Severity.Critical ? configured + 1 : null);
    }

    /// <summary>"a", "a and b", "a, b and c".</summary>
    private static string And(IReadOnlyList<string> items) =>
        items.Count <= 1 ? string.Concat(items) : string.Join(", ", items.Take(items.Count - 1)) + " and " + items[^1];

    /// <summary>The actor in words: an account's name, or the operating-system user of the command line.</summary>
    private static string Who(string? actor) => actor switch
    {
        null or "" => "someone (no actor recorded)",
        _ when actor.StartsWith("cli:", StringComparison.Ordinal) => string.Concat(actor.AsSpan(4), " on the command line"),
        _ => actor,
    };

    /// <summary>What an account description says the account holds.</summary>
    private sealed record Held(string[] Roles, int Tier, bool BreakGlass)
    {
        /// <summary>Reads "roles=a,b tier=N departments=.. treats=.. break-glass=yes|no"; null when it is not such a description.</summary>
        public static Held? Parse(string described)
        {
            string[]? roles = null;
            int? tier = null;
            bool? breakGlass = null;
            foreach (var token in described.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            {
                if (token.StartsWith("roles=", StringComparison.Ordinal))
                    roles = token["roles=".Length..].Split(',', StringSplitOptions.RemoveEmptyEntries);
                else if (token.StartsWith("tier=", StringComparison.Ordinal) && int.TryParse(token.AsSpan("tier=".Length), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var t))
                    tier = t;
                else if (token.StartsWith("break-glass=", StringComparison.Ordinal))
                    breakGlass = token == "break-glass=yes";
            }
            return roles is null || tier is null || breakGlass is null ? null : new Held(roles, tier.Value, breakGlass.Value);
        }
    }
}
