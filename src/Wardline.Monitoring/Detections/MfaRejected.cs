namespace Wardline.Monitoring.Detections;

/// <summary>
/// Repeated wrong or refused second factors for one account after a correct password: someone holds the
/// password. Failures recorded as "without a correct password first" are left out (no password was
/// proven). Once per account per window.
/// </summary>
internal sealed class MfaRejected : Detection
{
    private static readonly DetectionInfo Description = new(
        "mfa-rejected", "Second factor rejected", Severity.High, Suppressible: false,
        "A correct password for the account was followed by several wrong or refused second-factor codes within minutes. Someone other than the owner very likely holds the password: it should be changed now.",
        [
            new("max-rejections", 3, 1, 10_000, "rejected second factors of one account within the window that make a finding"),
            new("window-minutes", 15, 1, 1440, "the sliding window"),
        ]);

    private SlidingWindows _windows = new(900_000);
    private int _max;

    public override DetectionInfo Info => Description;

    protected override void OnConfigured(DetectionSettings settings)
    {
        _max = (int)settings["max-rejections"];
        _windows = new SlidingWindows((long)(settings["window-minutes"] * 60_000));
    }

    public override void Examine(MonitorEvent e, MonitorContext ctx)
    {
        if (e.Kind != EntryKind.Security || e.Event != "MfaFailed" || e.User is null || e.Outcome != "failed") return;
        if (e.Detail is { } detail && detail.Contains("without a correct password", StringComparison.Ordinal)) return;
        var now = ctx.NowMs;
        var w = _windows.Get(e.User, now);
        w.Add(now, e.Index, e.Source);
        if (w.Count < _max || now < w.QuietUntilMs || ctx.Warming) return;
        w.QuietUntilMs = now + _windows.WindowMs;
        ctx.Report(this, e.User, null, e.AtMs, w.Indexes(100),
            $"a correct password was followed by {w.Count} wrong or refused second factors within {Words.Minutes(_windows.WindowMs / 60_000.0)}");
    }
}
