namespace Wardline.Server.Modules.Console;

/// <summary>The web console's session settings, bound from <c>Wardline:Console</c>.</summary>
internal sealed class ConsoleOptions
{
    public const string Section = "Wardline:Console";

    /// <summary>A session unused this long ends (sliding: each request within it extends it).</summary>
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromMinutes(15);

    /// <summary>A session ends this long after sign-in however busy it is; then the person signs in again with both factors.</summary>
    public TimeSpan AbsoluteLifetime { get; set; } = TimeSpan.FromHours(8);

    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        if (IdleTimeout < TimeSpan.FromMinutes(1) || IdleTimeout > TimeSpan.FromHours(2))
            problems.Add("Wardline:Console:IdleTimeout must be from 1 minute to 2 hours.");
        if (AbsoluteLifetime < IdleTimeout || AbsoluteLifetime > TimeSpan.FromHours(24))
            problems.Add("Wardline:Console:AbsoluteLifetime must be at least the idle time-out and at most 24 hours.");
        return problems;
    }
}
