namespace Wardline.Monitoring.Synthetic;

/// <summary>
/// A synthetic hospital shaped like the demo hospital (its department ids, the access policy's role
/// names) but bigger, and a month of its ledger: normal clinical work by role and department, with
/// violations of every kind the detections look for injected and labelled. Deterministic from the seed
/// (System.Random only). The organisation (staff, patients, households, stays, care relationships,
/// labelled resources) is built at construction; <see cref="Events"/> streams the ledger a day at a
/// time, so ten million entries never sit in memory. docs/monitoring-evaluation.md describes it.
/// </summary>
internal sealed partial class SyntheticHospital
{
    internal const long HourMs = 3_600_000;
    internal const long DayMs = 24 * HourMs;
    internal const long MinuteMs = 60_000;

    private static readonly DeptSpec[] Departments =
    [
        new("emergency", Ed: 70, Inpatient: 0, MinDays: 0, MaxDays: 0, Outpatient: 0,
            [("physician", 14, Shape.Rotating), ("nurse", 38, Shape.Rotating), ("receptionist", 5, Shape.DayEvening)]),
        new("cardiology", 0, 6, 2, 7, 25, [("physician", 10, Shape.Weekday), ("nurse", 26, Shape.Rotating), ("receptionist", 2, Shape.Office)]),
        new("oncology", 0, 4, 3, 10, 30, [("physician", 8, Shape.Weekday), ("nurse", 22, Shape.Rotating), ("receptionist", 2, Shape.Office)]),
        new("psychiatry", 0, 2, 5, 20, 20, [("psychiatrist", 6, Shape.Weekday), ("nurse", 14, Shape.Rotating), ("therapist", 6, Shape.Office)]),
        new("pediatrics", 0, 5, 1, 4, 20, [("physician", 8, Shape.Weekday), ("nurse", 24, Shape.Rotating), ("receptionist", 2, Shape.Office)]),
        new("radiology", 0, 0, 0, 0, 40, [("physician", 8, Shape.Weekday), ("nurse", 4, Shape.Office)]),
        new("intensive-care", 0, 3, 2, 8, 0, [("physician", 10, Shape.Rotating), ("nurse", 44, Shape.Rotating)]),
        new("general-medicine", 0, 12, 2, 8, 40,
            [("physician", 26, Shape.Weekday), ("nurse", 60, Shape.Rotating), ("therapist", 8, Shape.Office), ("receptionist", 4, Shape.Office)]),
        new("pharmacy", 0, 0, 0, 0, 0, [("pharmacist", 16, Shape.Office)]),
        new("billing", 0, 0, 0, 0, 0, [("billing_clerk", 16, Shape.Office)]),
        new("", 0, 0, 0, 0, 0, [("administrator", 6, Shape.Office)]),
    ];

    /// <summary>Departments whose inpatients a ward pharmacist covers.</summary>
    private static readonly string[] Wards = ["cardiology", "oncology", "psychiatry", "pediatrics", "intensive-care", "general-medicine"];

    private readonly SyntheticOptions _o;
    private readonly List<Worker> _workers = [];
    private readonly Dictionary<string, Worker> _workerByName = new(StringComparer.Ordinal);
    private readonly List<Pat> _patients = [];
    private readonly List<Stay> _stays = [];
    private readonly Dictionary<string, List<int>> _bySurname = new(StringComparer.Ordinal);
    private readonly double[] _surnameCdf;
    private readonly List<Plan> _plans = [];
    private readonly long _startMs;

    public SyntheticHospital(SyntheticOptions? options = null)
    {
        _o = options ?? new SyntheticOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(_o.Days, _o.WarmDays + 3);
        _startMs = _o.Start.ToUnixTimeMilliseconds();
        _surnameCdf = SurnameCdf(20_000);
        var random = new Random(_o.Seed);
        BuildStaff(random);
        BuildPatients(random);
        BuildStays(random);
        if (_o.PerKind > 0) PlanViolations(new Random(_o.Seed * 7919 + 17));
        Directory = BuildDirectory();
    }

    public SyntheticOptions Options => _o;

    /// <summary>The organisation model the detections read.</summary>
    public OrgDirectory Directory { get; }

    /// <summary>Midnight of the first examined day (after the warm-up), Unix ms.</summary>
    public long EvaluationStartMs => _startMs + _o.WarmDays * DayMs;

    public long EndMs => _startMs + _o.Days * DayMs;

