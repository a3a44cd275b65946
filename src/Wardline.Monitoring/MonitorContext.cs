namespace Wardline.Monitoring;

/// <summary>
/// What a detection may ask while examining an entry: the configuration, the organisation model, the
/// institution's clock, what the ledger itself taught the engine (account changes, who wrote for whom)
/// and whether a legitimate reason explains a user's presence in a record. Detections report here.
/// One per engine; not thread-safe (an engine examines entries one at a time, in ledger order).
/// </summary>
internal sealed class MonitorContext
{
    private const long DayMs = 86_400_000;

    private readonly Dictionary<string, AccountHistory> _accounts = new(StringComparer.Ordinal);
    private readonly Dictionary<(string User, string Patient), long> _writes = [];
    private readonly Dictionary<string, (string Kind, long GraceMs)[]> _suppressors = new(StringComparer.Ordinal);
    private readonly List<Finding> _discard = [];
    private List<Finding> _output;

    internal MonitorContext(MonitorConfig config, OrgDirectory directory, TimeZoneInfo zone)
    {
        Config = config;
        Directory = directory;
        TimeZone = config.TimeZone ?? zone;
        _output = _discard;
        foreach (var detection in config.Detections.Keys)
        {
            _suppressors[detection] = [.. config.Explanations.Where(x => x.Suppresses.Contains(detection)).Select(x => (x.Kind, (long)(x.GraceDays * DayMs)))];
        }
    }

    public MonitorConfig Config { get; }

    public OrgDirectory Directory { get; internal set; }

    /// <summary>The institution's time zone: working hours and days are judged in it.</summary>
    public TimeZoneInfo TimeZone { get; }

    /// <summary>The latest entry time seen so far (Unix ms): "now" for windows, immune to a clock that jumped back.</summary>
    public long NowMs { get; private set; } = long.MinValue;

    /// <summary>True while the engine replays history only to learn baselines; reports are dropped.</summary>
    public bool Warming { get; private set; }

    /// <summary>Findings dropped because an explanation held, by detection id.</summary>
    public Dictionary<string, long> Suppressed { get; } = new(StringComparer.Ordinal);

    /// <summary>Findings reported, by detection id (after suppression).</summary>
    public Dictionary<string, long> Reported { get; } = new(StringComparer.Ordinal);

    internal void Begin(MonitorEvent e, List<Finding>? output)
    {
        if (e.AtMs > NowMs) NowMs = e.AtMs;
        Warming = output is null;
        _output = output ?? _discard;
    }

    /// <summary>Learns from the entry after every detection has seen it: account changes and who wrote for which patient.</summary>
    internal void Learn(MonitorEvent e)
    {
        _discard.Clear();
        if (e.User is null) return;
        switch (e.Kind)
        {
            case EntryKind.Write when e.Patient is not null && e.Event is "create" or "update":
                _writes[(e.User, e.Patient)] = e.AtMs;
                break;
            case EntryKind.Security when e.Event is "AccountCreated" or "AccountChanged" or "AccountDisabled":
                Account(e.User).Apply(e);
                break;
        }
    }

    private AccountHistory Account(string user)
    {
        if (!_accounts.TryGetValue(user, out var h)) _accounts[user] = h = new AccountHistory();
        return h;
    }

    /// <summary>The hour of the day (0-23) of an instant in the institution's time zone.</summary>
    public int LocalHour(long atMs) => TimeZoneInfo.ConvertTime(DateTimeOffset.FromUnixTimeMilliseconds(atMs), TimeZone).Hour;

    /// <summary>The local calendar day of an instant, as days since 1970-01-01 in the institution's time zone.</summary>
    public int LocalDay(long atMs)
    {
        var local = TimeZoneInfo.ConvertTime(DateTimeOffset.FromUnixTimeMilliseconds(atMs), TimeZone);
        return (int)(local.DateTime.Date.Ticks / TimeSpan.TicksPerDay - DateTime.UnixEpoch.Ticks / TimeSpan.TicksPerDay);
    }

