using Wardline.Monitoring;

namespace Wardline.Server.Modules.Monitoring;

/// <summary>Where an alert is in its review. Stored by name (kebab case, see <see cref="AlertStatuses"/>).</summary>
internal enum AlertStatus
{
    New,
    UnderReview,
    ClosedViolation,
    ClosedLegitimate,
    Escalated,
}

internal static class AlertStatuses
{
    public static string Name(AlertStatus s) => s switch
    {
        AlertStatus.New => "new",
        AlertStatus.UnderReview => "under-review",
        AlertStatus.ClosedViolation => "closed-violation",
        AlertStatus.ClosedLegitimate => "closed-legitimate",
        AlertStatus.Escalated => "escalated",
        _ => throw new ArgumentOutOfRangeException(nameof(s)),
    };

    public static AlertStatus? Parse(string? name) => name switch
    {
        "new" => AlertStatus.New,
        "under-review" => AlertStatus.UnderReview,
        "closed-violation" => AlertStatus.ClosedViolation,
        "closed-legitimate" => AlertStatus.ClosedLegitimate,
        "escalated" => AlertStatus.Escalated,
        _ => null,
    };

    /// <summary>Closed either way; an escalated alert is handed to incident response and stays open there.</summary>
    public static bool IsClosed(AlertStatus s) => s is AlertStatus.ClosedViolation or AlertStatus.ClosedLegitimate;
}

/// <summary>
/// One alert: a case grouping one user's findings of one detection (a spree across 40 patients is one
/// alert with 40 patients). <see cref="Evidence"/> is the plain-language summary of the latest finding.
/// </summary>
internal sealed record Alert(
    long Id,
    string Detection,
    Severity Severity,
    string User,
    string? GroupKey,
    AlertStatus Status,
    string? Assignee,
    DateTimeOffset FirstAt,
    DateTimeOffset LastAt,
    int Patients,
    int Entries,
    string Evidence,
    bool RepeatOffender,
    string Config,
    string Source,
    DateTimeOffset Created,
    DateTimeOffset Updated,
    int Revision);

/// <summary>One ledger entry an alert rests on, with the finding's evidence for it.</summary>
internal sealed record AlertEntry(long Index, string Detection, string? Patient, DateTimeOffset At, string Evidence);

/// <summary>One step of an alert's history: raised, grouped, status, assign, comment, notified.</summary>
internal sealed record AlertEvent(long Seq, DateTimeOffset At, string Actor, string Kind, AlertStatus? From, AlertStatus? To, string? Assignee, string? Note);

/// <summary>A notification of an alert and where its delivery stands (pending, sent, failed: retries exhausted).</summary>
internal sealed record AlertNotification(long Id, long AlertId, string Channel, string Target, string Status, int Attempts, DateTimeOffset NextAt, string? LastError, DateTimeOffset Created, DateTimeOffset? SentAt);

/// <summary>Filters of the alert queue; every member optional.</summary>
internal sealed record AlertQuery(
    AlertStatus? Status = null,
    string? Detection = null,
    string? User = null,
    string? Patient = null,
    Severity? MinSeverity = null,
    string? Assignee = null,
    DateTimeOffset? From = null,
    DateTimeOffset? To = null,
    bool OpenOnly = false,
    int Limit = 100,
    long? BeforeId = null);

/// <summary>What a change to an alert came to. Expected outcomes are results, not exceptions.</summary>
internal abstract record AlertChange
{
    private AlertChange()
    {
    }

    public sealed record Done(Alert Alert) : AlertChange;

    public sealed record NotFound : AlertChange;

    /// <summary>Someone else changed the alert first (the revision did not match); nothing was written.</summary>
    public sealed record Conflict(Alert Current) : AlertChange;

    /// <summary>Refused, with the reason in words (a transition that is not allowed, an outcome missing, a note too long).</summary>
    public sealed record Invalid(string Problem) : AlertChange;
}

/// <summary>What a replay of a period examined and raised.</summary>
internal sealed record ReplayResult(long EntriesWarmed, long EntriesExamined, int Findings, int NewAlerts, int GroupedIntoExisting, int AlreadyKnown, TimeSpan Elapsed);

/// <summary>What recording a batch of findings came to: alerts raised, findings grouped into open alerts, findings already recorded (a replay of a period seen before).</summary>
internal sealed record RecordResult(int New, int Grouped, int AlreadyKnown, IReadOnlyList<long> NewAlertIds)
{
    public static RecordResult None { get; } = new(0, 0, 0, []);
}

/// <summary>A page of the alert queue, newest first, with the number of alerts in each status (under the same filters, whatever the status filter).</summary>
/// <param name="Next">The <see cref="AlertQuery.BeforeId"/> of the next page, or null at the end.</param>
internal sealed record AlertPage(IReadOnlyList<Alert> Alerts, IReadOnlyDictionary<string, int> Counts, long? Next);

/// <summary>An alert with its evidence, history (notes unsealed) and notifications.</summary>
internal sealed record AlertDetail(Alert Alert, IReadOnlyList<AlertEntry> Entries, IReadOnlyList<AlertEvent> Events, IReadOnlyList<AlertNotification> Notifications);

/// <summary>One ledger entry in a user's or a patient's timeline: identifiers only.</summary>
internal sealed record ActivityItem(
    long Index, DateTimeOffset At, string Type, string? Event, string? User, string? Patient, string? Resource,
    string? Action, bool? Permitted, string? Rule, string? Purpose);
