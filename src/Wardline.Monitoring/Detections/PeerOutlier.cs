namespace Wardline.Monitoring.Detections;

/// <summary>
/// A user who opens far more patients' records in a day than their peers (the same primary role in the
/// same primary department) usually do: today's distinct patients against the median of the peers' mean
/// daily counts. Once per user per day, when the count crosses.
/// </summary>
internal sealed class PeerOutlier : Detection
{
    private static readonly DetectionInfo Description = new(
        "peer-outlier", "Outlier among peers", Severity.Medium, Suppressible: false,
        "A member of staff opened many more patients' records today than colleagues in the same role and department usually do. It finds a spree by someone new, who has no history of their own to compare with.",
        [
            new("baseline-days", 28, 1, 365, "how many of each peer's last active days make their usual daily count"),
            new("min-peers", 3, 1, 10_000, "peers with history needed before a user is compared with them"),
            new("min-patients", 30, 1, 1_000_000, "never report a day with this many distinct patients or fewer"),
            new("factor", 4, 1, 1000, "report when today's distinct patients exceed this many times the peers' median", Whole: false),
        ]);

    private readonly Dictionary<(string Role, string Department), (int Day, Dictionary<string, double> Means)> _groups = [];
    private DailyCounts? _counts;
    private int _baselineDays;
    private int _minPeers;
    private int _minPatients;
    private double _factor;

    public override DetectionInfo Info => Description;

    protected override void OnConfigured(DetectionSettings settings)
    {
        _baselineDays = (int)settings["baseline-days"];
        _minPeers = (int)settings["min-peers"];
        _minPatients = (int)settings["min-patients"];
        _factor = settings["factor"];
    }

    public override void Examine(MonitorEvent e, MonitorContext ctx)
    {
        if (!e.IsPermittedPatientDecision || e.User is null) return;
        var counts = _counts ??= DailyCounts.For(ctx, _baselineDays);
        var u = counts.Add(e, ctx);
        if (u is null) return;
        var today = u.Today.Count;
        if (today <= _minPatients || u.PeerDay == u.Day || u.Staff(ctx.Directory) is not { Service: false } staff) return;
        var (median, peers) = Median(counts, e.User, staff, u.Day, ctx.Directory);
        if (peers < _minPeers || today <= _factor * median) return;
        if (ctx.Warming) return;
        u.PeerDay = u.Day;
        var times = median > 0 ? $"{today / median:0.0} times the median" : "while the median is 0";
        ctx.Report(this, e.User, null, e.AtMs, u.TakeSample(),
            $"opened {today} patients' records today, {times} of {Words.Times(peers, "peer", "peers")} ({staff.PrimaryRole}, {staff.PrimaryDepartment})");
    }

    /// <summary>The median of the other peers' mean daily counts; the group's means are gathered once a day.</summary>
    private (double Median, int Peers) Median(DailyCounts counts, string user, StaffMember staff, int day, OrgDirectory directory)
    {
        var group = (staff.PrimaryRole, staff.PrimaryDepartment);
        if (!_groups.TryGetValue(group, out var g) || g.Day != day)
        {
            var members = new Dictionary<string, double>(StringComparer.Ordinal);
            foreach (var (name, days) in counts.Users)
            {
                days.Roll(day);
                if (days.HistoryDays == 0) continue;
                var peer = days.Staff(directory);
                if (peer is null || peer.Service || peer.PrimaryRole != group.PrimaryRole || peer.PrimaryDepartment != group.PrimaryDepartment) continue;
                members[name] = days.Mean;
            }
            _groups[group] = g = (day, members);
        }
        var means = g.Means.Where(m => m.Key != user).Select(m => m.Value).Order().ToList();
        if (means.Count == 0) return (0, 0);
        var mid = means.Count / 2;
        return (means.Count % 2 == 1 ? means[mid] : (means[mid - 1] + means[mid]) / 2, means.Count);
    }
}
