namespace Wardline.Monitoring.Detections;

/// <summary>
/// A search for patients by name (or address) followed within minutes by opening a patient's record:
/// the lookup of a neighbour, a relative or a celebrity. Reported per patient opened after the search;
/// explanations (care relationships) silence the patients the user has a reason to be in.
/// </summary>
internal sealed class SearchThenUnrelated : Detection
{
    private static readonly DetectionInfo Description = new(
        "search-then-unrelated", "Search by name, then an unrelated record", Severity.Medium, Suppressible: true,
        "A user searched for patients by name or address and then opened a patient's record with no care relationship to them. Clinicians reach their patients through work lists, encounters and referrals; looking someone up by name is how people find a neighbour, a relative or someone in the news.",
        [
            new("window-minutes", 10, 1, 240, "how soon after the search opening a record is reported"),
        ]);

    private readonly Dictionary<string, Search> _searches = new(StringComparer.Ordinal);
    private long _windowMs;
    private long _nextSweepMs = long.MinValue;

    public override DetectionInfo Info => Description;

    protected override void OnConfigured(DetectionSettings settings) => _windowMs = (long)(settings["window-minutes"] * 60_000);

    public override void Examine(MonitorEvent e, MonitorContext ctx)
    {
        if (e.Kind != EntryKind.Access || e.User is null) return;
        var now = ctx.NowMs;
        if (e.Event == "outcome")
        {
            if (e.Action == "Search" && e.ResourceType is null or "Patient" && ByName(e.Detail))
            {
                Sweep(now);
                _searches[e.User] = new Search(now, e.Index);
            }
            return;
        }
        if (e.Permitted != true || e.Patient is null || e.Action is not ("Read" or "VRead") || e.Event != "decision") return;
        if (!_searches.TryGetValue(e.User, out var search)) return;
        if (now - search.AtMs > _windowMs)
        {
            _searches.Remove(e.User);
            return;
        }
        if (!search.Opened.Add(e.Patient) || search.Opened.Count > 100) return;
        var minutes = (now - search.AtMs) / 60_000;
        var later = minutes == 0 ? "less than a minute later" : $"{Words.Minutes(minutes)} later";
        ctx.Report(this, e.User, e.Patient, e.AtMs, [search.Index, e.Index], $"searched patients by name, then opened this patient's record {later}");
    }

    /// <summary>Whether a search outcome's "params=a,b" names a parameter that finds people by name or address.</summary>
    internal static bool ByName(string? detail)
    {
        if (detail is null || !detail.StartsWith("params=", StringComparison.Ordinal)) return false;
        foreach (var raw in detail.AsSpan("params=".Length).ToString().Split(','))
        {
            var colon = raw.IndexOf(':', StringComparison.Ordinal);
            var name = colon < 0 ? raw : raw[..colon];
            if (name is "name" or "family" or "given" or "phonetic" or "address" || name.StartsWith("address-", StringComparison.Ordinal)) return true;
        }
        return false;
    }

    private void Sweep(long now)
    {
        if (now < _nextSweepMs) return;
        _nextSweepMs = now + _windowMs;
        foreach (var user in _searches.Where(s => now - s.Value.AtMs > _windowMs).Select(s => s.Key).ToList()) _searches.Remove(user);
    }

    private sealed class Search(long atMs, long index)
    {
        public long AtMs { get; } = atMs;

        public long Index { get; } = index;

        public HashSet<string> Opened { get; } = new(StringComparer.Ordinal);
    }
}
