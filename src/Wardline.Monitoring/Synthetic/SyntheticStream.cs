using System.Globalization;

namespace Wardline.Monitoring.Synthetic;

internal sealed partial class SyntheticHospital
{
    private static readonly string[] NurseReads = ["Observation", "MedicationRequest", "CarePlan", "MedicationAdministration", "Patient", "Observation"];
    private static readonly string[] PhysicianReads = ["Observation", "Condition", "DiagnosticReport", "MedicationRequest", "DocumentReference", "Patient", "Encounter", "Observation"];
    private static readonly string[] PharmacistReads = ["MedicationRequest", "AllergyIntolerance", "Observation", "MedicationRequest"];
    private static readonly string[] TherapistReads = ["CarePlan", "DocumentReference", "Patient", "Goal"];
    private static readonly string[] ReceptionReads = ["Patient", "Encounter", "Coverage"];
    private static readonly string[] BillingReads = ["Claim", "Coverage", "ExplanationOfBenefit"];

    /// <summary>
    /// The ledger, in index order (0, 1, ...): a day is generated, sorted by time and handed out before the
    /// next is made, so memory holds about a day. <see cref="Labels"/> is refilled as this is read.
    /// </summary>
    public IEnumerable<MonitorEvent> Events()
    {
        var labels = new List<LabelledViolation>();
        _labels = labels;
        _shared.Clear();
        var pending = new List<Pending>();
        long index = 0;
        long seq = 0;
        for (var day = 0; day < _o.Days; day++)
        {
            var writer = new DayWriter(this, day, new Random(unchecked(_o.Seed * 1_000_003 + day * 7_919 + 11)), pending, labels, seq);
            writer.Accounts();
            writer.Work();
            foreach (var plan in _plans)
            {
                if (plan.Day == day) plan.Run(writer);
            }
            seq = writer.Seq;
            pending.Sort(static (a, b) => a.Event.AtMs != b.Event.AtMs ? a.Event.AtMs.CompareTo(b.Event.AtMs) : a.Seq.CompareTo(b.Seq));
            var cut = day == _o.Days - 1 ? long.MaxValue : _startMs + (day + 1) * DayMs;
            var taken = 0;
            foreach (var p in pending)
            {
                if (p.Event.AtMs >= cut) break;
                taken++;
                var e = p.Event with { Index = index };
                p.Label?.Add(index, e.AtMs);
                index++;
                yield return e;
            }
            pending.RemoveRange(0, taken);
        }
    }

    private readonly record struct Pending(MonitorEvent Event, long Seq, LabelledViolation? Label);

    private sealed record Plan(int Day, string Kind, Action<DayWriter> Run);

    /// <summary>Writes one day's entries: sign-ins, the work of every member of staff on shift, account changes.</summary>
    private sealed class DayWriter(SyntheticHospital h, int day, Random random, List<Pending> output, List<LabelledViolation> labels, long seq)
    {
        private int _correlation;

        public long Seq => seq;

        public Random Random => random;

        public int Day => day;

        public long Midnight => h._startMs + day * DayMs;

        public SyntheticHospital Hospital => h;

        private void Add(MonitorEvent e, LabelledViolation? label) => output.Add(new Pending(e, seq++, label));

        public LabelledViolation Label(string detection, string user, string? patient, string what)
        {
            var l = new LabelledViolation(detection, user, patient, what);
            labels.Add(l);
            return l;
        }

        private string Correlation() => string.Create(CultureInfo.InvariantCulture, $"{day}-{_correlation++}");

        // ---- entries ---------------------------------------------------------------------------------

        public void Security(string kind, string? user, string? actor, string outcome, string? detail, string? source, long at, LabelledViolation? label = null) =>
            Add(new MonitorEvent
            {
                Index = -1, AtMs = at, Kind = EntryKind.Security, Event = kind, User = user, Actor = actor, Outcome = outcome, Detail = detail, Source = source,
            }, label);

        private void Decision(string user, string source, string? patient, long at, string action, string type, string? id, bool permitted, string rule,
            string correlation, string? purpose, LabelledViolation? label) =>
            Add(new MonitorEvent
            {
                Index = -1, AtMs = at, Kind = EntryKind.Access, Event = "decision", User = user, Patient = patient, ResourceType = type, ResourceId = id,
                Action = action, Permitted = permitted, Rule = rule, Purpose = purpose, Source = source, Correlation = correlation,
            }, label);

