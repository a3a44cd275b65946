namespace Wardline.Monitoring.Detections;

/// <summary>
/// Many failed sign-ins for one account within a window (guessing its password), or its lockout. Once per
/// account per window for the failures, and once per window for lockouts.
/// </summary>
internal sealed class SignInFailures : Detection
{
    private static readonly DetectionInfo Description = new(
        "sign-in-failures", "Repeated sign-in failures", Severity.Medium, Suppressible: false,
        "Sign-in failed many times for one account within minutes, or the account was locked out. It is someone guessing the account's password, or its owner struggling; a run from several addresses points to an attack.",
        [
            new("max-failures", 10, 1, 100_000, "failed sign-ins of one account within the window that make a finding"),
            new("window-minutes", 15, 1, 1440, "the sliding window"),
        ]);

    private SlidingWindows _failures = new(900_000);
    private SlidingWindows _lockouts = new(900_000);
    private int _maxFailures;

    public override DetectionInfo Info => Description;

    protected override void OnConfigured(DetectionSettings settings)
    {
        _maxFailures = (int)settings["max-failures"];
        var windowMs = (long)(settings["window-minutes"] * 60_000);
        _failures = new SlidingWindows(windowMs);
        _lockouts = new SlidingWindows(windowMs);
    }

    public override void Examine(MonitorEvent e, MonitorContext ctx)
    {
        if (e.Kind != EntryKind.Security || e.User is null) return;
        var now = ctx.NowMs;
        if (e.Event == "Lockout")
        {
            var l = _lockouts.Get(e.User, now);
            if (now < l.QuietUntilMs || ctx.Warming) return;
            l.QuietUntilMs = now + _lockouts.WindowMs;
            var recent = _failures.Get(e.User, now).Indexes(DailyCounts.SampleSize);
            ctx.Report(this, e.User, null, e.AtMs, [.. recent.Where(i => i < e.Index), e.Index], "the account was locked out after repeated failures");
            return;
        }
        if (e.Event != "SignInFailed" || e.Outcome != "failed") return;
        var w = _failures.Get(e.User, now);
        w.Add(now, e.Index, e.Source);
        if (w.Count < _maxFailures || now < w.QuietUntilMs || ctx.Warming) return;
        w.QuietUntilMs = now + _failures.WindowMs;
        var addresses = w.Distinct + (w.NullItems > 0 ? 1 : 0);
        ctx.Report(this, e.User, null, e.AtMs, w.Indexes(100),
            $"sign-in failed {w.Count} times within {Words.Minutes(_failures.WindowMs / 60_000.0)} from {Words.Times(addresses, "address", "addresses")}");
    }
}
