using System.Security.Cryptography;
using System.Globalization;
using System.Text;
using Hl7.Fhir.Model;
using Wardline.Policy;
using Wardline.Server.Modules.Access;
using Wardline.Server.Modules.Access.Facts;
using Wardline.Server.Modules.Records.Search;
using Wardline.Server.Modules.Records.Storage;
using Wardline.Server.Pipeline;

namespace Wardline.Server.Modules.Records;

/// <summary>
/// The record store's behaviour: FHIR interactions over the encrypted, versioned store. Every
/// method returns a <see cref="FhirResponse"/>; a failed interaction has written nothing.
/// Every method takes the request's <see cref="AccessScope"/> and asks it before each disclosure or
/// change: a resource the policy hides answers exactly as one that does not exist (404), and
/// searches carry the policy into their query, so pages and totals only ever count permitted resources.
/// </summary>
internal sealed class RecordService(RecordStore store, RecordKeys keys, FactsExtractor extractor, FactsResolver facts, TimeProvider time)
{
    private const int MaxWriteAttempts = 5;

    private static readonly HashSet<(string, string)> NoKeys = [];

    private readonly ResourceIndexer _indexer = new(keys.Blind);
    private readonly SearchParser _parser = new(keys.Blind);

    public RecordStore Store => store;

    public static FhirResponse? CheckType(string type) =>
        SearchParameterRegistry.ResourceTypes.Contains(type)
            ? null
            : FhirResponse.NotFound($"The resource type '{SearchParser.Truncate(type)}' is not supported by this server (see /fhir/metadata).");

    public static FhirResponse? CheckId(string id) =>
        FhirIds.IsValid(id) ? null : FhirResponse.BadRequest("The id is not a valid FHIR id ([A-Za-z0-9-.], 1-64 characters).");

    /// <summary>Why a vread's version would be refused (400): this server numbers versions 1, 2, 3, ...</summary>
    public static IReadOnlyList<string> VersionProblems(string vid) =>
        ParseVersion(vid) is null ? ["The version is not a valid version id (a whole number from 1)."] : [];

    private static FhirResponse? CheckVersion(string vid) => VersionProblems(vid) is { Count: > 0 } problems ? FhirResponse.BadRequest(problems) : null;

    private static int? ParseVersion(string vid) =>
        int.TryParse(vid, NumberStyles.None, CultureInfo.InvariantCulture, out var v) && v > 0 ? v : null;

    public async Task<FhirResponse> ReadAsync(string type, string id, AccessScope access, CancellationToken ct)
    {
        if ((CheckType(type) ?? CheckId(id)) is { } bad) return bad;
        var interaction = new FhirInteraction(FhirAction.Read, type, id);
        if (access.RefuseType(PolicyAction.Read, type, interaction) is { } refused) return Forbidden(refused);
        var v = await store.ReadCurrentAsync(type, id, ct);
        if (v is null || !await PermitsAsync(access, PolicyAction.Read, type, id, interaction, ct)) return FhirResponse.NotFound($"{type}/{id} is not known.");
        if (v.Deleted) return FhirResponse.Gone($"{type}/{id} was deleted (version {v.Version}).") with { ETag = FhirResponse.ETagFor(v.Version) };
        return FhirResponse.Ok(keys.Open(v)!, v.Version, v.LastUpdated) with { ResourceRef = $"{type}/{id}/_history/{v.Version}" };
    }

    public async Task<FhirResponse> VReadAsync(string type, string id, string vid, AccessScope access, CancellationToken ct)
    {
        // A malformed version is refused with the type and id, before anything is looked up: the answer is the same for every resource.
        if ((CheckType(type) ?? CheckId(id) ?? CheckVersion(vid)) is { } bad) return bad;
        var interaction = new FhirInteraction(FhirAction.VRead, type, id);
        if (access.RefuseType(PolicyAction.Read, type, interaction) is { } refused) return Forbidden(refused);
        // Every version is judged by the resource's current facts: who may see it now may see its past.
        // Existence first, so a hidden resource and an unknown one answer alike whatever the policy says of "nothing".
        if (await store.ReadCurrentAsync(type, id, ct) is null || !await PermitsAsync(access, PolicyAction.Read, type, id, interaction, ct))
            return FhirResponse.NotFound($"{type}/{id} is not known.");
        var version = ParseVersion(vid)!.Value;
        var v = await store.ReadVersionAsync(type, id, version, ct);
        if (v is null) return FhirResponse.NotFound($"{type}/{id} has no version {version}.");
        if (v.Deleted) return FhirResponse.Gone($"Version {version} of {type}/{id} is a deletion.");
        return FhirResponse.Ok(keys.Open(v)!, v.Version, v.LastUpdated) with { ResourceRef = $"{type}/{id}/_history/{v.Version}" };
    }

