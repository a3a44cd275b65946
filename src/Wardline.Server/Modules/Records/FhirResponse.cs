using System.Globalization;
using Hl7.Fhir.Model;

namespace Wardline.Server.Modules.Records;

/// <summary>
/// The typed result of a FHIR interaction: a status and a JSON body (already serialized, often
/// straight from the decrypted store). Expected failures are values of this type, not exceptions.
/// </summary>
internal sealed record FhirResponse(int Status, byte[]? Json)
{
    public string? ETag { get; init; }
    public DateTimeOffset? LastModified { get; init; }
    public string? Location { get; init; }

    /// <summary>Identifies what the response disclosed or changed, for the audit record.</summary>
    public string? ResourceRef { get; init; }

    /// <summary>Where a write's ledger entries landed; sent as <see cref="ReceiptHeader"/> so the client can ask for a proof later.</summary>
    public Ledger.LedgerReceipt? Receipt { get; init; }

    public const string ReceiptHeader = "X-Ledger-Receipt";

    public bool IsSuccess => Status is >= 200 and < 300;

    public static FhirResponse Ok(byte[] json, int version, long lastUpdated, int status = 200) => new(status, json)
    {
        ETag = ETagFor(version),
        LastModified = DateTimeOffset.FromUnixTimeMilliseconds(lastUpdated),
    };

    public static string ETagFor(int version) => "W/\"" + version.ToString(CultureInfo.InvariantCulture) + "\"";

    public static FhirResponse Error(int status, OperationOutcome.IssueType code, params IEnumerable<string> messages) =>
        new(status, FhirJson.Serialize(Outcome(OperationOutcome.IssueSeverity.Error, code, messages)));

    public static FhirResponse BadRequest(params IEnumerable<string> messages) => Error(400, OperationOutcome.IssueType.Invalid, messages);

    public static FhirResponse NotFound(string message) => Error(404, OperationOutcome.IssueType.NotFound, message);

    public static FhirResponse Gone(string message) => Error(410, OperationOutcome.IssueType.Deleted, message);

    public static FhirResponse Conflict(string message) => Error(409, OperationOutcome.IssueType.Conflict, message);

    public static FhirResponse PreconditionFailed(string message) => Error(412, OperationOutcome.IssueType.Conflict, message);

    public static FhirResponse Unprocessable(params IEnumerable<string> messages) => Error(422, OperationOutcome.IssueType.Processing, messages);

    public static OperationOutcome Outcome(OperationOutcome.IssueSeverity severity, OperationOutcome.IssueType code, IEnumerable<string> messages)
    {
        var outcome = new OperationOutcome();
        foreach (var m in messages)
        {
            outcome.Issue.Add(new OperationOutcome.IssueComponent { Severity = severity, Code = code, Diagnostics = m });
        }
        if (outcome.Issue.Count == 0)
        {
            outcome.Issue.Add(new OperationOutcome.IssueComponent { Severity = severity, Code = code });
        }
        return outcome;
    }
}
