namespace Wardline.Monitoring.Synthetic;

/// <summary>The injected violations: planned once (who, whom, which day) at construction, written and labelled as the stream is read.</summary>
internal sealed partial class SyntheticHospital
{
    /// <summary>Labels shared by several plans of one enumeration (a persistent outlier, a user overusing break-glass), by "detection|user".</summary>
    private readonly Dictionary<string, LabelledViolation> _shared = new(StringComparer.Ordinal);

    private readonly HashSet<string> _used = new(StringComparer.Ordinal);

    private LabelledViolation? Outlier(Worker w, DayWriter writer)
    {
        if (writer.Day < _o.WarmDays) return null;
        var key = "peer-outlier|" + w.Name;
        if (!_shared.TryGetValue(key, out var label))
        {
            _shared[key] = label = writer.Label("peer-outlier", w.Name, null, "opens several times as many patients a day as their peers, every day");
            label.Cover(EvaluationStartMs, EndMs);
        }
        return label;
    }

    private LabelledViolation Shared(DayWriter writer, string detection, string user, string what)
    {
        var key = detection + "|" + user;
        if (!_shared.TryGetValue(key, out var label)) _shared[key] = label = writer.Label(detection, user, null, what);
        return label;
    }

    private int EvalDay(int i, int n, int earliest) => Math.Min(_o.Days - 2, earliest + i * (_o.Days - 2 - earliest) / Math.Max(1, n));

    /// <summary>A time within the worker's shift on the day or one of the next days.</summary>
    private (int Day, long At)? OnShiftTime(Worker w, int day, Random random)
    {
        for (var d = day; d < _o.Days - 1; d++)
        {
            if (Shift(w, d) is { } s && s.To - s.From > 2 * HourMs)
                return (d, s.From + 30 * MinuteMs + (long)(random.NextDouble() * (s.To - s.From - 2 * HourMs)));
        }
        return null;
    }

    /// <summary>Nothing documented or personal ties the worker to the patient around the instant.</summary>
    private static bool Unrelated(Worker w, Pat p, long at, bool allowSurname = false, bool allowStaff = false, bool allowVip = false, bool allowAddress = false,
        bool allowContact = false)
    {
        if (!allowVip && p.Vip) return false;
        if (!allowStaff && p.Staff >= 0) return false;
        if (p.Staff == w.Index || p.Index == w.OwnPatient) return false;
        if (!allowSurname && p.Surname == w.Surname) return false;
        if (!allowAddress && p.Address == w.Address || !allowContact && p.Contacts.Contains(w.FullName)) return false;
        foreach (var s in p.Stays)
        {
            foreach (var t in s.Team)
            {
                if (t.Worker == w.Index) return false;
            }
            if ((s.Dept == w.Dept || s.Dept == w.NewDept) && s.ToMs >= at - 32 * DayMs && s.FromMs <= at + 2 * DayMs) return false;
        }
        return true;
    }

    private static bool StaysWithin(Pat p, long from, long to) => p.Stays.Any(s => s.ToMs >= from && s.FromMs <= to);

