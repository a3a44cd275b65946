using System.Security.Claims;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Wardline.Server.Modules.Records;

namespace Wardline.Server.Pipeline;

internal enum FhirAction
{
    Read,
    VRead,
    Search,
    History,
    Create,
    Update,
    Delete,
    Bundle,
}

internal sealed record FhirInteraction(FhirAction Action, string? ResourceType, string? Id);

/// <summary>A decision always names the rule that made it.</summary>
internal sealed record AccessDecision(bool Permitted, string Rule, string Reason);

/// <summary>The "decide" step. The access-control module supplies the real policy engine.</summary>
internal interface IAccessDecider
{
    AccessDecision Decide(ClaimsPrincipal user, FhirInteraction interaction);
}

internal sealed record AccessRecord(
    DateTimeOffset At,
    string? User,
    FhirInteraction Interaction,
    string Phase,
    AccessDecision Decision,
    int? Status,
    string? ResourceRef,
    string CorrelationId,
    string? Source);

/// <summary>
/// The one typed interface every access decision and every security event goes through; the audit
/// ledger implements it. Each method completes only once what it was given is durable.
/// </summary>
internal interface IAccessRecorder
{
    ValueTask RecordAsync(IReadOnlyList<AccessRecord> records, CancellationToken ct);

    ValueTask RecordAsync(SecurityEvent securityEvent, CancellationToken ct);
}

/// <summary>
/// Until the access-control module lands: any authenticated user may use the record store, and
/// nobody else may. There is no anonymous access to patient data, ever.
/// </summary>
internal sealed class AuthenticatedUsersOnly : IAccessDecider
{
    public AccessDecision Decide(ClaimsPrincipal user, FhirInteraction interaction) =>
        user.Identity?.IsAuthenticated == true
            ? new AccessDecision(true, "interim-authenticated-user", "signed-in user")
            : new AccessDecision(false, "default-deny", "no authenticated user");
}

/// <summary>
/// The one ordered path every FHIR interaction takes:
/// authenticate -> decide -> execute -> record decision and outcome (durable) -> respond. Nothing
/// is disclosed before both records are durable; a denial is durable before the 401/403 leaves.
/// Endpoints cannot reach the record service except through <see cref="RunAsync"/>.
/// </summary>
internal sealed class FhirPipeline(
    IAccessDecider decider, IAccessRecorder recorder, RecordService records, BundleProcessor bundles, TimeProvider time, ILogger<FhirPipeline> logger)
{
    public async Task<FhirResponse> RunAsync(HttpContext http, FhirInteraction interaction, Func<FhirExecution, CancellationToken, Task<FhirResponse>> execute)
    {
        var ct = http.RequestAborted;
        var user = http.User;
        var decision = decider.Decide(user, interaction);
        var record = new AccessRecord(time.GetUtcNow(), user.Identity?.Name, interaction, "decision", decision, null, null,
            http.TraceIdentifier, http.Connection.RemoteIpAddress?.ToString());
        if (!decision.Permitted)
        {
            await recorder.RecordAsync([record], ct);
            return user.Identity?.IsAuthenticated == true
                ? FhirResponse.Error(403, Hl7.Fhir.Model.OperationOutcome.IssueType.Forbidden, $"Access denied (rule {decision.Rule}).")
                : FhirResponse.Error(401, Hl7.Fhir.Model.OperationOutcome.IssueType.Login, "Authentication is required.");
        }

        // Each Bundle entry is decided like a request of its own, and each of those decisions is
        // recorded with the request's own, so an entry that reads Patient/x leaves Patient/x in the record.
        var entries = new List<AccessRecord>();
        FhirResponse? Guard(string method, string? type, string? id)
        {
            var entry = new FhirInteraction(EntryAction(method, id), type, id);
            var d = decider.Decide(user, entry);
            lock (entries) entries.Add(record with { At = time.GetUtcNow(), Interaction = entry, Phase = "entry", Decision = d });
            return d.Permitted ? null : FhirResponse.Error(403, Hl7.Fhir.Model.OperationOutcome.IssueType.Forbidden, $"Access denied (rule {d.Rule}).");
        }

        var response = await execute(new FhirExecution(records, bundles, Guard), ct);
        if (response.Status == 409)
        {
            Log.TransactionConflict(logger, interaction.Action, interaction.ResourceType, http.TraceIdentifier);
        }
        // Audit before disclosure: the decisions and the outcome commit together, and the response
        // leaves only once they are durable. Executing discloses nothing by itself.
        var outcome = record with { At = time.GetUtcNow(), Phase = "outcome", Status = response.Status, ResourceRef = response.ResourceRef };
        List<AccessRecord> all;
        lock (entries) all = [record, .. entries, outcome];
        await recorder.RecordAsync(all, ct);
        return response;
    }

    private static FhirAction EntryAction(string method, string? id) => method switch
    {
        "POST" => FhirAction.Create,
        "PUT" => FhirAction.Update,
        "DELETE" => FhirAction.Delete,
        _ => id is null ? FhirAction.Search : FhirAction.Read,
    };
}

/// <summary>What an interaction may use once the pipeline has let it through: the only way endpoints reach the records.</summary>
internal sealed record FhirExecution(RecordService Records, BundleProcessor Bundles, BundleProcessor.EntryGuard Guard);