    public bool IsWeekend(long atMs) =>
        TimeZoneInfo.ConvertTime(DateTimeOffset.FromUnixTimeMilliseconds(atMs), TimeZone).DayOfWeek is DayOfWeek.Saturday or DayOfWeek.Sunday;

    /// <summary>The user's departments at an instant: as the ledger's account events last said before it, else the directory's.</summary>
    public IReadOnlyList<string> DepartmentsOf(string user, long atMs) =>
        _accounts.TryGetValue(user, out var h) && h.DepartmentsAt(atMs) is { } fromLedger ? fromLedger : Directory.FindStaff(user)?.Departments ?? [];

    /// <summary>Departments the user belonged to and had left, per the ledger's account events, at most <paramref name="withinMs"/> before <paramref name="atMs"/>: (department, when left).</summary>
    public IEnumerable<(string Department, long LeftMs)> DepartmentsLeft(string user, long atMs, long withinMs) =>
        _accounts.TryGetValue(user, out var h) ? h.Left(atMs, withinMs) : [];

    /// <summary>Whether the ledger created, changed or disabled the account: it exists, whatever the directory says.</summary>
    public bool LedgerKnowsAccount(string user) => _accounts.ContainsKey(user);

    /// <summary>Whether the ledger's account events named the user's departments at least twice: only then can <see cref="DepartmentsLeft"/> find one the user left.</summary>
    public bool LedgerTracksDepartments(string user) => _accounts.TryGetValue(user, out var h) && h.DepartmentRecords >= 2;

    /// <summary>When the account was disabled (the ledger's AccountDisabled, else the directory's), if it was at <paramref name="atMs"/>.</summary>
    public long? DisabledAt(string user, long atMs)
    {
        if (_accounts.TryGetValue(user, out var h) && h.KnowsDisabledState) return h.DisabledAtMs is { } d && d <= atMs ? d : null;
        return Directory.FindStaff(user)?.DisabledAtMs is { } at && at <= atMs ? at : null;
    }

    /// <summary>When the user last created or updated a resource of the patient's, per the ledger.</summary>
    public long? LastWroteFor(string user, string patient) => _writes.TryGetValue((user, patient), out var at) ? at : null;

    /// <summary>
    /// The first explanation configured to silence <paramref name="detection"/> that holds for the user
    /// in the patient's record at the instant, or null when none does.
    /// </summary>
    public string? Explain(string detection, string user, string patient, long atMs)
    {
        if (!_suppressors.TryGetValue(detection, out var suppressors) || suppressors.Length == 0) return null;
        IReadOnlyList<Relationship>? relationships = null;
        foreach (var (kind, graceMs) in suppressors)
        {
            switch (kind)
            {
                case "wrote-for-patient" or "department-stay" or "current-stay":
                    if (Holds(kind, user, patient, atMs, graceMs)) return kind;
                    break;
                default:
                    // One look-up serves every relationship kind.
                    relationships ??= Directory.RelationshipsOf(user, patient);
                    foreach (var r in relationships)
                    {
                        if (r.Kind == kind && r.Covers(atMs, graceMs)) return kind;
                    }
                    break;
            }
        }
        return null;
    }

    /// <summary>Whether a kind of explanation holds, whatever the configuration says it silences.</summary>
    public bool Holds(string kind, string user, string patient, long atMs, long graceMs)
    {
        switch (kind)
        {
            case "wrote-for-patient":
                return LastWroteFor(user, patient) is { } wrote && wrote <= atMs + graceMs && atMs - wrote <= Math.Max(graceMs, DayMs);
            case "department-stay" or "current-stay":
                // The grace runs after the stay (follow-up, discharge letters); before it, at most a day of
                // pre-admission work: a stay that starts weeks later does not explain a read today.
                var departments = DepartmentsOf(user, atMs);
                if (departments.Count == 0) return false;
                foreach (var stay in Directory.FindPatient(patient)?.DepartmentStays ?? [])
                {
                    if (!departments.Contains(stay.Department)) continue;
                    if (atMs >= stay.FromMs - Math.Min(graceMs, DayMs) && (stay.ToMs is not { } to || atMs <= to + graceMs)) return true;
                }
                return false;
            default:
                foreach (var r in Directory.RelationshipsOf(user, patient))
                {
                    if (r.Kind == kind && r.Covers(atMs, graceMs)) return true;
                }
                return false;
        }
    }

