namespace Wardline.Monitoring;

internal enum Severity
{
    Low = 1,
    Medium = 2,
    High = 3,
    Critical = 4,
}

/// <summary>
/// What a detection found in one entry (or a run of entries): the user, the patient when there is one,
/// the ledger entries that are the evidence, and the evidence in plain language. The words name
/// relationships and counts ("this user and the patient share the surname and street address"), never
/// a name, an address or any clinical content, because alerts are read, e-mailed and sent to a SIEM.
/// </summary>
/// <param name="Detection">The detection's id (self-access, same-surname, ...).</param>
/// <param name="User">The account the finding is about; for an attack on accounts, the source or the targeted account.</param>
/// <param name="Patient">The patient's id, when the finding is about one record.</param>
/// <param name="AtMs">The time of the (last) entry found, Unix ms.</param>
/// <param name="Entries">The ledger indexes of the entries that are the evidence, ascending.</param>
/// <param name="GroupKey">Findings with the same detection, user and group key within the grouping window are one alert; null groups by detection and user.</param>
internal sealed record Finding(
    string Detection,
    Severity Severity,
    string User,
    string? Patient,
    long AtMs,
    IReadOnlyList<long> Entries,
    string Evidence,
    string? GroupKey = null);