    /// <summary>The violations injected in the stream last enumerated, filled as it is read.</summary>
    public IReadOnlyList<LabelledViolation> Labels => _labels;

    private List<LabelledViolation> _labels = [];

    /// <summary>The accounts by role, for realism checks.</summary>
    public IReadOnlyDictionary<string, string> RoleOf => _workers.ToDictionary(w => w.Name, w => w.Role, StringComparer.Ordinal);

    internal enum Shape { Rotating, Weekday, Office, DayEvening, Service }

    private sealed record DeptSpec(string Id, int Ed, int Inpatient, int MinDays, int MaxDays, int Outpatient, (string Role, int Count, Shape Shape)[] Staff);

    private sealed class Worker(int index, string name, string role, string dept, Shape shape)
    {
        public int Index { get; } = index;
        public string Name { get; } = name;
        public string Role { get; } = role;
        public string Dept { get; } = dept;
        public Shape Shape { get; } = shape;
        public int Offset { get; init; }
        public string? NewDept { get; set; }
        public int TransferDay { get; set; } = -1;
        /// <summary>Last day the person works (inclusive).</summary>
        public int LastDay { get; set; } = int.MaxValue;
        public int DisableDay { get; set; } = -1;
        public bool Departed { get; set; }
        public bool Service { get; init; }
        public string[] Treats { get; set; } = [];
        public bool Charge { get; set; }
        public bool Outlier { get; set; }
        public bool Special { get; set; }
        public string Source { get; init; } = "";
        public string Surname { get; set; } = "";
        public string FullName { get; init; } = "";
        public string Address { get; set; } = "";
        public int OwnPatient { get; set; } = -1;
        public List<int> Household { get; } = [];
        public List<int> Relatives { get; } = [];
        public List<int> Friends { get; } = [];

        public string DeptOn(int day) => TransferDay >= 0 && day >= TransferDay ? NewDept! : Dept;

        public bool Clinical => Role is "physician" or "nurse" or "psychiatrist" or "therapist";
    }

    private sealed class Pat(int index)
    {
        public int Index { get; } = index;
        public string Id { get; } = "p" + index.ToString("D6", System.Globalization.CultureInfo.InvariantCulture);
        public string Surname { get; set; } = "";
        public string Address { get; set; } = "";
        public List<string> Contacts { get; } = [];
        public int Staff { get; set; } = -1;
        public bool Vip { get; set; }
        public bool Hiv { get; set; }
        public List<Stay> Stays { get; } = [];
    }

    private sealed class Stay(int patient, string dept, long fromMs, long toMs, bool inpatient)
    {
        public int Patient { get; } = patient;
        public string Dept { get; } = dept;
        public long FromMs { get; } = fromMs;
        public long ToMs { get; } = toMs;
        public bool Inpatient { get; } = inpatient;
        public List<(int Worker, string Kind, long FromMs, long ToMs)> Team { get; } = [];
    }

    // ---- staff -------------------------------------------------------------------------------------

    private void BuildStaff(Random random)
    {
        var deptNo = 0;
        foreach (var d in Departments)
        {
            deptNo++;
            foreach (var (role, count, shape) in d.Staff)
            {
                var n = Math.Max(1, (int)Math.Round(count * _o.StaffScale));
                for (var i = 1; i <= n; i++)
                {
                    var prefix = role switch
                    {
                        "physician" => "dr", "psychiatrist" => "psy", "nurse" => "nurse", "therapist" => "ther", "receptionist" => "reg",
                        "pharmacist" => "pharm", "billing_clerk" => "billing", _ => "it",
                    };
                    var name = d.Id is "" or "pharmacy" or "billing" ? $"{prefix}.{i:D3}" : $"{prefix}.{d.Id}.{i:D3}";
                    var idx = _workers.Count;
                    var w = new Worker(idx, name, role, d.Id, shape)
                    {
                        Offset = random.Next(21),
                        Source = $"10.{deptNo}.{idx / 200}.{idx % 200 + 20}",
                        FullName = "n:s" + idx,
                        Treats = d.Id == "psychiatry" ? ["PSY"] : [],
                    };
                    _workers.Add(w);
                }
            }
        }
        for (var i = 1; i <= 2; i++)
        {
            var idx = _workers.Count;
            _workers.Add(new Worker(idx, $"svc.integration.{i}", "integration_engine", "", Shape.Service) { Service = true, Source = $"10.0.9.{i}", FullName = "n:s" + idx });
        }
        foreach (var w in _workers) _workerByName[w.Name] = w;
        // Infectious-disease physicians of general medicine treat HIV.
        foreach (var w in _workers.Where(w => w is { Dept: "general-medicine", Role: "physician" }).Take(3)) w.Treats = ["HIV"];
        // Two charge nurses per ward run a census of their department on their day shifts.
        foreach (var ward in Wards.Append("emergency"))
        {
            foreach (var w in _workers.Where(w => w.Dept == ward && w.Role == "nurse").Take(2)) w.Charge = true;
        }
    }

