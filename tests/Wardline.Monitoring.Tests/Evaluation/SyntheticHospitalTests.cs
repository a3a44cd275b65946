using Wardline.Monitoring.Synthetic;

namespace Wardline.Monitoring.Tests.Evaluation;

public sealed class SyntheticHospitalTests
{
    private static readonly SyntheticOptions Small = new() { Seed = 3, Days = 18, WarmDays = 5, Patients = 8000, StaffScale = 0.5, ActivityScale = 0.5, PerKind = 3 };

    [Fact]
    public void The_same_seed_gives_the_same_ledger_and_the_same_labels()
    {
        var a = new SyntheticHospital(Small);
        var b = new SyntheticHospital(Small);
        var first = a.Events().ToList();
        var second = b.Events().ToList();
        Assert.Equal(first.Count, second.Count);
        Assert.True(first.SequenceEqual(second));
        Assert.Equal(a.Labels.Select(l => (l.Detection, l.User, l.Patient, l.FromMs, string.Join(',', l.Entries))),
            b.Labels.Select(l => (l.Detection, l.User, l.Patient, l.FromMs, string.Join(',', l.Entries))));
        var again = a.Events().Count();
        Assert.Equal(first.Count, again);
        Assert.NotEqual(first.Count, new SyntheticHospital(Small with { Seed = 4 }).Events().Count());
    }

    [Fact]
    public void Entries_are_in_index_order_and_time_order()
    {
        long index = 0;
        var last = long.MinValue;
        foreach (var e in new SyntheticHospital(Small).Events())
        {
            Assert.Equal(index++, e.Index);
            Assert.True(e.AtMs >= last);
            last = e.AtMs;
        }
    }

    [Fact]
    public void Normal_work_looks_like_a_hospital_day()
    {
        var h = new SyntheticHospital(Small with { PerKind = 0, Seed = 1 });
        var directory = h.Directory;
        var perUserDay = new Dictionary<(string User, long Day), (int Decisions, HashSet<string> Patients)>();
        int reads = 0, explained = 0, byRelationship = 0;
        foreach (var e in h.Events())
        {
            if (!e.IsPermittedPatientDecision) continue;
            var key = (e.User!, e.AtMs / 86_400_000);
            if (!perUserDay.TryGetValue(key, out var v)) perUserDay[key] = v = (0, []);
            v.Patients.Add(e.Patient!);
            perUserDay[key] = (v.Decisions + 1, v.Patients);
            var staff = directory.FindStaff(e.User);
            if (staff is null || staff.Service || staff.PrimaryRole == "billing_clerk") continue;
            reads++;
            var documented = directory.RelationshipsOf(e.User!, e.Patient!).Any(r => r.Covers(e.AtMs, 86_400_000));
            if (documented) byRelationship++;
            var related = documented
                || (directory.FindPatient(e.Patient)?.DepartmentStays ?? []).Any(s => staff.Departments.Contains(s.Department) && e.AtMs >= s.FromMs - 86_400_000 && e.AtMs <= (s.ToMs ?? long.MaxValue) + 30 * 86_400_000L);
            if (related) explained++;
        }
        Assert.True(explained >= reads * 0.97, $"{explained} of {reads} clinical reads explained");
        Assert.True(byRelationship >= reads * 0.7, $"{byRelationship} of {reads} clinical reads by a documented relationship");
        double Median(string role)
        {
            var counts = perUserDay.Where(x => h.RoleOf.GetValueOrDefault(x.Key.User) == role).Select(x => x.Value.Patients.Count).Order().ToList();
            return counts[counts.Count / 2];
        }
        Assert.InRange(Median("nurse"), 5, 30);
        Assert.InRange(Median("physician"), 5, 40);
        Assert.InRange(Median("billing_clerk"), 20, 60);
        Assert.InRange(Median("pharmacist"), 5, 40);
    }

    [Fact]
    public void Every_kind_of_violation_is_injected_and_labelled_with_its_entries()
    {
        var h = new SyntheticHospital(Small);
        _ = h.Events().Count();
        var missing = Catalog.All.Select(d => d.Id)
            .Where(d => !h.Labels.Any(l => l.Detection == d && (l.Entries.Count > 0 || d == "break-glass-overuse"))).ToList();
        Assert.True(missing.Count == 0, "not injected: " + string.Join(' ', missing));
    }
}
