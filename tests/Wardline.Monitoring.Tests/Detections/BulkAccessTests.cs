namespace Wardline.Monitoring.Tests.Detections;

public sealed class BulkAccessTests
{
    private static Kit Hospital()
    {
        var kit = new Kit();
        kit.Staff.Add(new StaffMember("clerk.joe", ["clerk"], ["admissions"], []));
        kit.Staff.Add(new StaffMember("interface.billing", ["service"], ["finance"], [], Service: true));
        return kit;
    }

    /// <summary>One search request: a policy-filter decision per patient disclosed, then its outcome.</summary>
    private static List<MonitorEvent> SearchRequest(Kit kit, string user, string correlation, DateTimeOffset at, IEnumerable<string> patients, string action = "Search", bool outcome = true)
    {
        var events = patients.Select(p => kit.Read(user, p, at, type: "Patient", id: p) with { Action = action, Rule = "policy-filter", Correlation = correlation }).ToList();
        if (outcome)
        {
            events.Add(kit.Read(user, "none", at) with
            {
                Event = "outcome", Patient = null, Permitted = null, Rule = null, Action = action, ResourceType = "Patient", ResourceId = null, Status = 200,
                Correlation = correlation, Detail = "params=_count",
            });
        }
        return events;
    }

    private static IEnumerable<string> Patients(int from, int count) => Enumerable.Range(from, count).Select(i => $"p-{i}");

    [Fact]
    public void One_search_disclosing_180_patients_is_found_with_its_whole_count()
    {
        var kit = Hospital();
        var events = SearchRequest(kit, "clerk.joe", "r1", Kit.Start, Patients(0, 180));
        var f = Assert.Single(kit.Run(events), f => f.Detection == "bulk-access");
        Assert.Equal("clerk.joe", f.User);
        Assert.Null(f.Patient);
        Assert.Equal(Severity.High, f.Severity);
        Assert.Equal("one search disclosed 180 patients' records", f.Evidence);
        Assert.Equal(21, f.Entries.Count);
        Assert.Equal(events[^1].Index, f.Entries[^1]);
    }

    [Fact]
    public void A_search_of_40_patients_or_one_by_one_reads_are_not_found()
    {
        var kit = Hospital();
        Assert.DoesNotContain(kit.Run(SearchRequest(kit, "clerk.joe", "r1", Kit.Start, Patients(0, 40))), f => f.Detection == "bulk-access");
        var reads = Enumerable.Range(0, 300).Select(i => kit.Read("clerk.joe", $"p-{i}", Kit.Start.AddSeconds(i)));
        Assert.DoesNotContain(kit.Run(reads), f => f.Detection == "bulk-access");
    }

    [Fact]
    public void A_service_account_exporting_is_not_found()
    {
        var kit = Hospital();
        Assert.DoesNotContain(kit.Run(SearchRequest(kit, "interface.billing", "r1", Kit.Start, Patients(0, 500))), f => f.Detection == "bulk-access");
    }

    [Fact]
    public void Searches_adding_up_to_180_patients_within_15_minutes_are_found_once()
    {
        var kit = Hospital();
        var events = new List<MonitorEvent>();
        for (var i = 0; i < 6; i++) events.AddRange(SearchRequest(kit, "clerk.joe", $"r{i}", Kit.Start.AddMinutes(i * 2), Patients(i * 45, 45)));
        var f = Assert.Single(kit.Run(events), f => f.Detection == "bulk-access");
        Assert.Equal("searches disclosed 180 patients' records within 15 minutes", f.Evidence);
    }

    [Fact]
    public void The_same_patients_searched_again_and_again_are_not_many()
    {
        var kit = Hospital();
        var events = new List<MonitorEvent>();
        for (var i = 0; i < 10; i++) events.AddRange(SearchRequest(kit, "clerk.joe", $"r{i}", Kit.Start.AddMinutes(i), Patients(0, 40)));
        Assert.DoesNotContain(kit.Run(events), f => f.Detection == "bulk-access");
    }

    [Fact]
    public void Configured_thresholds_change_the_result()
    {
        var kit = Hospital();
        var events = SearchRequest(kit, "clerk.joe", "r1", Kit.Start, Patients(0, 40), action: "History");
        Assert.DoesNotContain(kit.Run(events), f => f.Detection == "bulk-access");
        kit.ConfigText = "version: 1\ndetections:\n  bulk-access:\n    per-request: 20\n";
        Assert.Equal("one history request disclosed 40 patients' records", Assert.Single(kit.Run(events), f => f.Detection == "bulk-access").Evidence);
    }

    [Fact]
    public void A_request_without_its_outcome_is_judged_when_the_next_begins_or_after_a_minute()
    {
        var kit = Hospital();
        var cut = SearchRequest(kit, "clerk.joe", "r1", Kit.Start, Patients(0, 60), outcome: false);
        var next = kit.Read("clerk.joe", "p-1", Kit.Start.AddMinutes(1));
        Assert.Single(kit.Run([.. cut, next]), f => f.Detection == "bulk-access");
        var other = kit.Read("dr.other", "p-1", Kit.Start.AddMinutes(3));
        Assert.Single(kit.Run([.. cut, other]), f => f.Detection == "bulk-access");
    }

    [Fact]
    public void Entries_stamped_back_in_time_neither_crash_nor_stretch_the_window()
    {
        var kit = Hospital();
        var events = new List<MonitorEvent>();
        events.AddRange(SearchRequest(kit, "clerk.joe", "r0", Kit.Start, Patients(0, 45)));
        events.AddRange(SearchRequest(kit, "clerk.joe", "r1", Kit.Start.AddMinutes(1), Patients(45, 45)));
        events.Add(kit.Read("dr.other", "p-x", Kit.Start.AddMinutes(40)));
        // Stamped within the first minutes, but recorded 40 minutes later: the first searches are out of the window.
        events.AddRange(SearchRequest(kit, "clerk.joe", "r2", Kit.Start.AddMinutes(2), Patients(90, 45)));
        events.AddRange(SearchRequest(kit, "clerk.joe", "r3", Kit.Start.AddMinutes(3), Patients(135, 45)));
        Assert.DoesNotContain(kit.Run(events), f => f.Detection == "bulk-access");
    }

    [Fact]
    public void Unknown_users_and_patients_do_not_throw()
    {
        var kit = new Kit();
        Assert.Single(kit.Run(SearchRequest(kit, "nobody", "r1", Kit.Start, Patients(0, 60))), f => f.Detection == "bulk-access");
    }
}
