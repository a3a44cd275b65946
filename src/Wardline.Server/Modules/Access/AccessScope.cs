using Wardline.Policy;
using Wardline.Server.Modules.Ledger;
using Wardline.Server.Modules.Records.Storage;
using Wardline.Server.Pipeline;

namespace Wardline.Server.Modules.Access;

/// <summary>One decision of a request, with the patient whose record it touched, if known.</summary>
internal sealed record ScopeDecision(FhirInteraction Interaction, AccessDecision Decision, string? Patient, int? Version = null);

/// <summary>
/// One request's right to the records: the policy, the subject and the request's context, plus the
/// SMART scopes of its token. The record service asks it before every disclosure or change, and it
/// keeps every decision it made so the pipeline records them with the outcome. The operator's own work
/// (import, the CLI) runs under <see cref="Operator"/>, which is unrestricted and decides nothing.
/// </summary>
internal sealed class AccessScope
{
    private readonly Policy.Policy? _policy;
    private readonly Subject? _subject;
    private readonly RequestContext _context;
    private readonly AccessSqlSubject? _sql;
    private readonly SmartScopes? _scopes;
    private readonly List<ScopeDecision> _decisions = [];

    private AccessScope(string? user, Policy.Policy? policy, Subject? subject, RequestContext context, AccessSqlSubject? sql, SmartScopes? scopes)
    {
        User = user;
        _policy = policy;
        _subject = subject;
        _context = context;
        _sql = sql;
        _scopes = scopes;
    }

    /// <summary>The operator's scope: everything, no decisions recorded (the operator's commands are recorded as such).</summary>
    public static AccessScope Operator { get; } = new(null, null, null, default, null, null);

    public static AccessScope For(string user, Policy.Policy policy, Subject subject, RequestContext context, AccessSqlSubject sql, SmartScopes? scopes, LedgerActor actor) =>
        new(user, policy, subject, context, sql, scopes) { Actor = actor };

    /// <summary>Who the writes made under this scope are recorded against in the ledger.</summary>
    public LedgerActor Actor { get; private init; } = LedgerActor.Operator;

    public string? User { get; }

    public bool Unrestricted => _policy is null;

    public Subject? Subject => _subject;

    public RequestContext Context => _context;

    /// <summary>Every decision made so far, in order.</summary>
    public IReadOnlyList<ScopeDecision> Decisions
    {
        get
        {
            lock (_decisions) return [.. _decisions];
        }
    }

    /// <summary>
    /// A refusal when this subject may never <paramref name="action"/> any <paramref name="type"/> (the
    /// token's scopes or the policy rule it out whatever the resource), else null. Refusing at this level
    /// reveals nothing about any particular resource, so it may answer 403.
    /// </summary>
    public AccessDecision? RefuseType(PolicyAction action, string type, FhirInteraction interaction)
    {
        if (_policy is null) return null;
        AccessDecision? refusal = null;
        if (_scopes is not null && !_scopes.Allows(type, action))
        {
            refusal = new AccessDecision(false, "smart-scope", $"the token's scopes do not allow {Name(action)} on {type}");
        }
        else if (_policy.Partial(_subject!, action, type, _context) is Residual.Constant { Value: false })
        {
            var d = _policy.Decide(_subject!, action, new ResourceFacts(type, null, [], [], null, null), _context);
            refusal = new AccessDecision(false, d.Permitted ? "default-deny" : d.RuleId, $"no {type} may be {Name(action)} by this user");
        }
        if (refusal is not null) Add(interaction, refusal);
        return refusal;
    }

