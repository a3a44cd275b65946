namespace Wardline.Monitoring.Tests.Detections;

public sealed class FinalRecordChangeTests
{
    private static readonly long Day = TimeSpan.FromDays(1).Ticks / TimeSpan.TicksPerMillisecond;

    private static Kit Hospital()
    {
        var kit = new Kit();
        kit.Staff.Add(new StaffMember("dr.bob", ["physician"], ["cardiology"], []));
        kit.Staff.Add(new StaffMember("dr.eve", ["physician"], ["cardiology"], []));
        kit.Patients.Add(new PatientProfile("p-1"));
        return kit;
    }

    private static List<Finding> Of(List<Finding> findings) => [.. findings.Where(f => f.Detection == "final-record-change")];

    [Fact]
    public void Changing_a_confirmed_diagnosis_is_found_with_both_statuses()
    {
        var kit = Hospital();
        var findings = Of(kit.Run(
            kit.Write("dr.bob", "p-1", "Condition", "c1", Kit.Start, "create", "status=confirmed"),
            kit.Write("dr.eve", "p-1", "Condition", "c1", Kit.Start.AddDays(3), "update", "status=refuted")));
        var f = Assert.Single(findings);
        Assert.Equal(("dr.eve", "p-1", Severity.High, "Condition/c1"), (f.User, f.Patient, f.Severity, f.GroupKey));
        Assert.Equal([1L], f.Entries);
        Assert.Equal("changed a final diagnosis (Condition/c1, status confirmed -> refuted)", f.Evidence);
    }

    [Fact]
    public void Deleting_a_final_report_is_found()
    {
        var kit = Hospital();
        var f = Assert.Single(Of(kit.Run(
            kit.Write("dr.bob", "p-1", "DiagnosticReport", "r1", Kit.Start, "create", "status=preliminary"),
            kit.Write("dr.bob", "p-1", "DiagnosticReport", "r1", Kit.Start.AddHours(1), "update", "status=final"),
            kit.Write("dr.eve", "p-1", "DiagnosticReport", "r1", Kit.Start.AddHours(2), "delete"))));
        Assert.Equal("deleted a final report (DiagnosticReport/r1, status final)", f.Evidence);
        Assert.Equal([2L], f.Entries);
    }

    [Fact]
    public void Changing_an_active_prescription_is_found_even_with_the_same_status()
    {
        var kit = Hospital();
        var f = Assert.Single(Of(kit.Run(
            kit.Write("dr.bob", "p-1", "MedicationRequest", "m1", Kit.Start, "create", "status=active"),
            kit.Write("dr.eve", "p-1", "MedicationRequest", "m1", Kit.Start.AddHours(1), "update", "intent=order status=active"))));
        Assert.Equal("changed an active prescription (MedicationRequest/m1, status active -> active)", f.Evidence);
    }

    [Fact]
    public void Drafts_unknown_history_unwatched_types_and_non_final_statuses_are_not_judged()
    {
        var kit = Hospital();
        Assert.Empty(Of(kit.Run(
            kit.Write("dr.bob", "p-1", "DiagnosticReport", "r1", Kit.Start, "create", "status=preliminary"),
            kit.Write("dr.bob", "p-1", "DiagnosticReport", "r1", Kit.Start.AddHours(1), "update", "status=final"),
            kit.Write("dr.bob", "p-1", "Observation", "o-never-seen", Kit.Start, "update", "status=amended"),
            kit.Write("dr.bob", "p-1", "Condition", "c-active", Kit.Start, "create", "status=active"),
            kit.Write("dr.bob", "p-1", "Condition", "c-active", Kit.Start.AddHours(1), "update", "status=active"),
            kit.Write("dr.bob", "p-1", "Patient", "p-1", Kit.Start, "create", "status=final"),
            kit.Write("dr.bob", "p-1", "Patient", "p-1", Kit.Start.AddHours(1), "update"))));
    }

