using System.Globalization;
using Wardline.Crypto;

namespace Wardline.Server.Modules.Records.Search;

internal abstract record Criterion(string Param);

/// <summary>Matches resources having any of the blind-index hashes (OR); <see cref="Negate"/> is FHIR's :not.</summary>
internal sealed record HashCriterion(string Param, IReadOnlyList<byte[]> Hashes, bool Negate) : Criterion(Param);

internal sealed record RefCriterion(string Param, IReadOnlyList<string> Refs) : Criterion(Param);

internal sealed record DateCriterion(string Param, IReadOnlyList<DateBound> Bounds) : Criterion(Param);

internal sealed record IdCriterion(IReadOnlyList<string> Ids) : Criterion("_id");

internal sealed record LastUpdatedCriterion(IReadOnlyList<DateBound> Bounds) : Criterion("_lastUpdated");

/// <summary>A date search value: prefix and the half-open range [Lo, Hi) its precision covers.</summary>
internal sealed record DateBound(string Prefix, long Lo, long Hi);

internal sealed record IncludeSpec(string SourceType, string Param, string? TargetType, bool Reverse)
{
    public override string ToString() => TargetType is null ? $"{SourceType}:{Param}" : $"{SourceType}:{Param}:{TargetType}";
}

internal sealed record SortSpec(string Param, bool Descending);

internal sealed class SearchPlan
{
    public const int DefaultCount = 20;
    public const int MaxCount = 1000;

    /// <summary>The values one parameter may list (a,b,c: any of them matches).</summary>
    public const int MaxValuesPerParameter = 100;

    /// <summary>
    /// The values a whole search may give, over all its parameters. Each value becomes one or two bound
    /// variables and one term of the query, and each parameter one more AND: at 500 a search stays far
    /// inside SQLite's limits (32,766 variables, an expression at most 1,000 deep), whatever its shape.
    /// </summary>
    public const int MaxValues = 500;

    public required string ResourceType { get; init; }
    public List<Criterion> Criteria { get; } = [];
    public int Count { get; set; } = DefaultCount;
    public int Offset { get; set; }
    public SortSpec? Sort { get; set; }
    public List<IncludeSpec> Includes { get; } = [];
    public bool SummaryCount { get; set; }

    /// <summary>The policy's filter for this subject, applied in the query (null only for the operator's own, unrestricted work).</summary>
    public Storage.AccessFilter? Access { get; set; }

    /// <summary>Parameters ignored under Prefer: handling=lenient, reported back as a warning.</summary>
    public List<string> Ignored { get; } = [];

    /// <summary>The query as understood, for self and paging links (values are echoed only to the caller who sent them).</summary>
    public List<KeyValuePair<string, string>> Canonical { get; } = [];
}

/// <summary>
/// Parses a FHIR search query string into a <see cref="SearchPlan"/>. Strict by default: an
/// unknown or unsupported parameter, modifier or value is an error naming the parameter.
/// </summary>
internal sealed class SearchParser(BlindIndex blind)
{
    private static readonly HashSet<string> Prefixes = ["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb"];

