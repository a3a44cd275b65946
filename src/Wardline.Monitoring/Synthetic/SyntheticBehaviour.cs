using System.Globalization;

namespace Wardline.Monitoring.Synthetic;

/// <summary>Injected violations beyond a single snoop: sensitive records, record changes, break-glass, behaviour, accounts, sign-in attacks.</summary>
internal sealed partial class SyntheticHospital
{
    private void PlanSensitive(int n, int first, Func<string, Func<Worker, bool>?, Worker> actor, Func<Func<Pat, bool>, Pat> patient, Random random)
    {
        for (var i = 0; i < n; i++)
        {
            var hiv = i % 3 == 2;
            var w = actor("sensitive-label", x => x.Role is "nurse" or "physician" && x.Dept is not ("psychiatry" or "general-medicine" or "radiology"));
            if (OnShiftTime(w, EvalDay(i, n, first), random) is not { } when) continue;
            var p = hiv
                ? patient(x => x.Hiv && Unrelated(w, x, when.At))
                : patient(x => x.Stays.Any(s => s.Dept == "psychiatry" && s.FromMs <= when.At && s.ToMs >= when.At - 20 * DayMs) && Unrelated(w, x, when.At));
            _plans.Add(new Plan(when.Day, "sensitive-label", writer =>
            {
                var label = writer.Label("sensitive-label", w.Name, p.Id, hiv ? "an HIV-labelled result" : "a mental-health-labelled record");
                IReadOnlyList<(string, string)> resources = hiv ? [("Observation", "hiv-" + p.Id)] : [("DocumentReference", "psy-" + p.Id), ("Condition", "psy-" + p.Id)];
                writer.Read(w.Name, w.Source, p.Id, when.At, "department-clinical-read", resources, label: label);
            }));
        }
    }

    /// <summary>A clinician changes a colleague's confirmed diagnosis, final report or active prescription later the same day.</summary>
    private void PlanRecordChanges(int n, int first, Random random)
    {
        for (var i = 0; i < n; i++)
        {
            var radiology = i % 4 == 3;
            var dept = radiology ? "radiology" : Wards[random.Next(Wards.Length)];
            var role = dept == "psychiatry" ? "psychiatrist" : "physician";
            var doctors = _byDeptRole.GetValueOrDefault((dept, role))?.Where(w => !w.Special && !w.Outlier && w.Shape == Shape.Weekday).ToList() ?? [];
            if (doctors.Count < 2) continue;
            var day = EvalDay(i, n, first);
            while (day % 7 >= 5) day++;
            if (day >= _o.Days - 1) continue;
            var author = doctors[random.Next(doctors.Count)];
            var w = doctors.Where(d => d != author).ElementAt(random.Next(doctors.Count - 1));
            var t0 = _startMs + day * DayMs + (9 * 60 + random.Next(120)) * MinuteMs;
            var t1 = t0 + (2 * 60 + random.Next(240)) * MinuteMs;
            var stays = _stays.Where(s => s.Dept == dept && s.FromMs <= t0 && s.ToMs >= t1).ToList();
            if (stays.Count == 0) continue;
            var p = _patients[stays[random.Next(stays.Count)].Patient];
            var (type, before, after) = radiology ? ("DiagnosticReport", "final", "amended") : (i % 4) switch
            {
                0 => ("Condition", "confirmed", "refuted"),
                1 => ("Condition", "confirmed", "entered-in-error"),
                _ => ("MedicationRequest", "active", "cancelled"),
            };
            var delete = i % 5 == 4;
            var id = string.Create(CultureInfo.InvariantCulture, $"{type[..3].ToLowerInvariant()}-{p.Id}-x{i}");
            _plans.Add(new Plan(day, "final-record-change", writer =>
            {
                writer.Write(author.Name, author.Source, p.Id, t0, "create", type, id, before, "prescriber-write-department");
                var label = writer.Label("final-record-change", w.Name, p.Id, delete ? "deleted a colleague's final entry" : "changed a colleague's final entry");
                writer.Read(w.Name, w.Source, p.Id, t1 - 40_000, "department-clinical-read", [(type, id)], label: label);
                writer.Write(w.Name, w.Source, p.Id, t1, delete ? "delete" : "update", type, id, delete ? null : after, "prescriber-write-department", label);
            }));
        }
    }

