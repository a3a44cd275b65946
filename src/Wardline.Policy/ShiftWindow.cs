namespace Wardline.Policy;

/// <summary>
/// A subject's working hours, local time. Inside means <c>StartHour &lt;= hour &lt; EndHour</c>; when
/// <c>EndHour &lt; StartHour</c> the window wraps midnight (inside means <c>hour &gt;= StartHour || hour &lt; EndHour</c>).
/// <c>StartHour == EndHour</c> is an empty window (never inside).
/// </summary>
public readonly record struct ShiftWindow(int StartHour, int EndHour)
{
    /// <summary>Whether <paramref name="hour"/> (0-23) falls inside the window.</summary>
    public bool Contains(int hour) =>
        StartHour <= EndHour ? hour >= StartHour && hour < EndHour : hour >= StartHour || hour < EndHour;
}