    /// <summary>Parses a request body for <paramref name="type"/>; on failure, the 400 response listing every issue.</summary>
    public static (Resource? Resource, FhirResponse? Error) ParseBody(string type, ReadOnlySpan<byte> body)
    {
        if (body.IsEmpty) return (null, FhirResponse.BadRequest("The request body is empty; a FHIR resource in JSON is required."));
        var parsed = FhirJson.Parse(body);
        if (parsed.Resource is null) return (null, FhirResponse.BadRequest(parsed.Issues));
        if (parsed.Resource.TypeName != type)
            return (null, FhirResponse.BadRequest($"The body is a {SearchParser.Truncate(parsed.Resource.TypeName)}, but the URL names {type}."));
        return (parsed.Resource, null);
    }

    public async Task<FhirResponse> CreateAsync(string type, byte[] body, string? ifNoneExist, string baseUrl, AccessScope access, CancellationToken ct)
    {
        if (CheckType(type) is { } bad) return bad;
        var interaction = new FhirInteraction(FhirAction.Create, type, null);
        if (access.RefuseType(PolicyAction.Create, type, interaction) is { } refused) return Forbidden(refused);
        var (resource, error) = ParseBody(type, body);
        if (error is not null) return error;
        if (ifNoneExist is not null)
        {
            var existing = await ConditionalMatchAsync(type, ifNoneExist, access, ct);
            if (existing.Error is not null) return existing.Error;
            if (existing.Matches.Count > 1)
                return FhirResponse.PreconditionFailed($"If-None-Exist matched {existing.Matches.Count} resources; it must match at most one.");
            if (existing.Matches.Count == 1)
            {
                var m = existing.Matches[0];
                // The match's content is sent back: a disclosure, recorded under its patient like a search's matches.
                await DisclosedAsync(access, FhirAction.Search, [m], ct);
                return FhirResponse.Ok(keys.Open(m)!, m.Version, m.LastUpdated) with
                {
                    Location = $"{baseUrl}/{type}/{m.Id}/_history/{m.Version}",
                    ResourceRef = $"{type}/{m.Id}/_history/{m.Version}",
                };
            }
        }
        var id = Guid.NewGuid().ToString();
        var write = Prepare(type, id, resource!, null, Now());
        if (await AuthorizeWritesAsync(access, [(write.Pending, null)], ct) is { } denied) return denied;
        var refs = await CheckReferencesAsync([resource!], allowUrn: false, alsoExisting: NoKeys, ct);
        if (refs is not null) return refs;
        var written = await store.WriteAsync([write.Pending], access.Actor, ct);
        return Created(write, baseUrl) with { Receipt = written.Receipt };
    }

