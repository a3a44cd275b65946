using System.Globalization;
using System.Security.Claims;
using Hl7.Fhir.Model;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Wardline.Server.Modules.Access;
using Wardline.Server.Modules.Access.Identity;
using Wardline.Server.Modules.Records;
using Wardline.Server.Modules.Records.Api;
using Wardline.Server.Modules.Records.Search;
using Wardline.Server.Modules.Records.Storage;

namespace Wardline.Server.Modules.Ledger;

/// <summary>
/// Read-only FHIR views over the ledger: AuditEvent (IHE BALP shapes) and Provenance for privacy and
/// security officers, and the accounting of disclosures <c>Patient/{id}/$access-log</c> for them and for
/// the patient: a SMART patient-context token of that patient, or the account the Patient names as its
/// own (identifier of <c>Access:StaffSystem</c>, as for staff who are patients). AuditEvent and Provenance are never stored: any write
/// answers 405. Every read (and every refused attempt) is itself recorded in the ledger.
/// </summary>
internal static class AuditEndpoints
{
    /// <summary>The roles that read the audit trail (the built-in policy's reviewers of access records).</summary>
    public static readonly string[] AuditorRoles = ["privacy_officer", "security_officer"];

    private static readonly string[] SearchParameters = ["patient", "agent", "entity", "date", "outcome", "action", "type", "_count", "_after", "_format"];
    private static readonly string[] ProvenanceParameters = ["target", "patient", "_count", "_format"];
    private static readonly string[] AccessLogParameters = ["from", "to", "_format"];
    private static readonly string[] Types = ["access", "security", "write", "system"];
    private static readonly string[] WriteMethods = ["POST", "PUT", "PATCH", "DELETE"];

