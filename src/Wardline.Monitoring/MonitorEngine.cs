namespace Wardline.Monitoring;

/// <summary>
/// Runs every enabled detection over ledger entries in index order. The same engine serves streaming
/// (the server feeds new entries as they commit) and batch (a replay of a period after a rule change):
/// both warm it on the history before the period, so baselines are the same either way. Not thread-safe.
/// </summary>
internal sealed class MonitorEngine
{
    private readonly Detection[] _detections;
    private readonly MonitorContext _context;

    public MonitorEngine(MonitorConfig config, OrgDirectory directory, TimeZoneInfo? defaultZone = null)
    {
        Config = config;
        _context = new MonitorContext(config, directory, defaultZone ?? TimeZoneInfo.Utc);
        var list = new List<Detection>();
        foreach (var d in Catalog.CreateAll())
        {
            var settings = config.For(d.Info.Id);
            if (!settings.Enabled) continue;
            d.Configure(settings);
            list.Add(d);
        }
        _detections = [.. list];
    }

    public MonitorConfig Config { get; }

    public MonitorContext Context => _context;

    public IReadOnlyList<string> ActiveDetections => [.. _detections.Select(d => d.Info.Id)];

    /// <summary>Entries examined or warmed on so far.</summary>
    public long Entries { get; private set; }

    /// <summary>The organisation model; replaced when accounts or records change.</summary>
    public OrgDirectory Directory
    {
        get => _context.Directory;
        set => _context.Directory = value;
    }

    /// <summary>Examines one entry; findings are added to <paramref name="findings"/>.</summary>
    public void Examine(MonitorEvent e, List<Finding> findings) => Run(e, findings);

    /// <summary>Learns from one entry (baselines, account history) without reporting anything.</summary>
    public void Warm(MonitorEvent e) => Run(e, null);

    private void Run(MonitorEvent e, List<Finding>? findings)
    {
        Entries++;
        _context.Begin(e, findings);
        foreach (var d in _detections) d.Examine(e, _context);
        _context.Learn(e);
    }
}
