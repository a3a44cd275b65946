using System.Globalization;
using Hl7.Fhir.Model;
using Wardline.Crypto;

namespace Wardline.Server.Modules.Records.Search;

/// <summary>One row of the search index. Exactly one of Hash, Ref or (Lo, Hi) is set.</summary>
internal readonly record struct IndexEntry(string Param, byte[]? Hash, string? Ref, long? Lo, long? Hi);

/// <summary>
/// Turns a resource into search-index rows. Tokens and strings become keyed blind indexes (HMAC),
/// so the database never holds a name, identifier or code in the clear; references and clinical
/// dates stay in the clear because range search and joins need them; identifying dates are blind.
/// </summary>
internal sealed class ResourceIndexer(BlindIndex blind)
{
    /// <summary>Prefixes longer than this are not indexed; a longer search value matches on its first 32 characters and the exact form.</summary>
    public const int MaxPrefix = 32;

    /// <summary>The distinct index rows of a resource (each table's primary key includes the whole row).</summary>
    public List<IndexEntry> Index(Resource resource)
    {
        var rows = new HashSet<IndexEntry>(IndexEntryComparer.Instance);
        var type = resource.TypeName;
        foreach (var p in SearchParameterRegistry.For(type).Values)
        {
            foreach (var value in p.Extract(resource))
            {
                if (value is null)
                {
                    continue;
                }
                switch (p.Kind)
                {
                    case SearchParamKind.Token:
                        foreach (var (system, code) in Tokens(value))
                        {
                            foreach (var form in TokenForms(system, code))
                            {
                                rows.Add(new IndexEntry(p.Name, blind.Compute(HashField(type, p.Name), form), null, null, null));
                            }
                        }
                        break;
                    case SearchParamKind.String:
                        foreach (var s in Strings(value))
                        {
                            foreach (var form in StringForms(s))
                            {
                                rows.Add(new IndexEntry(p.Name, blind.Compute(HashField(type, p.Name), form), null, null, null));
                            }
                        }
                        break;
                    case SearchParamKind.Date:
                        if (p.Blind)
                        {
                            foreach (var form in BlindDateForms(value))
                            {
                                rows.Add(new IndexEntry(p.Name, blind.Compute(HashField(type, p.Name), form), null, null, null));
                            }
                        }
                        else if (DateRange(value) is { } range)
                        {
                            rows.Add(new IndexEntry(p.Name, null, null, range.Lo, range.Hi));
                        }
                        break;
                    case SearchParamKind.Reference:
                        if (value is ResourceReference rr && NormalizeReference(rr.Reference) is { } target)
                        {
                            rows.Add(new IndexEntry(p.Name, null, target, null, null));
                        }
                        break;
                }
            }
        }
        return [.. rows];
    }

    /// <summary>The HMAC field name binds the value to its type and parameter, so equal values in different parameters do not collide.</summary>
    public static string HashField(string type, string param) => type + "." + param;

    public static IEnumerable<string> TokenForms(string? system, string code)
    {
        // Two rows per value: any-system and exact. "system|" (any code of a system) is not offered:
        // a third row per coded value would cost a third more index writes for a rarely used form.
        yield return "*|" + code;
        yield return (system ?? "") + "|" + code;
    }

    public static IEnumerable<string> StringForms(string raw)
    {
        yield return "x:" + raw;
        var n = BlindIndex.Normalize(raw);
        for (var i = 1; i <= Math.Min(n.Length, MaxPrefix); i++)
        {
            yield return "p:" + n[..i];
        }
    }

    private static IEnumerable<string> BlindDateForms(Base value)
    {
        var text = (value as PrimitiveType)?.JsonValue?.ToString();
        if (string.IsNullOrEmpty(text) || text.Length < 4)
        {
            yield break;
        }
        yield return "d:" + text[..4];
        if (text.Length >= 7)
        {
            yield return "d:" + text[..7];
        }
        if (text.Length >= 10)
        {
            yield return "d:" + text[..10];
        }
    }

    private static IEnumerable<(string? System, string Code)> Tokens(Base value)
    {
        switch (value)
        {
            case CodeableConcept cc:
                foreach (var c in cc.Coding)
                {
                    if (!string.IsNullOrEmpty(c.Code))
                    {
                        yield return (NullIfEmpty(c.System), c.Code);
                    }
                }
                break;
            case Coding c when !string.IsNullOrEmpty(c.Code):
                yield return (NullIfEmpty(c.System), c.Code);
                break;
            case Identifier id when !string.IsNullOrEmpty(id.Value):
                yield return (NullIfEmpty(id.System), id.Value);
                break;
            case ContactPoint cp when !string.IsNullOrEmpty(cp.Value):
                yield return (cp.System?.ToString().ToLowerInvariant(), cp.Value);
                break;
            case PrimitiveType prim when prim.JsonValue is not null:
                var s = prim switch
                {
                    FhirBoolean b => b.Value == true ? "true" : "false",
                    _ => PrimitiveText(prim),
                };
                if (!string.IsNullOrEmpty(s))
                {
                    yield return (null, s);
                }
                break;
        }
    }

    // Code<T> keeps its FHIR literal in ObjectValue, so enum-backed codes index as their wire form.
    private static string? PrimitiveText(PrimitiveType prim) =>
        prim.JsonValue as string ?? Convert.ToString(prim.JsonValue, CultureInfo.InvariantCulture);