    private void PlanViolations(Random random)
    {
        var n = _o.PerKind;
        var first = _o.WarmDays + 1;
        var actors = _workers.Where(w => w is { Service: false, Special: false } && w.Role is "nurse" or "physician" or "psychiatrist" or "therapist" or "receptionist").ToList();
        // One violation of a kind per user: a second would fall in the same case as the first.
        Worker Actor(string kind, Func<Worker, bool>? filter = null)
        {
            for (var tries = 0; ; tries++)
            {
                var w = actors[random.Next(actors.Count)];
                if (w.Outlier || filter is not null && !filter(w) && tries < 5000) continue;
                if (!_used.Add(kind + "|" + w.Name) && tries < 5000) continue;
                return w;
            }
        }
        Pat RandomPatient(Func<Pat, bool> ok)
        {
            for (var tries = 0; tries < 200_000; tries++)
            {
                var p = _patients[random.Next(_patients.Count)];
                if (ok(p)) return p;
            }
            throw new InvalidOperationException("No patient fits an injected violation; the hospital is too small.");
        }
        // Persistent peer outliers first, so no other violation is given to them.
        var outliers = _workers.Where(w => w is { Role: "nurse", Special: false, Charge: false } && w.Dept is "general-medicine" or "intensive-care" or "emergency" or "cardiology" or "oncology" or "pediatrics").ToList();
        for (var i = 0; i < n && outliers.Count > 0; i++)
        {
            var w = outliers[random.Next(outliers.Count)];
            outliers.Remove(w);
            w.Outlier = true;
        }

        // Snooping on people close to the user, in their shift.
        void Snoop(string kind, int i, Func<Worker, bool> eligible, Func<Worker, long, Pat?> victim, string what, int earliest = 0)
        {
            for (var tries = 0; tries < 500; tries++)
            {
                var w = Actor(kind, eligible);
                if (OnShiftTime(w, EvalDay(i, n, Math.Max(first, earliest)), random) is not { } when) continue;
                if (victim(w, when.At) is not { } p) continue;
                var requests = 1 + random.Next(3);
                var search = random.NextDouble() < 0.5;
                _plans.Add(new Plan(when.Day, kind, writer =>
                {
                    var label = writer.Label(kind, w.Name, p.Id, what);
                    var at = when.At;
                    if (search)
                    {
                        writer.Search(w.Name, w.Source, at, "identifier", [p.Id], "policy-filter", label);
                        at += 20_000;
                    }
                    for (var r = 0; r < requests; r++)
                    {
                        writer.Read(w.Name, w.Source, p.Id, at, "department-clinical-read", writer.Resources(w, p, 1 + writer.Random.Next(3)), label: label);
                        at += (30 + writer.Random.Next(200)) * 1000;
                    }
                }));
                return;
            }
        }
        Pat? From(List<int> pool, Worker w, long at, Func<Pat, bool> ok)
        {
            var fits = pool.Select(i => _patients[i]).Where(ok).ToList();
            return fits.Count == 0 ? null : fits[random.Next(fits.Count)];
        }
        for (var i = 0; i < n; i++)
        {
            Snoop("self-access", i, w => w.OwnPatient >= 0, (w, _) => _patients[w.OwnPatient], "opened their own record");
            Snoop("same-surname", i, w => w.Relatives.Count > 0,
                (w, at) => From(w.Relatives, w, at, p => p.Surname == w.Surname && Unrelated(w, p, at, allowSurname: true)), "a relative with the same surname");
            Snoop("same-address", i, w => w.Household.Count > 0,
                (w, at) => From(w.Household, w, at, p => p.Address == w.Address && Unrelated(w, p, at, allowSurname: true, allowAddress: true, allowContact: true)), "someone of the user's household");
            Snoop("listed-contact", i, w => w.Friends.Count > 0,
                (w, at) => From(w.Friends, w, at, p => p.Contacts.Contains(w.FullName) && Unrelated(w, p, at, allowContact: true)), "a patient who lists the user as a contact");
            Snoop("coworker", i, _ => true,
                (w, at) => RandomPatient(p => p.Staff >= 0 && Unrelated(w, p, at, allowStaff: true)), "a coworker's record");
            Snoop("vip", i, _ => true, (w, at) => RandomPatient(p => p.Vip && Unrelated(w, p, at, allowVip: true)), "a VIP's record");
            Snoop("no-care-relationship", i, _ => true,
                (w, at) => RandomPatient(p => Unrelated(w, p, at) && !StaysWithin(p, at - 32 * DayMs, at + DayMs)), "a patient with no relationship, not treated anywhere lately");
            Snoop("department-mismatch", i, w => w.Role is "nurse" or "physician" && w.Dept != "radiology",
                (w, at) => RandomPatient(p => p.Stays.Any(s => s.FromMs <= at && s.ToMs >= at && s.Dept != w.Dept) && Unrelated(w, p, at)), "a patient being treated in another department");
        }
        PlanSensitive(n, first, Actor, RandomPatient, random);
        PlanRecordChanges(n, first, random);
        PlanBreakGlass(n, first, Actor, RandomPatient, random);
        PlanBehaviour(n, first, Actor, RandomPatient, random);
        PlanAccounts(n, random);
        PlanSignIns(n, first, random);
        // Last, so the plans above draw the same numbers as before it was added.
        PlanGrants(n, first, random);
    }
}
