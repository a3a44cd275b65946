namespace Wardline.Server.Modules.Console.Components;

/// <summary>Which roles (of the policy's vocabulary) may use which console page.</summary>
internal static class ConsoleRoles
{
    /// <summary>Users: list, add, disable and enable accounts, reset MFA.</summary>
    public static readonly IReadOnlyList<string> Administrators = ["administrator"];

    /// <summary>The policy's rules.</summary>
    public static readonly IReadOnlyList<string> PolicyReaders = ["administrator", "privacy_officer", "security_officer"];

    /// <summary>
    /// The "Why?" explainer, which tells what any account may do with a stored record, and shows the record's sensitivity
    /// labels, its patient's flags and departments on the way (the conditions that held or failed): the privacy office's.
    /// </summary>
    public static readonly IReadOnlyList<string> Explainers = ["privacy_officer"];

    /// <summary>The break-glass review queue, which shows the declarations' reasons.</summary>
    public static readonly IReadOnlyList<string> BreakGlassReviewers = ["privacy_officer"];

    /// <summary>
    /// The accounting of disclosures: who accessed a patient's record, with reasons. The same roles as the API's
    /// <c>$access-log</c> and AuditEvent search, which show the same entries.
    /// </summary>
    public static readonly IReadOnlyList<string> DisclosureReaders = Ledger.AuditEndpoints.AuditorRoles;

    /// <summary>Backups: status, history and drills, and running them (the /backup API allows the same roles).</summary>
    public static readonly IReadOnlyList<string> BackupOperators = ["administrator", "security_officer"];

    /// <summary>Monitoring: the alert queue, alert review, access timelines, replays (the /monitor API allows the same roles).</summary>
    public static readonly IReadOnlyList<string> MonitorReviewers = ["privacy_officer", "security_officer"];
}
