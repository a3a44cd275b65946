namespace Wardline.Server.Modules.Monitoring;

/// <summary>Monitoring settings, bound from <c>Wardline:Monitoring</c> (docs/operations/monitoring.md).</summary>
public sealed class MonitoringOptions
{
    /// <summary>Streaming detection over new ledger entries (and the notification sender). Off: alerts come only from replays.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>The YAML file of detection switches, thresholds and explanations; reloaded when it changes. Null: the built-in configuration.</summary>
    public string? ConfigPath { get; set; }

    /// <summary>How often the streaming detector looks for new entries when it has caught up (ms): alert latency is at most this plus one batch.</summary>
    public int PollMilliseconds { get; set; } = 500;

    /// <summary>Days of history the engine learns baselines from before it examines anything (at start, and before a replay's period).</summary>
    public int WarmupDays { get; set; } = 28;

    /// <summary>Where notifications of new alerts go (e-mail, signed webhooks, syslog to a SIEM).</summary>
    public MonitoringNotifyOptions Notify { get; set; } = new();

    public IEnumerable<string> Validate()
    {
        if (PollMilliseconds is < 50 or > 60_000) yield return "Wardline:Monitoring:PollMilliseconds must be 50-60000.";
        if (WarmupDays is < 0 or > 366) yield return "Wardline:Monitoring:WarmupDays must be 0-366.";
        foreach (var p in Notify.Validate()) yield return p;
    }
}