        private void Outcome(string user, string source, long at, string action, string? type, string? id, int status, string correlation, string? purpose,
            string? detail, LabelledViolation? label) =>
            Add(new MonitorEvent
            {
                Index = -1, AtMs = at, Kind = EntryKind.Access, Event = "outcome", User = user, ResourceType = type, ResourceId = id, Action = action,
                Status = status, Purpose = purpose, Source = source, Correlation = correlation, Detail = detail,
            }, label);

        /// <summary>One read request: a decision per resource judged and the outcome, sharing a correlation id.</summary>
        public void Read(string user, string source, string patient, long at, string rule, IReadOnlyList<(string Type, string Id)> resources,
            string? purpose = null, LabelledViolation? label = null)
        {
            var c = Correlation();
            foreach (var (type, id) in resources) Decision(user, source, patient, at, "Read", type, id, true, rule, c, purpose, label);
            Outcome(user, source, at + 4 + random.Next(40), "Read", resources[0].Type, resources[0].Id, 200, c, purpose, null, label);
        }

        public void Denied(string user, string source, string patient, long at, string type, LabelledViolation? label)
        {
            var c = Correlation();
            var id = ResourceId(type, patient);
            Decision(user, source, patient, at, "Read", type, id, false, "default-deny", c, null, label);
            Outcome(user, source, at + 3 + random.Next(20), "Read", type, id, 403, c, null, null, label);
        }

        /// <summary>A search: the type-level filter decision, one policy-filter decision per patient shown, and the outcome with the parameter names.</summary>
        public void Search(string user, string source, long at, string parameters, IReadOnlyList<string> shown, string rule, LabelledViolation? label = null)
        {
            var c = Correlation();
            Decision(user, source, null, at, "Search", "Patient", null, true, "policy-filter", c, null, label);
            foreach (var p in shown) Decision(user, source, p, at, "Search", "Patient", p, true, "policy-filter", c, null, label);
            Outcome(user, source, at + 8 + random.Next(80), "Search", "Patient", null, 200, c, null, "params=" + parameters, label);
            _ = rule;
        }

        public void Write(string user, string source, string patient, long at, string @event, string type, string id, string? status, string rule, LabelledViolation? label = null)
        {
            var c = Correlation();
            Add(new MonitorEvent
            {
                Index = -1, AtMs = at, Kind = EntryKind.Write, Event = @event, User = user, Patient = patient, ResourceType = type, ResourceId = id,
                Detail = status is null ? null : "status=" + status, Source = source, Correlation = c,
            }, label);
            var action = @event switch { "create" => "Create", "update" => "Update", _ => "Delete" };
            Decision(user, source, patient, at + 1, action, type, id, true, rule, c, null, label);
            Outcome(user, source, at + 2 + random.Next(30), action, type, id, @event == "create" ? 201 : 200, c, null, null, label);
        }

        public string ResourceId(string type, string patient) =>
            string.Create(CultureInfo.InvariantCulture, $"{type[..3].ToLowerInvariant()}-{patient}-{random.Next(6)}");

        // ---- the day's work ----------------------------------------------------------------------------

        public void Accounts()
        {
            foreach (var w in h._workers)
            {
                if (day == 0)
                {
                    // The accounts as provisioned: the ledger's account history starts here (see the doc).
                    Security("AccountCreated", w.Name, "admin", "succeeded",
                        $"roles={w.Role} tier=2 departments={w.Dept} treats={string.Join(',', w.Treats)} break-glass={(w.Role == "physician" ? "yes" : "no")} password=none",
                        null, h._startMs + w.Index);
                }
                if (w.DisableDay == day)
                    Security("AccountDisabled", w.Name, "admin", "succeeded", "disabled", null, Midnight + 9 * HourMs + w.Index * 1000);
                if (w.TransferDay == day)
                    Security("AccountChanged", w.Name, "admin", "succeeded",
                        $"changed departments; now roles={w.Role} tier=2 departments={w.NewDept} treats= break-glass=no", null, Midnight + 6 * HourMs + w.Index * 1000);
            }
        }

