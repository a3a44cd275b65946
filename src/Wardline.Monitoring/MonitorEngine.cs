namespace Wardline.Monitoring;

/// <summary>
/// Runs every enabled detection over ledger entries in index order. The same engine serves streaming
/// (the server feeds new entries as they commit) and batch (a replay of a period after a rule change):
/// both warm it on the history before the period, so baselines are the same either way. Not thread-safe.
/// </summary>
internal sealed class MonitorEngine
{
    private readonly Detection[] _detections;
    private readonly int[] _positions;
    private readonly MonitorContext _context;

    public MonitorEngine(MonitorConfig config, OrgDirectory directory, TimeZoneInfo? defaultZone = null)
        : this(config, directory, defaultZone, null)
    {
    }

    /// <summary>An engine running only the enabled detections that <paramref name="only"/> names (all when null): a part of a <see cref="SplitEngine"/>.</summary>
    internal MonitorEngine(MonitorConfig config, OrgDirectory directory, TimeZoneInfo? defaultZone, IReadOnlySet<string>? only)
    {
        Config = config;
        _context = new MonitorContext(config, directory, defaultZone ?? TimeZoneInfo.Utc);
        var list = new List<Detection>();
        var positions = new List<int>();
        // A detection's position among the enabled ones, whichever part runs it: the order one engine reports findings in.
        var position = -1;
        foreach (var d in Catalog.CreateAll())
        {
            var settings = config.For(d.Info.Id);
            if (!settings.Enabled) continue;
            position++;
            if (only is not null && !only.Contains(d.Info.Id)) continue;
            d.Configure(settings);
            list.Add(d);
            positions.Add(position);
        }
        _detections = [.. list];
        _positions = [.. positions];
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

    /// <summary>
    /// Warms on the entries of <paramref name="batch"/> below ledger index <paramref name="examineFrom"/> and examines the rest; each
    /// finding is added with the batch position of the entry whose examination made it and its detection's position among the
    /// enabled detections, the order a single engine would have reported it in (<see cref="SplitEngine"/> merges by them).
    /// </summary>
    internal void Run(IReadOnlyList<MonitorEvent> batch, long examineFrom, List<(int Entry, int Detection, Finding Finding)> found)
    {
        var findings = new List<Finding>();
        for (var i = 0; i < batch.Count; i++)
        {
            var e = batch[i];
            Entries++;
            if (e.Index < examineFrom)
            {
                _context.Begin(e, null);
                foreach (var d in _detections) d.Examine(e, _context);
            }
            else
            {
                _context.Begin(e, findings);
                for (var k = 0; k < _detections.Length; k++)
                {
                    _detections[k].Examine(e, _context);
                    foreach (var f in findings) found.Add((i, _positions[k], f));
                    findings.Clear();
                }
            }
            _context.Learn(e);
        }
    }

    private void Run(MonitorEvent e, List<Finding>? findings)
    {
        Entries++;
        _context.Begin(e, findings);
        foreach (var d in _detections) d.Examine(e, _context);
        _context.Learn(e);
    }
}
