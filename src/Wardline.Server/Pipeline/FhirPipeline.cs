using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Wardline.Server.Modules.Access;
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

internal sealed record AccessRecord(
    DateTimeOffset At,
    string? User,
    FhirInteraction Interaction,
    string Phase,
    AccessDecision Decision,
    int? Status,
    string? ResourceRef,
    string CorrelationId,
    string? Source)
{
    /// <summary>The purpose of use the request declared (ETREAT marks every access made under break-glass).</summary>
    public string? Purpose { get; init; }

    /// <summary>The patient whose record the access touched, as "Patient/id", when known.</summary>
    public string? Patient { get; init; }

    /// <summary>The version disclosed, when the decision was about one.</summary>
    public int? Version { get; init; }

    /// <summary>The requester's roles and departments as the policy saw them.</summary>
    public IReadOnlyList<string>? Roles { get; init; }

    public IReadOnlyList<string>? Departments { get; init; }

    /// <summary>The OAuth client (application) the request came through.</summary>
    public string? Client { get; init; }

    /// <summary>A search outcome's parameter names, never their values ("params=family,given").</summary>
    public string? Detail { get; init; }
}

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
/// The one ordered path every FHIR interaction takes: authenticate -> resolve the subject and its
/// context -> execute, with the policy deciding every resource before it is disclosed or changed ->
/// record every decision and the outcome (durable) -> respond. Nothing is disclosed before the records
/// are durable; a refusal is durable before the 401/403 leaves. Endpoints cannot reach the record
/// service except through <see cref="RunAsync"/>, and the record service cannot be called without a scope.
/// </summary>
internal sealed class FhirPipeline(
    AccessSubjects subjects, IAccessRecorder recorder, RecordService records, BundleProcessor bundles, TimeProvider time, ILogger<FhirPipeline> logger)
{
    public async Task<FhirResponse> RunAsync(HttpContext http, FhirInteraction interaction, Func<FhirExecution, CancellationToken, Task<FhirResponse>> execute)
    {
        var ct = http.RequestAborted;
        var user = http.User;
        var request = new AccessRecord(time.GetUtcNow(), user.Identity?.Name, interaction, "request",
            new AccessDecision(true, "authenticated", "signed-in user"), null, null, http.TraceIdentifier, http.Connection.RemoteIpAddress?.ToString());
        var (scope, problem) = await subjects.ForRequestAsync(http, ct);
        if (scope is null)
        {
            var authenticated = user.Identity?.IsAuthenticated == true && problem!.StartsWith("purpose", StringComparison.Ordinal);
            await recorder.RecordAsync([request with { Decision = new AccessDecision(false, "default-deny", problem!), Status = authenticated ? 400 : 401 }], ct);
            return authenticated
                ? FhirResponse.BadRequest($"The {AccessSubjects.PurposeHeader} header is not valid: {problem}.")
                : FhirResponse.Error(401, Hl7.Fhir.Model.OperationOutcome.IssueType.Login, "Authentication is required.");
        }

        request = request with
        {
            Purpose = scope.Context.Purpose,
            Roles = scope.Subject?.Roles,
            Departments = scope.Subject?.Departments,
            Client = user.FindFirst("client_id")?.Value,
        };
        var response = await execute(new FhirExecution(records, bundles, scope), ct);
        if (response.Status == 409)
        {
            Log.TransactionConflict(logger, interaction.Action, interaction.ResourceType, http.TraceIdentifier);
        }
        // Audit before disclosure: every decision and the outcome commit together, and the response
        // leaves only once they are durable. Executing discloses nothing by itself.
        var at = time.GetUtcNow();
        // Each decision row names the requester, the source and the correlation id, so the request row is
        // written only when no decision was made (a bad request refused before any resource was judged).
        var decisions = scope.Decisions;
        var all = new List<AccessRecord>(decisions.Count + 2);
        if (decisions.Count == 0) all.Add(request);
        foreach (var d in decisions)
        {
            all.Add(request with { At = at, Interaction = d.Interaction, Phase = "decision", Decision = d.Decision, Patient = d.Patient, Version = d.Version });
        }
        all.Add(request with { At = at, Phase = "outcome", Status = response.Status, ResourceRef = response.ResourceRef, Detail = SearchParameters(http, interaction) });
        await recorder.RecordAsync(all, ct);
        return response;
    }

    /// <summary>
    /// The names of a search's parameters, sorted: monitoring tells a search by name from a search by
    /// identifier or date with them. Values are never recorded (they are patient data); a name that is not
    /// a plain parameter name (letters, digits, _ : . -) is left out, so nothing typed can ride along.
    /// </summary>
    internal static string? SearchParameters(HttpContext http, FhirInteraction interaction)
    {
        if (interaction.Action != FhirAction.Search) return null;
        var names = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var key in http.Request.Query.Keys)
        {
            if (key.Length is > 0 and <= 64 && key.AsSpan().IndexOfAnyExcept(ParameterChars) < 0) names.Add(key);
            if (names.Count == 32) break;
        }
        return names.Count == 0 ? null : "params=" + string.Join(',', names);
    }

    private static readonly System.Buffers.SearchValues<char> ParameterChars =
        System.Buffers.SearchValues.Create("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:.-");
}

/// <summary>What an interaction may use once the pipeline has let it through: the only way endpoints reach the records.</summary>
internal sealed record FhirExecution(RecordService Records, BundleProcessor Bundles, AccessScope Access);
