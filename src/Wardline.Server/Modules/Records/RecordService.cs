using System.Globalization;
using System.Text;
using Hl7.Fhir.Model;
using Wardline.Server.Modules.Records.Search;
using Wardline.Server.Modules.Records.Storage;

namespace Wardline.Server.Modules.Records;

/// <summary>
/// The record store's behaviour: FHIR interactions over the encrypted, versioned store. Every
/// method returns a <see cref="FhirResponse"/>; a failed interaction has written nothing.
/// </summary>
internal sealed class RecordService(RecordStore store, RecordKeys keys, TimeProvider time)
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

    public async Task<FhirResponse> ReadAsync(string type, string id, CancellationToken ct)
    {
        if ((CheckType(type) ?? CheckId(id)) is { } bad) return bad;
        var v = await store.ReadCurrentAsync(type, id, ct);
        if (v is null) return FhirResponse.NotFound($"{type}/{id} is not known.");
        if (v.Deleted) return FhirResponse.Gone($"{type}/{id} was deleted (version {v.Version}).") with { ETag = FhirResponse.ETagFor(v.Version) };
        return FhirResponse.Ok(keys.Open(v)!, v.Version, v.LastUpdated) with { ResourceRef = $"{type}/{id}/_history/{v.Version}" };
    }

    public async Task<FhirResponse> VReadAsync(string type, string id, string vid, CancellationToken ct)
    {
        if ((CheckType(type) ?? CheckId(id)) is { } bad) return bad;
        if (!int.TryParse(vid, NumberStyles.None, CultureInfo.InvariantCulture, out var version) || version < 1)
            return FhirResponse.NotFound($"{type}/{id} has no such version.");
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

    public async Task<FhirResponse> CreateAsync(string type, byte[] body, string? ifNoneExist, string baseUrl, CancellationToken ct)
    {
        if (CheckType(type) is { } bad) return bad;
        var (resource, error) = ParseBody(type, body);
        if (error is not null) return error;
        if (ifNoneExist is not null)
        {
            var existing = await ConditionalMatchAsync(type, ifNoneExist, ct);
            if (existing.Error is not null) return existing.Error;
            if (existing.Matches.Count > 1)
                return FhirResponse.PreconditionFailed($"If-None-Exist matched {existing.Matches.Count} resources; it must match at most one.");
            if (existing.Matches.Count == 1)
            {
                var m = existing.Matches[0];
                return FhirResponse.Ok(keys.Open(m)!, m.Version, m.LastUpdated) with
                {
                    Location = $"{baseUrl}/{type}/{m.Id}/_history/{m.Version}",
                    ResourceRef = $"{type}/{m.Id}/_history/{m.Version}",
                };
            }
        }
        var id = Guid.NewGuid().ToString();
        var refs = await CheckReferencesAsync([resource!], allowUrn: false, alsoExisting: NoKeys, ct);
        if (refs is not null) return refs;
        var write = Prepare(type, id, resource!, null, Now());
        await store.WriteAsync([write.Pending], ct);
        return Created(write, baseUrl);
    }

    public async Task<FhirResponse> UpdateAsync(string type, string id, byte[] body, string? ifMatch, string baseUrl, CancellationToken ct)
    {
        if ((CheckType(type) ?? CheckId(id)) is { } bad) return bad;
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
        var refs = await CheckReferencesAsync([resource], allowUrn: false, alsoExisting: NoKeys, ct);
        if (refs is not null) return refs;
        for (var attempt = 0; attempt < MaxWriteAttempts; attempt++)
        {
            var current = await store.ReadCurrentAsync(type, id, ct);
            if (expected is not null && (current is null || current.Version != expected))
                return FhirResponse.PreconditionFailed($"{type}/{id} is at version {current?.Version ?? 0}, not {expected}; reload it and apply your change again.");
            var write = Prepare(type, id, (Resource)resource.DeepCopy(), current, Now());
            if (await store.WriteAsync([write.Pending], ct) == WriteStatus.Committed)
            {
                return current is null ? Created(write, baseUrl) : FhirResponse.Ok(write.Json, write.Pending.Version, write.Pending.LastUpdated) with
                {
                    ResourceRef = $"{type}/{id}/_history/{write.Pending.Version}",
                };
            }
            if (expected is not null)
                return FhirResponse.PreconditionFailed($"{type}/{id} was changed by someone else at the same time; reload it and apply your change again.");
        }
        return FhirResponse.Conflict($"{type}/{id} is being changed by others too often; try again.");
    }

    public async Task<FhirResponse> DeleteAsync(string type, string id, CancellationToken ct)
    {
        if ((CheckType(type) ?? CheckId(id)) is { } bad) return bad;
        for (var attempt = 0; attempt < MaxWriteAttempts; attempt++)
        {
            var current = await store.ReadCurrentAsync(type, id, ct);
            if (current is null) return FhirResponse.NotFound($"{type}/{id} is not known.");
            if (current.Deleted) return new FhirResponse(204, null) { ETag = FhirResponse.ETagFor(current.Version) };
            var tomb = Tombstone(current, Now());
            if (await store.WriteAsync([tomb], ct) == WriteStatus.Committed)
                return new FhirResponse(204, null) { ETag = FhirResponse.ETagFor(tomb.Version), ResourceRef = $"{type}/{id}/_history/{tomb.Version}" };
        }
        return FhirResponse.Conflict($"{type}/{id} is being changed by others too often; try again.");
    }

    public async Task<FhirResponse> SearchAsync(string type, IEnumerable<KeyValuePair<string, string>> query, bool lenient, string baseUrl, CancellationToken ct)
    {
        if (CheckType(type) is { } bad) return bad;
        var (plan, errors) = _parser.Parse(type, query, lenient);
        if (plan is null) return FhirResponse.BadRequest(errors);
        var page = await store.SearchAsync(plan, ct);
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

    public async Task<FhirResponse> HistoryAsync(string type, string? id, IEnumerable<KeyValuePair<string, string>> query, string baseUrl, CancellationToken ct)
    {
        if ((CheckType(type) ?? (id is null ? null : CheckId(id))) is { } bad) return bad;
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
        if (errors.Count > 0) return FhirResponse.BadRequest(errors);
        if (id is not null && await store.ReadCurrentAsync(type, id, ct) is null) return FhirResponse.NotFound($"{type}/{id} is not known.");
        var (page, total) = await store.HistoryAsync(type, id, since, count, offset, ct);
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

    /// <summary>Runs a conditional query (If-None-Exist, conditional references) and returns up to two matches.</summary>
    public async Task<(IReadOnlyList<StoredVersion> Matches, FhirResponse? Error)> ConditionalMatchAsync(string type, string query, CancellationToken ct)
    {
        var pairs = ParseQueryString(query);
        if (pairs.Count == 0) return ([], FhirResponse.BadRequest("The conditional query is empty."));
        var (plan, errors) = _parser.Parse(type, pairs, lenient: false);
        if (plan is null) return ([], FhirResponse.BadRequest(errors));
        plan.Count = 2;
        plan.Offset = 0;
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
        var cipher = keys.Cipher;
        var keyContext = RecordKeys.KeyContext(type, id);
        var bodyContext = RecordKeys.BodyContext(type, id, version);
        if (current is null)
        {
            using var created = cipher.CreateDataKey(keyContext);
            var body = cipher.Encrypt(created.DataKey, json, bodyContext);
            return new PreparedWrite(new PendingWrite(type, id, version, 0, now, false, body, created.Wrapped, cipher.WrappingKekId(created.Wrapped), index), json);
        }
        using var key = keys.Unwrap(type, id, current.WrappedKey);
        var sealedBody = cipher.Encrypt(key, json, bodyContext);
        return new PreparedWrite(new PendingWrite(type, id, version, current.Version, now, false, sealedBody, null, null, index, current.Rid), json);
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
        s = s.Trim('"');
        return int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var v) && v > 0 ? v : null;
    }
}