    private void PlanBreakGlass(int n, int first, Func<string, Func<Worker, bool>?, Worker> actor, Func<Func<Pat, bool>, Pat> patient, Random random)
    {
        var declarations = 0;
        void Declare(Worker w, Pat p, int day, long at, bool labelled, string what, string? overuse)
        {
            var id = "bg-" + declarations++;
            _plans.Add(new Plan(day, "break-glass", writer =>
            {
                var label = labelled ? writer.Label("break-glass", w.Name, p.Id, what) : null;
                var until = DateTimeOffset.FromUnixTimeMilliseconds(at + 4 * HourMs).ToString("O", CultureInfo.InvariantCulture);
                writer.Security("BreakGlassDeclared", w.Name, w.Name, "granted", $"declaration {id} patient Patient/{p.Id} purpose ETREAT until {until}", w.Source, at, label);
                if (overuse is not null)
                {
                    Shared(writer, "break-glass-overuse", w.Name, "declared break-glass more often than anyone should").Cover(at, at + HourMs);
                }
                var t = at + 20_000;
                for (var k = 2 + writer.Random.Next(3); k > 0; k--)
                {
                    writer.Read(w.Name, w.Source, p.Id, t, "break-glass-read", writer.Resources(w, p, 1 + writer.Random.Next(3)), "ETREAT", label);
                    t += (30 + writer.Random.Next(120)) * 1000;
                }
            }));
        }
        // Legitimate: an emergency physician, now and then, for a patient who just arrived (found, as every use must be).
        for (var day = 0; day < _o.Days - 1; day++)
        {
            if (random.NextDouble() >= 0.4) continue;
            var arrivals = _stays.Where(s => s.Dept == "emergency" && s.FromMs >= _startMs + day * DayMs && s.FromMs < _startMs + (day + 1) * DayMs && s.Team.Count > 0).ToList();
            if (arrivals.Count == 0) continue;
            var stay = arrivals[random.Next(arrivals.Count)];
            var doc = _workers[stay.Team[0].Worker];
            if (doc.Role != "physician") continue;
            Declare(doc, _patients[stay.Patient], day, stay.FromMs + 5 * MinuteMs, labelled: true, "break-glass in the emergency department", null);
        }
        // Injected: a clinician outside the emergency department declares an emergency for an unrelated patient.
        for (var i = 0; i < n; i++)
        {
            var w = actor("break-glass", x => x.Role is "physician" or "nurse" && x.Dept != "emergency");
            if (OnShiftTime(w, EvalDay(i, n, first), random) is not { } when) continue;
            var p = patient(x => Unrelated(w, x, when.At));
            Declare(w, p, when.Day, when.At, labelled: true, "break-glass for an unrelated patient", null);
        }
        // Overuse: a few physicians declare five times within two weeks.
        var users = Math.Max(2, n / 3);
        for (var i = 0; i < users; i++)
        {
            var w = actor("break-glass-overuse", x => x.Role == "physician" && x.Dept != "emergency");
            var day = EvalDay(i, users, first);
            for (var k = 0; k < 5; k++)
            {
                if (OnShiftTime(w, day, random) is not { } when) break;
                var p = patient(x => Unrelated(w, x, when.At));
                Declare(w, p, when.Day, when.At, labelled: true, "break-glass, one of many", k >= 3 ? "overuse" : null);
                day = when.Day + 1 + random.Next(2);
            }
        }
    }