        public void Work()
        {
            var from = Midnight - 8 * HourMs;
            var to = Midnight + DayMs + 8 * HourMs;
            var mine = new Dictionary<int, List<(Stay Stay, string Kind, long From, long To)>>();
            var census = new Dictionary<string, List<Stay>>(StringComparer.Ordinal);
            var discharged = new List<Stay>();
            var active = new List<Stay>();
            foreach (var s in h._stays)
            {
                if (s.ToMs < Midnight - 14 * DayMs || s.FromMs > to) continue;
                if (s.ToMs < Midnight && s.ToMs >= Midnight - 14 * DayMs) discharged.Add(s);
                if (s.ToMs < from) continue;
                active.Add(s);
                if (!census.TryGetValue(s.Dept, out var list)) census[s.Dept] = list = [];
                list.Add(s);
                foreach (var t in s.Team)
                {
                    if (t.ToMs < from || t.FromMs > to) continue;
                    if (!mine.TryGetValue(t.Worker, out var m)) mine[t.Worker] = m = [];
                    m.Add((s, t.Kind, t.FromMs, t.ToMs));
                }
            }
            foreach (var w in h._workers)
            {
                if (w.Service)
                {
                    Service(w, active);
                    continue;
                }
                var shift = h.Shift(w, day);
                if (shift is { } sh)
                {
                    SignIn(w, sh.From - random.Next(15) * MinuteMs);
                    if (w.Role != "administrator") Shift(w, sh, mine.GetValueOrDefault(w.Index) ?? [], census.GetValueOrDefault(w.DeptOn(day)) ?? [], discharged, active);
                }
                // Physicians on call some nights read their own inpatients from home.
                if (w.Shape == Shape.Weekday && day <= w.LastDay && (day * 5 + w.Offset) % 11 == 0 && mine.TryGetValue(w.Index, out var own))
                {
                    // Those in hospital at the time of the call: a discharged patient's results wait for the morning.
                    var at = Midnight + 19 * HourMs + random.Next(11 * 60) * MinuteMs;
                    var inpatients = own.Where(x => x.Kind == "care-team" && x.Stay.FromMs <= at && x.Stay.ToMs >= at).ToList();
                    if (inpatients.Count == 0) continue;
                    SignIn(w, at - MinuteMs);
                    for (var k = 1 + random.Next(3); k > 0; k--)
                    {
                        var p = h._patients[inpatients[random.Next(inpatients.Count)].Stay.Patient];
                        Read(w.Name, w.Source, p.Id, at, Rule(w), Resources(w, p, 1 + random.Next(3)));
                        at += (2 + random.Next(10)) * MinuteMs;
                    }
                }
            }
        }

        public void SignIn(Worker w, long at)
        {
            var source = w.Source;
            if (random.NextDouble() < 0.04)
            {
                for (var k = 1 + random.Next(2); k > 0; k--)
                {
                    Security("SignInFailed", w.Name, w.Name, "failed", "wrong name or password", source, at);
                    at += 5000 + random.Next(20_000);
                }
            }
            Security("SignIn", w.Name, w.Name, "pending", "password accepted; awaiting totp", source, at);
            at += 4000 + random.Next(15_000);
            if (random.NextDouble() < 0.015)
            {
                Security("MfaFailed", w.Name, w.Name, "failed", "wrong code", source, at);
                at += 10_000 + random.Next(20_000);
            }
            Security("SignIn", w.Name, w.Name, "succeeded", "password+totp", source, at);
            Security("TokenIssued", w.Name, "ehr", "succeeded", "client ehr", source, at + 50);
        }

        private void Service(Worker w, List<Stay> active)
        {
            if (active.Count == 0) return;
            for (var at = Midnight + random.Next(240_000); at < Midnight + DayMs; at += 120_000 + random.Next(240_000))
            {
                var p = h._patients[active[random.Next(active.Count)].Patient];
                if (random.NextDouble() < 0.5)
                    Write(w.Name, w.Source, p.Id, at, "create", "Observation", $"lab-{p.Id}-{day}-{_correlation}", "final", "integration-engine-clinical");
                else
                    Read(w.Name, w.Source, p.Id, at, "integration-engine-clinical", [("Encounter", ResourceId("Encounter", p.Id))]);
            }
        }

        private static string Rule(Worker w) => w.Role switch
        {
            "pharmacist" => "pharmacy-department",
            "billing_clerk" => "billing-financial",
            "receptionist" => "reception-department",
            "therapist" => "care-team-read",
            _ => "department-clinical-read",
        };

        private int Target(Worker w)
        {
            var ed = w.DeptOn(day) == "emergency";
            return w.Role switch
            {
                "nurse" => ed ? 14 + random.Next(7) : 8 + random.Next(6),
                "physician" => ed ? 14 + random.Next(11) : w.Dept == "radiology" ? 15 + random.Next(11) : 10 + random.Next(7),
                "psychiatrist" => 8 + random.Next(5),
                "therapist" => 6 + random.Next(4),
                "pharmacist" => 20 + random.Next(11),
                "receptionist" => ed ? 25 + random.Next(11) : 15 + random.Next(8),
                "billing_clerk" => 30 + random.Next(21),
                _ => 0,
            };
        }

