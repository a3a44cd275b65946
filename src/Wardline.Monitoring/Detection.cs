using System.Reflection;

namespace Wardline.Monitoring;

/// <summary>What a detection is, for the configuration, the console and the documentation.</summary>
/// <param name="Id">Its name in the configuration and on alerts: lower-case words joined by '-'.</param>
/// <param name="Title">A short human title ("Same surname").</param>
/// <param name="Suppressible">Whether an explanation (a care relationship, an appointment, ...) may silence it; false for what no relationship makes legitimate (self-access, attacks, break-glass).</param>
/// <param name="Description">One or two sentences for the privacy officer: what it finds and why it matters.</param>
/// <param name="Lists">Its tunable lists of names (roles), beside the numbers of <paramref name="Parameters"/>; most detections have none.</param>
internal sealed record DetectionInfo(
    string Id,
    string Title,
    Severity DefaultSeverity,
    bool Suppressible,
    string Description,
    IReadOnlyList<DetectionParameter> Parameters,
    IReadOnlyList<DetectionList>? Lists = null)
{
    /// <summary>The lists, never null.</summary>
    public IReadOnlyList<DetectionList> Lists { get; init; } = Lists ?? [];
}

/// <summary>
/// One detection. An engine makes its own instance of each, so a detection may keep state (baselines,
/// windows) in fields. <see cref="Examine"/> sees every entry in ledger order, in batch and streaming
/// alike, and reports through <see cref="MonitorContext.Report"/>. Contracts:
/// <list type="bullet">
/// <item>Entry times are not monotonic (clock jumps, servers with skewed clocks): windows are measured
/// against <see cref="MonitorContext.NowMs"/> (the latest time seen) and state must stay bounded.</item>
/// <item>Users, patients and departments may be unknown to the directory (old entries): never throw.</item>
/// <item>The evidence text names relationships and counts, never names, addresses or clinical content.</item>
/// <item>Cheap: the engine's budget is a few microseconds an entry for all detections together.</item>
/// </list>
/// </summary>
internal abstract class Detection
{
    private DetectionSettings? _settings;

    public abstract DetectionInfo Info { get; }

    /// <summary>The settings in force (set by the engine before the first entry).</summary>
    protected DetectionSettings Settings => _settings ?? throw new InvalidOperationException("The detection is not configured.");

    internal void Configure(DetectionSettings settings)
    {
        _settings = settings;
        OnConfigured(settings);
    }

    /// <summary>Reads thresholds into fields once, so <see cref="Examine"/> does no dictionary lookups.</summary>
    protected virtual void OnConfigured(DetectionSettings settings)
    {
    }

    public abstract void Examine(MonitorEvent e, MonitorContext ctx);
}

/// <summary>Every detection in this assembly: each non-abstract <see cref="Detection"/> with a parameterless constructor.</summary>
internal static class Catalog
{
    private static readonly Lazy<IReadOnlyList<(DetectionInfo Info, Func<Detection> Create)>> Entries = new(Discover);

    public static IReadOnlyList<DetectionInfo> All => [.. Entries.Value.Select(e => e.Info)];

    public static IReadOnlyList<Detection> CreateAll() => [.. Entries.Value.Select(e => e.Create())];

    public static DetectionInfo? Find(string id) => Entries.Value.FirstOrDefault(e => e.Info.Id == id).Info;

    private static List<(DetectionInfo, Func<Detection>)> Discover()
    {
        var list = new List<(DetectionInfo, Func<Detection>)>();
        foreach (var type in typeof(Detection).Assembly.GetTypes())
        {
            if (type.IsAbstract || !type.IsSubclassOf(typeof(Detection))) continue;
            var ctor = type.GetConstructor(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance, Type.EmptyTypes);
            if (ctor is null) continue;
            Detection Create() => (Detection)ctor.Invoke(null);
            list.Add((Create().Info, Create));
        }
        list.Sort((a, b) => string.CompareOrdinal(a.Item1.Id, b.Item1.Id));
        var duplicate = list.GroupBy(e => e.Item1.Id).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null) throw new InvalidOperationException($"Two detections are called {duplicate.Key}.");
        return list;
    }
}
