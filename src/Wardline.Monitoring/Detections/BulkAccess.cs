namespace Wardline.Monitoring.Detections;

/// <summary>
/// An interactive user disclosing many patients' records at once: one request (a search, a history, a
/// batch) whose permitted decisions span many patients, or searches, histories and batches adding up to
/// many patients within a window. A request is judged when it ends (its outcome entry, the user's next
/// request, or a minute of silence), so the evidence gives its whole count. Once per user per window.
/// Service and integration accounts are left out: moving many records is their job.
/// </summary>
internal sealed class BulkAccess : Detection
{
    private const long RequestTimeoutMs = 60_000;

    private static readonly DetectionInfo Description = new(
        "bulk-access", "Bulk search or export", Severity.High, Suppressible: false,
        "A member of staff pulled many patients' records at once through searches, histories or batch requests. Clinical work opens records one patient at a time; a broad search or export by a person at a screen is how records are harvested.",
        [
            new("per-request", 50, 1, 1_000_000, "distinct patients disclosed by one request that make a finding"),
            new("per-window", 150, 1, 10_000_000, "distinct patients disclosed through searches, histories and batches within the window that make a finding"),
            new("window-minutes", 15, 1, 1440, "the sliding window for per-window"),
        ]);

    private readonly Dictionary<string, Request> _open = new(StringComparer.Ordinal);
    private readonly List<string> _stale = [];
    private Request? _last;
    private SlidingWindows _windows = new(900_000);
    private int _perRequest;
    private int _perWindow;
    private long _nextSweepMs = long.MinValue;

    public override DetectionInfo Info => Description;

    protected override void OnConfigured(DetectionSettings settings)
    {
        _perRequest = (int)settings["per-request"];
        _perWindow = (int)settings["per-window"];
        _windows = new SlidingWindows((long)(settings["window-minutes"] * 60_000));
    }

    public override void Examine(MonitorEvent e, MonitorContext ctx)
    {
        if (e.Kind != EntryKind.Access || e.User is null) return;
        var now = ctx.NowMs;
        if (now >= _nextSweepMs) Sweep(now, ctx);
        if (e.Event == "outcome")
        {
            if (_open.TryGetValue(e.User, out var done) && done.Count > 0 && done.Correlation == e.Correlation)
            {
                Judge(e.User, done, e.Index, e.Action, e.AtMs, ctx);
                done.Reset();
            }
            return;
        }
        if (e.Event != "decision" || e.Permitted != true || e.Patient is null) return;
        var request = _last;
        if (request is null || request.User != e.User)
        {
            if (!_open.TryGetValue(e.User, out request)) _open[e.User] = request = new Request(e.User);
            _last = request;
        }
        if (request.IsService(ctx.Directory)) return;
        if (request.Correlation != e.Correlation || e.Correlation is null)
        {
            Judge(e.User, request, null, null, e.AtMs, ctx);
            request.Reset();
        }
        if (request.Count == 0) request.Begin(e.Correlation, e.Action, now);
        request.Add(e.Patient, e.Index);
        if (e.Action is "Search" or "History" or "Bundle")
        {
            request.Windowed = true;
            _windows.Get(e.User, now).Add(now, e.Index, e.Patient);
        }
    }

    private void Judge(string user, Request request, long? outcome, string? action, long atMs, MonitorContext ctx)
    {
        // Most requests are one patient's read: nothing to judge.
        if (request.Count < _perRequest && !request.Windowed) return;
        var now = ctx.NowMs;
        var w = _windows.Get(user, now);
        if (now < w.QuietUntilMs || ctx.Warming) return;
        string evidence;
        long[] entries;
        if (request.Count >= _perRequest)
        {
            var what = (action ?? request.Action) switch
            {
                "Search" => "one search",
                "History" => "one history request",
                "Bundle" => "one batch request",
                _ => "one request",
            };
            evidence = $"{what} disclosed {request.Count} patients' records";
            entries = outcome is { } o ? [.. request.Sample, o] : [.. request.Sample];
        }
        else if (w.Distinct >= _perWindow)
        {
            evidence = $"searches disclosed {w.Distinct} patients' records within {Words.Minutes(_windows.WindowMs / 60_000.0)}";
            entries = w.Indexes(DailyCounts.SampleSize);
        }
        else
        {
            return;
        }
        w.QuietUntilMs = now + _windows.WindowMs;
        ctx.Report(this, user, null, atMs, entries, evidence);
    }

    /// <summary>Judges requests whose outcome never came (a request cut short), and keeps the open set small.</summary>
    private void Sweep(long now, MonitorContext ctx)
    {
        _nextSweepMs = now + RequestTimeoutMs;
        _stale.Clear();
        foreach (var (user, request) in _open)
        {
            if (now - request.StartMs >= RequestTimeoutMs) _stale.Add(user);
        }
        foreach (var user in _stale)
        {
            var request = _open[user];
            _open.Remove(user);
            if (ReferenceEquals(request, _last)) _last = null;
            if (request.Count > 0) Judge(user, request, null, null, now, ctx);
        }
    }

    /// <summary>The user's current request: its distinct patients and first entries as the sample; reused from request to request.</summary>
    private sealed class Request(string user)
    {
        private OrgDirectory? _directory;
        private bool _service;
        private string? _first;
        private HashSet<string>? _patients;

        public string User { get; } = user;

        public string? Correlation { get; private set; }

        public string? Action { get; private set; }

        public long StartMs { get; private set; }

        /// <summary>Some of its decisions were searches, histories or batches (they count in the window).</summary>
        public bool Windowed { get; set; }

        /// <summary>Distinct patients so far.</summary>
        public int Count { get; private set; }

        public List<long> Sample { get; } = [];

        public void Begin(string? correlation, string? action, long startMs)
        {
            Correlation = correlation;
            Action = action;
            StartMs = startMs;
        }

        /// <summary>Whether the user is a service account, looked up once per directory snapshot.</summary>
        public bool IsService(OrgDirectory directory)
        {
            if (!ReferenceEquals(directory, _directory))
            {
                _directory = directory;
                _service = directory.FindStaff(User)?.Service == true;
            }
            return _service;
        }

        public void Add(string patient, long index)
        {
            // Most requests touch one patient: the set is made only for a second one.
            if (Count == 0) _first = patient;
            else if (_patients is null)
            {
                if (patient == _first) return;
                _patients = new HashSet<string>(StringComparer.Ordinal) { _first!, patient };
            }
            else if (!_patients.Add(patient)) return;
            Count++;
            if (Sample.Count < DailyCounts.SampleSize) Sample.Add(index);
        }

        public void Reset()
        {
            Count = 0;
            _first = null;
            _patients = null;
            Sample.Clear();
            Windowed = false;
        }
    }
}