    public static IEndpointRouteBuilder MapAuditViews(this IEndpointRouteBuilder app)
    {
        var fhir = app.MapGroup("/fhir");
        // Literal routes win over the generic /fhir/{type} ones, so these types never reach the record store.
        foreach (var type in new[] { "AuditEvent", "Provenance" })
        {
            fhir.MapMethods($"/{type}", WriteMethods, (HttpContext http) => NotAllowed(http, type));
            fhir.MapMethods($"/{type}/{{id}}", WriteMethods, (HttpContext http) => NotAllowed(http, type));
        }

        fhir.MapGet("/AuditEvent", async (HttpContext http, AuditTrail trail, AccountStore accounts) =>
        {
            if (await AuditorAsync(http, accounts, trail, "AuditEvent", null) is { } refused) return refused;
            var (query, bad) = ParseSearch(http.Request.Query);
            if (query is null) return new FhirResult(FhirResponse.BadRequest(bad));
            var page = await trail.SearchAsync(query, http.User.Identity!.Name!, Source(http), http.RequestAborted);
            var baseUrl = FhirEndpoints.BaseUrl(http);
            var bundle = new Bundle { Type = Bundle.BundleType.Searchset, Id = Guid.NewGuid().ToString("N") };
            bundle.Link.Add(new Bundle.LinkComponent { Relation = "self", Url = baseUrl + "/AuditEvent" + http.Request.QueryString });
            if (page.Next is { } next)
            {
                var q = http.Request.Query.Where(kv => kv.Key != "_after").SelectMany(kv => kv.Value.Select(v => Uri.EscapeDataString(kv.Key) + "=" + Uri.EscapeDataString(v ?? "")))
                    .Append("_after=" + next.ToString(CultureInfo.InvariantCulture));
                bundle.Link.Add(new Bundle.LinkComponent { Relation = "next", Url = baseUrl + "/AuditEvent?" + string.Join('&', q) });
            }
            foreach (var g in page.Groups)
            {
                var ae = AuditEventBuilder.Build(g, baseUrl);
                bundle.Entry.Add(new Bundle.EntryComponent { FullUrl = $"{baseUrl}/AuditEvent/{ae.Id}", Resource = ae, Search = new Bundle.SearchComponent { Mode = Bundle.SearchEntryMode.Match } });
            }
            return Ok(bundle);
        });

        fhir.MapGet("/AuditEvent/{id}", async (HttpContext http, AuditTrail trail, AccountStore accounts, string id) =>
        {
            if (await AuditorAsync(http, accounts, trail, "AuditEvent", null) is { } refused) return refused;
            if (Index(id) is not { } index) return new FhirResult(FhirResponse.NotFound($"AuditEvent/{Safe(id)} is not known."));
            var group = await trail.ReadAsync(index, http.User.Identity!.Name!, Source(http), http.RequestAborted);
            return group is null
                ? new FhirResult(FhirResponse.NotFound($"AuditEvent/{Safe(id)} is not known."))
                : Ok(AuditEventBuilder.Build(group, FhirEndpoints.BaseUrl(http)));
        });

        fhir.MapGet("/Provenance", async (HttpContext http, AuditTrail trail, AccountStore accounts) =>
        {
            if (await AuditorAsync(http, accounts, trail, "Provenance", null) is { } refused) return refused;
            var bad = Unknown(http.Request.Query, ProvenanceParameters);
            var target = One(http.Request.Query, "target", bad);
            var patient = One(http.Request.Query, "patient", bad);
            var count = Count(http.Request.Query, bad);
            if (target is not null && !IsReference(target, allowVersion: true)) bad.Add("target must be a reference Type/id or Type/id/_history/n.");
            if (patient is not null && PatientId(patient) is null) bad.Add("patient must be a Patient id or Patient/id.");
            if (bad.Count > 0) return new FhirResult(FhirResponse.BadRequest(bad));
            var items = await trail.WritesAsync(target, patient is null ? null : PatientId(patient), count, http.User.Identity!.Name!, Source(http), http.RequestAborted);
            var baseUrl = FhirEndpoints.BaseUrl(http);
            var bundle = new Bundle { Type = Bundle.BundleType.Searchset, Id = Guid.NewGuid().ToString("N"), Total = items.Count };
            bundle.Link.Add(new Bundle.LinkComponent { Relation = "self", Url = baseUrl + "/Provenance" + http.Request.QueryString });
            foreach (var item in items)
            {
                var p = AuditEventBuilder.Provenance(item);
                bundle.Entry.Add(new Bundle.EntryComponent { FullUrl = $"{baseUrl}/Provenance/{p.Id}", Resource = p, Search = new Bundle.SearchComponent { Mode = Bundle.SearchEntryMode.Match } });
            }
            return Ok(bundle);
        });

        fhir.MapGet("/Provenance/{id}", async (HttpContext http, AuditTrail trail, AccountStore accounts, string id) =>
        {
            if (await AuditorAsync(http, accounts, trail, "Provenance", null) is { } refused) return refused;
            var group = Index(id) is { } index ? await trail.ReadAsync(index, http.User.Identity!.Name!, Source(http), http.RequestAborted) : null;
            return group is { Items.Count: 1 } && group.First.Type == "write"
                ? Ok(AuditEventBuilder.Provenance(group.Items[0]))
                : new FhirResult(FhirResponse.NotFound($"Provenance/{Safe(id)} is not known."));
        });

        fhir.MapGet("/Patient/{id}/$access-log", async (HttpContext http, AuditTrail trail, AccountStore accounts, RecordStore store, LedgerOptions options, string id) =>
        {
            if (http.User.Identity?.IsAuthenticated != true || http.User.Identity.Name is not { Length: > 0 } viewer)
                return new FhirResult(FhirResponse.Error(401, OperationOutcome.IssueType.Login, "Authentication is required."));
            var notKnown = new FhirResult(FhirResponse.NotFound($"Patient/{Safe(id)} is not known."));
            var own = PatientContext(http.User);
            // A patient-context token reads its own patient's accounting only; any other id is unknown to it.
            if (own is not null && id != own) return notKnown;
            var roles = await RolesAsync(http.User, accounts, http.RequestAborted);
            bool staff;
            if (own is not null && roles.Count == 0)
            {
                // The patient's own app (a portal account holds no staff role). A clinician's app launched in a patient's
                // context is not the patient: it gets no more than the clinician would.
                staff = false;
            }
            else if (roles.Any(AuditorRoles.Contains) && ScopeAllows(http.User, "AuditEvent"))
            {
                staff = true;
            }
            else if (FhirIds.IsValid(id) && (await store.ReadFactsAsync([("Patient", id)], http.RequestAborted)).TryGetValue(("Patient", id), out var facts)
                && facts.PatientStaffUser == viewer)
            {
                // The signed-in person's own record (the Patient names their account, as for staff who are patients).
                staff = false;
            }
            else
            {
                await trail.RecordRefusalAsync(viewer, FhirIds.IsValid(id) ? id : null, "only privacy and security officers, or the patient, read an accounting of disclosures", Source(http), http.RequestAborted);
                return Forbidden();
            }
            var bad = Unknown(http.Request.Query, AccessLogParameters);
            if (!FhirIds.IsValid(id)) bad.Add("The patient id is not a valid FHIR id.");
            var from = One(http.Request.Query, "from", bad) is { } f ? Bound(f, upper: false, "from", bad) : null;
            var to = One(http.Request.Query, "to", bad) is { } t ? Bound(t, upper: true, "to", bad) : null;
            if (from is not null && to is not null && from >= to) bad.Add("from must be before to.");
            if (bad.Count > 0) return new FhirResult(FhirResponse.BadRequest(bad));
            if (staff && (await store.ExistingAsync([("Patient", id)], http.RequestAborted)).Count == 0) return notKnown;

            var list = await trail.DisclosuresAsync(id, from, to, viewer, Source(http), http.RequestAborted);
            var names = staff || options.PatientSeesStaffNames;
            var result = new Parameters { Id = Guid.NewGuid().ToString("N") };
            result.Parameter.Add(new Parameters.ParameterComponent { Name = "patient", Value = new ResourceReference("Patient/" + id) });
            if (from is { } fromValue) result.Parameter.Add(new Parameters.ParameterComponent { Name = "from", Value = new Instant(fromValue) });
            if (to is { } toValue) result.Parameter.Add(new Parameters.ParameterComponent { Name = "to", Value = new Instant(toValue) });
            result.Parameter.Add(new Parameters.ParameterComponent { Name = "count", Value = new UnsignedInt(list.Count) });
            foreach (var d in list)
            {
                var p = new Parameters.ParameterComponent { Name = "disclosure" };
                Part(p, "index", AuditEventBuilder.IndexValue(d.Index));
                Part(p, "when", new Instant(d.At));
                if (names && d.User is not null) Part(p, "who", new FhirString(d.User));
                foreach (var r in d.Roles) Part(p, "role", new Code(r));
                foreach (var dep in d.Departments) Part(p, "department", new FhirString(dep));
                if (d.Client is not null) Part(p, "application", new FhirString(d.Client));
                Part(p, "action", new Code(d.Action));
                if (d.Resource is not null) Part(p, "resource", new FhirString(d.Resource));
                if (d.Purpose is not null) Part(p, "purpose", new Code(d.Purpose));
                Part(p, "permitted", new FhirBoolean(d.Permitted));
                if (d.Reason is not null) Part(p, "reason", new FhirString(d.Reason));
                if (staff)
                {
                    if (d.Rule is not null) Part(p, "rule", new FhirString(d.Rule));
                    if (d.Source is not null) Part(p, "source", new FhirString(d.Source));
                    if (d.Correlation is not null) Part(p, "correlation", new FhirString(d.Correlation));
                }
                result.Parameter.Add(p);
            }
            return Ok(result);
        });
        return app;
    }

