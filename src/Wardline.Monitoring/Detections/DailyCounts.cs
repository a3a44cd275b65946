using System.Runtime.CompilerServices;

namespace Wardline.Monitoring.Detections;

/// <summary>
/// The institution's local day and hour of <see cref="MonitorContext.NowMs"/>, converted once per quarter
/// hour (every zone's offset is a multiple of 15 minutes, so neither changes within one) instead of once
/// per entry. Based on "now", not on the entry's own time: an entry from a clock that jumped back is
/// counted in the day it arrived in.
/// </summary>
internal sealed class LocalClock
{
    private const long QuarterMs = 900_000;

    private long _quarter = long.MinValue;
    private int _day;
    private int _hour;

    public int Day(MonitorContext ctx)
    {
        Refresh(ctx);
        return _day;
    }

    public int Hour(MonitorContext ctx)
    {
        Refresh(ctx);
        return _hour;
    }

    private void Refresh(MonitorContext ctx)
    {
        var quarter = Math.DivRem(ctx.NowMs, QuarterMs, out var rest) - (rest < 0 ? 1 : 0);
        if (quarter == _quarter) return;
        _quarter = quarter;
        _day = ctx.LocalDay(ctx.NowMs);
        _hour = ctx.LocalHour(ctx.NowMs);
    }
}

/// <summary>
/// Each user's distinct patients in permitted decisions per local day, with the counts of their last
/// <c>baselineDays</c> active days (days with any) as the baseline. State per user: today's set of
/// patients, a ring of day counts and a ring of sample entries; a day's set is dropped when the day ends.
/// One instance per engine and baseline length is shared by the detections that need it (volume-spike,
/// peer-outlier), so each entry is counted once.
/// </summary>
internal sealed class DailyCounts(int baselineDays)
{
    /// <summary>Entries kept as the evidence sample: the crossing entry plus this many earlier ones.</summary>
    public const int SampleSize = 20;

    private static readonly ConditionalWeakTable<MonitorContext, Dictionary<int, DailyCounts>> Shared = [];

    private readonly Dictionary<string, UserDays> _users = new(StringComparer.Ordinal);
    private readonly LocalClock _clock = new();
    private readonly int _baselineDays = Math.Max(1, baselineDays);
    private int _day = int.MinValue;
    private MonitorEvent? _last;
    private UserDays? _lastResult;
    private UserDays? _lastUser;

    public IEnumerable<KeyValuePair<string, UserDays>> Users => _users;

    /// <summary>The engine's counts with this baseline length (one engine, one context).</summary>
    public static DailyCounts For(MonitorContext ctx, int baselineDays)
    {
        var byLength = Shared.GetValue(ctx, _ => []);
        if (!byLength.TryGetValue(baselineDays, out var counts)) byLength[baselineDays] = counts = new DailyCounts(baselineDays);
        return counts;
    }

    /// <summary>
    /// Counts a permitted patient decision for its user on today's local day. Returns the user's state when
    /// the patient is new today (the count grew), else null. Asked again for the same entry (by the next
    /// detection sharing the counts), it answers the same without counting twice.
    /// </summary>
    public UserDays? Add(MonitorEvent e, MonitorContext ctx)
    {
        if (ReferenceEquals(e, _last)) return _lastResult;
        _last = e;
        _lastResult = null;
        var day = _clock.Day(ctx);
        if (day != _day)
        {
            // A new day: close every user's previous day, so sets of patients do not outlive their day.
            _day = day;
            foreach (var u in _users.Values) u.Roll(day);
        }
        var user = e.User!;
        var patient = e.Patient!;
        // Entries come in runs of one user (a request's decisions): the dictionary is asked once a run.
        var state = _lastUser;
        if (state is null || state.Name != user)
        {
            if (!_users.TryGetValue(user, out state)) _users[user] = state = new UserDays(user, _baselineDays, day);
            _lastUser = state;
        }
        state.Roll(day);
        // Decisions come in runs for one patient (a record's resources): the set is asked once a run.
        if (patient == state.LastPatient) return null;
        state.LastPatient = patient;
        if (!state.Today.Add(patient)) return null;
        state.Grew(e.Index);
        return _lastResult = state;
    }