    /// <summary>Decides one resource and keeps the decision.</summary>
    public bool Permits(PolicyAction action, ResourceFacts facts, FhirInteraction interaction)
    {
        if (_policy is null) return true;
        AccessDecision decision;
        if (_scopes is not null && !_scopes.Allows(facts.Kind, action, facts.Patient?.Id))
        {
            decision = new AccessDecision(false, "smart-scope", $"the token's scopes do not allow {Name(action)} on this {facts.Kind}");
        }
        else
        {
            var d = _policy.Decide(_subject!, action, facts, _context);
            decision = new AccessDecision(d.Permitted, d.RuleId, d.Reason);
        }
        Add(interaction, decision, facts.Patient?.Id);
        return decision.Permitted;
    }

    /// <summary>Decides without keeping the decision: for "would this user be allowed to read it?" when choosing between 403 and 404.</summary>
    /// <summary>As <see cref="WouldPermit"/> for ordinary treatment (purpose TREAT): an emergency (break-glass) grant does not count.</summary>
    public bool WouldPermitForTreatment(PolicyAction action, ResourceFacts facts) =>
        _policy is null || ((_scopes?.Allows(facts.Kind, action, facts.Patient?.Id) ?? true)
            && _policy.Decide(_subject!, action, facts, _context with { Purpose = "TREAT" }).Permitted);

    public bool WouldPermit(PolicyAction action, ResourceFacts facts) =>
        _policy is null || ((_scopes?.Allows(facts.Kind, action, facts.Patient?.Id) ?? true) && _policy.Decide(_subject!, action, facts, _context).Permitted);

    /// <summary>
    /// Whether this subject may read every <paramref name="type"/> whatever it is (the policy's residual is
    /// plain true): only then can an update to an unknown id create it without revealing, by contrast,
    /// which guessed ids exist but are hidden.
    /// </summary>
    public bool SeesEvery(string type) =>
        _policy is null || ((_scopes?.Allows(type, PolicyAction.Read) ?? true) && _scopes?.Patient is null
            && _policy.Partial(_subject!, PolicyAction.Read, type, _context) is Residual.Constant { Value: true });

    /// <summary>The policy as a WHERE clause for a search or type history of <paramref name="type"/>; null when unrestricted.</summary>
    public AccessFilter? Filter(PolicyAction action, string type, FhirInteraction interaction)
    {
        if (_policy is null) return null;
        var residual = _policy.Partial(_subject!, action, type, _context);
        if (_scopes?.Patient is { } launch)
        {
            residual = new Residual.And([residual, new Residual.Atom(AtomKind.HasPatient, []), PatientIs(launch)]);
        }
        Add(interaction, new AccessDecision(true, "policy-filter", $"results limited to the {type} resources the policy permits"));
        return AccessSql.Build(residual, _sql!);
    }

    /// <summary>A patient-launch token sees only its patient: the same atom break-glass uses, with that patient.</summary>
    private static Residual PatientIs(string patient) => new Residual.Atom(AtomKind.BreakGlass, [patient]);

    private void Add(FhirInteraction interaction, AccessDecision decision, string? patient = null)
    {
        lock (_decisions) _decisions.Add(new ScopeDecision(interaction, decision, patient is null ? null : "Patient/" + patient));
    }

    /// <summary>The resources of a search page, disclosed under a decision made once for the page (the policy as a filter): recorded one by one.</summary>
    public void Disclosed(FhirAction action, IEnumerable<(string Type, string Id, int Version, string? Patient)> resources)
    {
        if (_policy is null) return;
        lock (_decisions)
        {
            foreach (var (type, id, version, patient) in resources)
            {
                _decisions.Add(new ScopeDecision(new FhirInteraction(action, type, id),
                    new AccessDecision(true, "policy-filter", $"a {type} the policy permits, in a search or history result"),
                    patient is null ? null : "Patient/" + patient, version));
            }
        }
    }

    internal static string Name(PolicyAction action) => action switch
    {
        PolicyAction.Read => "read",
        PolicyAction.Search => "searched",
        PolicyAction.Create => "created",
        PolicyAction.Update => "updated",
        PolicyAction.Delete => "deleted",
        _ => "exported",
    };
}