    private void PlanBehaviour(int n, int first, Func<string, Func<Worker, bool>?, Worker> actor, Func<Func<Pat, bool>, Pat> patient, Random random)
    {
        for (var i = 0; i < n; i++)
        {
            // A spree through the department's patients of the last month.
            var w = actor("volume-spike", x => x.Role is "nurse" or "physician" && x.Dept is not ("radiology" or "emergency"));
            if (OnShiftTime(w, EvalDay(i, n, first + 9), random) is { } spree)
            {
                var count = 70 + random.Next(40);
                _plans.Add(new Plan(spree.Day, "volume-spike", writer =>
                {
                    var label = writer.Label("volume-spike", w.Name, null, "opened several times their usual number of patients in a day");
                    var pool = _stays.Where(s => s.Dept == w.Dept && s.ToMs >= spree.At - 30 * DayMs && s.FromMs <= spree.At).ToList();
                    writer.Browse(w, (spree.At, spree.At + 3 * HourMs), pool, count, [], label);
                }));
            }

            // Reads at night by someone who works office hours.
            var night = actor("after-hours", x => x.Shape == Shape.Office && x.Role is "therapist" or "receptionist" or "nurse");
            var day = EvalDay(i, n, first + 10);
            while (day % 7 >= 5 || day % 7 == 0) day++;
            if (day < _o.Days - 1)
            {
                var at = _startMs + day * DayMs + (60 + random.Next(180)) * MinuteMs;
                var pool = _stays.Where(s => s.Dept == night.Dept && s.FromMs <= at && s.ToMs >= at - 20 * DayMs).Select(s => s.Patient).Distinct().ToList();
                if (pool.Count > 0)
                {
                    var chosen = Enumerable.Range(0, 2 + random.Next(4)).Select(_ => _patients[pool[random.Next(pool.Count)]]).ToList();
                    _plans.Add(new Plan(day, "after-hours", writer =>
                    {
                        var label = writer.Label("after-hours", night.Name, null, "read records in the middle of the night; works office hours");
                        var t = at;
                        foreach (var p in chosen)
                        {
                            writer.Read(night.Name, night.Source, p.Id, t, "department-clinical-read", writer.Resources(night, p, 1 + writer.Random.Next(2)), label: label);
                            t += (3 + writer.Random.Next(10)) * MinuteMs;
                        }
                    }));
                }
            }

            // Probing: refusals across many patients within half an hour.
            var prober = actor("probing", null);
            if (OnShiftTime(prober, EvalDay(i, n, first), random) is { } probe)
            {
                var victims = Enumerable.Range(0, 6 + random.Next(7)).Select(_ => patient(x => Unrelated(prober, x, probe.At)).Id).ToList();
                var tries = 12 + random.Next(9);
                _plans.Add(new Plan(probe.Day, "probing", writer =>
                {
                    var label = writer.Label("probing", prober.Name, null, "refused again and again across many patients");
                    var t = probe.At;
                    for (var k = 0; k < tries; k++)
                    {
                        writer.Denied(prober.Name, prober.Source, victims[k % victims.Count], t, k % 2 == 0 ? "Observation" : "DocumentReference", label);
                        t += (20 + writer.Random.Next(100)) * 1000;
                    }
                }));
            }

            // A search by name, then a patient with no relationship opened.
            var searcher = actor("search-then-unrelated", null);
            if (OnShiftTime(searcher, EvalDay(i, n, first), random) is { } search)
            {
                var p = patient(x => Unrelated(searcher, x, search.At));
                var gap = (60 + random.Next(420)) * 1000;
                _plans.Add(new Plan(search.Day, "search-then-unrelated", writer =>
                {
                    var label = writer.Label("search-then-unrelated", searcher.Name, p.Id, "searched by name, then opened an unrelated patient");
                    writer.Search(searcher.Name, searcher.Source, search.At, "family,given", [p.Id], "policy-filter", label);
                    writer.Read(searcher.Name, searcher.Source, p.Id, search.At + gap, "department-clinical-read", writer.Resources(searcher, p, 2), label: label);
                }));
            }

            // Bulk: one search disclosing a crowd, or a quick run of searches.
            var bulk = actor("bulk-access", null);
            if (OnShiftTime(bulk, EvalDay(i, n, first), random) is { } export)
            {
                var single = i % 2 == 0;
                var shown = Enumerable.Range(0, single ? 60 + random.Next(140) : 6 * 40).Select(_ => _patients[random.Next(_patients.Count)].Id).Distinct().ToList();
                _plans.Add(new Plan(export.Day, "bulk-access", writer =>
                {
                    var label = writer.Label("bulk-access", bulk.Name, null, single ? "one search disclosed a crowd of patients" : "a run of searches disclosed a crowd of patients");
                    if (single)
                    {
                        writer.Search(bulk.Name, bulk.Source, export.At, "_count,birthdate", shown, "policy-filter", label);
                        return;
                    }
                    var t = export.At;
                    for (var k = 0; k < 6; k++)
                    {
                        writer.Search(bulk.Name, bulk.Source, t, "_count,_offset,birthdate", shown.Skip(k * 40).Take(40).ToList(), "policy-filter", label);
                        t += (60 + writer.Random.Next(60)) * 1000;
                    }
                }));
            }
        }
    }