    private static void Part(Parameters.ParameterComponent p, string name, DataType value) =>
        p.Part.Add(new Parameters.ParameterComponent { Name = name, Value = value });

    private static FhirResult Ok(Resource resource) => new(new FhirResponse(200, FhirJson.Serialize(resource)));

    private static FhirResult Forbidden() =>
        new(FhirResponse.Error(403, OperationOutcome.IssueType.Forbidden, "Only privacy and security officers read the audit trail."));

    private static IResult NotAllowed(HttpContext http, string type)
    {
        http.Response.Headers.Allow = "GET";
        return new FhirResult(ReadOnly(type));
    }

    internal static FhirResponse ReadOnly(string type) => FhirResponse.Error(405, OperationOutcome.IssueType.NotSupported,
        $"{type} is a read-only view of the audit ledger: it cannot be created, changed or deleted.");

    /// <summary>
    /// The view type ("AuditEvent" or "Provenance") a batch or transaction bundle would write, else null.
    /// Bodies that are not a bundle are left to the bundle processor to refuse.
    /// </summary>
    internal static string? WrittenView(byte[] body)
    {
        try
        {
            using var doc = System.Text.Json.JsonDocument.Parse(body);
            if (doc.RootElement.ValueKind != System.Text.Json.JsonValueKind.Object
                || !doc.RootElement.TryGetProperty("entry", out var entries) || entries.ValueKind != System.Text.Json.JsonValueKind.Array) return null;
            foreach (var entry in entries.EnumerateArray())
            {
                if (entry.ValueKind != System.Text.Json.JsonValueKind.Object || !entry.TryGetProperty("request", out var request)
                    || request.ValueKind != System.Text.Json.JsonValueKind.Object) continue;
                var method = request.TryGetProperty("method", out var m) && m.ValueKind == System.Text.Json.JsonValueKind.String ? m.GetString() : null;
                if (method is null or "GET" or "HEAD") continue;
                var url = request.TryGetProperty("url", out var u) && u.ValueKind == System.Text.Json.JsonValueKind.String ? u.GetString() ?? "" : "";
                var type = url.TrimStart('/').Split('/', '?')[0];
                if (type is "AuditEvent" or "Provenance") return type;
                if (entry.TryGetProperty("resource", out var resource) && resource.ValueKind == System.Text.Json.JsonValueKind.Object
                    && resource.TryGetProperty("resourceType", out var rt) && rt.ValueKind == System.Text.Json.JsonValueKind.String
                    && rt.GetString() is "AuditEvent" or "Provenance")
                    return rt.GetString();
            }
        }
        catch (System.Text.Json.JsonException)
        {
        }
        return null;
    }