        private void Shift(Worker w, (long From, long To) shift, List<(Stay Stay, string Kind, long From, long To)> mine, List<Stay> census,
            List<Stay> discharged, List<Stay> active)
        {
            var target = Target(w);
            var touches = new List<(Pat Patient, long At)>();
            var seen = new HashSet<int>();
            // A time in the shift while the relationship or stay lasts (null when they do not meet).
            long? Within(long from, long to)
            {
                var a = Math.Max(from, shift.From);
                var b = Math.Min(to, shift.To);
                return b <= a ? null : a + (long)(random.NextDouble() * (b - a));
            }
            if (w.Role == "billing_clerk")
            {
                for (var i = 0; i < target && discharged.Count > 0; i++)
                {
                    var s = discharged[random.Next(discharged.Count)];
                    if (s.Patient != w.OwnPatient && seen.Add(s.Patient)) touches.Add((h._patients[s.Patient], Within(shift.From, shift.To)!.Value));
                }
            }
            else
            {
                var relevant = mine.Where(m => m.To >= shift.From - 2 * HourMs && m.From <= shift.To).ToList();
                Shuffle(relevant);
                foreach (var m in relevant)
                {
                    if (touches.Count >= target) break;
                    // Someone who moved to another department leaves the old department's care teams.
                    if (w.TransferDay >= 0 && day >= w.TransferDay && m.Stay.Dept == w.Dept) continue;
                    if (m.Stay.Patient == w.OwnPatient || Within(m.From, m.To) is not { } at) continue;
                    if (seen.Add(m.Stay.Patient)) touches.Add((h._patients[m.Stay.Patient], at));
                }
                // Others of the department (covering a colleague, a question from the ward): explained by the stay only.
                // Pharmacists work only from their ward lists.
                var extras = w.Role switch { "receptionist" => target, "pharmacist" => 0, _ => Math.Max(1, target / 7) };
                if (touches.Count + extras > target && w.Role != "receptionist") extras = Math.Max(1, target - touches.Count);
                for (var i = 0; i < extras && census.Count > 0; i++)
                {
                    var s = census[random.Next(census.Count)];
                    if (s.Patient == w.OwnPatient || Within(s.FromMs, s.ToMs) is not { } at) continue;
                    if (seen.Add(s.Patient)) touches.Add((h._patients[s.Patient], at));
                }
            }
            touches.Sort(static (a, b) => a.At.CompareTo(b.At));
            foreach (var (p, at) in touches) Touch(w, p, at);
            // The charge nurse's census of the department, once a day shift.
            if (w.Charge && h.Shift(w, day) is { } s2 && (s2.From - Midnight) / HourMs == 7 && census.Count > 0)
            {
                var at = shift.From + HourMs + random.Next(60) * MinuteMs;
                var present = census.Where(s => s.FromMs <= at && s.ToMs >= at).Select(s => h._patients[s.Patient].Id).Distinct().Take(20 + random.Next(21)).ToList();
                if (present.Count > 0) Search(w.Name, w.Source, at, "_count,organization", present, "department-clinical-read");
            }
            // Undocumented curbside consults: a clinician opens another department's patient with nothing on record.
            if (w.Clinical && active.Count > 0 && random.NextDouble() < h._o.UndocumentedConsultShare)
            {
                var s = active[random.Next(active.Count)];
                if (s.Dept != w.DeptOn(day) && !seen.Contains(s.Patient) && s.Patient != w.OwnPatient)
                {
                    var p = h._patients[s.Patient];
                    Read(w.Name, w.Source, p.Id, Within(shift.From, shift.To)!.Value, Rule(w), Resources(w, p, 1 + random.Next(2)));
                }
            }
            if (w.Outlier) Browse(w, shift, census, 50 + random.Next(16), seen, h.Outlier(w, this));
        }