    /// <summary>Whether and when a member of staff works on a day: (start, end) in Unix ms.</summary>
    private (long From, long To)? Shift(Worker w, int day)
    {
        if (day > w.LastDay || day < 0) return null;
        var midnight = _startMs + day * DayMs;
        var weekday = day % 7 < 5;
        switch (w.Shape)
        {
            case Shape.Service:
                return (midnight, midnight + DayMs);
            case Shape.Rotating:
                if ((day + w.Offset) % 7 >= 5) return null;
                var kind = ((day + w.Offset) / 7 + w.Offset) % 3;
                var start = kind switch { 0 => 7, 1 => 15, _ => 23 };
                return (midnight + start * HourMs, midnight + (start + 8) * HourMs);
            case Shape.DayEvening:
                if ((day + w.Offset) % 7 >= 5) return null;
                var late = ((day + w.Offset) / 7 + w.Offset) % 2 == 1;
                return late ? (midnight + 15 * HourMs, midnight + 23 * HourMs) : (midnight + 7 * HourMs, midnight + 15 * HourMs);
            case Shape.Weekday:
                return weekday ? (midnight + 8 * HourMs, midnight + 18 * HourMs) : null;
            default:
                if (!weekday) return null;
                var begin = 7 + w.Offset % 3;
                return (midnight + begin * HourMs, midnight + (begin + 9) * HourMs);
        }
    }

    private bool OnShift(Worker w, long atMs)
    {
        var day = (int)Math.Floor((atMs - _startMs) / (double)DayMs);
        for (var d = day - 1; d <= day; d++)
        {
            if (Shift(w, d) is { } s && atMs >= s.From && atMs < s.To) return true;
        }
        return false;
    }

    // ---- patients ----------------------------------------------------------------------------------

    private static double[] SurnameCdf(int names)
    {
        // A skewed frequency list like a real one: the commonest surname is about 1.2% of people, and two
        // people picked at random share a surname about 0.17% of the time.
        var cdf = new double[names];
        var sum = 0.0;
        for (var i = 0; i < names; i++)
        {
            sum += 1.0 / (i + 10);
            cdf[i] = sum;
        }
        for (var i = 0; i < names; i++) cdf[i] /= sum;
        return cdf;
    }

    private string Surname(Random random)
    {
        var i = Array.BinarySearch(_surnameCdf, random.NextDouble());
        if (i < 0) i = ~i;
        return "s:" + Math.Min(i, _surnameCdf.Length - 1);
    }

    private Pat NewPatient(string surname, string address)
    {
        var p = new Pat(_patients.Count) { Surname = surname, Address = address };
        _patients.Add(p);
        if (!_bySurname.TryGetValue(surname, out var list)) _bySurname[surname] = list = [];
        list.Add(p.Index);
        return p;
    }

