namespace Wardline.Monitoring.Detections;

// Shared: every relationship detection (colleague, relative, VIP, listed contact, label, department) asks it for the same entry.
/// <summary>
/// The account and the patient of a permitted patient decision, looked up once per entry for all the
/// relationship detections (each would otherwise repeat the same two dictionary lookups). The memo is
/// per thread and keyed by the entry and directory instances, so engines on other threads, or a
/// directory replaced between entries, never see another's answer.
/// </summary>
internal static class Parties
{
    [ThreadStatic]
    private static Memo? t_memo;

    public static (StaffMember? Staff, PatientProfile? Patient) Of(MonitorEvent e, OrgDirectory directory)
    {
        var memo = t_memo ??= new Memo();
        if (!ReferenceEquals(memo.Event, e) || !ReferenceEquals(memo.Directory, directory))
        {
            memo.Event = e;
            memo.Directory = directory;
            memo.Staff = directory.FindStaff(e.User);
            memo.Patient = directory.FindPatient(e.Patient);
        }
        return (memo.Staff, memo.Patient);
    }

    /// <summary>The user's own patient record: self-access speaks for it, not the relationship detections.</summary>
    public static bool IsOwn(string user, StaffMember? staff, PatientProfile patient) =>
        patient.StaffUser == user || (staff?.OwnPatientId is { } own && own == patient.Id);

    /// <summary>A service or integration account: it reads for a system, not out of curiosity.</summary>
    public static bool IsService(StaffMember? staff) => staff?.Service == true;

    private sealed class Memo
    {
        public MonitorEvent? Event;
        public OrgDirectory? Directory;
        public StaffMember? Staff;
        public PatientProfile? Patient;
    }
}

// Shared: each per-patient detection reports a (user, patient) pair once a day the same way.
/// <summary>
/// Which (user, key) pairs a detection has reported on which local day, so a user reading 40 resources
/// of one patient is one finding a day, not 40. Only the first entry of the pair in a day is judged
/// (explanations included), which also keeps the cost of explanations to once a pair a day. Days more
/// than two before the latest entry's (<see cref="MonitorContext.NowMs"/>) are forgotten, so the state
/// is bounded by the pairs of about three days.
/// </summary>
internal sealed class OncePerDay
{
    // Local days change on 15-minute boundaries in every zone in use, so one lookup serves a quarter hour.
    private const long BucketMs = 15 * 60_000;

    private readonly HashSet<(string User, string Key, int Day)> _seen = [];
    private long _bucket = long.MinValue;
    private int _bucketDay;
    private int _prunedDay = int.MinValue;
    private string? _lastUser;
    private string? _lastKey;
    private long _lastBucket = long.MinValue;

    public int Count => _seen.Count;

    /// <summary>
    /// True when the pair is the one asked about just before, in the same quarter hour: the other
    /// decisions of one request (a search's 40 results, a bundle), already judged. Lets a detection skip
    /// its work for them before any look-up; a string comparison is all it costs.
    /// </summary>
    public bool Repeats(string user, string key, long atMs)
    {
        var bucket = atMs / BucketMs;
        if (bucket == _lastBucket && string.Equals(user, _lastUser, StringComparison.Ordinal) && string.Equals(key, _lastKey, StringComparison.Ordinal)) return true;
        (_lastUser, _lastKey, _lastBucket) = (user, key, bucket);
        return false;
    }

    /// <summary>True the first time the pair is seen on the local day of <paramref name="atMs"/>; false after.</summary>
    public bool First(MonitorContext ctx, string user, string key, long atMs)
    {
        var today = Day(ctx, ctx.NowMs);
        if (today > _prunedDay)
        {
            _prunedDay = today;
            _seen.RemoveWhere(x => x.Day < today - 2);
        }
        return _seen.Add((user, key, atMs == ctx.NowMs ? today : Day(ctx, atMs)));
    }

    private int Day(MonitorContext ctx, long atMs)
    {
        var bucket = Math.DivRem(atMs, BucketMs, out var rem) - (rem < 0 ? 1 : 0);
        if (bucket != _bucket)
        {
            _bucket = bucket;
            _bucketDay = ctx.LocalDay(atMs);
        }
        return _bucketDay;
    }
}

// Shared: the care and relationship detections agree on what billing work is, so finance staff are judged alike by all.
/// <summary>Resource types of billing and payment: reading them is finance work, not a look at the patient's care.</summary>
internal static class Financial
{
    public static bool Is(string? type) => type is "Claim" or "ClaimResponse" or "Coverage" or "CoverageEligibilityRequest" or "CoverageEligibilityResponse"
        or "ExplanationOfBenefit" or "Account" or "ChargeItem" or "Invoice" or "PaymentNotice" or "PaymentReconciliation";

    /// <summary>
    /// A billing read of a patient treated within the last 30 days: the billing office's work queue (a
    /// stay is billed after discharge), whoever the patient is. Clinical reads are never billing work.
    /// </summary>
    public static bool IsBillingWork(MonitorEvent e, PatientProfile patient)
    {
        if (!Is(e.ResourceType)) return false;
        foreach (var stay in patient.DepartmentStays)
        {
            if (stay.FromMs <= e.AtMs && (stay.ToMs is not { } to || to >= e.AtMs - BillingDays * 86_400_000L)) return true;
        }
        return false;
    }

    private const int BillingDays = 30;
}