        /// <summary>Opens many of the department's patients of the last month, one or two reads each.</summary>
        public void Browse(Worker w, (long From, long To) shift, List<Stay> census, int count, HashSet<int> seen, LabelledViolation? label)
        {
            var pool = census.Count > 0 ? census : h._stays;
            var done = 0;
            for (var tries = 0; done < count && tries < count * 5; tries++)
            {
                var s = pool[random.Next(pool.Count)];
                if (!seen.Add(s.Patient)) continue;
                var p = h._patients[s.Patient];
                if (p.Vip || p.Staff >= 0 || p.Surname == w.Surname || p.Address == w.Address) continue;
                var at = shift.From + (long)(random.NextDouble() * (shift.To - shift.From));
                Read(w.Name, w.Source, p.Id, at, Rule(w), Resources(w, p, 1), label: label);
                done++;
            }
        }

        public IReadOnlyList<(string, string)> Resources(Worker w, Pat p, int n)
        {
            var types = w.Role switch
            {
                "nurse" => NurseReads,
                "pharmacist" => PharmacistReads,
                "therapist" => TherapistReads,
                "receptionist" => ReceptionReads,
                "billing_clerk" => BillingReads,
                _ => PhysicianReads,
            };
            var list = new List<(string, string)>(n);
            for (var i = 0; i < n; i++)
            {
                var type = types[random.Next(types.Length)];
                list.Add((type, ResourceId(type, p.Id)));
            }
            if (w.Treats.Contains("PSY") && p.Stays.Any(s => s.Dept == "psychiatry") && random.NextDouble() < 0.4)
                list.Add(random.NextDouble() < 0.5 ? ("Condition", "psy-" + p.Id) : ("DocumentReference", "psy-" + p.Id));
            if (w.Treats.Contains("HIV") && p.Hiv && random.NextDouble() < 0.4) list.Add(("Observation", "hiv-" + p.Id));
            return list;
        }

        private void Touch(Worker w, Pat p, long at)
        {
            var rule = Rule(w);
            var searches = w.Role is not ("billing_clerk" or "pharmacist");
            if (searches && random.NextDouble() < 0.3)
            {
                Search(w.Name, w.Source, at, "identifier", [p.Id], rule);
                at += (5 + random.Next(40)) * 1000;
            }
            else if (searches && random.NextDouble() < 0.08)
            {
                var shown = new List<string> { p.Id };
                if (random.NextDouble() < 0.2 && h._bySurname.TryGetValue(p.Surname, out var same) && same.Count > 1)
                {
                    var other = h._patients[same[random.Next(same.Count)]];
                    if (other.Index != p.Index) shown.Add(other.Id);
                }
                Search(w.Name, w.Source, at, random.NextDouble() < 0.5 ? "birthdate,family,given" : "family,given", shown, rule);
                at += (10 + random.Next(60)) * 1000;
            }
            var requests = w.Role is "physician" or "psychiatrist" ? 1 + random.Next(3) : 1 + random.Next(2);
            for (var r = 0; r < requests; r++)
            {
                Read(w.Name, w.Source, p.Id, at, rule, Resources(w, p, 1 + random.Next(w.Role == "billing_clerk" ? 2 : 4)));
                at += (20 + random.Next(240)) * 1000;
            }
            var (type, status, chance) = w.Role switch
            {
                "nurse" => ("Observation", "final", 0.6),
                "therapist" => ("DocumentReference", "current", 0.4),
                "physician" when w.Dept == "radiology" => ("DiagnosticReport", "final", 0.5),
                "physician" or "psychiatrist" => random.NextDouble() switch
                {
                    < 0.55 => ("DocumentReference", "current", 0.45),
                    < 0.78 => ("Condition", "confirmed", 0.45),
                    _ => ("MedicationRequest", "active", 0.45),
                },
                _ => ("", "", 0.0),
            };
            if (random.NextDouble() >= chance) return;
            var id = string.Create(CultureInfo.InvariantCulture, $"{type[..3].ToLowerInvariant()}-{p.Id}-{day}-{_correlation}");
            var writeRule = w.Role == "nurse" ? "nurse-write" : "prescriber-write-department";
            Write(w.Name, w.Source, p.Id, at, "create", type, id, status, writeRule);
            // The author corrects their own entry shortly after, now and then.
            if (type is "Condition" or "MedicationRequest" or "DiagnosticReport" or "Observation" && random.NextDouble() < 0.03)
                Write(w.Name, w.Source, p.Id, at + (5 + random.Next(55)) * MinuteMs, "update", type, id, type == "DiagnosticReport" ? "amended" : status, writeRule);
        }

        private void Shuffle<T>(List<T> list)
        {
            for (var i = list.Count - 1; i > 0; i--)
            {
                var j = random.Next(i + 1);
                (list[i], list[j]) = (list[j], list[i]);
            }
        }
    }
}