    public async Task<FhirResponse> UpdateAsync(string type, string id, byte[] body, string? ifMatch, string baseUrl, AccessScope access, CancellationToken ct)
    {
        if ((CheckType(type) ?? CheckId(id)) is { } bad) return bad;
        if (access.RefuseType(PolicyAction.Update, type, new FhirInteraction(FhirAction.Update, type, id)) is { } refused) return Forbidden(refused);
        var (resource, error) = ParseBody(type, body);
        if (error is not null) return error;
        if (resource!.Id is null)
            return FhirResponse.BadRequest("The resource in an update must carry its id.");
        if (resource.Id != id)
            return FhirResponse.BadRequest("The id in the body does not match the id in the URL.");
        int? expected = null;
        if (ifMatch is not null)
        {
            if (ParseETag(ifMatch) is not { } e) return FhirResponse.BadRequest("If-Match must be a version ETag such as W/\"3\".");
            expected = e;
        }
        var checkedReferences = false;
        for (var attempt = 0; attempt < MaxWriteAttempts; attempt++)
        {
            var current = await store.ReadCurrentAsync(type, id, ct);
            // Update-as-create with a client id: only for those who could see any resource of the type
            // anyway; for others an unknown id must answer exactly as a hidden one does.
            if (current is null && !access.SeesEvery(type)) return FhirResponse.NotFound($"{type}/{id} is not known.");
            var write = Prepare(type, id, (Resource)resource.DeepCopy(), current, Now());
            if (await AuthorizeWritesAsync(access, [(write.Pending, current)], ct) is { } denied) return denied;
            if (expected is not null && (current is null || current.Version != expected))
                return FhirResponse.PreconditionFailed($"{type}/{id} is at version {current?.Version ?? 0}, not {expected}; reload it and apply your change again.");
            if (!checkedReferences)
            {
                if (await CheckReferencesAsync([resource], allowUrn: false, alsoExisting: NoKeys, ct) is { } refs) return refs;
                checkedReferences = true;
            }
            if (await store.WriteAsync([write.Pending], access.Actor, ct) is { Status: WriteStatus.Committed } written)
            {
                return current is null ? Created(write, baseUrl) with { Receipt = written.Receipt } : FhirResponse.Ok(write.Json, write.Pending.Version, write.Pending.LastUpdated) with
                {
                    ResourceRef = $"{type}/{id}/_history/{write.Pending.Version}",
                    Receipt = written.Receipt,
                };
            }
            if (expected is not null)
                return FhirResponse.PreconditionFailed($"{type}/{id} was changed by someone else at the same time; reload it and apply your change again.");
        }
        return FhirResponse.Conflict($"{type}/{id} is being changed by others too often; try again.");
    }

    public async Task<FhirResponse> DeleteAsync(string type, string id, AccessScope access, CancellationToken ct)
    {
        if ((CheckType(type) ?? CheckId(id)) is { } bad) return bad;
        if (access.RefuseType(PolicyAction.Delete, type, new FhirInteraction(FhirAction.Delete, type, id)) is { } refused) return Forbidden(refused);
        for (var attempt = 0; attempt < MaxWriteAttempts; attempt++)
        {
            var current = await store.ReadCurrentAsync(type, id, ct);
            if (current is null) return FhirResponse.NotFound($"{type}/{id} is not known.");
            if (await AuthorizeWritesAsync(access, [(RecordService.Tombstone(current, 0), current)], ct) is { } denied) return denied;
            if (current.Deleted) return new FhirResponse(204, null) { ETag = FhirResponse.ETagFor(current.Version) };
            var tomb = Tombstone(current, Now()) with { Patient = (await facts.StoredAsync(type, id, ct)).Patient?.Id };
            if (await store.WriteAsync([tomb], access.Actor, ct) is { Status: WriteStatus.Committed } written)
                return new FhirResponse(204, null) { ETag = FhirResponse.ETagFor(tomb.Version), ResourceRef = $"{type}/{id}/_history/{tomb.Version}", Receipt = written.Receipt };
        }
        return FhirResponse.Conflict($"{type}/{id} is being changed by others too often; try again.");
    }

    /// <summary>Why the parser would refuse this search (none when it parses; strict, as in a Bundle).</summary>
    public IReadOnlyList<string> SearchProblems(string type, IEnumerable<KeyValuePair<string, string>> query) =>
        CheckType(type) is null ? _parser.Parse(type, query, lenient: false).Errors : [];

    public async Task<FhirResponse> SearchAsync(string type, IEnumerable<KeyValuePair<string, string>> query, bool lenient, string baseUrl, AccessScope access, CancellationToken ct)
    {
        if (CheckType(type) is { } bad) return bad;
        var interaction = new FhirInteraction(FhirAction.Search, type, null);
        if (access.RefuseType(PolicyAction.Search, type, interaction) is { } refused) return Forbidden(refused);
        var (plan, errors) = _parser.Parse(type, query, lenient);
        if (plan is null) return FhirResponse.BadRequest(errors);
        plan.Access = access.Filter(PolicyAction.Search, type, interaction);
        var page = await store.SearchAsync(plan, ct);
        page = page with { Included = await PermittedAsync(access, page.Included, ct) };
        await DisclosedAsync(access, FhirAction.Search, page.Matches, ct);
        using var bundle = new BundleWriter("searchset", page.Total, time.GetUtcNow());
        bundle.Links(PageLinks(baseUrl + "/" + type, plan, page.Total));
        foreach (var m in page.Matches)
            bundle.Entry($"{baseUrl}/{m.Type}/{m.Id}", keys.Open(m), "match");
        foreach (var inc in page.Included)
            bundle.Entry($"{baseUrl}/{inc.Type}/{inc.Id}", keys.Open(inc), "include");
        if (plan.Ignored.Count > 0)
        {
            var warning = FhirResponse.Outcome(OperationOutcome.IssueSeverity.Warning, OperationOutcome.IssueType.NotSupported,
                plan.Ignored.Select(p => $"Search parameter '{SearchParser.Truncate(p)}' is not supported and was ignored."));
            bundle.Entry(null, FhirJson.Serialize(warning), "outcome");
        }
        return new FhirResponse(200, bundle.Finish());
    }

