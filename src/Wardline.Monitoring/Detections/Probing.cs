namespace Wardline.Monitoring.Detections;

/// <summary>
/// Many refused decisions by one user across many patients within a window: someone trying records one
/// after another to find what the policy lets through. Reported once when the window crosses both
/// thresholds; the window then starts afresh.
/// </summary>
internal sealed class Probing : Detection
{
    private static readonly DetectionInfo Description = new(
        "probing", "Repeated refusals across patients", Severity.High, Suppressible: false,
        "A user was refused access to many different patients' records in a short time. Staff rarely hit the policy repeatedly; trying record after record is how someone looks for a gap in the rules, or how stolen credentials are tried out.",
        [
            new("min-denials", 10, 1, 100_000, "refused decisions within the window that make a finding"),
            new("min-patients", 5, 1, 100_000, "distinct patients the refusals must span"),
            new("window-minutes", 60, 1, 1440, "the sliding window"),
        ]);

    private SlidingWindows _windows = new(3_600_000);
    private int _minDenials;
    private int _minPatients;

    public override DetectionInfo Info => Description;

    protected override void OnConfigured(DetectionSettings settings)
    {
        _minDenials = (int)settings["min-denials"];
        _minPatients = (int)settings["min-patients"];
        _windows = new SlidingWindows((long)(settings["window-minutes"] * 60_000));
    }

    public override void Examine(MonitorEvent e, MonitorContext ctx)
    {
        if (e.Permitted != false || e.Kind != EntryKind.Access || e.Patient is null || e.User is null || e.Event != "decision") return;
        var now = ctx.NowMs;
        var w = _windows.Get(e.User, now);
        w.Add(now, e.Index, e.Patient);
        if (w.Count < _minDenials || w.Distinct < _minPatients || now < w.QuietUntilMs || ctx.Warming) return;
        var minutes = _windows.WindowMs / 60_000.0;
        ctx.Report(this, e.User, null, e.AtMs, w.Indexes(100),
            $"was refused {w.Count} times on {w.Distinct} patients' records within {Words.Minutes(minutes)}");
        w.Clear();
        w.QuietUntilMs = now + _windows.WindowMs;
    }
}
