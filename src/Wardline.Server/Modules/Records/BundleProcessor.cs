using System.Globalization;
using Hl7.Fhir.Model;
using Wardline.Policy;
using Wardline.Server.Modules.Access;
using Wardline.Server.Modules.Records.Search;
using Wardline.Server.Modules.Records.Storage;
using Wardline.Server.Pipeline;

namespace Wardline.Server.Modules.Records;

/// <summary>
/// Batch and transaction Bundles. A transaction is validated and planned in full before anything
/// is written, then committed in one database transaction: it lands whole or not at all.
/// </summary>
internal sealed class BundleProcessor(RecordService records)
{
    /// <summary>One entry as planned before anything runs: its method, what it names, and what planning found.</summary>
    private sealed class Planned
    {
        public required int Index { get; init; }
        public required Bundle.EntryComponent Entry { get; init; }
        public required string Method { get; init; }
        public GetRequest? Get { get; set; }
        public string? Type { get; set; }
        public string? Id { get; set; }
        public Resource? Resource { get; set; }
        public StoredVersion? Current { get; set; }
        public StoredVersion? Matched { get; set; }
        public int? IfMatch { get; set; }
        public RecordService.PreparedWrite? Write { get; set; }
        public PendingWrite? Tombstone { get; set; }
        public bool Unchanged { get; set; }
    }

    public async Task<FhirResponse> ProcessAsync(byte[] body, string baseUrl, AccessScope access, CancellationToken ct)
    {
        var (resource, error) = RecordService.ParseBody("Bundle", body);
        if (error is not null) return error;
        var bundle = (Bundle)resource!;
        return bundle.Type switch
        {
            Bundle.BundleType.Transaction => await TransactionAsync(bundle, baseUrl, access, importMode: false, ct),
            Bundle.BundleType.Batch => await BatchAsync(bundle, baseUrl, access, ct),
            _ => FhirResponse.BadRequest("Only batch and transaction Bundles can be posted to the base URL."),
        };
    }

    /// <summary>
    /// Runs a transaction. In import mode (the `wardline import` command), entries POSTed with a
    /// urn:uuid fullUrl keep that uuid as their id, so a resource repeated across files is stored
    /// once; an unchanged repeat writes nothing, and references may point at resources that a
    /// later file brings.
    /// </summary>
    public async Task<FhirResponse> TransactionAsync(Bundle bundle, string baseUrl, AccessScope access, bool importMode, CancellationToken ct)
    {
        var errors = new List<string>();
        var planned = new List<Planned>();
        var fullUrls = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < bundle.Entry.Count; i++)
        {
            var e = bundle.Entry[i];
            if (!string.IsNullOrEmpty(e.FullUrl))
            {
                if (fullUrls.TryGetValue(e.FullUrl, out var first))
                {
                    errors.Add($"entry[{i}]: its fullUrl repeats that of entry[{first}].");
                    continue;
                }
                fullUrls[e.FullUrl] = i;
            }
            var p = PlanEntry(i, e, errors, importMode);
            if (p is not null) planned.Add(p);
        }
        if (errors.Count > 0) return FhirResponse.BadRequest(errors);

        // Each entry is first judged by its type alone; the resources themselves are judged once planned.
        foreach (var p in planned)
        {
            if (Refuse(access, p) is { } denied) return denied;
        }