    /// <summary>Accounts that should not act: disabled, past their last day, or moved to another department.</summary>
    private void PlanAccounts(int n, Random random)
    {
        var each = Math.Max(1, n / 3);
        for (var i = 0; i < each && i < _disabled.Count; i++)
        {
            var w = _disabled[i];
            Late(w, w.DisableDay + 1 + random.Next(2), "the account was disabled and still read records");
        }
        for (var i = 0; i < each && i < _departed.Count; i++)
        {
            var w = _departed[i];
            Late(w, w.LastDay + 2 + random.Next(2), "the account's holder had left and it still read records");
        }
        void Late(Worker w, int day, string what)
        {
            if (day >= _o.Days - 1) return;
            var at = _startMs + day * DayMs + (10 * 60 + random.Next(360)) * MinuteMs;
            var pool = _stays.Where(s => s.Dept == w.Dept && s.FromMs <= at && s.ToMs >= at - 20 * DayMs).Select(s => s.Patient).ToList();
            if (pool.Count == 0) return;
            var chosen = Enumerable.Range(0, 1 + random.Next(3)).Select(_ => _patients[pool[random.Next(pool.Count)]]).ToList();
            _plans.Add(new Plan(day, "inactive-account", writer =>
            {
                var label = writer.Label("inactive-account", w.Name, null, what);
                var t = at;
                foreach (var p in chosen)
                {
                    writer.Read(w.Name, w.Source, p.Id, t, "department-clinical-read", writer.Resources(w, p, 1 + writer.Random.Next(2)), label: label);
                    t += (2 + writer.Random.Next(20)) * MinuteMs;
                }
            }));
        }
        for (var i = 0; i < each && i < _transferred.Count; i++)
        {
            var w = _transferred[i];
            if (OnShiftTime(w, w.TransferDay + 2 + random.Next(6), random) is not { } when) continue;
            var old = _stays.Where(s => s.Dept == w.Dept && s.FromMs <= when.At && s.ToMs >= when.At - 25 * DayMs).Select(s => _patients[s.Patient])
                .Where(p => !p.Stays.Any(s => s.Dept == w.NewDept && s.ToMs >= when.At - 90 * DayMs) && p.Stays.All(s => s.Team.All(t => t.Worker != w.Index))
                    && p.Staff < 0 && !p.Vip && p.Surname != w.Surname && p.Address != w.Address && !p.Contacts.Contains(w.FullName)).ToList();
            if (old.Count == 0) continue;
            var p = old[random.Next(old.Count)];
            _plans.Add(new Plan(when.Day, "inactive-account", writer =>
            {
                var label = writer.Label("inactive-account", w.Name, p.Id, "moved to another department and opened a patient of the old one");
                writer.Read(w.Name, w.Source, p.Id, when.At, "department-clinical-read", writer.Resources(w, p, 2), label: label);
            }));
        }
    }