    /// <summary>One user's days.</summary>
    internal sealed class UserDays(string name, int baselineDays, int day)
    {
        public string Name { get; } = name;

        private OrgDirectory? _directory;
        private StaffMember? _staff;
        private readonly int[] _history = new int[baselineDays];
        private readonly long[] _sample = new long[SampleSize];
        private int _historyNext;
        private int _sampleNext;
        private int _sampleCount;
        private long _historySum;

        public int Day { get; private set; } = day;

        public HashSet<string> Today { get; private set; } = new(StringComparer.Ordinal);

        /// <summary>The entry that made the count grow last.</summary>
        public long Crossing { get; private set; } = -1;

        /// <summary>Active days in the baseline (at most baseline-days).</summary>
        public int HistoryDays { get; private set; }

        /// <summary>The mean distinct patients a day over the baseline's active days; 0 without history.</summary>
        public double Mean => HistoryDays == 0 ? 0 : (double)_historySum / HistoryDays;

        /// <summary>The day volume-spike last reported this user.</summary>
        public int SpikeDay { get; set; } = int.MinValue;

        /// <summary>The day peer-outlier last reported this user.</summary>
        public int PeerDay { get; set; } = int.MinValue;

        /// <summary>The patient of the user's last counted decision.</summary>
        public string? LastPatient { get; set; }

        /// <summary>The user's directory entry (null: unknown), looked up once per directory snapshot.</summary>
        public StaffMember? Staff(OrgDirectory directory)
        {
            if (!ReferenceEquals(directory, _directory))
            {
                _directory = directory;
                _staff = directory.FindStaff(Name);
            }
            return _staff;
        }

        public void Roll(int day)
        {
            if (day <= Day) return;
            if (Today.Count > 0)
            {
                if (HistoryDays == _history.Length) _historySum -= _history[_historyNext];
                else HistoryDays++;
                _history[_historyNext] = Today.Count;
                _historySum += Today.Count;
                _historyNext = (_historyNext + 1) % _history.Length;
                Today = new HashSet<string>(StringComparer.Ordinal);
            }
            LastPatient = null;
            _sampleCount = 0;
            _sampleNext = 0;
            Crossing = -1;
            Day = day;
        }

        /// <summary>Today's last new-patient entries before <see cref="Crossing"/>, and it, ascending.</summary>
        public long[] TakeSample()
        {
            var list = new long[_sampleCount + 1];
            var start = (_sampleNext - _sampleCount + SampleSize) % SampleSize;
            for (var i = 0; i < _sampleCount; i++) list[i] = _sample[(start + i) % SampleSize];
            list[_sampleCount] = Crossing;
            return list;
        }

        /// <summary>A new patient today: the previous crossing entry joins the sample.</summary>
        public void Grew(long index)
        {
            if (Crossing >= 0) Remember(Crossing);
            Crossing = index;
        }

        private void Remember(long index)
        {
            _sample[_sampleNext] = index;
            _sampleNext = (_sampleNext + 1) % SampleSize;
            if (_sampleCount < SampleSize) _sampleCount++;
        }
    }
}

/// <summary>
/// A sliding window of entries for one key (a user, a source), measured in <see cref="MonitorContext.NowMs"/>
/// at arrival: an entry whose own time jumped back counts when it arrived, so it can neither join an old
/// burst nor be lost from the current one. Counts items (patients, accounts, sources) as it goes; a null
/// item counts apart in <see cref="NullItems"/>. At most <see cref="Cap"/> entries are held.
/// </summary>
internal sealed class SlidingWindow
{
    public const int Cap = 10_000;