    [Fact]
    public void The_authors_own_correction_within_a_day_is_not_judged_but_a_later_one_and_a_deletion_are()
    {
        var kit = Hospital();
        var findings = Of(kit.Run(
            kit.Write("dr.bob", "p-1", "Condition", "c1", Kit.Start, "create", "status=confirmed"),
            kit.Write("dr.bob", "p-1", "Condition", "c1", Kit.Start.AddMinutes(20), "update", "status=confirmed"),
            kit.Write("dr.bob", "p-1", "Condition", "c1", Kit.Start.AddHours(23), "update", "status=confirmed"),
            kit.Write("dr.bob", "p-1", "Condition", "c1", Kit.Start.AddHours(25), "update", "status=confirmed"),
            kit.Write("dr.bob", "p-1", "Condition", "c2", Kit.Start, "create", "status=confirmed"),
            kit.Write("dr.bob", "p-1", "Condition", "c2", Kit.Start.AddMinutes(5), "delete")));
        Assert.Equal([[3L], [5L]], findings.Select(f => f.Entries));
    }

    [Fact]
    public void Own_correction_hours_from_the_configuration_decide()
    {
        var kit = Hospital();
        kit.ConfigText = "version: 1\ndetections:\n  final-record-change:\n    own-correction-hours: 0\n";
        Assert.Single(Of(kit.Run(
            kit.Write("dr.bob", "p-1", "Condition", "c1", Kit.Start, "create", "status=confirmed"),
            kit.Write("dr.bob", "p-1", "Condition", "c1", Kit.Start.AddMinutes(20), "update", "status=refuted"))));
    }

    [Fact]
    public void A_care_relationship_does_not_silence_it_and_the_configuration_cannot_make_it()
    {
        var kit = Hospital();
        kit.Relationships.Add(("dr.eve", "p-1", new Relationship("care-team", Kit.Ms(Kit.Start) - Day, null)));
        Assert.Single(Of(kit.Run(
            kit.Write("dr.bob", "p-1", "Procedure", "pr1", Kit.Start, "create", "status=completed"),
            kit.Write("dr.eve", "p-1", "Procedure", "pr1", Kit.Start.AddHours(1), "update", "status=entered-in-error"))));
        var e = Assert.Throws<MonitorConfigException>(() =>
            MonitorConfig.Parse("version: 1\nexplanations:\n  care-team:\n    suppresses: [final-record-change]\n", "test.yaml"));
        Assert.Contains("final-record-change cannot be explained away", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Severity_and_switch_from_the_configuration_are_followed()
    {
        var kit = Hospital();
        MonitorEvent[] Writes() =>
        [
            kit.Write("dr.bob", "p-1", "AllergyIntolerance", "a1", Kit.Start, "create", "status=confirmed"),
            kit.Write("dr.eve", "p-1", "AllergyIntolerance", "a1", Kit.Start.AddHours(1), "update", "status=confirmed"),
        ];
        kit.ConfigText = "version: 1\ndetections:\n  final-record-change:\n    severity: critical\n";
        Assert.Equal(Severity.Critical, Assert.Single(Of(kit.Run(Writes()))).Severity);
        kit.ConfigText = "version: 1\ndetections:\n  final-record-change:\n    enabled: false\n";
        Assert.Empty(Of(kit.Run(Writes())));
    }

    [Fact]
    public void Writes_by_unknown_users_are_judged_and_writes_without_a_user_only_learned()
    {
        var kit = Hospital();
        var system = new MonitorEvent { Index = 100, AtMs = Kit.Ms(Kit.Start), Kind = EntryKind.Write, Event = "create", ResourceType = "Observation", ResourceId = "o1", Detail = "status=final" };
        var findings = Of(kit.Run(system, kit.Write("left.long.ago", "p-gone", "Observation", "o1", Kit.Start.AddHours(1), "update", "status=corrected")));
        Assert.Equal("changed a final result (Observation/o1, status final -> corrected)", Assert.Single(findings).Evidence);
    }

    [Theory]
    [InlineData("status=final", "final")]
    [InlineData("intent=order status=active", "active")]
    [InlineData("status=amended reason=x", "amended")]
    [InlineData("laststatus=final", null)]
    [InlineData("status=", null)]
    [InlineData(null, null)]
    public void The_status_is_read_from_the_write_detail(string? detail, string? status) =>
        Assert.Equal(status, Wardline.Monitoring.Detections.FinalRecordChange.Status(detail));
}