    private void PlanSignIns(int n, int first, Random random)
    {
        var people = _workers.Where(w => !w.Service).ToList();
        for (var i = 0; i < n; i++)
        {
            // Password spraying: one address tries one or two passwords on many accounts.
            var day = EvalDay(i, n, first);
            var at = _startMs + day * DayMs + random.Next(24 * 60) * MinuteMs;
            var source = string.Create(CultureInfo.InvariantCulture, $"203.0.113.{10 + i}");
            var accounts = Enumerable.Range(0, 10 + random.Next(9)).Select(k => random.NextDouble() < 0.7 ? people[random.Next(people.Count)].Name : null).ToList();
            _plans.Add(new Plan(day, "password-spraying", writer =>
            {
                var label = writer.Label("password-spraying", "source:" + source, null, "one address tried many accounts");
                var t = at;
                foreach (var account in accounts)
                {
                    writer.Security("SignInFailed", account, account, "failed", account is null ? "wrong name or password (no such account)" : "wrong name or password", source, t, label);
                    t += (20 + writer.Random.Next(70)) * 1000;
                }
            }));

            // Brute force on one account.
            var target = people[random.Next(people.Count)];
            var day2 = EvalDay(i, n, first + 1);
            var at2 = _startMs + day2 * DayMs + random.Next(24 * 60) * MinuteMs;
            var failures = 12 + random.Next(14);
            var sources = Enumerable.Range(0, 1 + random.Next(3)).Select(k => string.Create(CultureInfo.InvariantCulture, $"198.51.100.{20 + i * 3 + k}")).ToList();
            _plans.Add(new Plan(day2, "sign-in-failures", writer =>
            {
                var label = writer.Label("sign-in-failures", target.Name, null, "many failed sign-ins on one account");
                var t = at2;
                for (var k = 0; k < failures; k++)
                {
                    writer.Security("SignInFailed", target.Name, target.Name, "failed", "wrong name or password", sources[k % sources.Count], t, label);
                    t += (10 + writer.Random.Next(25)) * 1000;
                }
            }));

            // Someone holding the password is refused the second factor again and again.
            var victim = people[random.Next(people.Count)];
            var day3 = EvalDay(i, n, first + 2);
            var at3 = _startMs + day3 * DayMs + random.Next(24 * 60) * MinuteMs;
            var rejections = 3 + random.Next(3);
            var from = string.Create(CultureInfo.InvariantCulture, $"192.0.2.{10 + i}");
            _plans.Add(new Plan(day3, "mfa-rejected", writer =>
            {
                var label = writer.Label("mfa-rejected", victim.Name, null, "a correct password followed by refused second factors");
                writer.Security("SignIn", victim.Name, victim.Name, "pending", "password accepted; awaiting totp", from, at3, label);
                var t = at3 + 20_000;
                for (var k = 0; k < rejections; k++)
                {
                    writer.Security("MfaFailed", victim.Name, victim.Name, "failed", "wrong code", from, t, label);
                    t += (40 + writer.Random.Next(120)) * 1000;
                }
            }));
        }
    }