    /// <summary>
    /// Reports a finding. Its severity is the configured one, or <paramref name="severity"/> when the
    /// detection knows this finding is milder or graver (never above the configured one's band by
    /// accident: detections pass it only for a distinct kind of finding, e.g. a refused break-glass).
    /// It is dropped while warming, and when the detection may be explained away and an explanation
    /// holds for the user and the patient.
    /// </summary>
    public void Report(Detection detection, string user, string? patient, long atMs, IReadOnlyList<long> entries, string evidence, string? groupKey = null, Severity? severity = null)
    {
        var id = detection.Info.Id;
        if (patient is not null && detection.Info.Suppressible && Explain(id, user, patient, atMs) is not null)
        {
            Suppressed[id] = Suppressed.GetValueOrDefault(id) + 1;
            return;
        }
        if (Warming) return;
        Reported[id] = Reported.GetValueOrDefault(id) + 1;
        _output.Add(new Finding(id, severity ?? Config.For(id).Severity, user, patient, atMs, entries, evidence, groupKey));
    }

    /// <summary>An account's departments and disabled state over time, as the ledger's account events tell it.</summary>
    private sealed class AccountHistory
    {
        private readonly List<(long AtMs, string[] Departments)> _changes = [];

        public long? DisabledAtMs { get; private set; }

        /// <summary>Account events that named the departments; beyond 65 the oldest are forgotten.</summary>
        public int DepartmentRecords => _changes.Count;

        /// <summary>
        /// The ledger has said whether the account is disabled (it was disabled or enabled since the history began);
        /// other account events (an unlock, a role change) say nothing about it, so the directory still decides.
        /// </summary>
        public bool KnowsDisabledState { get; private set; }

        public void Apply(MonitorEvent e)
        {
            if (e.Event == "AccountDisabled")
            {
                KnowsDisabledState = true;
                DisabledAtMs ??= e.AtMs;
                return;
            }
            if (e.Detail is { } detail)
            {
                if (detail.StartsWith("enabled", StringComparison.Ordinal))
                {
                    KnowsDisabledState = true;
                    DisabledAtMs = null;
                }
                if (Departments(detail) is { } departments)
                {
                    if (_changes.Count > 64) _changes.RemoveAt(0);
                    // Kept in time order, so an event from a server whose clock was behind lands where it belongs.
                    var at = _changes.Count;
                    while (at > 0 && _changes[at - 1].AtMs > e.AtMs) at--;
                    _changes.Insert(at, (e.AtMs, departments));
                }
            }
        }

        public string[]? DepartmentsAt(long atMs)
        {
            string[]? last = null;
            foreach (var (at, departments) in _changes)
            {
                if (at > atMs) break;
                last = departments;
            }
            return last;
        }

        public IEnumerable<(string, long)> Left(long atMs, long withinMs)
        {
            for (var i = 1; i < _changes.Count; i++)
            {
                var (at, now) = _changes[i];
                if (at > atMs || atMs - at > withinMs) continue;
                foreach (var d in _changes[i - 1].Departments)
                {
                    if (!now.Contains(d)) yield return (d, at);
                }
            }
        }

        /// <summary>The "departments=a,b" of an account event's detail (AccountRules.Describe).</summary>
        private static string[]? Departments(string detail)
        {
            var at = detail.IndexOf("departments=", StringComparison.Ordinal);
            if (at < 0) return null;
            var start = at + "departments=".Length;
            var end = detail.IndexOf(' ', start);
            var list = end < 0 ? detail[start..] : detail[start..end];
            return list.Split(',', StringSplitOptions.RemoveEmptyEntries);
        }
    }
}