    public (SearchPlan? Plan, List<string> Errors) Parse(string type, IEnumerable<KeyValuePair<string, string>> query, bool lenient)
    {
        var plan = new SearchPlan { ResourceType = type };
        var errors = new List<string>();
        foreach (var (rawKey, value) in query)
        {
            var key = rawKey.Trim();
            var colon = key.IndexOf(':', StringComparison.Ordinal);
            var name = colon < 0 ? key : key[..colon];
            var modifier = colon < 0 ? null : key[(colon + 1)..];
            var before = errors.Count;
            var known = true;
            switch (name)
            {
                case "_count":
                    if (modifier is null && int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n >= 0)
                    {
                        plan.Count = Math.Min(n, SearchPlan.MaxCount);
                        if (n == 0) plan.SummaryCount = true;
                    }
                    else errors.Add("_count must be a non-negative whole number.");
                    break;
                case "_offset":
                    if (modifier is null && int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var o) && o >= 0 && o <= 1_000_000)
                        plan.Offset = o;
                    else errors.Add("_offset must be a whole number from 0 to 1000000.");
                    break;
                case "_format":
                    if (value is not ("json" or "application/json" or "application/fhir+json"))
                        errors.Add("_format: only JSON (application/fhir+json) is supported.");
                    break;
                case "_total":
                    if (value is not ("accurate" or "estimate" or "none"))
                        errors.Add("_total must be none, estimate or accurate.");
                    break;
                case "_summary":
                    if (value == "count") plan.SummaryCount = true;
                    else if (value != "false") errors.Add("_summary: only count and false are supported.");
                    break;
                case "_sort":
                    ParseSort(type, value, plan, errors);
                    break;
                case "_include":
                case "_revinclude":
                    ParseInclude(type, value, name == "_revinclude", plan, errors, lenient);
                    break;
                case "_id":
                    var ids = Split(value);
                    if (TooMany("_id", ids.Count, errors)) break;
                    if (modifier is not null || ids.Count == 0 || ids.Any(i => !FhirIds.IsValid(i)))
                        errors.Add("_id: each value must be a valid FHIR id ([A-Za-z0-9-.], 1-64 characters).");
                    else plan.Criteria.Add(new IdCriterion(ids));
                    break;
                case "_lastUpdated":
                    if (modifier is not null) { errors.Add("_lastUpdated takes no modifier."); break; }
                    if (ParseDates("_lastUpdated", value, errors) is { } lu) plan.Criteria.Add(new LastUpdatedCriterion(lu));
                    break;
                default:
                    var p = SearchParameterRegistry.Find(type, name);
                    if (p is null)
                    {
                        known = false;
                        break;
                    }
                    ParseParameter(type, p, modifier, value, plan, errors);
                    break;
            }
            if (!known)
            {
                if (lenient) plan.Ignored.Add(key);
                else errors.Add($"Unknown search parameter '{Truncate(key)}' for {type}.");
            }
            else if (errors.Count == before && name is not ("_count" or "_offset"))
            {
                plan.Canonical.Add(new(key, value));
            }
        }
        var total = plan.Criteria.Sum(Values);
        if (total > SearchPlan.MaxValues)
            errors.Add($"A search may give at most {SearchPlan.MaxValues} values over all its parameters; this one gives {total}. Split it into several searches.");
        return errors.Count == 0 ? (plan, errors) : (null, errors);
    }

    private void ParseParameter(string type, SearchParameter p, string? modifier, string value, SearchPlan plan, List<string> errors)
    {
        var values = Split(value);
        if (TooMany(p.Name, values.Count, errors)) return;
        if (values.Count == 0)
        {
            errors.Add($"{p.Name}: a value is required.");
            return;
        }
        var field = ResourceIndexer.HashField(type, p.Name);
        switch (p.Kind)
        {
            case SearchParamKind.Token:
                if (modifier is not (null or "not"))
                {
                    errors.Add($"{p.Name}: the modifier '{Truncate(modifier)}' is not supported (supported: :not).");
                    return;
                }
                var hashes = new List<byte[]>();
                foreach (var v in values)
                {
                    var bar = v.IndexOf('|', StringComparison.Ordinal);
                    if (bar >= 0 && bar == v.Length - 1)
                    {
                        errors.Add($"{p.Name}: a system without a code (system|) is not supported; give system|code, |code or code.");
                        return;
                    }
                    var form = bar < 0 ? "*|" + v : v;
                    hashes.Add(blind.Compute(field, form));
                }
                plan.Criteria.Add(new HashCriterion(p.Name, hashes, modifier == "not"));
                break;
            case SearchParamKind.String:
                if (modifier is not (null or "exact"))
                {
                    errors.Add($"{p.Name}: the modifier '{Truncate(modifier)}' is not supported (supported: :exact; values are stored as blind indexes, so :contains cannot be offered).");
                    return;
                }
                plan.Criteria.Add(new HashCriterion(p.Name, values.Select(v => blind.Compute(field, modifier == "exact"
                    ? "x:" + v
                    : "p:" + Prefix(BlindIndex.Normalize(v)))).ToList(), false));
                break;
            case SearchParamKind.Date:
                if (modifier is not null)
                {
                    errors.Add($"{p.Name}: date parameters take no modifier.");
                    return;
                }
                if (p.Blind)
                {
                    var blindHashes = new List<byte[]>();
                    foreach (var v in values)
                    {
                        if (v.Length is not (4 or 7 or 10) || FhirDates.Range(v) is null)
                        {
                            errors.Add($"{p.Name}: only equality to a date (YYYY, YYYY-MM or YYYY-MM-DD) is supported, because it is stored as a keyed blind index.");
                            return;
                        }
                        blindHashes.Add(blind.Compute(field, "d:" + v));
                    }
                    plan.Criteria.Add(new HashCriterion(p.Name, blindHashes, false));
                    return;
                }
                if (ParseDates(p.Name, value, errors) is { } bounds) plan.Criteria.Add(new DateCriterion(p.Name, bounds));
                break;
            case SearchParamKind.Reference:
                string? typeModifier = null;
                if (modifier is not null)
                {
                    if (p.Targets is not null && p.Targets.Contains(modifier, StringComparer.Ordinal) || p.Targets is null && SearchParameterRegistry.ResourceTypes.Contains(modifier))
                        typeModifier = modifier;
                    else
                    {
                        errors.Add($"{p.Name}: the modifier '{Truncate(modifier)}' is not supported (a target resource type is).");
                        return;
                    }
                }
                var refs = new List<string>();
                foreach (var v in values)
                {
                    string? r;
                    if (!v.Contains('/', StringComparison.Ordinal))
                    {
                        var target = typeModifier ?? (p.Targets is { Length: 1 } ? p.Targets[0] : null);
                        if (target is null)
                        {
                            errors.Add($"{p.Name}: give the reference as Type/id (this parameter can point at several types).");
                            return;
                        }
                        r = FhirIds.IsValid(v) ? target + "/" + v : null;
                    }
                    else r = ResourceIndexer.NormalizeReference(v);
                    if (r is null)
                    {
                        errors.Add($"{p.Name}: a value is not a valid reference (Type/id).");
                        return;
                    }
                    refs.Add(r);
                }
                plan.Criteria.Add(new RefCriterion(p.Name, refs));
                break;
        }
    }

    private static List<DateBound>? ParseDates(string name, string value, List<string> errors)
    {
        var bounds = new List<DateBound>();
        var values = Split(value);
        if (TooMany(name, values.Count, errors)) return null;
        foreach (var v in values)
        {
            var prefix = "eq";
            var text = v;
            if (v.Length > 2 && Prefixes.Contains(v[..2]))
            {
                prefix = v[..2];
                text = v[2..];
            }
            if (FhirDates.Range(text) is not { } r)
            {
                errors.Add($"{name}: a value is not a valid date (YYYY, YYYY-MM, YYYY-MM-DD or a dateTime with time zone), optionally prefixed with eq, ne, lt, gt, le, ge, sa or eb.");
                return null;
            }
            bounds.Add(new DateBound(prefix, r.Lo, r.Hi));
        }
        if (bounds.Count == 0)
        {
            errors.Add($"{name}: a value is required.");
            return null;
        }
        return bounds;
    }

    private static void ParseSort(string type, string value, SearchPlan plan, List<string> errors)
    {
        var keys = Split(value);
        if (keys.Count != 1)
        {
            errors.Add("_sort: exactly one sort key is supported (a date parameter or _lastUpdated, optionally prefixed with '-').");
            return;
        }
        var key = keys[0];
        var desc = key.StartsWith('-');
        var name = desc ? key[1..] : key;
        if (name == "_lastUpdated" || SearchParameterRegistry.Find(type, name) is { Kind: SearchParamKind.Date, Blind: false })
            plan.Sort = new SortSpec(name, desc);
        else
            errors.Add($"_sort: '{Truncate(name)}' is not a sortable parameter of {type} (a date parameter or _lastUpdated is).");
    }

    private static void ParseInclude(string type, string value, bool reverse, SearchPlan plan, List<string> errors, bool lenient)
    {
        var label = reverse ? "_revinclude" : "_include";
        var parts = value.Split(':');
        if (parts.Length is < 2 or > 3)
        {
            errors.Add($"{label}: the value must be SourceType:parameter[:TargetType].");
            return;
        }
        var (source, param, target) = (parts[0], parts[1], parts.Length == 3 ? parts[2] : null);
        if (!reverse && source != type)
        {
            errors.Add($"{label}: the source type must be {type}.");
            return;
        }
        var sp = SearchParameterRegistry.Find(source, param);
        if (sp is not { Kind: SearchParamKind.Reference } || param is not ("patient" or "subject" or "encounter"))
        {
            if (lenient) { plan.Ignored.Add($"{label}={value}"); return; }
            errors.Add($"{label}: '{Truncate(value)}' is not supported (subject, patient and encounter references are).");
            return;
        }
        if (reverse && sp.Targets is not null && !sp.Targets.Contains(type, StringComparer.Ordinal))
        {
            errors.Add($"{label}: {source}:{param} cannot point at {type}.");
            return;
        }
        if (target is not null && (sp.Targets is not null && !sp.Targets.Contains(target, StringComparer.Ordinal)))
        {
            errors.Add($"{label}: {source}:{param} cannot point at {Truncate(target)}.");
            return;
        }
        plan.Includes.Add(new IncludeSpec(source, param, target, reverse));
    }

    /// <summary>Refuses a parameter listing more than <see cref="SearchPlan.MaxValuesPerParameter"/> values.</summary>
    private static bool TooMany(string name, int count, List<string> errors)
    {
        if (count <= SearchPlan.MaxValuesPerParameter) return false;
        errors.Add($"{name}: at most {SearchPlan.MaxValuesPerParameter} values may be given in one parameter; this one gives {count}.");
        return true;
    }

    private static int Values(Criterion c) => c switch
    {
        IdCriterion i => i.Ids.Count,
        HashCriterion h => h.Hashes.Count,
        RefCriterion r => r.Refs.Count,
        DateCriterion d => d.Bounds.Count,
        LastUpdatedCriterion l => l.Bounds.Count,
        _ => 1,
    };

    private static string Prefix(string normalized) =>
        normalized.Length > ResourceIndexer.MaxPrefix ? normalized[..ResourceIndexer.MaxPrefix] : normalized;

    /// <summary>Splits on commas not escaped with a backslash (FHIR's rule), unescaping \, \| \$ \\.</summary>
    internal static List<string> Split(string value)
    {
        var result = new List<string>();
        var current = new System.Text.StringBuilder();
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            if (c == '\\' && i + 1 < value.Length && value[i + 1] is ',' or '\\' or '$')
            {
                current.Append(value[++i]);
            }
            else if (c == ',')
            {
                if (current.Length > 0) result.Add(current.ToString());
                current.Clear();
            }
            else current.Append(c);
        }
        if (current.Length > 0) result.Add(current.ToString());
        return result;
    }

    /// <summary>Echoes at most a short, printable part of a bad value back to its sender.</summary>
    internal static string Truncate(string? s)
    {
        if (s is null) return "";
        var clean = new string(s.Where(ch => !char.IsControl(ch)).Take(40).ToArray());
        return s.Length > 40 ? clean + "…" : clean;
    }
}