    /// <summary>
    /// Grants of powerful access by the IT administrators (once from the command line), on weekdays in office hours.
    /// Most look legitimate (a senior locum, a promotion to tier 1, a nurse approved for break-glass); every one is a
    /// finding by design, so each is labelled privileged-grant. Beside each, two account changes that grant nothing (a
    /// new display name of a physician approved for break-glass, a new ordinary nurse account) and, for the locum, a
    /// later change of department are left unlabelled: a finding on them is a false positive.
    /// </summary>
    private void PlanGrants(int n, int first, Random random)
    {
        const string Kind = "privileged-grant";
        var admins = _workers.Where(w => w.Role == "administrator").ToList();
        var physicians = _workers.Where(w => w is { Role: "physician", Special: false, Outlier: false }).ToList();
        var nurses = _workers.Where(w => w is { Role: "nurse", Special: false, Outlier: false, Charge: false }).ToList();
        var clerks = _workers.Where(w => w is { Role: "receptionist", Special: false, Outlier: false }).ToList();
        if (admins.Count == 0 || physicians.Count == 0 || nurses.Count == 0 || clerks.Count == 0) return;
        Worker Pick(List<Worker> pool)
        {
            for (var tries = 0; ; tries++)
            {
                var w = pool[random.Next(pool.Count)];
                if (_used.Add(Kind + "|" + w.Name) || tries >= 5000) return w;
            }
        }
        static string Describe(string roles, int tier, string departments, string[] treats, bool breakGlass) =>
            $"roles={roles} tier={tier} departments={departments} treats={string.Join(',', treats)} break-glass={(breakGlass ? "yes" : "no")}";
        var count = Math.Max(3, n / 2);
        for (var i = 0; i < count; i++)
        {
            var day = EvalDay(i, count, first);
            while (day % 7 >= 5) day++;
            if (day >= _o.Days - 1) continue;
            var at = _startMs + day * DayMs + (9 * 60 + random.Next(6 * 60)) * MinuteMs;
            var admin = admins[random.Next(admins.Count)];
            string user, actor = admin.Name, @event, detail, what;
            string? later = null;
            switch (i % 6)
            {
                case 0:
                    user = string.Create(CultureInfo.InvariantCulture, $"dr.locum.{i:D3}");
                    var ward = Wards[random.Next(Wards.Length)];
                    (@event, detail, what) = ("AccountCreated", Describe("physician", 1, ward, [], true), "a locum physician created with tier 1 and break-glass approval");
                    later = "changed departments,shift; now " + Describe("physician", 1, ward == "oncology" ? "cardiology" : "oncology", [], true);
                    break;
                case 1:
                    var nurse = Pick(nurses);
                    user = nurse.Name;
                    (@event, detail, what) = ("AccountChanged", "changed break-glass; now " + Describe("nurse", 2, nurse.DeptOn(day), nurse.Treats, true), "a nurse given break-glass approval");
                    break;
                case 2:
                    var self = Pick(admins);
                    (user, actor) = (self.Name, self.Name);
                    (@event, detail, what) = ("AccountChanged", "changed roles,tier; now " + Describe("administrator,physician", 1, "", [], false), "an administrator gave their own account a clinical role at tier 1");
                    break;
                case 3:
                    var doctor = Pick(physicians);
                    user = doctor.Name;
                    (@event, detail, what) = ("AccountChanged", "changed tier; now " + Describe("physician", 1, doctor.DeptOn(day), doctor.Treats, true), "a physician raised to tier 1");
                    break;
                case 4:
                    user = string.Create(CultureInfo.InvariantCulture, $"it.new.{i:D3}");
                    actor = "cli:root";
                    (@event, detail, what) = ("AccountCreated", Describe("administrator", 2, "", [], false) + " password=none", "an administrator account created from the command line");
                    break;
                default:
                    var clerk = Pick(clerks);
                    user = clerk.Name;
                    (@event, detail, what) = ("AccountChanged", "changed roles; now " + Describe("receptionist,privacy_officer", 2, clerk.DeptOn(day), clerk.Treats, false), "a registration clerk given the privacy_officer role");
                    break;
            }
            // Neither granted anything: a physician already approved for break-glass and never raised (not picked for a grant), a new nurse.
            var renamed = physicians.Where(w => !_used.Contains(Kind + "|" + w.Name)).ElementAt(random.Next(physicians.Count - count));
            var newNurse = string.Create(CultureInfo.InvariantCulture, $"nurse.new.{i:D3}");
            var nurseWard = Wards[random.Next(Wards.Length)];
            _plans.Add(new Plan(day, Kind, writer =>
            {
                var label = writer.Label(Kind, user, null, what);
                writer.Security(@event, user, actor, "succeeded", detail, null, at, label);
                writer.Security("AccountChanged", renamed.Name, admin.Name, "succeeded",
                    "changed display; now " + Describe("physician", 2, renamed.DeptOn(day), renamed.Treats, true), null, at + 3 * HourMs);
                writer.Security("AccountCreated", newNurse, admin.Name, "succeeded", Describe("nurse", 2, nurseWard, [], false) + " password=none", null, at + 4 * HourMs);
                if (later is not null) writer.Security("AccountChanged", user, admin.Name, "succeeded", later, null, at + 5 * HourMs);
            }));
        }
    }
}
