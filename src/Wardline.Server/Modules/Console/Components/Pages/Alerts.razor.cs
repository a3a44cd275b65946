using System.Globalization;
using Wardline.Monitoring;
using Wardline.Server.Modules.Monitoring;

namespace Wardline.Server.Modules.Console.Components.Pages;

/// <summary>
/// What the monitoring pages (the queue, an alert's detail, the per-user and per-patient views) share: who may use
/// them, and how severities, statuses, times and detections read.
/// </summary>
public sealed partial class Alerts
{
    /// <summary>Who may use the monitoring pages: they show who accessed which patient's record, and why that looks wrong.</summary>
    public static readonly IReadOnlyList<string> Readers = ["privacy_officer", "security_officer"];

    /// <summary>The longest user name, assignee or note fragment a filter takes (longer input is refused, not cut).</summary>
    internal const int MaxName = 128;

    /// <summary>
    /// Entries the ledger holds about a user that are not the user's doing: monitoring's own (an alert raised about them,
    /// its review, its notifications). Left out of the user's activity, where they would read as something the user did.
    /// </summary>
    internal static bool IsAboutNotBy(ActivityItem item) =>
        item.Type == "security" && item.Event is "AlertRaised" or "AlertUpdated" or "NotificationFailed";

    internal static string Utc(DateTimeOffset at) => at.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture);

    internal static string Day(DateOnly d) => d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);

    internal static string SeverityName(Severity s) => s.ToString().ToLowerInvariant();

    internal static Severity? ParseSeverity(string? text) => text switch
    {
        "low" => Severity.Low,
        "medium" => Severity.Medium,
        "high" => Severity.High,
        "critical" => Severity.Critical,
        _ => null,
    };

    internal static string StatusWords(AlertStatus s) => s switch
    {
        AlertStatus.New => "new",
        AlertStatus.UnderReview => "under review",
        AlertStatus.Escalated => "escalated to incident",
        AlertStatus.ClosedViolation => "closed: violation",
        AlertStatus.ClosedLegitimate => "closed: legitimate",
        _ => s.ToString(),
    };

    /// <summary>The detection's title from the catalog; an id the catalog no longer has (a retired rule) reads as itself.</summary>
    internal static string Title(string detection) => Catalog.Find(detection)?.Title ?? detection;

    /// <summary>A user name or assignee typed into a filter: printable, at most <see cref="MaxName"/> characters.</summary>
    internal static bool IsName(string text) => text.Length is > 0 and <= MaxName && !text.Any(char.IsControl);

    /// <summary>A patient id as typed: bare or after "Patient/"; null when it is not a FHIR id.</summary>
    internal static string? PatientId(string text)
    {
        var id = text.Trim();
        if (id.StartsWith("Patient/", StringComparison.Ordinal)) id = id["Patient/".Length..];
        return Records.Search.FhirIds.IsValid(id) ? id : null;
    }

    /// <summary>A UTC date given as yyyy-mm-dd; empty is no bound.</summary>
    internal static bool TryDay(string? text, out DateOnly? day)
    {
        day = null;
        if (string.IsNullOrWhiteSpace(text)) return true;
        if (!DateOnly.TryParseExact(text.Trim(), "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var d)) return false;
        day = d;
        return true;
    }

    internal static DateTimeOffset Midnight(DateOnly d) => new(d.ToDateTime(TimeOnly.MinValue), TimeSpan.Zero);

    /// <summary>A duration in words: "850 ms", "4.2 s", "3 min 5 s", "2 h 4 min".</summary>
    internal static string Duration(TimeSpan t)
    {
        var ms = (long)t.TotalMilliseconds;
        return ms switch
        {
            < 1000 => $"{ms} ms",
            < 60_000 => $"{(ms / 1000.0).ToString("0.0", CultureInfo.InvariantCulture)} s",
            < 3_600_000 => $"{ms / 60_000} min {ms % 60_000 / 1000} s",
            _ => $"{ms / 3_600_000} h {ms % 3_600_000 / 60_000} min",
        };
    }
}