    private static IEnumerable<string> Strings(Base value)
    {
        switch (value)
        {
            case HumanName n:
                if (!string.IsNullOrEmpty(n.Text)) yield return n.Text;
                if (!string.IsNullOrEmpty(n.Family)) yield return n.Family;
                foreach (var g in n.Given) if (!string.IsNullOrEmpty(g)) yield return g;
                foreach (var g in n.Prefix) if (!string.IsNullOrEmpty(g)) yield return g;
                foreach (var g in n.Suffix) if (!string.IsNullOrEmpty(g)) yield return g;
                break;
            case Address a:
                if (!string.IsNullOrEmpty(a.Text)) yield return a.Text;
                foreach (var l in a.Line) if (!string.IsNullOrEmpty(l)) yield return l;
                if (!string.IsNullOrEmpty(a.City)) yield return a.City;
                if (!string.IsNullOrEmpty(a.District)) yield return a.District;
                if (!string.IsNullOrEmpty(a.State)) yield return a.State;
                if (!string.IsNullOrEmpty(a.PostalCode)) yield return a.PostalCode;
                if (!string.IsNullOrEmpty(a.Country)) yield return a.Country;
                break;
            case PrimitiveType p when p.JsonValue is string s && s.Length > 0:
                yield return s;
                break;
        }
    }

    private static (long Lo, long Hi)? DateRange(Base value) => value switch
    {
        Period p => PeriodRange(p),
        PrimitiveType prim when prim.JsonValue is string s => FhirDates.Range(s),
        _ => null,
    };

    private static (long Lo, long Hi)? PeriodRange(Period p)
    {
        var start = p.Start is null ? null : FhirDates.Range(p.Start);
        var end = p.End is null ? null : FhirDates.Range(p.End);
        if (start is null && end is null)
        {
            return null;
        }
        return (start?.Lo ?? long.MinValue, end?.Hi ?? long.MaxValue);
    }

    private static string? NullIfEmpty(string? s) => string.IsNullOrEmpty(s) ? null : s;

    /// <summary>
    /// Canonical form of a literal reference for the index: "Type/id". Contained (#x), urn:, and
    /// external absolute references are not indexed.
    /// </summary>
    public static string? NormalizeReference(string? reference)
    {
        if (string.IsNullOrEmpty(reference) || reference[0] == '#' || reference.StartsWith("urn:", StringComparison.Ordinal))
        {
            return null;
        }
        var r = reference;
        var hist = r.IndexOf("/_history/", StringComparison.Ordinal);
        if (hist > 0)
        {
            r = r[..hist];
        }
        var parts = r.Split('/');
        if (parts.Length < 2)
        {
            return null;
        }
        var type = parts[^2];
        var id = parts[^1];
        if (parts.Length > 2 && !r.Contains("/fhir/", StringComparison.Ordinal))
        {
            return null;
        }
        return SearchParameterRegistry.ResourceTypes.Contains(type) && FhirIds.IsValid(id) ? type + "/" + id : null;
    }
}

/// <summary>Row equality for de-duplication: the hash by content, not by array reference.</summary>
internal sealed class IndexEntryComparer : IEqualityComparer<IndexEntry>
{
    public static readonly IndexEntryComparer Instance = new();

    public bool Equals(IndexEntry x, IndexEntry y) =>
        x.Param == y.Param && x.Ref == y.Ref && x.Lo == y.Lo && x.Hi == y.Hi
        && (x.Hash is null ? y.Hash is null : y.Hash is not null && x.Hash.AsSpan().SequenceEqual(y.Hash));

    public int GetHashCode(IndexEntry e)
    {
        var h = new HashCode();
        h.Add(e.Param);
        h.Add(e.Ref);
        h.Add(e.Lo);
        if (e.Hash is not null) h.AddBytes(e.Hash);
        return h.ToHashCode();
    }
}

internal static class FhirIds
{
    /// <summary>FHIR R4 id: [A-Za-z0-9\-\.]{1,64}.</summary>
    public static bool IsValid(string? id)
    {
        if (string.IsNullOrEmpty(id) || id.Length > 64)
        {
            return false;
        }
        foreach (var c in id)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c == '-' || c == '.'))
            {
                return false;
            }
        }
        return true;
    }
}

/// <summary>FHIR date/dateTime/instant to a half-open range [Lo, Hi) of Unix milliseconds, honouring precision.</summary>
internal static class FhirDates
{
    public static (long Lo, long Hi)? Range(string s)
    {
        try
        {
            if (s.Length == 4 && int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var y) && y >= 1)
            {
                var lo = new DateTimeOffset(y, 1, 1, 0, 0, 0, TimeSpan.Zero);
                return (lo.ToUnixTimeMilliseconds(), End(lo, d => d.AddYears(1)));
            }
            if (s.Length == 7 && DateTimeOffset.TryParseExact(s, "yyyy-MM", CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var ym))
            {
                return (ym.ToUnixTimeMilliseconds(), End(ym, d => d.AddMonths(1)));
            }
            if (s.Length == 10 && DateTimeOffset.TryParseExact(s, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var d))
            {
                return (d.ToUnixTimeMilliseconds(), End(d, x => x.AddDays(1)));
            }
            if (s.Length > 10 && DateTimeOffset.TryParse(s, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var t))
            {
                // Second precision unless fractions are given.
                var step = s.Contains('.', StringComparison.Ordinal) ? 1 : 1000;
                if (s.Length == 16)
                {
                    step = 60_000;
                }
                var ms = t.ToUnixTimeMilliseconds();
                return (ms, ms + step);
            }
        }
        catch (ArgumentOutOfRangeException)
        {
        }
        return null;
    }

    /// <summary>The exclusive end of a period; a period that would end past year 9999 ends just after the calendar does.</summary>
    private static long End(DateTimeOffset start, Func<DateTimeOffset, DateTimeOffset> next)
    {
        try
        {
            return next(start).ToUnixTimeMilliseconds();
        }
        catch (ArgumentOutOfRangeException)
        {
            return DateTimeOffset.MaxValue.ToUnixTimeMilliseconds() + 1;
        }
    }
}