    private static IEnumerable<(string, string)> PageLinks(string url, SearchPlan plan, int total)
    {
        string Link(int offset)
        {
            var sb = new StringBuilder(url).Append('?');
            foreach (var (k, v) in plan.Canonical)
                sb.Append(Uri.EscapeDataString(k)).Append('=').Append(Uri.EscapeDataString(v)).Append('&');
            sb.Append("_count=").Append(plan.Count).Append("&_offset=").Append(offset);
            return sb.ToString();
        }
        yield return ("self", Link(plan.Offset));
        if (plan.SummaryCount || plan.Count == 0) yield break;
        yield return ("first", Link(0));
        if (plan.Offset > 0) yield return ("previous", Link(Math.Max(0, plan.Offset - plan.Count)));
        if (plan.Offset + plan.Count < total) yield return ("next", Link(plan.Offset + plan.Count));
        yield return ("last", Link(total == 0 ? 0 : (total - 1) / plan.Count * plan.Count));
    }

    public async Task<FhirResponse> HistoryAsync(string type, string? id, IEnumerable<KeyValuePair<string, string>> query, string baseUrl, AccessScope access, CancellationToken ct)
    {
        if ((CheckType(type) ?? (id is null ? null : CheckId(id))) is { } bad) return bad;
        var interaction = new FhirInteraction(FhirAction.History, type, id);
        var action = id is null ? PolicyAction.Search : PolicyAction.Read;
        if (access.RefuseType(action, type, interaction) is { } refused) return Forbidden(refused);
        var ((count, offset, since), errors) = ParseHistory(query);
        if (errors.Count > 0) return FhirResponse.BadRequest(errors);
        if (id is not null && (await store.ReadCurrentAsync(type, id, ct) is null || !await PermitsAsync(access, PolicyAction.Read, type, id, interaction, ct)))
            return FhirResponse.NotFound($"{type}/{id} is not known.");
        var filter = id is null ? access.Filter(PolicyAction.Search, type, interaction) : null;
        var (page, total) = await store.HistoryAsync(type, id, since, count, offset, filter, ct);
        if (filter is not null) await DisclosedAsync(access, FhirAction.History, page, ct);
        var self = $"{baseUrl}/{type}{(id is null ? "" : "/" + id)}/_history";
        using var bundle = new BundleWriter("history", total, time.GetUtcNow());
        var links = new List<(string, string)> { ("self", $"{self}?_count={count}&_offset={offset}") };
        if (offset + count < total && count > 0) links.Add(("next", $"{self}?_count={count}&_offset={offset + count}"));
        if (offset > 0) links.Add(("previous", $"{self}?_count={count}&_offset={Math.Max(0, offset - count)}"));
        bundle.Links(links);
        foreach (var v in page)
        {
            var method = v.Deleted ? "DELETE" : v.Version == 1 ? "POST" : "PUT";
            bundle.Entry($"{baseUrl}/{v.Type}/{v.Id}", keys.Open(v), null,
                (method, method == "POST" ? v.Type : $"{v.Type}/{v.Id}"),
                w =>
                {
                    w.WriteString("status", v.Deleted ? "204" : v.Version == 1 ? "201" : "200");
                    w.WriteString("etag", FhirResponse.ETagFor(v.Version));
                    w.WriteString("lastModified", BundleWriter.Instant(v.LastUpdated));
                });
        }
        return new FhirResponse(200, bundle.Finish());
    }

    /// <summary>Why a history would be refused for its parameters (400); none when it would run.</summary>
    public static IReadOnlyList<string> HistoryProblems(IEnumerable<KeyValuePair<string, string>> query) => ParseHistory(query).Errors;