    private void BuildPatients(Random random)
    {
        var households = 0;
        var people = _workers.Where(w => !w.Service).ToList();
        // Staff households first: some live with patients of this hospital, some are patients themselves.
        foreach (var w in people)
        {
            w.Surname = Surname(random);
            w.Address = "a:w" + w.Index;
            var withFamily = random.NextDouble() < 0.45;
            var isPatient = random.NextDouble() < 0.25;
            if (withFamily || isPatient)
            {
                var address = "a:" + households++;
                w.Address = address;
                if (isPatient)
                {
                    var own = NewPatient(w.Surname, address);
                    own.Staff = w.Index;
                    w.OwnPatient = own.Index;
                }
                if (withFamily)
                {
                    var members = 1 + random.Next(3);
                    for (var m = 0; m < members; m++)
                    {
                        var p = NewPatient(random.NextDouble() < 0.7 ? w.Surname : Surname(random), address);
                        if (random.NextDouble() < 0.7) p.Contacts.Add(w.FullName);
                        w.Household.Add(p.Index);
                    }
                }
            }
            // Relatives with the same surname who live elsewhere (parents, siblings).
            if (random.NextDouble() < 0.4)
            {
                var n = 1 + random.Next(2);
                var address = "a:" + households++;
                for (var m = 0; m < n; m++) w.Relatives.Add(NewPatient(w.Surname, address).Index);
            }
        }
        while (_patients.Count < _o.Patients)
        {
            var address = "a:" + households++;
            var size = random.NextDouble() switch { < 0.35 => 1, < 0.65 => 2, < 0.85 => 3, _ => 4 };
            var surname = Surname(random);
            var first = _patients.Count;
            for (var m = 0; m < size && _patients.Count < _o.Patients; m++) NewPatient(random.NextDouble() < 0.75 ? surname : Surname(random), address);
            for (var i = first; i < _patients.Count; i++)
            {
                var p = _patients[i];
                if (_patients.Count - first > 1) p.Contacts.Add("n:p" + (i == first ? first + 1 : first));
                else p.Contacts.Add("n:x" + i);
            }
        }
        // Friends and in-laws who list a member of staff as their contact (another surname, another address).
        foreach (var w in people)
        {
            if (random.NextDouble() >= 0.3) continue;
            for (var tries = 0; tries < 20; tries++)
            {
                var p = _patients[random.Next(_patients.Count)];
                if (p.Staff >= 0 || p.Surname == w.Surname || p.Address == w.Address) continue;
                p.Contacts.Add(w.FullName);
                w.Friends.Add(p.Index);
                break;
            }
        }
        // Public figures and board members, flagged VIP; people treated for HIV.
        var vips = 0;
        while (vips < Math.Max(10, _o.Patients / 600))
        {
            var p = _patients[random.Next(_patients.Count)];
            if (p.Staff >= 0 || p.Vip || p.Contacts.Any(c => c.StartsWith("n:s", StringComparison.Ordinal))) continue;
            p.Vip = true;
            vips++;
        }
        for (var i = 0; i < _o.Patients / 300; i++) _patients[random.Next(_patients.Count)].Hiv = true;
    }

    // ---- stays and care relationships --------------------------------------------------------------

    private Worker? Pick(Random random, string dept, string role, int day, long atMs, bool onShift)
    {
        var candidates = _byDeptRole.TryGetValue((dept, role), out var list) ? list : [];
        if (candidates.Count == 0) return null;
        for (var tries = 0; tries < 30; tries++)
        {
            var w = candidates[random.Next(candidates.Count)];
            if (w.DeptOn(day) != dept || day > w.LastDay || w.Special && w.LastDay != int.MaxValue && day >= w.LastDay - 1) continue;
            if (onShift && tries < 25 && !OnShift(w, atMs)) continue;
            return w;
        }
        return null;
    }

    private readonly Dictionary<(string, string), List<Worker>> _byDeptRole = [];

