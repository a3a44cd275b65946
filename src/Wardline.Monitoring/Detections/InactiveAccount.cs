namespace Wardline.Monitoring.Detections;

/// <summary>
/// Access by an account that should no longer act: disabled, past its holder's leaving date, moved out
/// of a department and back in its patients' records, or unknown to the directory altogether. Judged at
/// "now" (<see cref="MonitorContext.NowMs"/>): the ledger's order, not a skewed clock, says what came
/// after the account was disabled. Once per user and kind a day; the kind is the alert's group key.
/// </summary>
internal sealed class InactiveAccount : Detection
{
    private const long DayMs = 86_400_000;

    private static readonly DetectionInfo Description = new(
        "inactive-account", "Disabled, departed or transferred account", Severity.High, Suppressible: false,
        "An account that should no longer be used was: disabled, past its holder's leaving date, unknown to the staff directory, or a transferred member of staff opening patients of the department they left. Leavers' accounts and forgotten access are a classic way in for insiders and for stolen credentials.",
        [
            new("transfer-days", 90, 1, 3650, "for how many days after a transfer opening a patient of the former department is reported"),
        ]);

    private readonly Dictionary<(string User, string Kind), long> _reported = [];
    private readonly Dictionary<string, Account> _accounts = new(StringComparer.Ordinal);
    private long _transferMs;

    public override DetectionInfo Info => Description;

    protected override void OnConfigured(DetectionSettings settings) => _transferMs = (long)(settings["transfer-days"] * DayMs);

    public override void Examine(MonitorEvent e, MonitorContext ctx)
    {
        if (e.User is not { } user) return;
        string what;
        switch (e.Kind)
        {
            case EntryKind.Access when e.Permitted == true && e.Event == "decision":
                what = e.Patient is null ? "was permitted a request" : "opened a patient's record";
                break;
            case EntryKind.Security when e.Outcome == "succeeded" && e.Event is "SignIn" or "TokenIssued":
                what = e.Event == "SignIn" ? "signed in" : "was issued a token";
                break;
            case EntryKind.Security when e.Event is "AccountCreated" or "AccountChanged" or "AccountDisabled":
                // The context learns the change after this entry: what is known of the account is asked afresh next time.
                if (_accounts.TryGetValue(user, out var changed)) changed.Directory = null;
                return;
            default:
                return;
        }
        var account = Resolve(user, ctx);
        var now = ctx.NowMs;
        if (account.DisabledMs is { } disabled && disabled <= now)
        {
            Report(ctx, e, "disabled", $"the account was disabled on {Words.Date(disabled, ctx.TimeZone)} and still {what}");
            return;
        }
        if (account.Staff?.ExpiresMs is { } expires && expires < now)
        {
            Report(ctx, e, "departed", $"the account's holder left on {Words.Date(expires, ctx.TimeZone)} and the account still {what}");
            return;
        }
        if (account.Staff is null && !ctx.LedgerKnowsAccount(user) && e.Kind == EntryKind.Access && ctx.Directory.StaffCount > 0)
        {
            Report(ctx, e, "unknown", $"an account unknown to the directory {what}");
            return;
        }
        // Only an account whose departments changed in the ledger can have left one.
        if (!ctx.LedgerTracksDepartments(user) || e.Patient is null || ctx.Directory.FindPatient(e.Patient) is not { DepartmentStays.Count: > 0 } patient) return;
        // A patient the new department treats now (or recently), or one the user has a documented reason for,
        // is the user's patient whatever the old department did.
        if (ctx.Holds("department-stay", user, patient.Id, now, _transferMs) || HasRelationship(ctx, user, patient.Id, now)) return;
        foreach (var (department, leftMs) in ctx.DepartmentsLeft(user, now, _transferMs))
        {
            if (!TreatedSince(patient, department, leftMs - _transferMs) || ctx.DepartmentsOf(user, now).Contains(department)) continue;
            var days = (now - leftMs) / DayMs;
            var ago = days switch { 0 => "today", 1 => "1 day ago", _ => $"{days} days ago" };
            Report(ctx, e, "transferred", $"moved out of {department} {ago} and opened a patient treated there");
            return;
        }
    }

    /// <summary>What the directory and the context say of the account, asked once per directory snapshot and account change.</summary>
    private Account Resolve(string user, MonitorContext ctx)
    {
        if (!_accounts.TryGetValue(user, out var a)) _accounts[user] = a = new Account();
        if (ReferenceEquals(a.Directory, ctx.Directory)) return a;
        a.Directory = ctx.Directory;
        a.Staff = ctx.Directory.FindStaff(user);
        a.DisabledMs = ctx.DisabledAt(user, long.MaxValue);
        return a;
    }

    /// <summary>The old department treated the patient in the period that matters: from before the move (within the transfer window) on.</summary>
    private static bool TreatedSince(PatientProfile patient, string department, long sinceMs)
    {
        foreach (var stay in patient.DepartmentStays)
        {
            if (stay.Department == department && (stay.ToMs is not { } to || to >= sinceMs)) return true;
        }
        return false;
    }

    private static bool HasRelationship(MonitorContext ctx, string user, string patient, long atMs)
    {
        foreach (var r in ctx.Directory.RelationshipsOf(user, patient))
        {
            if (r.Covers(atMs, DayMs)) return true;
        }
        return false;
    }

    private void Report(MonitorContext ctx, MonitorEvent e, string kind, string evidence)
    {
        var key = (e.User!, kind);
        var now = ctx.NowMs;
        if (_reported.TryGetValue(key, out var last) && now - last < DayMs) return;
        if (ctx.Warming) return;
        if (_reported.Count >= 4096)
        {
            foreach (var old in _reported.Where(r => now - r.Value >= DayMs).Select(r => r.Key).ToList()) _reported.Remove(old);
        }
        _reported[key] = now;
        ctx.Report(this, e.User!, e.Patient, e.AtMs, [e.Index], evidence, groupKey: kind);
    }

    /// <summary>The directory's and the context's answers for one account (the ledger's own record of it is the context's).</summary>
    private sealed class Account
    {
        public OrgDirectory? Directory { get; set; }

        public StaffMember? Staff { get; set; }

        public long? DisabledMs { get; set; }
    }
}