    private readonly Queue<(long At, long Index, string? Item)> _entries = new();
    private readonly Dictionary<string, int> _items = new(StringComparer.Ordinal);

    public int Count => _entries.Count;

    /// <summary>Distinct non-null items in the window.</summary>
    public int Distinct => _items.Count;

    public int NullItems { get; private set; }

    /// <summary>Non-null items seen once or twice in the window.</summary>
    public int Few { get; private set; }

    /// <summary>The window may not report again before this time.</summary>
    public long QuietUntilMs { get; set; } = long.MinValue;

    public bool IsEmpty => _entries.Count == 0;

    public int CountOf(string item) => _items.GetValueOrDefault(item);

    public void Add(long atMs, long index, string? item)
    {
        if (_entries.Count >= Cap) Drop();
        _entries.Enqueue((atMs, index, item));
        if (item is null)
        {
            NullItems++;
            return;
        }
        var n = _items.GetValueOrDefault(item) + 1;
        _items[item] = n;
        if (n == 1) Few++;
        else if (n == 3) Few--;
    }

    /// <summary>Drops entries that arrived <paramref name="windowMs"/> or more before <paramref name="nowMs"/>.</summary>
    public void Prune(long nowMs, long windowMs)
    {
        while (_entries.Count > 0 && nowMs - _entries.Peek().At >= windowMs) Drop();
    }

    public void Clear()
    {
        _entries.Clear();
        _items.Clear();
        NullItems = 0;
        Few = 0;
    }

    /// <summary>The ledger indexes of the last <paramref name="max"/> entries, ascending.</summary>
    public long[] Indexes(int max)
    {
        var skip = Math.Max(0, _entries.Count - max);
        return [.. _entries.Skip(skip).Select(e => e.Index)];
    }

    private void Drop()
    {
        var (_, _, item) = _entries.Dequeue();
        if (item is null)
        {
            NullItems--;
            return;
        }
        var n = _items[item] - 1;
        if (n == 0)
        {
            _items.Remove(item);
            Few--;
        }
        else
        {
            _items[item] = n;
            if (n == 2) Few++;
        }
    }
}

/// <summary>Sliding windows by key, swept once per window length so keys that fell quiet are dropped.</summary>
internal sealed class SlidingWindows(long windowMs)
{
    private readonly Dictionary<string, SlidingWindow> _windows = new(StringComparer.Ordinal);
    private long _nextSweepMs = long.MinValue;

    public long WindowMs { get; } = windowMs;

    public int Keys => _windows.Count;

    /// <summary>The key's window, pruned to now.</summary>
    public SlidingWindow Get(string key, long nowMs)
    {
        Sweep(nowMs);
        if (!_windows.TryGetValue(key, out var w)) _windows[key] = w = new SlidingWindow();
        w.Prune(nowMs, WindowMs);
        return w;
    }

    private void Sweep(long nowMs)
    {
        if (nowMs < _nextSweepMs) return;
        _nextSweepMs = nowMs + WindowMs;
        List<string>? quiet = null;
        foreach (var (key, w) in _windows)
        {
            w.Prune(nowMs, WindowMs);
            if (w.IsEmpty && w.QuietUntilMs <= nowMs) (quiet ??= []).Add(key);
        }
        foreach (var key in quiet ?? []) _windows.Remove(key);
    }
}

/// <summary>Words shared by the detections' evidence.</summary>
internal static class Words
{
    public static string Times(int n, string one, string many) => n == 1 ? $"1 {one}" : $"{n} {many}";

    /// <summary>The local date of an instant in the institution's zone, yyyy-MM-dd.</summary>
    public static string Date(long atMs, TimeZoneInfo zone) =>
        TimeZoneInfo.ConvertTime(DateTimeOffset.FromUnixTimeMilliseconds(atMs), zone).ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture);

    public static string Minutes(double minutes) => minutes == 1 ? "1 minute" : $"{minutes:0.#} minutes";
}
