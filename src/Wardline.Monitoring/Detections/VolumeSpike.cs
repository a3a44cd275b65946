namespace Wardline.Monitoring.Detections;

/// <summary>
/// A user who opens far more patients' records in a day than they usually do: today's distinct patients
/// against the mean of the user's own last active days. Once per user per day, when the count crosses.
/// </summary>
internal sealed class VolumeSpike : Detection
{
    private static readonly DetectionInfo Description = new(
        "volume-spike", "Volume spike", Severity.Medium, Suppressible: false,
        "A member of staff opened many more patients' records today than they usually do in a day. A sudden surge is how a snooping spree or stolen credentials harvesting records look; a new assignment or a mass-casualty day explains it.",
        [
            new("baseline-days", 28, 1, 365, "how many of the user's last active days make their usual daily count"),
            new("min-history-days", 7, 1, 365, "active days of history the user needs before being judged (at most baseline-days)"),
            new("min-patients", 30, 1, 1_000_000, "never report a day with this many distinct patients or fewer"),
            new("factor", 3, 1, 1000, "report when today's distinct patients exceed this many times the user's usual", Whole: false),
        ]);

    private DailyCounts? _counts;
    private int _baselineDays;
    private int _minHistory;
    private int _minPatients;
    private double _factor;

    public override DetectionInfo Info => Description;

    protected override void OnConfigured(DetectionSettings settings)
    {
        _baselineDays = (int)settings["baseline-days"];
        // More history than the baseline holds could never be had.
        _minHistory = Math.Min((int)settings["min-history-days"], _baselineDays);
        _minPatients = (int)settings["min-patients"];
        _factor = settings["factor"];
    }

    public override void Examine(MonitorEvent e, MonitorContext ctx)
    {
        if (!e.IsPermittedPatientDecision || e.User is null) return;
        var u = (_counts ??= DailyCounts.For(ctx, _baselineDays)).Add(e, ctx);
        if (u is null) return;
        var today = u.Today.Count;
        if (today <= _minPatients || u.SpikeDay == u.Day || u.HistoryDays < _minHistory) return;
        if (u.Staff(ctx.Directory)?.Service == true) return;
        var mean = u.Mean;
        if (today <= _factor * mean) return;
        if (ctx.Warming) return;
        u.SpikeDay = u.Day;
        ctx.Report(this, e.User, null, e.AtMs, u.TakeSample(),
            $"opened {today} patients' records today; this user's usual is {mean:0.#} a day (mean of {Words.Times(u.HistoryDays, "working day", "working days")})");
    }
}
