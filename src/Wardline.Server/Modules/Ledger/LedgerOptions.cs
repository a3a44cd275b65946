namespace Wardline.Server.Modules.Ledger;

/// <summary>The audit ledger's settings, bound from <c>Wardline:Ledger</c>.</summary>
public sealed class LedgerOptions
{
    /// <summary>How often a signed tree head is made while entries arrive (seconds).</summary>
    public int HeadIntervalSeconds { get; set; } = 10;

    /// <summary>
    /// The witness folder the signed heads are published to: outside the database, ideally on another
    /// machine's share or a write-once mount. Defaults to "witness" in the data directory; required with PostgreSQL.
    /// </summary>
    public string? WitnessPath { get; set; }

    public IReadOnlyList<string> Validate(bool postgres)
    {
        var problems = new List<string>();
        if (HeadIntervalSeconds is < 1 or > 86_400) problems.Add("Wardline:Ledger:HeadIntervalSeconds must be between 1 and 86400.");
        if (postgres && WitnessPath is null) problems.Add("Wardline:Ledger:WitnessPath is required with PostgreSQL: the witness must live outside the database.");
        return problems;
    }
}
