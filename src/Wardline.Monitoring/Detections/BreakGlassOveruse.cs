using System.Globalization;

namespace Wardline.Monitoring.Detections;

/// <summary>
/// A user declaring break-glass more often than emergencies explain. Counted over a window ending at
/// the latest entry; reported when the count first exceeds the limit and at each declaration after,
/// all joining one alert per user within the grouping window. State: the declarations in the window,
/// per user who made one.
/// </summary>
internal sealed class BreakGlassOveruse : Detection
{
    private const long DayMs = 86_400_000;

    private static readonly DetectionInfo Description = new(
        "break-glass-overuse", "Break-glass overuse", Severity.High, Suppressible: false,
        "A user declared break-glass more times within the window than the limit allows. Emergencies are rare for any one person; routine break-glass means the user works around their access rights, or uses them as cover.",
        [
            new DetectionParameter("max-declarations", 3, 1, 1000, "granted declarations allowed within the window (whole number); one more is a finding"),
            new DetectionParameter("window-days", 30, 1, 365, "the window's length, in days"),
        ]);

    private readonly Dictionary<string, Queue<(long AtMs, long Index)>> _declarations = new(StringComparer.Ordinal);
    private int _max;
    private long _windowMs;
    private string _days = "";
    private long _nextSweepMs = long.MinValue;

    public override DetectionInfo Info => Description;

    protected override void OnConfigured(DetectionSettings settings)
    {
        _max = (int)Math.Floor(settings["max-declarations"]);
        var days = settings["window-days"];
        _windowMs = (long)(days * DayMs);
        _days = days.ToString("0.##", CultureInfo.InvariantCulture);
    }

    public override void Examine(MonitorEvent e, MonitorContext ctx)
    {
        if (e.Kind != EntryKind.Security || e.Event != BreakGlass.Declared || e.Outcome != "granted" || e.User is not { } user) return;
        var since = ctx.NowMs - _windowMs;
        Sweep(ctx.NowMs, since);
        if (e.AtMs < since) return; // from a clock that ran behind: already outside the window
        if (!_declarations.TryGetValue(user, out var queue)) _declarations[user] = queue = new();
        while (queue.Count > 0 && queue.Peek().AtMs < since) queue.Dequeue();
        queue.Enqueue((e.AtMs, e.Index));
        if (queue.Count <= _max) return;
        var entries = new List<long>(queue.Count);
        foreach (var (_, index) in queue) entries.Add(index);
        entries.Sort();
        ctx.Report(this, user, null, e.AtMs, entries,
            $"declared break-glass {queue.Count} times in {_days} days (more than {_max})");
    }

    /// <summary>Once a day, forgets users whose declarations all left the window, so state stays bounded.</summary>
    private void Sweep(long nowMs, long since)
    {
        if (nowMs < _nextSweepMs) return;
        _nextSweepMs = nowMs + DayMs;
        List<string>? idle = null;
        foreach (var (user, queue) in _declarations)
        {
            while (queue.Count > 0 && queue.Peek().AtMs < since) queue.Dequeue();
            if (queue.Count == 0) (idle ??= []).Add(user);
        }
        foreach (var user in idle ?? []) _declarations.Remove(user);
    }
}
