using System.Globalization;
using Hl7.Fhir.Model;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Wardline.Ledger;
using Wardline.Server.Modules.Access;
using Wardline.Server.Modules.Access.Identity;
using Wardline.Server.Modules.Access.OAuth;
using Wardline.Server.Modules.Records;
using Wardline.Server.Modules.Records.Api;

namespace Wardline.Server.Modules.Ledger;

/// <summary>
/// The ledger's API (docs/formats/ledger-api.md): the newest signed tree head, inclusion and consistency
/// proofs, and signing a head on demand. Proofs hold hashes only; any signed-in user or client may ask,
/// so that whoever holds a receipt can check it. Bad sizes answer 400 with an OperationOutcome.
/// </summary>
internal static class LedgerEndpoints
{
    private static readonly string[] HeadSigners = ["administrator", "security_officer", "privacy_officer"];

    public static IEndpointRouteBuilder MapLedger(this IEndpointRouteBuilder app)
    {
        var ledger = app.MapGroup("/ledger");

        ledger.MapGet("/head", async (HttpContext http, TreeHeads heads, LedgerIntegrity integrity) =>
        {
            if (Unauthenticated(http) is { } no) return no;
            var head = await heads.LatestAsync(http.RequestAborted);
            var (size, _) = await integrity.StateAsync(http.RequestAborted);
            string? key;
            try
            {
                key = Convert.ToBase64String(await heads.PublicKeyAsync(http.RequestAborted));
            }
            catch (Exception ex) when (ex is LedgerReadOnlyException or WitnessUnavailableException)
            {
                key = null; // no key could be made or read: readOnly (or the log) says why
            }
            return Results.Json(new
            {
                head = head is null ? null : HeadJson(head),
                publicKey = key,
                currentSize = size,
                readOnly = integrity.Problem,
            });
        });

        ledger.MapPost("/head", async (HttpContext http, TreeHeads heads, AccountStore accounts) =>
        {
            if (Unauthenticated(http) is { } no) return no;
            // Tokens carry no role claims: the roles are the account's, as the audit trail reads them.
            var account = await accounts.FindAsync(http.User.Identity!.Name!, http.RequestAborted) ?? ExternalOidc.Account(http.User);
            if (account is null || !account.Roles.Any(HeadSigners.Contains))
                return new FhirResult(FhirResponse.Error(403, OperationOutcome.IssueType.Forbidden, "Only an administrator or a security or privacy officer may have a tree head signed on demand."));
            if (!ApiScopes.Allows(http.User, ApiScopes.Ledger))
                return new FhirResult(FhirResponse.Error(403, OperationOutcome.IssueType.Forbidden, ApiScopes.Missing(ApiScopes.Ledger)));
            try
            {
                var head = await heads.PublishAsync(force: true, http.RequestAborted);
                return Results.Json(HeadJson(head!));
            }
            catch (Exception ex) when (ex is LedgerReadOnlyException or WitnessUnavailableException)
            {
                return new FhirResult(FhirResponse.Error(503, OperationOutcome.IssueType.Transient, ex.Message));
            }
        });

        ledger.MapGet("/proof/inclusion", async (HttpContext http, LedgerProofs proofs, AccountStore accounts, AuditTrail trail) =>
        {
            if (Unauthenticated(http) is { } no) return no;
            var (index, size, bad) = (Long(http, "index"), Long(http, "size"), new List<string>());
            if (index is null) bad.Add("index is required and must be a whole number.");
            if (size is null) bad.Add("size is required and must be a whole number.");
            if (bad.Count > 0) return new FhirResult(FhirResponse.BadRequest(bad));
            var (proof, problem) = await proofs.InclusionAsync(index!.Value, size!.Value, http.RequestAborted);
            if (proof is null) return new FhirResult(FhirResponse.BadRequest(problem!));
            // The entry names a user and a patient: it is shown to the auditing roles (a narrowed token: with wardline/ledger), and to the user it is about
            // (a clinician checking the receipt of their own write); anyone else gets the hashes only.
            // An auditor who reads another user's entry about a patient has read that patient's audit trail: recorded first.
            var entry = await proofs.EntryAsync(proof.Index, http.RequestAborted);
            var caller = http.User.Identity!.Name!;
            if (entry is not null && LedgerEntry.Decode(entry) is var decoded && decoded.User != caller)
            {
                var account = await accounts.FindAsync(caller, http.RequestAborted) ?? ExternalOidc.Account(http.User);
                if (account is null || !account.Roles.Any(HeadSigners.Contains) || !ApiScopes.Allows(http.User, ApiScopes.Ledger)) entry = null;
                else if (decoded.Patient is { } patient && patient.StartsWith("Patient/", StringComparison.Ordinal))
                    await trail.RecordReadAsync([patient["Patient/".Length..]], caller, http.Connection.RemoteIpAddress?.ToString(), http.RequestAborted);
            }
            return Results.Json(new
            {
                index = proof.Index,
                treeSize = proof.Size,
                leafHash = Hex(proof.LeafHash),
                entry = entry is null ? null : System.Text.Encoding.UTF8.GetString(entry),
                auditPath = proof.Hashes.Select(Hex),
                rootHash = Hex(proof.Root),
            });
        });

        ledger.MapGet("/proof/consistency", async (HttpContext http, LedgerProofs proofs) =>
        {
            if (Unauthenticated(http) is { } no) return no;
            var (first, second, bad) = (Long(http, "first"), Long(http, "second"), new List<string>());
            if (first is null) bad.Add("first is required and must be a whole number.");
            if (second is null) bad.Add("second is required and must be a whole number.");
            if (bad.Count > 0) return new FhirResult(FhirResponse.BadRequest(bad));
            var (proof, problem) = await proofs.ConsistencyAsync(first!.Value, second!.Value, http.RequestAborted);
            if (proof is null) return new FhirResult(FhirResponse.BadRequest(problem!));
            return Results.Json(new
            {
                first = proof.First,
                second = proof.Second,
                consistencyPath = proof.Hashes.Select(Hex),
                firstRootHash = Hex(proof.FirstRoot),
                secondRootHash = Hex(proof.SecondRoot),
            });
        });
        return app;
    }

    private static object HeadJson(TreeHead h) => new
    {
        treeSize = h.Size,
        rootHash = Hex(h.Root),
        timestamp = LedgerEntry.FormatTime(h.Timestamp),
        timestampMs = h.Timestamp.ToUnixTimeMilliseconds(),
        keyId = h.KeyId,
        signature = Convert.ToBase64String(h.Signature),
    };

    private static IResult? Unauthenticated(HttpContext http) =>
        http.User.Identity?.IsAuthenticated == true ? null : new FhirResult(FhirResponse.Error(401, OperationOutcome.IssueType.Login, "Authentication is required."));

    private static long? Long(HttpContext http, string name) =>
        http.Request.Query.TryGetValue(name, out var v) && v.Count == 1 && long.TryParse(v[0], NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : null;

    private static string Hex(byte[] b) => Convert.ToHexStringLower(b);
}
