namespace Wardline.Monitoring.Detections;

/// <summary>
/// A user reading patients' records at an hour of the day they rarely work: the user's own hours over
/// the last baseline days (an hour counts as worked on a day when the user was active within an hour of
/// it), or, when the directory knows the person's contracted shift, any hour outside it. Once per user
/// per day. The hour is that of "now" in the institution's zone (<see cref="MonitorContext.NowMs"/>).
/// </summary>
internal sealed class AfterHours : Detection
{
    private const int AllHours = (1 << 24) - 1;

    private static readonly DetectionInfo Description = new(
        "after-hours", "Unusual hours", Severity.Low, Suppressible: true,
        "A member of staff read patients' records at an hour they rarely work, or outside their contracted shift. Snooping often happens at night from home; an on-call clinician treating their own patient is the usual legitimate reason.",
        [
            new("baseline-days", 28, 1, 365, "the days of the user's history that say which hours they work"),
            new("min-history-days", 10, 1, 365, "active days within the baseline the user needs before their hours are judged (at most baseline-days)"),
            new("usual-share", 0.05, 0, 1, "an hour is unusual when the user worked at it (within an hour either side) on fewer than this share of their active days", Whole: false),
        ]);

    private readonly Dictionary<string, UserHours> _users = new(StringComparer.Ordinal);
    private readonly LocalClock _clock = new();
    private int _baselineDays = 28;
    private int _minHistory;
    private double _usualShare;
    private int _day = int.MinValue;

    public override DetectionInfo Info => Description;

    protected override void OnConfigured(DetectionSettings settings)
    {
        _baselineDays = (int)settings["baseline-days"];
        // More history than the baseline holds could never be had.
        _minHistory = Math.Min((int)settings["min-history-days"], _baselineDays);
        _usualShare = settings["usual-share"];
    }

    public override void Examine(MonitorEvent e, MonitorContext ctx)
    {
        if (!e.IsPermittedPatientDecision || e.User is null) return;
        var day = _clock.Day(ctx);
        var hour = _clock.Hour(ctx);
        if (day != _day) Sweep(day);
        if (!_users.TryGetValue(e.User, out var u)) _users[e.User] = u = new UserHours(_baselineDays, day);
        u.Roll(day, _baselineDays);
        var bit = 1 << hour;
        if ((u.Today & bit) != 0) return;
        u.Today |= bit;
        if (u.FiredDay == day) return;
        var staff = ctx.Directory.FindStaff(e.User);
        if (staff?.Service == true) return;
        string? why = null;
        if (staff is { ShiftStartHour: { } start, ShiftEndHour: { } end } && start != end)
        {
            var inShift = start < end ? hour >= start && hour < end : hour >= start || hour < end;
            if (!inShift) why = $"outside this user's contracted hours ({start:00}:00-{end:00}:00)";
        }
        else if (u.ActiveDays >= _minHistory)
        {
            var near = Near(hour);
            var worked = u.DaysWorked(near);
            if (worked < _usualShare * u.ActiveDays)
                why = $"in the last {_baselineDays} days this user worked at this hour on {worked} of {Words.Times(u.ActiveDays, "working day", "working days")}";
        }
        if (why is null || ctx.Warming) return;
        u.FiredDay = day;
        ctx.Report(this, e.User, e.Patient, e.AtMs, [e.Index], $"read records at {hour:00}:00 local time; {why}");
    }

    /// <summary>The hour and its neighbours, as a mask of the day's 24 hours.</summary>
    private static int Near(int hour) => ((1 << hour) | (1 << ((hour + 1) % 24)) | (1 << ((hour + 23) % 24))) & AllHours;

    /// <summary>Closes every user's previous day once a day, and forgets users inactive for the whole baseline.</summary>
    private void Sweep(int day)
    {
        _day = day;
        List<string>? gone = null;
        foreach (var (user, u) in _users)
        {
            u.Roll(day, _baselineDays);
            if (u.ActiveDays == 0 && u.Today == 0) (gone ??= []).Add(user);
        }
        foreach (var user in gone ?? []) _users.Remove(user);
    }

    /// <summary>One user's hours: today's, and each active day's of the baseline.</summary>
    private sealed class UserHours(int baselineDays, int day)
    {
        private readonly Queue<(int Day, int Hours)> _days = new(Math.Min(baselineDays, 64));

        public int Day { get; private set; } = day;

        public int Today { get; set; }

        public int FiredDay { get; set; } = int.MinValue;

        public int ActiveDays => _days.Count;

        public void Roll(int day, int baselineDays)
        {
            if (day > Day)
            {
                if (Today != 0) _days.Enqueue((Day, Today));
                Today = 0;
                Day = day;
            }
            while (_days.Count > 0 && _days.Peek().Day < day - baselineDays) _days.Dequeue();
        }

        public int DaysWorked(int hours)
        {
            var n = 0;
            foreach (var (_, worked) in _days)
            {
                if ((worked & hours) != 0) n++;
            }
            return n;
        }
    }
}