    /// <summary>A history's page and _since, as its parameters give them, and what is wrong with them.</summary>
    private static ((int Count, int Offset, long? Since) Page, List<string> Errors) ParseHistory(IEnumerable<KeyValuePair<string, string>> query)
    {
        int count = SearchPlan.DefaultCount, offset = 0;
        long? since = null;
        var errors = new List<string>();
        foreach (var (k, v) in query)
        {
            switch (k)
            {
                case "_count" when int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out var c):
                    count = Math.Min(c, SearchPlan.MaxCount);
                    break;
                case "_offset" when int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out var o) && o <= 1_000_000:
                    offset = o;
                    break;
                case "_since" when FhirDates.Range(v) is { } r:
                    since = r.Lo;
                    break;
                case "_format":
                    break;
                default:
                    errors.Add($"History parameter '{SearchParser.Truncate(k)}' is not supported or its value is invalid (supported: _count, _offset, _since).");
                    break;
            }
        }
        return ((count, offset, since), errors);
    }

    /// <summary>Runs a conditional query (If-None-Exist, conditional references) and returns up to two matches.</summary>
    /// <remarks>Only resources the scope may search are matched, so a conditional query reveals nothing hidden.</remarks>
    public async Task<(IReadOnlyList<StoredVersion> Matches, FhirResponse? Error)> ConditionalMatchAsync(string type, string query, AccessScope access, CancellationToken ct)
    {
        var pairs = ParseQueryString(query);
        if (pairs.Count == 0) return ([], FhirResponse.BadRequest("The conditional query is empty."));
        var (plan, errors) = _parser.Parse(type, pairs, lenient: false);
        if (plan is null) return ([], FhirResponse.BadRequest(errors));
        plan.Count = 2;
        plan.Offset = 0;
        var interaction = new FhirInteraction(FhirAction.Search, type, null);
        if (!access.Unrestricted && access.RefuseType(PolicyAction.Search, type, interaction) is not null) return ([], null);
        plan.Access = access.Filter(PolicyAction.Search, type, interaction);
        var page = await store.SearchAsync(plan, ct);
        return (page.Matches, null);
    }

    internal static List<KeyValuePair<string, string>> ParseQueryString(string query)
    {
        var q = query.StartsWith('?') ? query[1..] : query;
        var list = new List<KeyValuePair<string, string>>();
        foreach (var part in q.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = part.IndexOf('=', StringComparison.Ordinal);
            var k = Uri.UnescapeDataString((eq < 0 ? part : part[..eq]).Replace('+', ' '));
            var v = eq < 0 ? "" : Uri.UnescapeDataString(part[(eq + 1)..].Replace('+', ' '));
            list.Add(new(k, v));
        }
        return list;
    }

    /// <summary>
    /// Refuses malformed references (400) and references to local resources that do not exist
    /// (422). <paramref name="alsoExisting"/> are resources created in the same transaction.
    /// </summary>
    public async Task<FhirResponse?> CheckReferencesAsync(IEnumerable<Resource> resources, bool allowUrn, IReadOnlySet<(string, string)> alsoExisting, CancellationToken ct)
    {
        var wanted = new HashSet<(string, string)>();
        var problems = new List<string>();
        foreach (var r in resources)
        {
            var (local, p) = ResourceReferences.Check(r, allowUrn);
            problems.AddRange(p);
            foreach (var key in local) if (!alsoExisting.Contains(key)) wanted.Add(key);
        }
        if (problems.Count > 0) return FhirResponse.BadRequest(problems.Distinct());
        if (wanted.Count == 0) return null;
        var found = await store.ExistingAsync(wanted, ct);
        var missing = wanted.Where(w => !found.Contains(w)).Select(w => $"The referenced resource {w.Item1}/{w.Item2} does not exist.").ToList();
        return missing.Count == 0 ? null : FhirResponse.Unprocessable(missing);
    }

    internal sealed record PreparedWrite(PendingWrite Pending, byte[] Json);

    /// <summary>Stamps id and meta, serializes, indexes and encrypts one new version.</summary>
    public PreparedWrite Prepare(string type, string id, Resource resource, StoredVersion? current, long now)
    {
        var version = (current?.Version ?? 0) + 1;
        resource.Id = id;
        resource.Meta ??= new Meta();
        resource.Meta.VersionId = version.ToString(CultureInfo.InvariantCulture);
        resource.Meta.LastUpdated = DateTimeOffset.FromUnixTimeMilliseconds(now);
        var json = FhirJson.Serialize(resource);
        var index = _indexer.Index(resource);
        var row = extractor.Extract(resource, index, now / 1000);
        var cipher = keys.Cipher;
        var keyContext = RecordKeys.KeyContext(type, id);
        var bodyContext = RecordKeys.BodyContext(type, id, version);
        if (current is null)
        {
            using var created = cipher.CreateDataKey(keyContext);
            var body = cipher.Encrypt(created.DataKey, json, bodyContext);
            return new PreparedWrite(new PendingWrite(type, id, version, 0, now, false, body, created.Wrapped, cipher.WrappingKekId(created.Wrapped), index)
                { Facts = row, Sha256 = SHA256.HashData(json), Patient = row.Patient }, json);
        }
        using var key = keys.Unwrap(type, id, current.WrappedKey);
        var sealedBody = cipher.Encrypt(key, json, bodyContext);
        return new PreparedWrite(new PendingWrite(type, id, version, current.Version, now, false, sealedBody, null, null, index, current.Rid)
            { Facts = row, Sha256 = SHA256.HashData(json), Patient = row.Patient }, json);
    }

    /// <summary>Whether a stored version holds the same content as <paramref name="incoming"/>, ignoring meta (used to de-duplicate imports).</summary>
    public bool SameContent(StoredVersion current, Resource incoming)
    {
        if (keys.Open(current) is not { } json || FhirJson.Parse(json).Resource is not { } stored)
        {
            return false;
        }
        var copy = (Resource)incoming.DeepCopy();
        copy.Id = stored.Id;
        copy.Meta = null;
        stored.Meta = null;
        return FhirJson.Serialize(copy).AsSpan().SequenceEqual(FhirJson.Serialize(stored));
    }

    /// <summary>
    /// Re-indexes the stored resources of every type that gained a search parameter since they were written (their index
    /// rows and access facts, which a version of Wardline may also derive differently), then marks the type done; returns
    /// how many resources of each type. Safe to interrupt: a type stays pending until all of it is done.
    /// </summary>
    public async Task<List<(string Type, int Count)>> ReindexPendingAsync(CancellationToken ct)
    {
        var done = new List<(string, int)>();
        foreach (var type in await store.PendingReindexAsync(ct))
        {
            done.Add((type, await ReindexTypeAsync(type, ct)));
            await store.ReindexedAsync(type, ct);
        }
        return done;
    }

    /// <summary>
    /// Derives every present resource's search index rows, access facts and care relations again from its stored content
    /// (<c>wardline records rederive</c>): after an upgrade that changed what is derived, or to repair what
    /// <c>wardline ledger verify --derived</c> names. Returns how many resources of each type.
    /// </summary>
    public async Task<List<(string Type, int Count)>> RederiveAllAsync(CancellationToken ct)
    {
        var done = new List<(string, int)>();
        foreach (var type in SearchParameterRegistry.ResourceTypes.Order(StringComparer.Ordinal))
        {
            var count = await ReindexTypeAsync(type, ct);
            if (count > 0) done.Add((type, count));
        }
        return done;
    }

    private async Task<int> ReindexTypeAsync(string type, CancellationToken ct)
    {
        var count = 0;
        long after = 0;
        while (true)
        {
            var batch = await store.CurrentOfTypeAsync(type, after, 500, ct);
            if (batch.Count == 0) return count;
            var rows = new List<(long, int, string, IReadOnlyList<IndexEntry>, FactsRow)>(batch.Count);
            foreach (var v in batch)
            {
                var resource = keys.Open(v) is { } json ? FhirJson.Parse(json).Resource : null;
                if (resource is null) continue;
                var index = _indexer.Index(resource);
                rows.Add((v.Rid, v.Version, type, index, extractor.Extract(resource, index, v.LastUpdated / 1000)));
            }
            // A resource written since it was read keeps what that write derived (not counted here).
            count += await store.ReindexAsync(rows, ct);
            after = batch[^1].Rid;
        }
    }

    /// <summary>Computes and stores access facts for every resource that has none; returns how many.</summary>
    public async Task<int> BackfillFactsAsync(CancellationToken ct)
    {
        var total = 0;
        while (true)
        {
            var batch = await store.MissingFactsAsync(500, ct);
            if (batch.Count == 0) return total;
            var rows = new List<(long, FactsRow)>(batch.Count);
            foreach (var v in batch)
            {
                var resource = keys.Open(v) is { } json ? FhirJson.Parse(json).Resource : null;
                rows.Add((v.Rid, resource is null ? FactsRow.None : extractor.Extract(resource, _indexer.Index(resource), v.LastUpdated / 1000)));
            }
            await store.WriteFactsAsync(rows, ct);
            total += rows.Count;
        }
    }

    private static FhirResponse Forbidden(AccessDecision refused) =>
        FhirResponse.Error(403, OperationOutcome.IssueType.Forbidden, $"Access denied (rule {refused.Rule}).");

    /// <summary>Decides one stored resource by its current facts, and keeps the decision.</summary>
    private async Task<bool> PermitsAsync(AccessScope access, PolicyAction action, string type, string id, FhirInteraction interaction, CancellationToken ct) =>
        access.Unrestricted || access.Permits(action, await facts.StoredAsync(type, id, ct), interaction);

    /// <summary>
    /// Search and type-history pages are filtered by the policy in the query, one decision for the page;
    /// what the page then shows is recorded resource by resource, with its patient, so each disclosure is in the ledger.
    /// </summary>
    private async System.Threading.Tasks.Task DisclosedAsync(AccessScope access, FhirAction action, IReadOnlyList<StoredVersion> shown, CancellationToken ct)
    {
        if (access.Unrestricted || shown.Count == 0) return;
        var all = await facts.StoredAsync([.. shown.Select(v => (v.Type, v.Id)).Distinct()], ct);
        access.Disclosed(action, shown.Select(v => (v.Type, v.Id, v.Version, all[(v.Type, v.Id)].Patient?.Id)));
    }

    /// <summary>The included resources of a search page that the scope may see; the others are left out silently.</summary>
    private async Task<IReadOnlyList<StoredVersion>> PermittedAsync(AccessScope access, IReadOnlyList<StoredVersion> included, CancellationToken ct)
    {
        if (access.Unrestricted || included.Count == 0) return included;
        var all = await facts.StoredAsync([.. included.Select(v => (v.Type, v.Id))], ct);
        return [.. included.Where(v => access.Permits(PolicyAction.Search, all[(v.Type, v.Id)], new FhirInteraction(FhirAction.Search, v.Type, v.Id)))];
    }

    /// <summary>
    /// Decides a set of writes made together (one request or one transaction): a change or deletion is
    /// judged by the resource as it stands and, for a change, by what it becomes; a creation by what it
    /// will be. Returns the refusal, or null. A resource the user may not even read answers 404, exactly
    /// as one that does not exist; otherwise a refusal is 403.
    /// </summary>
    public async Task<FhirResponse?> AuthorizeWritesAsync(AccessScope access, IReadOnlyList<(PendingWrite Write, StoredVersion? Current)> writes, CancellationToken ct)
    {
        if (access.Unrestricted || writes.Count == 0) return null;
        // A deleted resource keeps the access facts of its last content: writing it again is judged against them too, or a
        // user could re-create it as theirs and read its earlier versions through its history.
        var existing = await facts.StoredAsync([.. writes.Where(w => w.Current is not null).Select(w => (w.Write.Type, w.Write.Id))], ct);
        var incoming = await facts.PendingAsync([.. writes.Where(w => w.Write.Facts is not null).Select(w => (w.Write.Type, w.Write.Id, w.Write.Facts!))], ct);
        var next = 0;
        foreach (var (w, current) in writes)
        {
            var fhirAction = w.Deleted ? FhirAction.Delete : current is { Deleted: false } ? FhirAction.Update : FhirAction.Create;
            var interaction = new FhirInteraction(fhirAction, w.Type, w.Id);
            if (current is { Deleted: false })
            {
                var now = existing[(w.Type, w.Id)];
                var action = w.Deleted ? PolicyAction.Delete : PolicyAction.Update;
                if (!access.Permits(action, now, interaction))
                {
                    return access.WouldPermit(PolicyAction.Read, now)
                        ? FhirResponse.Error(403, OperationOutcome.IssueType.Forbidden, $"Access denied: this {w.Type} may not be {AccessScope.Name(action)} by you.")
                        : FhirResponse.NotFound($"{w.Type}/{w.Id} is not known.");
                }
            }
            else if (current is { Deleted: true } && !w.Deleted && !access.Permits(PolicyAction.Update, existing[(w.Type, w.Id)], interaction))
            {
                return access.WouldPermit(PolicyAction.Read, existing[(w.Type, w.Id)])
                    ? FhirResponse.Error(403, OperationOutcome.IssueType.Forbidden, $"Access denied: this {w.Type} was deleted, and only someone who may change what it held may write it again.")
                    : FhirResponse.NotFound($"{w.Type}/{w.Id} is not known.");
            }
            if (w.Facts is not null)
            {
                var becomes = incoming[next++];
                var action = current is { Deleted: false } ? PolicyAction.Update : PolicyAction.Create;
                if (!access.Permits(action, becomes, interaction))
                    return FhirResponse.Error(403, OperationOutcome.IssueType.Forbidden, $"Access denied: you may not {(action == PolicyAction.Create ? "create" : "make")} this {w.Type}{(action == PolicyAction.Create ? "" : " into what was sent")}.");
            }
        }
        // Creates, and updates that move the resource to another patient: an update for the same patient changes no one's patients.
        var opening = writes.Where(x => CareTypes.Contains(x.Write.Type) && x.Write.Facts?.Patient is { } p
            && (x.Current is not { Deleted: false } || existing[(x.Write.Type, x.Write.Id)].Patient?.Id != p)).ToList();
        return opening.Count == 0 ? null : await RefuseCareForUnknownPatientsAsync(access, writes, opening, ct);
    }

    /// <summary>The resources whose participants and department make a patient someone's (care relations; a treating department).</summary>
    private static readonly HashSet<string> CareTypes = new(StringComparer.Ordinal) { "Encounter", "CareTeam", "EpisodeOfCare" };

    /// <summary>
    /// An encounter, care team or episode makes its patient the patient of the practitioners it names and of its department,
    /// and those grant reads. A user may write one only for a patient they may already read (their department treats the
    /// patient, they care for them, or they registered the patient in the same request): else naming oneself, or one's
    /// department, on a new encounter would open any patient's chart. Admissions of new patients to a department come from
    /// registration, the ADT feed or a tier 1 clinician.
    /// </summary>
    private async Task<FhirResponse?> RefuseCareForUnknownPatientsAsync(AccessScope access, IReadOnlyList<(PendingWrite Write, StoredVersion? Current)> writes,
        IReadOnlyList<(PendingWrite Write, StoredVersion? Current)> opening, CancellationToken ct)
    {
        // Registered in this request: a Patient created here, not one updated (an update names someone who may exist already).
        var registered = writes.Where(x => x.Write.Type == "Patient" && x.Current is null).Select(x => x.Write.Id).ToHashSet(StringComparer.Ordinal);
        var patients = opening.Select(x => x.Write.Facts!.Patient!).Where(p => !registered.Contains(p)).Distinct(StringComparer.Ordinal).ToList();
        if (patients.Count == 0) return null;
        var known = await facts.StoredAsync([.. patients.Select(p => ("Patient", p))], ct);
        foreach (var p in patients)
        {
            // For treatment: a break-glass grant (hours, one patient) must not become a lasting care relation.
            if (!access.WouldPermitForTreatment(PolicyAction.Read, known[("Patient", p)]))
                return FhirResponse.Error(403, OperationOutcome.IssueType.Forbidden,
                    "Access denied: an Encounter, CareTeam or EpisodeOfCare makes its patient the patient of those it names; you may write one only for a patient you may already read (admissions come from registration, the ADT feed or a tier 1 clinician).");
        }
        return null;
    }

    public static PendingWrite Tombstone(StoredVersion current, long now) =>
        new(current.Type, current.Id, current.Version + 1, current.Version, now, true, null, null, null, [], current.Rid);

    private static FhirResponse Created(PreparedWrite w, string baseUrl) =>
        FhirResponse.Ok(w.Json, w.Pending.Version, w.Pending.LastUpdated, 201) with
        {
            Location = $"{baseUrl}/{w.Pending.Type}/{w.Pending.Id}/_history/{w.Pending.Version}",
            ResourceRef = $"{w.Pending.Type}/{w.Pending.Id}/_history/{w.Pending.Version}",
        };

    public long Now() => time.GetUtcNow().ToUnixTimeMilliseconds();

    internal static int? ParseETag(string etag)
    {
        var s = etag.Trim();
        if (s.StartsWith("W/", StringComparison.Ordinal)) s = s[2..];
        return ParseVersion(s.Trim('"'));
    }
}
