namespace Wardline.Monitoring.Tests.Detections;

public sealed class SensitiveLabelTests
{
    private static readonly long Day = TimeSpan.FromDays(1).Ticks / TimeSpan.TicksPerMillisecond;

    private static Kit Hospital()
    {
        var kit = new Kit();
        kit.Staff.Add(new StaffMember("nurse.ann", ["nurse"], ["cardiology"], []));
        kit.Staff.Add(new StaffMember("nurse.pia", ["nurse"], ["psychiatry"], ["PSY"]));
        kit.Staff.Add(new StaffMember("nurse.hal", ["nurse"], ["infectious"], ["HIV"]));
        kit.Staff.Add(new StaffMember("nurse.ida", ["nurse"], ["infectious"], []));
        kit.Staff.Add(new StaffMember("clerk.ivo", ["clerk"], ["infectious"], []));
        kit.Patients.Add(new PatientProfile("p-1"));
        kit.Labels.Add(("DocumentReference", "d-psy", ["PSY"]));
        kit.Labels.Add(("Observation", "o-hiv", ["HIV"]));
        kit.Labels.Add(("Observation", "o-n", ["N"]));
        kit.Labels.Add(("DocumentReference", "d-both", ["R", "PSY", "HIV"]));
        return kit;
    }

    private static List<Finding> Of(List<Finding> findings) => [.. findings.Where(f => f.Detection == "sensitive-label")];

    [Fact]
    public void Cardiology_nurse_opening_a_psychiatric_note_is_found()
    {
        var kit = Hospital();
        var findings = Of(kit.Run(
            kit.Read("nurse.ann", "p-1", Kit.Start, "DocumentReference", "d-psy"),
            kit.Read("nurse.ann", "p-1", Kit.Start.AddMinutes(1), "DocumentReference", "d-psy")));
        var f = Assert.Single(findings);
        Assert.Equal(("nurse.ann", "p-1", Severity.Medium), (f.User, f.Patient, f.Severity));
        Assert.Equal([0L], f.Entries);
        Assert.Equal("opened a resource labelled PSY (mental health), a category that this user's role in this department does not treat", f.Evidence);
    }

    [Fact]
    public void Several_untreated_labels_are_named_together()
    {
        var kit = Hospital();
        var f = Assert.Single(Of(kit.Run(kit.Read("nurse.ann", "p-1", Kit.Start, "DocumentReference", "d-both"))));
        Assert.Equal("opened a resource labelled PSY (mental health) and HIV (HIV/AIDS), categories that this user's role in this department does not treat", f.Evidence);
    }

    [Fact]
    public void Staff_who_treat_the_category_and_their_role_peers_are_not_found()
    {
        var kit = Hospital();
        Assert.Empty(Of(kit.Run(
            kit.Read("nurse.pia", "p-1", Kit.Start, "DocumentReference", "d-psy"),
            kit.Read("nurse.ida", "p-1", Kit.Start, "Observation", "o-hiv"),
            kit.Read("nurse.ann", "p-1", Kit.Start, "Observation", "o-n"),
            kit.Read("nurse.ann", "p-1", Kit.Start, "Observation", "o-plain"))));
    }

    [Fact]
    public void Another_role_in_the_department_is_not_a_peer()
    {
        var kit = Hospital();
        Assert.Single(Of(kit.Run(kit.Read("clerk.ivo", "p-1", Kit.Start, "Observation", "o-hiv"))));
    }

    [Fact]
    public void A_consult_order_explains_it()
    {
        var kit = Hospital();
        kit.Relationships.Add(("nurse.ann", "p-1", new Relationship("consult-order", Kit.Ms(Kit.Start) - Day, null)));
        Assert.Empty(Of(kit.Run(kit.Read("nurse.ann", "p-1", Kit.Start, "DocumentReference", "d-psy"))));
    }

    [Fact]
    public void A_configuration_without_the_consult_order_explanation_finds_it()
    {
        var kit = Hospital();
        kit.Relationships.Add(("nurse.ann", "p-1", new Relationship("consult-order", Kit.Ms(Kit.Start) - Day, null)));
        kit.ConfigText = "version: 1\nexplanations:\n  consult-order:\n    suppresses: [no-care-relationship]\n    grace-days: 14\n";
        Assert.Single(Of(kit.Run(kit.Read("nurse.ann", "p-1", Kit.Start, "DocumentReference", "d-psy"))));
    }

    [Fact]
    public void A_replaced_directory_is_used_for_peers()
    {
        var kit = Hospital();
        var engine = kit.Engine();
        var findings = new List<Finding>();
        engine.Examine(kit.Read("nurse.ann", "p-1", Kit.Start, "DocumentReference", "d-psy"), findings);
        Assert.Single(Of(findings));
        kit.Staff.Add(new StaffMember("nurse.liaison", ["nurse"], ["cardiology"], ["PSY"]));
        engine.Directory = kit.Directory();
        findings.Clear();
        engine.Examine(kit.Read("nurse.ann", "p-1", Kit.Start.AddDays(1), "DocumentReference", "d-psy"), findings);
        Assert.Empty(Of(findings));
    }

    [Fact]
    public void Unknown_user_and_patient_do_not_throw()
    {
        var kit = Hospital();
        var findings = Of(kit.Run(kit.Read("left.long.ago", "p-gone", Kit.Start, "DocumentReference", "d-psy")));
        Assert.Equal("left.long.ago", Assert.Single(findings).User);
    }
}
