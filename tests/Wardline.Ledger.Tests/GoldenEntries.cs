namespace Wardline.Ledger.Tests;

/// <summary>The entries whose canonical bytes are kept in Golden/ (see Golden/README.md).</summary>
internal static class GoldenEntries
{
    public static readonly IReadOnlyDictionary<string, LedgerEntry> ByFile = new Dictionary<string, LedgerEntry>
    {
        ["access.json"] = new()
        {
            Type = "access",
            At = new DateTimeOffset(2026, 11, 29, 5, 5, 6, 789, TimeSpan.FromHours(1)),
            Event = "decision",
            User = "user-7f3a",
            Roles = ["clinician", "nurse"],
            Departments = ["cardiology", "emergency"],
            Client = "ehr-smart-app",
            Actor = "user-7f3a",
            Patient = "Patient/p-1001",
            Resource = "Observation/o-42/_history/3",
            Action = "read",
            Purpose = "treatment",
            Permitted = true,
            Rule = "care-team-read",
            Reason = "care relationship with Patient/p-1001",
            Status = 200,
            Outcome = "success",
            Detail = "search _include=Observation:patient",
            Sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            Source = "10.1.2.3",
            Correlation = "c-0001",
        },
        ["access-denied.json"] = new()
        {
            Type = "access",
            At = new DateTimeOffset(2026, 1, 2, 3, 4, 5, 0, TimeSpan.Zero),
            Event = "decision",
            User = "user-0b1c",
            Roles = [],
            Patient = "Patient/p-2002",
            Resource = "Condition",
            Action = "search",
            Permitted = false,
            Rule = "default-deny",
            Status = 403,
        },
        ["security.json"] = new()
        {
            Type = "security",
            At = new DateTimeOffset(2026, 3, 4, 23, 59, 59, 999, TimeSpan.FromHours(-5)),
            Event = "sign-in",
            User = "jose.muller",
            Actor = "admin-1",
            Outcome = "failure",
            Detail = "Jos\u00e9 \"M\u00fcller\" <b>&'+\\ \u2028 \U0001F600 \t\n",
            Source = "192.0.2.10",
            Correlation = "c-0002",
        },
        ["write.json"] = new()
        {
            Type = "write",
            At = new DateTimeOffset(2026, 6, 30, 12, 0, 0, 1, TimeSpan.Zero),
            Event = "update",
            User = "user-7f3a",
            Client = "ehr-smart-app",
            Patient = "Patient/p-1001",
            Resource = "MedicationRequest/m-9/_history/2",
            Action = "update",
            Status = 200,
            Sha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        },
        ["system.json"] = new()
        {
            Type = "system",
            At = new DateTimeOffset(1970, 1, 1, 0, 0, 0, 0, TimeSpan.Zero),
            Event = "startup",
        },
    };
}
