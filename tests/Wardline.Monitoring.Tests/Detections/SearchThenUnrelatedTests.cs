namespace Wardline.Monitoring.Tests.Detections;

public sealed class SearchThenUnrelatedTests
{
    private static Kit Hospital()
    {
        var kit = new Kit();
        kit.Staff.Add(new StaffMember("clerk.joe", ["clerk"], ["admissions"], []));
        kit.Patients.Add(new PatientProfile("p-1"));
        kit.Patients.Add(new PatientProfile("p-2"));
        return kit;
    }

    /// <summary>A patient search's outcome entry with its parameter names.</summary>
    private static MonitorEvent Search(Kit kit, string user, DateTimeOffset at, string parameters, string? type = "Patient") =>
        kit.Read(user, "none", at) with
        {
            Event = "outcome", Patient = null, Permitted = null, Rule = null, Action = "Search", ResourceType = type, ResourceId = null, Status = 200, Detail = parameters,
        };

    [Fact]
    public void A_search_by_name_then_opening_a_patient_two_minutes_later_is_found()
    {
        var kit = Hospital();
        var search = Search(kit, "clerk.joe", Kit.Start, "params=family,given");
        var read = kit.Read("clerk.joe", "p-1", Kit.Start.AddMinutes(2), type: "Patient");
        var f = Assert.Single(kit.Run(search, read), f => f.Detection == "search-then-unrelated");
        Assert.Equal("clerk.joe", f.User);
        Assert.Equal("p-1", f.Patient);
        Assert.Equal(Severity.Medium, f.Severity);
        Assert.Equal([search.Index, read.Index], f.Entries);
        Assert.Equal("searched patients by name, then opened this patient's record 2 minutes later", f.Evidence);
    }

    [Fact]
    public void Each_patient_opened_after_the_search_is_found_once()
    {
        var kit = Hospital();
        var findings = kit.Run(
            Search(kit, "clerk.joe", Kit.Start, "params=name:contains"),
            kit.Read("clerk.joe", "p-1", Kit.Start.AddSeconds(20), type: "Patient"),
            kit.Read("clerk.joe", "p-1", Kit.Start.AddSeconds(30)),
            kit.Read("clerk.joe", "p-2", Kit.Start.AddMinutes(1)));
        Assert.Equal(["p-1", "p-2"], findings.Where(f => f.Detection == "search-then-unrelated").Select(f => f.Patient));
        Assert.Contains(findings, f => f.Evidence.EndsWith("less than a minute later", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("params=identifier")]
    [InlineData("params=birthdate")]
    [InlineData("params=_id")]
    [InlineData(null)]
    public void A_search_by_identifier_or_birth_date_is_not_by_name(string? parameters)
    {
        var kit = Hospital();
        var findings = kit.Run(Search(kit, "clerk.joe", Kit.Start, parameters!), kit.Read("clerk.joe", "p-1", Kit.Start.AddMinutes(1)));
        Assert.DoesNotContain(findings, f => f.Detection == "search-then-unrelated");
    }

    [Theory]
    [InlineData("params=family:exact,birthdate", true)]
    [InlineData("params=address-city", true)]
    [InlineData("params=phonetic", true)]
    [InlineData("params=general-practitioner", false)]
    [InlineData("family", false)]
    public void Name_parameters_are_told_from_others(string detail, bool byName) =>
        Assert.Equal(byName, Wardline.Monitoring.Detections.SearchThenUnrelated.ByName(detail));

    [Fact]
    public void Opening_a_record_after_the_window_or_a_search_of_other_resources_is_not_found()
    {
        var kit = Hospital();
        Assert.DoesNotContain(kit.Run(Search(kit, "clerk.joe", Kit.Start, "params=family"), kit.Read("clerk.joe", "p-1", Kit.Start.AddMinutes(15))),
            f => f.Detection == "search-then-unrelated");
        Assert.DoesNotContain(kit.Run(Search(kit, "clerk.joe", Kit.Start, "params=name", type: "Practitioner"), kit.Read("clerk.joe", "p-1", Kit.Start.AddMinutes(1))),
            f => f.Detection == "search-then-unrelated");
        Assert.DoesNotContain(kit.Run(Search(kit, "dr.other", Kit.Start, "params=name"), kit.Read("clerk.joe", "p-1", Kit.Start.AddMinutes(1))),
            f => f.Detection == "search-then-unrelated");
    }

    [Fact]
    public void Configured_window_changes_the_result()
    {
        var kit = Hospital();
        kit.ConfigText = "version: 1\ndetections:\n  search-then-unrelated:\n    window-minutes: 30\n";
        var findings = kit.Run(Search(kit, "clerk.joe", Kit.Start, "params=family"), kit.Read("clerk.joe", "p-1", Kit.Start.AddMinutes(15)));
        Assert.Equal("searched patients by name, then opened this patient's record 15 minutes later", Assert.Single(findings, f => f.Detection == "search-then-unrelated").Evidence);
    }

    [Fact]
    public void A_care_relationship_explains_the_patient_when_configured()
    {
        var kit = Hospital();
        kit.Relationships.Add(("clerk.joe", "p-1", new Relationship("appointment", Kit.Ms(Kit.Start), Kit.Ms(Kit.Start.AddHours(1)))));
        kit.ConfigText = "version: 1\nexplanations:\n  appointment:\n    suppresses: [search-then-unrelated]\n";
        var findings = kit.Run(
            Search(kit, "clerk.joe", Kit.Start, "params=family"),
            kit.Read("clerk.joe", "p-1", Kit.Start.AddMinutes(1)),
            kit.Read("clerk.joe", "p-2", Kit.Start.AddMinutes(2)));
        Assert.Equal("p-2", Assert.Single(findings, f => f.Detection == "search-then-unrelated").Patient);
    }

    [Fact]
    public void A_read_stamped_back_in_time_is_measured_from_when_it_arrived()
    {
        var kit = Hospital();
        var findings = kit.Run(
            Search(kit, "clerk.joe", Kit.Start, "params=family"),
            kit.Read("dr.other", "p-2", Kit.Start.AddMinutes(30)),
            kit.Read("clerk.joe", "p-1", Kit.Start.AddMinutes(1)));
        Assert.DoesNotContain(findings, f => f.Detection == "search-then-unrelated");
        var jumped = kit.Run(Search(kit, "clerk.joe", Kit.Start, "params=family"), kit.Read("clerk.joe", "p-1", Kit.Start.AddMinutes(-40)));
        Assert.Single(jumped, f => f.Detection == "search-then-unrelated");
    }

    [Fact]
    public void Unknown_users_and_patients_do_not_throw()
    {
        var kit = new Kit();
        var findings = kit.Run(Search(kit, "nobody", Kit.Start, "params=family"), kit.Read("nobody", "p-gone", Kit.Start.AddMinutes(1)));
        Assert.Single(findings, f => f.Detection == "search-then-unrelated");
    }
}
