using Wardline.Policy;
using Wardline.Server.Modules.Access.Facts;

namespace Wardline.Server.Modules.Access;

/// <summary>The answer to "why?": the decision, the rule chain, and the facts it was made on.</summary>
internal sealed record AccessExplanation(string User, PolicyAction Action, ResourceFacts Resource, RequestContext Context, Explanation Explanation);

/// <summary>
/// "Would this user be allowed to do this, and why?" for the privacy officer and the policy author:
/// the policy in force, the user's subject as requests see it, and the facts of a stored resource (or,
/// naming only a type and a patient, of a new resource of that type in that patient's record).
/// Explaining decides nothing and records nothing.
/// </summary>
/// <remarks>
/// An explanation shows a resource's labels and patient to whoever asks (an administrator or officer in
/// the console, the operator on the command line), so each one asked for by a person is recorded like an
/// access before it is shown.
/// </remarks>
internal sealed class AccessExplainer(PolicyHolder policy, AccessSubjects subjects, FactsResolver facts, Pipeline.IAccessRecorder recorder, TimeProvider time)
{
    public sealed record Problem(string Message);

    public async Task<(AccessExplanation? Explanation, Problem? Problem)> ExplainAsync(
        string user, string type, string? id, string? patient, PolicyAction action, string purpose, bool mfa, bool internalNetwork, CancellationToken ct,
        string? askedBy = null, string? source = null)
    {
        if (!Records.Search.SearchParameterRegistry.ResourceTypes.Contains(type)) return (null, new Problem($"'{type}' is not a resource type this server stores."));
        if (id is not null && !Records.Search.FhirIds.IsValid(id)) return (null, new Problem("The resource id is not a valid FHIR id."));
        if (patient is not null && !Records.Search.FhirIds.IsValid(patient)) return (null, new Problem("The patient id is not a valid FHIR id."));
        if (!AccessSubjects.Purposes.Contains(purpose)) return (null, new Problem($"The purpose must be one of {string.Join(", ", AccessSubjects.Purposes.Order(StringComparer.Ordinal))}."));
        if (await subjects.ForAccountAsync(user, ct) is not { } s) return (null, new Problem($"There is no account '{user}'."));

        ResourceFacts resource;
        if (id is not null)
        {
            resource = await facts.StoredAsync(type, id, ct);
            if (patient is not null && resource.Patient?.Id != patient)
                return (null, new Problem($"{type}/{id} does not belong to Patient/{patient}."));
        }
        else if (patient is not null)
        {
            var p = await facts.StoredAsync("Patient", patient, ct);
            resource = type == "Patient" ? p : new ResourceFacts(type, null, p.Departments, [], null, p.Patient ?? new PatientFacts(patient, false, false, null));
        }
        else
        {
            return (null, new Problem("Name a resource id, a patient, or both."));
        }
        var context = subjects.Context(purpose, mfa, internalNetwork ? System.Net.IPAddress.Loopback : System.Net.IPAddress.Parse("192.0.2.1"));
        var explanation = new AccessExplanation(user, action, resource, context, policy.Current.Explain(s.Subject, action, resource, context));
        if (askedBy is not null)
        {
            var target = id ?? patient;
            await recorder.RecordAsync([new Pipeline.AccessRecord(time.GetUtcNow(), askedBy,
                new Pipeline.FhirInteraction(Pipeline.FhirAction.Read, id is null ? "Patient" : type, target), "explain",
                new Pipeline.AccessDecision(true, "explainer", $"explained {AccessScope.Name(action)} for {user}"), null,
                id is null ? $"Patient/{patient}" : $"{type}/{id}", Guid.NewGuid().ToString("N"), source)], ct);
        }
        return (explanation, null);
    }
}