    /// <summary>Null if the caller may read the audit trail; otherwise the refusal (401, or a recorded 403).</summary>
    private static async Task<IResult?> AuditorAsync(HttpContext http, AccountStore accounts, AuditTrail trail, string type, string? patient)
    {
        if (http.User.Identity?.IsAuthenticated != true || string.IsNullOrEmpty(http.User.Identity.Name))
            return new FhirResult(FhirResponse.Error(401, OperationOutcome.IssueType.Login, "Authentication is required."));
        if (PatientContext(http.User) is null && ScopeAllows(http.User, type)
            && (await RolesAsync(http.User, accounts, http.RequestAborted)).Any(AuditorRoles.Contains))
            return null;
        await trail.RecordRefusalAsync(http.User.Identity.Name, patient, "only privacy and security officers read the audit trail", Source(http), http.RequestAborted);
        return Forbidden();
    }

    private static async Task<IReadOnlyList<string>> RolesAsync(ClaimsPrincipal user, AccountStore accounts, CancellationToken ct)
    {
        var account = await accounts.FindAsync(user.Identity!.Name!, ct) ?? Access.OAuth.ExternalOidc.Account(user);
        return account?.Roles ?? [];
    }

    /// <summary>SMART scopes on the token only narrow: with resource scopes, one must allow reading the type.</summary>
    private static bool ScopeAllows(ClaimsPrincipal user, string type)
    {
        if (!ApiScopes.Narrowed(user)) return true;
        var scopes = SmartScopes.Parse(user.FindFirst("scope")!.Value, user.FindFirst("patient")?.Value);
        return scopes.Allows(type, Wardline.Policy.PolicyAction.Read) || scopes.Allows(type, Wardline.Policy.PolicyAction.Search);
    }

    /// <summary>
    /// The patient of a patient-context token (SMART: a "patient" claim and only patient/ resource scopes),
    /// else null. Such a token speaks for that patient, whoever signed in, so it never reads staff views.
    /// </summary>
    internal static string? PatientContext(ClaimsPrincipal user)
    {
        if (user.FindFirst("patient")?.Value is not { Length: > 0 } patient) return null;
        var scopes = (user.FindFirst("scope")?.Value ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries).Where(SmartScopes.IsResourceScope).ToList();
        return scopes.Count > 0 && scopes.All(s => s.StartsWith("patient/", StringComparison.Ordinal)) ? patient : null;
    }