    private void BuildStays(Random random)
    {
        foreach (var w in _workers)
        {
            foreach (var dept in new[] { w.Dept, w.NewDept })
            {
                if (dept is null) continue;
                if (!_byDeptRole.TryGetValue((dept, w.Role), out var list)) _byDeptRole[(dept, w.Role)] = list = [];
                if (!list.Contains(w)) list.Add(w);
            }
        }
        AssignAccountChanges(random);
        var pharmacists = _workers.Where(w => w.Role == "pharmacist").ToList();
        var clinical = Departments.Where(d => d.Ed + d.Inpatient + d.Outpatient > 0 && d.Id != "radiology").Select(d => d.Id).ToArray();
        for (var day = -30; day < _o.Days; day++)
        {
            var midnight = _startMs + day * DayMs;
            var weekday = ((day % 7) + 7) % 7 < 5;
            foreach (var d in Departments)
            {
                var ed = Scaled(random, d.Ed);
                for (var i = 0; i < ed; i++)
                {
                    var p = PickPatient(random);
                    // Arrivals peak in the day and evening.
                    var at = midnight + (long)(Math.Clamp(random.NextDouble() * 0.8 + random.NextDouble() * 0.4, 0, 0.999) * DayMs);
                    var to = at + (2 + random.Next(9)) * HourMs;
                    var stay = AddStay(p, d.Id, at, to, inpatient: false);
                    if (Pick(random, d.Id, "physician", day, at, onShift: true) is { } doc) stay.Team.Add((doc.Index, "encounter", at, to));
                    for (var k = 1 + random.Next(2); k > 0; k--)
                    {
                        if (Pick(random, d.Id, "nurse", day, at, onShift: true) is { } nurse) stay.Team.Add((nurse.Index, "encounter", at, to));
                    }
                    if (random.NextDouble() < 0.2) Admit(random, p, Wards[random.Next(Wards.Length)], day, to, pharmacists, clinical);
                }
                var inpatients = Scaled(random, d.Inpatient);
                for (var i = 0; i < inpatients; i++)
                {
                    Admit(random, PickPatient(random), d.Id, day, midnight + (8 + random.Next(12)) * HourMs, pharmacists, clinical);
                }
                if (!weekday) continue;
                var visits = Scaled(random, d.Outpatient);
                for (var i = 0; i < visits; i++)
                {
                    var p = PickPatient(random);
                    var at = midnight + 8 * HourMs + random.Next(9 * 60) * MinuteMs;
                    var stay = AddStay(p, d.Id, at, at + HourMs, inpatient: false);
                    var role = d.Id == "psychiatry" ? (random.NextDouble() < 0.5 ? "psychiatrist" : "therapist") : "physician";
                    if (Pick(random, d.Id, role, day, at, onShift: true) is { } doc) stay.Team.Add((doc.Index, "appointment", at, at + HourMs));
                    if (random.NextDouble() < 0.5 && Pick(random, d.Id, "nurse", day, at, onShift: true) is { } nurse) stay.Team.Add((nurse.Index, "encounter", at, at + HourMs));
                }
            }
        }
        // VIPs get treated too, by a care team that is expected to read their record.
        var vipRandom = new Random(_o.Seed + 5);
        foreach (var p in _patients.Where(p => p.Vip).Take(20).ToList())
        {
            var day = vipRandom.Next(_o.Days);
            Admit(vipRandom, p, Wards[vipRandom.Next(Wards.Length)], day, _startMs + day * DayMs + 10 * HourMs, pharmacists, clinical);
        }
    }

    private int Scaled(Random random, int perDay)
    {
        if (perDay == 0) return 0;
        var mean = perDay * _o.ActivityScale;
        return Math.Max(0, (int)Math.Round(mean + (random.NextDouble() - 0.5) * mean * 0.4));
    }

    private Pat PickPatient(Random random) => _patients[random.Next(_patients.Count)];

    private Stay AddStay(Pat p, string dept, long from, long to, bool inpatient)
    {
        var stay = new Stay(p.Index, dept, from, to, inpatient);
        p.Stays.Add(stay);
        _stays.Add(stay);
        return stay;
    }

    private void Admit(Random random, Pat p, string dept, int day, long from, List<Worker> pharmacists, string[] clinical)
    {
        var spec = Departments.First(d => d.Id == dept);
        var to = from + (spec.MinDays + random.Next(spec.MaxDays - spec.MinDays + 1)) * DayMs + random.Next(6) * HourMs;
        var stay = AddStay(p, dept, from, to, inpatient: true);
        var role = dept == "psychiatry" ? "psychiatrist" : "physician";
        for (var k = 1 + random.Next(2); k > 0; k--)
        {
            Worker? doc;
            if (p.Hiv && dept == "general-medicine") doc = _workers.Where(w => w.Treats.Contains("HIV")).ElementAt(random.Next(3));
            else doc = Pick(random, dept, role, day, from, onShift: false);
            if (doc is not null) stay.Team.Add((doc.Index, "care-team", from, to));
        }
        for (var k = 5 + random.Next(3); k > 0; k--)
        {
            if (Pick(random, dept, "nurse", day, from, onShift: false) is { } nurse) stay.Team.Add((nurse.Index, "care-team", from, to));
        }
        var ward = Array.IndexOf(Wards, dept);
        var covering = pharmacists.Where((_, i) => i % Wards.Length == ward).ToList();
        if (covering.Count > 0) stay.Team.Add((covering[random.Next(covering.Count)].Index, "care-team", from, to));
        if (dept is "general-medicine" or "psychiatry" && random.NextDouble() < 0.3 && Pick(random, dept, "therapist", day, from, onShift: false) is { } ther)
            stay.Team.Add((ther.Index, "referral", from, to));
        if (random.NextDouble() < 0.08)
        {
            var other = clinical[random.Next(clinical.Length)];
            if (other != dept && Pick(random, other, other == "psychiatry" ? "psychiatrist" : "physician", day, from, onShift: false) is { } consultant)
                stay.Team.Add((consultant.Index, "consult-order", from + DayMs, from + 3 * DayMs));
        }
        if (random.NextDouble() < 0.15 && Pick(random, "radiology", "physician", day, from, onShift: false) is { } radiologist)
            stay.Team.Add((radiologist.Index, "consult-order", from, from + 2 * DayMs));
    }

