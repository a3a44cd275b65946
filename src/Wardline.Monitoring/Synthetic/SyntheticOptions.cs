namespace Wardline.Monitoring.Synthetic;

/// <summary>The shape of a synthetic hospital and its month: everything follows from these and the seed.</summary>
internal sealed record SyntheticOptions
{
    public int Seed { get; init; } = 1;

    /// <summary>Days of work generated, the warm-up week included.</summary>
    public int Days { get; init; } = 35;

    /// <summary>The first days, on which the engine only warms (baselines); no violation is injected in them.</summary>
    public int WarmDays { get; init; } = 7;

    /// <summary>Multiplies every department's staffing (1: about 400 accounts).</summary>
    public double StaffScale { get; init; } = 1.0;

    /// <summary>Multiplies every department's admissions and visits (scale with <see cref="StaffScale"/> for a bigger hospital).</summary>
    public double ActivityScale { get; init; } = 1.0;

    public int Patients { get; init; } = 25_000;

    /// <summary>Midnight of the first day, institution time (UTC); a Monday.</summary>
    public DateTimeOffset Start { get; init; } = new(2026, 10, 5, 0, 0, 0, TimeSpan.Zero);

    /// <summary>
    /// The share of clinicians' shifts with one undocumented curbside consult (another department's patient opened
    /// with nothing on record). Legitimate, and indistinguishable from snooping for no-care-relationship and
    /// department-mismatch: their precision falls as this rises (docs/monitoring-evaluation.md measures it).
    /// </summary>
    public double UndocumentedConsultShare { get; init; } = 0.03;

    /// <summary>Injected violations of each kind (0: normal work only).</summary>
    public int PerKind { get; init; } = 12;
}