    private static (AuditQuery? Query, List<string> Problems) ParseSearch(IQueryCollection query)
    {
        var bad = Unknown(query, SearchParameters);
        var q = new AuditQuery(Count: Count(query, bad));
        if (One(query, "patient", bad) is { } patient)
        {
            if (PatientId(patient) is { } pid) q = q with { Patient = pid };
            else bad.Add("patient must be a Patient id or Patient/id.");
        }
        if (One(query, "agent", bad) is { } agent)
        {
            if (agent.Length is 0 or > 200) bad.Add("agent must name an account.");
            else q = q with { Agent = agent };
        }
        if (One(query, "entity", bad) is { } entity)
        {
            if (IsReference(entity, allowVersion: true)) q = q with { Entity = entity };
            else bad.Add("entity must be a reference Type/id or Type/id/_history/n.");
        }
        if (One(query, "outcome", bad) is { } outcome)
        {
            bool? permitted = outcome switch
            {
                "0" or "success" or "permitted" => true,
                "4" or "8" or "12" or "failure" or "denied" => false,
                _ => null,
            };
            if (permitted is null) bad.Add("outcome must be 0 (success), 4, 8 or 12 (failure), or permitted/denied.");
            else q = q with { Permitted = permitted };
        }
        if (One(query, "action", bad) is { } action)
        {
            string? name = action switch
            {
                "C" => "Create",
                "R" => "Read",
                "U" => "Update",
                "D" => "Delete",
                "E" => "Search",
                _ => Enum.TryParse<Pipeline.FhirAction>(action, ignoreCase: true, out var a) && !int.TryParse(action, out _) ? a.ToString() : null,
            };
            if (name is null) bad.Add("action must be C, R, U, D or E, or an interaction (read, vread, search, history, create, update, delete, bundle).");
            else q = q with { Action = name };
        }
        if (One(query, "type", bad) is { } type)
        {
            // The codes the events carry (rest, 110110, 110113, 110114, 110100; with or without their system), or the ledger's own kinds.
            if (Array.IndexOf(Types, type) >= 0) q = q with { Type = type };
            else if (AuditEventBuilder.TypeCodeFilters.Keys.FirstOrDefault(k => k == type || k.EndsWith("|" + type, StringComparison.Ordinal)) is { } code) q = q with { Type = code };
            else bad.Add("type must be an AuditEvent type this server records (rest, 110110 Patient Record, 110113 Security Alert, 110114 User Authentication, 110100 Application Activity, optionally with its system) or one of access, security, write, system.");
        }
        if (query.TryGetValue("_after", out var afterValues))
        {
            if (afterValues.Count == 1 && long.TryParse(afterValues[0], NumberStyles.None, CultureInfo.InvariantCulture, out var after)) q = q with { After = after };
            else bad.Add("_after must be a whole number (take it from the next link).");
        }
        if (query.TryGetValue("date", out var dates))
        {
            foreach (var d in dates)
            {
                var (prefix, value) = d is { Length: > 2 } && char.IsLetter(d[0]) ? (d[..2], d[2..]) : ("eq", d ?? "");
                if (Range(value) is not { } range || prefix is not ("eq" or "ge" or "gt" or "le" or "lt"))
                {
                    bad.Add("date must be a FHIR date or dateTime with an optional prefix eq, ge, gt, le or lt (e.g. date=ge2026-01-01).");
                    continue;
                }
                q = prefix switch
                {
                    "ge" => q with { From = Later(q.From, range.Start) },
                    "gt" => q with { From = Later(q.From, range.End) },
                    "le" => q with { To = Earlier(q.To, range.End) },
                    "lt" => q with { To = Earlier(q.To, range.Start) },
                    _ => q with { From = Later(q.From, range.Start), To = Earlier(q.To, range.End) },
                };
            }
        }
        return (bad.Count == 0 ? q : null, bad);
    }

    private static DateTimeOffset Later(DateTimeOffset? a, DateTimeOffset b) => a is { } x && x > b ? x : b;

