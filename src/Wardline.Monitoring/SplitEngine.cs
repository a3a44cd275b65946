namespace Wardline.Monitoring;

/// <summary>
/// Batch detection on more than one core, for replays: the enabled detections are dealt out among engines (by their
/// <see cref="Weights"/>, heaviest first, each to the lightest engine so far), each engine sees every entry in ledger order with a context of its own
/// (what the ledger teaches it, the same in each), and the engines examine the same batch at once. Their findings are merged
/// by entry and by the detection's place among the enabled ones, which is the order one engine reports them in, so a replay
/// records the same alerts either way. Detections keep no state in common, and the organisation model is only read.
/// </summary>
internal sealed class SplitEngine
{
    private readonly MonitorEngine[] _parts;
    private readonly List<(int Entry, int Detection, Finding Finding)>[] _found;

    public SplitEngine(MonitorConfig config, OrgDirectory directory, TimeZoneInfo? defaultZone, int parts)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(parts, 1);
        var shares = Enumerable.Range(0, parts).Select(_ => new HashSet<string>(StringComparer.Ordinal)).ToArray();
        var loads = new int[parts];
        foreach (var id in Catalog.All.Select(d => d.Id).Where(id => config.For(id).Enabled).OrderByDescending(Weight).ThenBy(id => id, StringComparer.Ordinal))
        {
            var lightest = Array.IndexOf(loads, loads.Min());
            shares[lightest].Add(id);
            loads[lightest] += Weight(id);
        }
        _parts = [.. shares.Select(share => new MonitorEngine(config, directory, defaultZone, share))];
        _found = [.. Enumerable.Range(0, parts).Select(_ => new List<(int, int, Finding)>())];
    }

    public MonitorConfig Config => _parts[0].Config;

    /// <summary>
    /// What each detection costs an entry, relative (CPU time over 3M synthetic entries, `Wardline.Bench monitor batch`,
    /// 2026-11-30); only the balance between the engines depends on it, never what they find. Unlisted: 2.
    /// </summary>
    private static readonly Dictionary<string, int> Weights = new(StringComparer.Ordinal)
    {
        ["no-care-relationship"] = 67, ["coworker"] = 63, ["sensitive-label"] = 46, ["bulk-access"] = 43, ["peer-outlier"] = 42,
        ["department-mismatch"] = 38, ["after-hours"] = 33, ["inactive-account"] = 22, ["listed-contact"] = 19,
        ["final-record-change"] = 14, ["same-address"] = 12, ["search-then-unrelated"] = 12, ["self-access"] = 7,
        ["same-surname"] = 5, ["privileged-grant"] = 5,
    };

    private static int Weight(string detection) => Weights.GetValueOrDefault(detection, 2);

    /// <summary>
    /// Warms every engine on the entries of <paramref name="batch"/> below ledger index <paramref name="examineFrom"/>, examines the
    /// rest and adds the findings to <paramref name="findings"/> in the order one engine would have; the first engine runs on the
    /// caller's thread, the others on the pool.
    /// </summary>
    public async Task RunAsync(IReadOnlyList<MonitorEvent> batch, long examineFrom, List<Finding> findings)
    {
        foreach (var f in _found) f.Clear();
        var others = new Task[_parts.Length - 1];
        for (var p = 1; p < _parts.Length; p++)
        {
            var part = p;
            others[p - 1] = Task.Run(() => _parts[part].Run(batch, examineFrom, _found[part]));
        }
        try
        {
            _parts[0].Run(batch, examineFrom, _found[0]);
        }
        finally
        {
            // Even when this part failed: no engine may still be running over the batch when the caller moves on.
            await Task.WhenAll(others);
        }
        Merge(findings);
    }

    private void Merge(List<Finding> into)
    {
        var at = new int[_found.Length];
        while (true)
        {
            var best = -1;
            for (var p = 0; p < _found.Length; p++)
            {
                if (at[p] == _found[p].Count) continue;
                var (entry, detection, _) = _found[p][at[p]];
                if (best < 0) best = p;
                else
                {
                    var (bestEntry, bestDetection, _) = _found[best][at[best]];
                    if (entry < bestEntry || (entry == bestEntry && detection < bestDetection)) best = p;
                }
            }
            if (best < 0) return;
            into.Add(_found[best][at[best]++].Finding);
        }
    }
}