    /// <summary>A few leavers (disabled, or simply past their last day) and transfers; some of them are injected violations later.</summary>
    private void AssignAccountChanges(Random random)
    {
        var pool = _workers.Where(w => w.Role == "nurse" && w.Dept is "cardiology" or "oncology" or "general-medicine" or "pediatrics" && !w.Charge).ToList();
        var each = Math.Max(1, _o.PerKind / 3);
        Worker Take()
        {
            var w = pool[random.Next(pool.Count)];
            pool.Remove(w);
            w.Special = true;
            return w;
        }
        var span = _o.Days - _o.WarmDays - 6;
        for (var i = 0; i < each + 3; i++)
        {
            var w = Take();
            w.LastDay = _o.WarmDays + 1 + (i * span) / (each + 3);
            w.DisableDay = w.LastDay + 1;
            _disabled.Add(w);
        }
        for (var i = 0; i < each + 3; i++)
        {
            var w = Take();
            w.LastDay = _o.WarmDays + 1 + (i * span) / (each + 3);
            w.Departed = true;
            _departed.Add(w);
        }
        for (var i = 0; i < each + 3; i++)
        {
            var w = Take();
            w.TransferDay = _o.WarmDays + 1 + (i * span) / (each + 3);
            w.NewDept = w.Dept == "general-medicine" ? "cardiology" : "general-medicine";
            if (!_byDeptRole.TryGetValue((w.NewDept, w.Role), out var list)) _byDeptRole[(w.NewDept, w.Role)] = list = [];
            list.Add(w);
            _transferred.Add(w);
        }
    }

    private readonly List<Worker> _disabled = [];
    private readonly List<Worker> _departed = [];
    private readonly List<Worker> _transferred = [];

    private OrgDirectory BuildDirectory()
    {
        var staff = _workers.Select(w => new StaffMember(
            w.Name, [w.Role], w.DeptOn(int.MaxValue) is "" ? [] : [w.DeptOn(int.MaxValue)], w.Treats,
            PractitionerId: w.Clinical ? "pr-" + w.Index : null,
            Service: w.Service,
            DisabledAtMs: w.DisableDay >= 0 ? _startMs + w.DisableDay * DayMs + 9 * HourMs : null,
            // A leaver's account expires once their last shift is over (a night shift ends the next morning).
            ExpiresMs: w.Departed ? _startMs + (w.LastDay + 1) * DayMs + 12 * HourMs : null,
            SurnameKey: w.Service ? null : w.Surname,
            FullNameKey: w.Service ? null : w.FullName,
            AddressKey: w.Service ? null : w.Address,
            OwnPatientId: w.OwnPatient >= 0 ? _patients[w.OwnPatient].Id : null));
        var patients = _patients.Select(p => new PatientProfile(
            p.Id, p.Surname, p.Address, p.Contacts.Count == 0 ? null : [.. p.Contacts],
            StaffUser: p.Staff >= 0 ? _workers[p.Staff].Name : null, Vip: p.Vip,
            Stays: p.Stays.Count == 0 ? null : [.. p.Stays.Select(s => new DepartmentStay(s.Dept, s.FromMs, s.ToMs))]));
        var relationships = _stays.SelectMany(s => s.Team.Select(t => (_workers[t.Worker].Name, _patients[s.Patient].Id, new Relationship(t.Kind, t.FromMs, t.ToMs))));
        var labels = new List<(string, string, string[])>();
        foreach (var p in _patients)
        {
            if (p.Stays.Any(s => s.Dept == "psychiatry"))
            {
                labels.Add(("Condition", "psy-" + p.Id, ["PSY"]));
                labels.Add(("DocumentReference", "psy-" + p.Id, ["PSY"]));
            }
            if (p.Hiv) labels.Add(("Observation", "hiv-" + p.Id, ["HIV"]));
        }
        return new OrgDirectory(staff, patients, relationships, labels);
    }
}