        // Resolve conditional creates and assign ids, so urn: references can be rewritten.
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var p in planned.Where(p => p.Method == "POST"))
        {
            var ifNoneExist = p.Entry.Request?.IfNoneExist;
            if (!string.IsNullOrEmpty(ifNoneExist))
            {
                var (matches, err) = await records.ConditionalMatchAsync(p.Type!, ifNoneExist, access, ct);
                if (err is not null) return err;
                if (matches.Count > 1) return FhirResponse.PreconditionFailed($"entry[{p.Index}]: ifNoneExist matched more than one resource.");
                if (matches.Count == 1)
                {
                    p.Matched = matches[0];
                    p.Id = matches[0].Id;
                }
            }
            if (p.Id is null)
            {
                p.Id = importMode && UrnId(p.Entry.FullUrl) is { } uuid ? uuid : Guid.NewGuid().ToString();
            }
            if (p.Entry.FullUrl is { Length: > 0 } fu) map[fu] = $"{p.Type}/{p.Id}";
        }
        foreach (var p in planned.Where(p => p.Method == "PUT"))
        {
            if (p.Entry.FullUrl is { Length: > 0 } fu) map[fu] = $"{p.Type}/{p.Id}";
        }

        // Conditional references (Type?search) resolve to exactly one existing resource.
        foreach (var p in planned.Where(p => p.Resource is not null))
        {
            foreach (var rr in ResourceReferences.All(p.Resource!))
            {
                var r = rr.Reference;
                if (r is null || map.ContainsKey(r) || r.StartsWith("urn:", StringComparison.Ordinal)) continue;
                var q = r.IndexOf('?', StringComparison.Ordinal);
                if (q <= 0) continue;
                var condType = r[..q];
                if (RecordService.CheckType(condType) is not null)
                {
                    errors.Add($"entry[{p.Index}]: a conditional reference names an unsupported type.");
                    continue;
                }
                var (matches, err) = await records.ConditionalMatchAsync(condType, r[(q + 1)..], access, ct);
                if (err is not null || matches.Count != 1)
                {
                    errors.Add($"entry[{p.Index}]: a conditional reference to {condType} matched {(err is not null ? "nothing (invalid query)" : matches.Count == 0 ? "no resource" : "more than one resource")}; it must match exactly one.");
                    continue;
                }
                map[r] = $"{condType}/{matches[0].Id}";
            }
        }
        if (errors.Count > 0) return FhirResponse.BadRequest(errors);

        foreach (var p in planned.Where(p => p.Resource is not null))
        {
            foreach (var rr in ResourceReferences.All(p.Resource!))
            {
                var r = rr.Reference;
                if (r is null) continue;
                if (map.TryGetValue(r, out var target)) rr.Reference = target;
                else if (r.StartsWith("urn:", StringComparison.Ordinal))
                    errors.Add($"entry[{p.Index}]: a urn: reference does not resolve to any entry of this Bundle.");
            }
        }
        if (errors.Count > 0) return FhirResponse.BadRequest(errors);

        // A GET entry runs after the writes commit: one its execution would refuse (400: a search the parser refuses, history
        // parameters, a malformed version) refuses the transaction now, before anything is written. Its url was parsed in planning.
        foreach (var p in planned.Where(p => p.Method == "GET"))
        {
            foreach (var problem in Problems(p.Get!)) errors.Add($"entry[{p.Index}]: {problem}");
        }
        if (errors.Count > 0) return FhirResponse.BadRequest(errors);

        var written = planned.Where(p => p.Method is "POST" or "PUT" && p.Matched is null).Select(p => (p.Type!, p.Id!)).ToHashSet();
        if (!importMode)
        {
            if (await records.CheckReferencesAsync(planned.Where(p => p.Resource is not null && p.Matched is null).Select(p => p.Resource!), false, written, ct) is { } refError)
                return refError;
        }
        else
        {
            foreach (var p in planned.Where(p => p.Resource is not null))
            {
                var (_, problems) = ResourceReferences.Check(p.Resource!, allowUrn: false);
                if (problems.Count > 0) return FhirResponse.BadRequest(problems.Select(m => $"entry[{p.Index}]: {m}"));
            }
        }

        var targets = planned.Where(p => p.Method is "PUT" or "DELETE" || p.Method == "POST" && importMode && p.Matched is null).Select(p => (p.Type!, p.Id!)).ToList();
        if (targets.Count != targets.Distinct().Count())
            return FhirResponse.BadRequest("The transaction changes the same resource more than once.");
        var currents = await records.Store.ReadCurrentManyAsync(targets, ct);
        var now = records.Now();
        var writes = new List<PendingWrite>();
        var toPrepare = new List<Planned>();
        FhirResponse? staleMatch = null;
        foreach (var p in planned)
        {
            currents.TryGetValue((p.Type ?? "", p.Id ?? ""), out var current);
            p.Current = current;
            switch (p.Method)
            {
                case "PUT" when current is null && !access.SeesEvery(p.Type!):
                    // As for a plain update: an unknown id answers as a hidden one would.
                    return FhirResponse.NotFound($"{p.Type}/{p.Id} is not known.");
                case "POST" when p.Matched is null:
                case "PUT":
                    // Answered only after authorization: a version number told to a user who may not see the resource confirms it exists.
                    if (p.IfMatch is not null && (current is null || current.Version != p.IfMatch))
                        staleMatch ??= FhirResponse.PreconditionFailed($"entry[{p.Index}]: {p.Type}/{p.Id} is at version {current?.Version ?? 0}, not {p.IfMatch}.");
                    if (importMode && current is { Deleted: false } && records.SameContent(current, p.Resource!))
                    {
                        p.Unchanged = true;
                        break;
                    }
                    toPrepare.Add(p);
                    break;
                case "DELETE":
                    if (current is { Deleted: false })
                    {
                        p.Tombstone = RecordService.Tombstone(current, now);
                        writes.Add(p.Tombstone);
                    }
                    break;
            }
        }

        // Serializing, indexing and encrypting are CPU-bound and independent per entry: use every core.
        Parallel.ForEach(toPrepare, new ParallelOptions { CancellationToken = ct }, p => p.Write = records.Prepare(p.Type!, p.Id!, p.Resource!, p.Current, now));
        writes.AddRange(toPrepare.Select(p => p.Write!.Pending));
        var judged = planned.Where(p => p.Tombstone is not null).Select(p => (p.Tombstone!, p.Current))
            .Concat(toPrepare.Select(p => (p.Write!.Pending, p.Current))).ToList();
        if (await records.AuthorizeWritesAsync(access, judged, ct) is { } refused) return refused;
        if (staleMatch is not null) return staleMatch;

        var committed = await records.Store.WriteAsync(writes, access.Actor, ct);
        if (committed.Status == WriteStatus.Conflict)
        {
            // Lost a race. If an entry's If-Match no longer holds, that is the client's answer (412),
            // exactly as if the other writer had finished before this transaction was read.
            var guarded = planned.Where(p => p.IfMatch is not null).ToList();
            if (guarded.Count > 0)
            {
                var latest = await records.Store.ReadCurrentManyAsync(guarded.Select(p => (p.Type!, p.Id!)).ToList(), ct);
                foreach (var p in guarded)
                {
                    var v = latest.TryGetValue((p.Type!, p.Id!), out var c) ? c.Version : 0;
                    if (v != p.IfMatch)
                        return FhirResponse.PreconditionFailed($"entry[{p.Index}]: {p.Type}/{p.Id} was changed by someone else at the same time (now version {v}, not {p.IfMatch}); nothing was written.");
                }
            }
            return FhirResponse.Conflict("A resource in the transaction was changed by someone else at the same time; nothing was written. Try again.");
        }

        var getResponses = new Dictionary<int, FhirResponse>();
        foreach (var p in planned.Where(p => p.Method == "GET"))
        {
            getResponses[p.Index] = await GetAsync(p.Get!, baseUrl, access, ct);
        }

        using var response = new BundleWriter("transaction-response", null, DateTimeOffset.UtcNow);
        foreach (var p in planned.OrderBy(p => p.Index))
        {
            WriteResponseEntry(response, p, baseUrl, getResponses.GetValueOrDefault(p.Index));
        }
        return new FhirResponse(200, response.Finish()) { ResourceRef = $"Bundle/transaction:{writes.Count}", Receipt = committed.Receipt };
    }

    private static void WriteResponseEntry(BundleWriter response, Planned p, string baseUrl, FhirResponse? get)
    {
        if (get is not null)
        {
            response.Entry(null, get.Json, null, null, w => w.WriteString("status", Status(get.Status)));
            return;
        }
        var (status, version, lastUpdated) = p switch
        {
            { Matched: { } m } => ("200 OK", m.Version, m.LastUpdated),
            { Unchanged: true, Current: { } c } => ("200 OK", c.Version, c.LastUpdated),
            { Write: { } w } => (w.Pending.Version == 1 ? "201 Created" : "200 OK", w.Pending.Version, w.Pending.LastUpdated),
            { Tombstone: { } t } => ("204 No Content", t.Version, t.LastUpdated),
            _ => ("204 No Content", 0, 0L),
        };
        response.Entry(p.Type is null ? null : $"{baseUrl}/{p.Type}/{p.Id}", null, null, null, w =>
        {
            w.WriteString("status", status);
            if (version > 0)
            {
                if (p.Method != "DELETE") w.WriteString("location", $"{p.Type}/{p.Id}/_history/{version}");
                w.WriteString("etag", FhirResponse.ETagFor(version));
                w.WriteString("lastModified", BundleWriter.Instant(lastUpdated));
            }
        });
    }

    private static Planned? PlanEntry(int i, Bundle.EntryComponent e, List<string> errors, bool importMode)
    {
        var method = e.Request?.Method?.ToString().ToUpperInvariant();
        var url = e.Request?.Url;
        if (e.Request is null && importMode && e.Resource is not null)
        {
            // Collection bundles carry no request: store each resource under its own or its urn id.
            method = e.Resource.Id is not null ? "PUT" : "POST";
            url = e.Resource.Id is not null ? $"{e.Resource.TypeName}/{e.Resource.Id}" : e.Resource.TypeName;
        }
        if (method is null || string.IsNullOrEmpty(url))
        {
            errors.Add($"entry[{i}]: request.method and request.url are required.");
            return null;
        }
        var p = new Planned { Index = i, Entry = e, Method = method };
        var path = url.Split('?')[0].Trim('/');
        var segments = path.Split('/');
        switch (method)
        {
            case "POST":
                if (segments.Length != 1 || e.Resource is null || e.Resource.TypeName != segments[0])
                {
                    errors.Add($"entry[{i}]: a POST needs url = the resource type and a resource of that type.");
                    return null;
                }
                p.Type = segments[0];
                p.Resource = e.Resource;
                break;
            case "PUT":
                if (segments.Length != 2 || e.Resource is null || e.Resource.TypeName != segments[0])
                {
                    errors.Add($"entry[{i}]: a PUT needs url = Type/id and a resource of that type (conditional update is not supported).");
                    return null;
                }
                if (e.Resource.Id is not null && e.Resource.Id != segments[1])
                {
                    errors.Add($"entry[{i}]: the resource id does not match the url.");
                    return null;
                }
                p.Type = segments[0];
                p.Id = segments[1];
                p.Resource = e.Resource;
                if (!string.IsNullOrEmpty(e.Request?.IfMatch))
                {
                    p.IfMatch = RecordService.ParseETag(e.Request.IfMatch);
                    if (p.IfMatch is null)
                    {
                        errors.Add($"entry[{i}]: ifMatch must be a version ETag such as W/\"3\".");
                        return null;
                    }
                }
                break;
            case "DELETE":
                if (segments.Length != 2)
                {
                    errors.Add($"entry[{i}]: a DELETE needs url = Type/id (conditional delete is not supported).");
                    return null;
                }
                p.Type = segments[0];
                p.Id = segments[1];
                break;
            case "GET":
                var (get, problem) = GetRequest.Parse(url);
                if (get is null)
                {
                    errors.Add($"entry[{i}]: {problem}");
                    return null;
                }
                p.Get = get;
                p.Type = get.Type;
                p.Id = get.Id;
                break;
            default:
                errors.Add($"entry[{i}]: the method {method} is not supported in a Bundle (GET, POST, PUT, DELETE are).");
                return null;
        }
        if (RecordService.CheckType(p.Type!) is not null)
        {
            errors.Add($"entry[{i}]: the resource type is not supported by this server.");
            return null;
        }
        if (p.Id is not null && !FhirIds.IsValid(p.Id))
        {
            errors.Add($"entry[{i}]: the id is not a valid FHIR id.");
            return null;
        }
        return p;
    }

    private async Task<FhirResponse> BatchAsync(Bundle bundle, string baseUrl, AccessScope access, CancellationToken ct)
    {
        using var response = new BundleWriter("batch-response", null, DateTimeOffset.UtcNow);
        for (var i = 0; i < bundle.Entry.Count; i++)
        {
            var e = bundle.Entry[i];
            var errors = new List<string>();
            var p = PlanEntry(i, e, errors, importMode: false);
            FhirResponse r;
            if (p is null)
                r = FhirResponse.BadRequest(errors);
            else
            {
                r = p.Method switch
                {
                    "POST" => await records.CreateAsync(p.Type!, FhirJson.Serialize(p.Resource!), NullIfEmpty(e.Request?.IfNoneExist), baseUrl, access, ct),
                    "PUT" => await records.UpdateAsync(p.Type!, p.Id!, FhirJson.Serialize(p.Resource!), NullIfEmpty(e.Request?.IfMatch), baseUrl, access, ct),
                    "DELETE" => await records.DeleteAsync(p.Type!, p.Id!, access, ct),
                    _ => await GetAsync(p.Get!, baseUrl, access, ct),
                };
            }
            var entryResponse = r;
            var isGet = p?.Method == "GET";
            response.Entry(null, isGet && r.IsSuccess ? r.Json : null, null, null, w =>
            {
                w.WriteString("status", Status(entryResponse.Status));
                if (entryResponse.Location is not null) w.WriteString("location", entryResponse.Location);
                if (entryResponse.ETag is not null) w.WriteString("etag", entryResponse.ETag);
                if (!entryResponse.IsSuccess && entryResponse.Json is not null)
                {
                    w.WritePropertyName("outcome");
                    w.WriteRawValue(entryResponse.Json, skipInputValidation: true);
                }
            });
        }
        return new FhirResponse(200, response.Finish());
    }

    /// <summary>A 403 for an entry whose type alone rules it out for this user, else null.</summary>
    private static FhirResponse? Refuse(AccessScope access, Planned p)
    {
        var (action, fhir) = p.Method switch
        {
            "POST" => (PolicyAction.Create, FhirAction.Create),
            "PUT" => (PolicyAction.Update, FhirAction.Update),
            "DELETE" => (PolicyAction.Delete, FhirAction.Delete),
            _ => p.Get!.Kind switch
            {
                GetKind.Search => (PolicyAction.Search, FhirAction.Search),
                GetKind.Read => (PolicyAction.Read, FhirAction.Read),
                GetKind.VRead => (PolicyAction.Read, FhirAction.VRead),
                // As the history itself decides: a type's history is a search, an instance's a read.
                _ => (p.Id is null ? PolicyAction.Search : PolicyAction.Read, FhirAction.History),
            },
        };
        return p.Type is not null && access.RefuseType(action, p.Type, new FhirInteraction(fhir, p.Type, p.Id)) is { } d
            ? FhirResponse.Error(403, OperationOutcome.IssueType.Forbidden, $"entry[{p.Index}]: access denied (rule {d.Rule}).")
            : null;
    }

    /// <summary>
    /// What a GET entry's execution would refuse with 400, found without running it: the checks the execution makes, the same
    /// messages. Its type and id were checked in planning, as every entry's are.
    /// </summary>
    private IReadOnlyList<string> Problems(GetRequest get) => get.Kind switch
    {
        GetKind.Search => records.SearchProblems(get.Type, get.Query),
        GetKind.History => RecordService.HistoryProblems(get.Query),
        GetKind.VRead => RecordService.VersionProblems(get.Version!),
        _ => [],
    };

    private Task<FhirResponse> GetAsync(GetRequest get, string baseUrl, AccessScope access, CancellationToken ct) => get.Kind switch
    {
        GetKind.Search => records.SearchAsync(get.Type, get.Query, lenient: false, baseUrl, access, ct),
        GetKind.Read => records.ReadAsync(get.Type, get.Id!, access, ct),
        GetKind.VRead => records.VReadAsync(get.Type, get.Id!, get.Version!, access, ct),
        _ => records.HistoryAsync(get.Type, get.Id, get.Query, baseUrl, access, ct),
    };

    private static string? UrnId(string? fullUrl) =>
        fullUrl is not null && fullUrl.StartsWith("urn:uuid:", StringComparison.Ordinal) && FhirIds.IsValid(fullUrl[9..]) ? fullUrl[9..] : null;

    private static string? NullIfEmpty(string? s) => string.IsNullOrEmpty(s) ? null : s;

    private static string Status(int code) => code.ToString(CultureInfo.InvariantCulture) + code switch
    {
        200 => " OK",
        201 => " Created",
        204 => " No Content",
        400 => " Bad Request",
        403 => " Forbidden",
        404 => " Not Found",
        409 => " Conflict",
        410 => " Gone",
        412 => " Precondition Failed",
        422 => " Unprocessable Entity",
        _ => "",
    };

    private enum GetKind
    {
        Search,
        Read,
        VRead,
        History,
    }

    /// <summary>
    /// What a Bundle's GET entry asks for, parsed once from its url: the transaction's check before anything is written and the
    /// entry's execution both work from this, so the request that was checked is the request that runs.
    /// </summary>
    /// <param name="Id">The instance (read, vread, an instance's history); null for a search or a type's history.</param>
    /// <param name="Version">The version of a vread, as given (checked by <see cref="RecordService.VersionProblems"/>).</param>
    /// <param name="Query">The query string's parameters (a read and a vread take none, and ignore them as the HTTP endpoints do).</param>
    private sealed record GetRequest(GetKind Kind, string Type, string? Id, string? Version, IReadOnlyList<KeyValuePair<string, string>> Query)
    {
        /// <summary>The request a url relative to the base describes (Type?query, Type/id, Type/id/_history/vid, Type/_history, Type/id/_history), else why not.</summary>
        public static (GetRequest? Request, string? Problem) Parse(string url)
        {
            // A fragment is never part of a request; in a url sent to a server it would be a mistake (a '#' in a value is %23).
            if (url.Contains('#', StringComparison.Ordinal)) return (null, "the GET url has a fragment (#); a request url has none.");
            var q = url.IndexOf('?', StringComparison.Ordinal);
            var path = (q < 0 ? url : url[..q]).Trim('/');
            // A scheme (http:, urn:): another server's url, or this one's spelt out; an entry's url is relative to the base.
            if (path.Split('/')[0].Contains(':', StringComparison.Ordinal)) return (null, "the GET url must be relative to this server's base (such as Patient/123), not an absolute url.");
            IReadOnlyList<KeyValuePair<string, string>> query = q < 0 ? [] : RecordService.ParseQueryString(url[(q + 1)..]);
            GetRequest? request = path.Split('/') switch
            {
                [var t] => new(GetKind.Search, t, null, null, query),
                [var t, "_history"] => new(GetKind.History, t, null, null, query),
                [var t, var id] => new(GetKind.Read, t, id, null, query),
                [var t, var id, "_history"] => new(GetKind.History, t, id, null, query),
                [var t, var id, "_history", var vid] => new(GetKind.VRead, t, id, vid, query),
                _ => null,
            };
            return request is null ? (null, "the GET url is not a FHIR read, vread, search or history (Type?query, Type/id, Type/id/_history/version, Type/_history or Type/id/_history).") : (request, null);
        }
    }
}
