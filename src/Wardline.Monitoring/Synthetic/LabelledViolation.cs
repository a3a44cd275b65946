namespace Wardline.Monitoring.Synthetic;

/// <summary>
/// One violation the generator injected, labelled with the one detection that should find it: the
/// user, the patient (null when the violation is about the account's behaviour across patients), the
/// period its entries span and the ledger indexes of those entries (filled in as the stream is read).
/// </summary>
internal sealed class LabelledViolation(string detection, string user, string? patient, string what)
{
    public string Detection { get; } = detection;

    public string User { get; } = user;

    public string? Patient { get; } = patient;

    /// <summary>What was injected, in words without patient data ("relative with the same surname").</summary>
    public string What { get; } = what;

    public long FromMs { get; internal set; } = long.MaxValue;

    public long ToMs { get; internal set; } = long.MinValue;

    public List<long> Entries { get; } = [];

    internal void Add(long index, long atMs)
    {
        Entries.Add(index);
        if (atMs < FromMs) FromMs = atMs;
        if (atMs > ToMs) ToMs = atMs;
    }

    /// <summary>Widens the period without entries (a persistent peer outlier is a violation over the whole month).</summary>
    internal void Cover(long fromMs, long toMs)
    {
        if (fromMs < FromMs) FromMs = fromMs;
        if (toMs > ToMs) ToMs = toMs;
    }
}