    private static DateTimeOffset Earlier(DateTimeOffset? a, DateTimeOffset b) => a is { } x && x < b ? x : b;

    /// <summary>A FHIR date or dateTime as the half-open interval its precision covers.</summary>
    internal static (DateTimeOffset Start, DateTimeOffset End)? Range(string value)
    {
        var inv = CultureInfo.InvariantCulture;
        const DateTimeStyles utc = DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal;
        if (value.Length == 4 && DateTimeOffset.TryParseExact(value, "yyyy", inv, utc, out var y)) return (y, End(y, x => x.AddYears(1)));
        if (value.Length == 7 && DateTimeOffset.TryParseExact(value, "yyyy-MM", inv, utc, out var m)) return (m, End(m, x => x.AddMonths(1)));
        if (value.Length == 10 && DateTimeOffset.TryParseExact(value, "yyyy-MM-dd", inv, utc, out var d)) return (d, End(d, x => x.AddDays(1)));
        if (value.Length > 10 && value[10] == 'T' && (value.EndsWith('Z') || value[^6] is '+' or '-')
            && DateTimeOffset.TryParse(value, inv, DateTimeStyles.AdjustToUniversal, out var t))
            return (t, End(t, x => x.AddMilliseconds(1)));
        return null;
    }

    /// <summary>The exclusive end of a period; a period that would end past year 9999 ends with the calendar (as FhirDates does).</summary>
    private static DateTimeOffset End(DateTimeOffset start, Func<DateTimeOffset, DateTimeOffset> next)
    {
        try
        {
            return next(start);
        }
        catch (ArgumentOutOfRangeException)
        {
            return DateTimeOffset.MaxValue;
        }
    }

    private static DateTimeOffset? Bound(string value, bool upper, string name, List<string> bad)
    {
        if (Range(value) is { } r) return upper ? r.End : r.Start;
        bad.Add($"{name} must be a FHIR date or dateTime (e.g. 2026-11-01 or 2026-11-01T08:00:00Z).");
        return null;
    }

    private static List<string> Unknown(IQueryCollection query, string[] known) =>
        [.. query.Keys.Where(k => Array.IndexOf(known, k) < 0).Select(k => $"Unknown search parameter '{Safe(k)}'.")];

    private static string? One(IQueryCollection query, string name, List<string> bad)
    {
        if (!query.TryGetValue(name, out var values)) return null;
        if (values.Count != 1 || string.IsNullOrEmpty(values[0]))
        {
            bad.Add($"{name} must be given once, with a value.");
            return null;
        }
        return values[0];
    }

    private static int Count(IQueryCollection query, List<string> bad)
    {
        if (One(query, "_count", bad) is not { } text) return 50;
        if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n <= AuditTrail.MaxCount) return n;
        bad.Add($"_count must be a whole number from 0 to {AuditTrail.MaxCount}.");
        return 0;
    }

    private static string? PatientId(string value)
    {
        var id = value.StartsWith("Patient/", StringComparison.Ordinal) ? value[8..] : value;
        return FhirIds.IsValid(id) ? id : null;
    }

    private static bool IsReference(string value, bool allowVersion)
    {
        var parts = value.Split('/');
        if (parts.Length is not (2 or 4) || parts[0].Length == 0 || !char.IsUpper(parts[0][0]) || !parts[0].All(char.IsAsciiLetter) || !FhirIds.IsValid(parts[1])) return false;
        return parts.Length == 2 || (allowVersion && parts[2] == "_history" && int.TryParse(parts[3], NumberStyles.None, CultureInfo.InvariantCulture, out _));
    }

    private static long? Index(string id) =>
        id.StartsWith(AuditEventBuilder.IdPrefix, StringComparison.Ordinal)
        && long.TryParse(id.AsSpan(AuditEventBuilder.IdPrefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : null;

    /// <summary>An id or parameter name echoed in a message: short, and only characters a FHIR id may hold.</summary>
    private static string Safe(string s) => new([.. s.Take(64).Select(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '.' or '_' ? c : '?')]);

    private static string? Source(HttpContext http) => http.Connection.RemoteIpAddress?.ToString();
}
