namespace Wardline.Policy.Tests;

/// <summary>The full example of docs/formats/policy.md is a valid policy that decides as its descriptions say.</summary>
public sealed class DocumentedExampleTests
{
    private static readonly Policy Example = Policy.Parse(ExampleText(), "docs/formats/policy.md");

    [Fact]
    public void The_documented_example_parses_and_uses_every_condition_key()
    {
        var text = string.Join("\n", Example.Rules.Select(r => r.Conditions));

        var unused = PolicyParser.ConditionKeys.Where(key => !text.Contains(key + ":", StringComparison.Ordinal)).ToList();

        Assert.Empty(unused);
        Assert.Equal(5, Example.Roles.Count);
    }

    [Fact]
    public void A_nurse_reads_a_record_of_her_department_but_not_her_own_patient_record()
    {
        Assert.Equal("care-reads-own-department", new Scenario().DecideWith(Example).RuleId);
        Assert.Equal("own-record", new Scenario { StaffUserId = "u1" }.DecideWith(Example).RuleId);
    }

    [Fact]
    public void A_physician_writes_for_a_care_team_patient_elsewhere_only_with_mfa_from_inside()
    {
        var write = new Scenario { Roles = ["physician"], Action = PolicyAction.Update, ResourceDepartments = ["D9"], CareTeam = ["P1"] };

        Assert.Equal("physicians-write", write.DecideWith(Example).RuleId);
        write.Network = "external";
        Assert.Equal("writes-need-mfa-and-inside", write.DecideWith(Example).RuleId);
        Assert.Equal("default-deny", new Scenario { Roles = ["physician"], Action = PolicyAction.Update, ResourceDepartments = ["D9"], CareTeam = [] }.DecideWith(Example).RuleId);
    }

    [Fact]
    public void A_billing_clerk_reads_claims_for_payment_on_weekdays_only()
    {
        var claim = new Scenario { Roles = ["billing_clerk"], Kind = "Claim", Purpose = "HPAYMT" };

        Assert.Equal("billing", claim.DecideWith(Example).RuleId);
        Assert.Equal("no-weekend-billing", new Scenario { Roles = ["billing_clerk"], Kind = "Claim", Purpose = "HPAYMT", Weekday = 6 }.DecideWith(Example).RuleId);
        Assert.Equal("office-hours", new Scenario { Roles = ["billing_clerk"], Kind = "Claim", Purpose = "HPAYMT", Hour = 20 }.DecideWith(Example).RuleId);
        Assert.Equal("clerks-see-no-charts", new Scenario { Roles = ["billing_clerk"], Purpose = "HPAYMT" }.DecideWith(Example).RuleId);
    }

    [Fact]
    public void Break_glass_opens_a_psychiatric_note_for_one_patient()
    {
        var note = new Scenario { Labels = ["PSY"], ResourceDepartments = ["D9"], CareTeam = [] };
        Assert.Equal("sensitive-information", note.DecideWith(Example).RuleId);

        note.Purpose = "ETREAT";
        var explanation = note.ExplainWith(Example);
        Assert.Equal("sensitive-information", explanation.Decision.RuleId); // the first of two forbids that apply
        Assert.Contains(explanation.Trace, t => t.RuleId == "emergency-purpose-needs-grant" && t.Applied && !t.Decided);

        note.BreakGlass = new() { ["P1"] = note.Now + 3600 };
        Assert.Equal("emergency-access", note.DecideWith(Example).RuleId);
    }

    [Fact]
    public void A_researcher_reads_signed_off_results_of_consenting_patients()
    {
        var result = new Scenario { Roles = ["researcher"], Purpose = "HRESCH", ResearchConsent = true, Kind = "DiagnosticReport", Status = "final" };

        Assert.Equal("research", result.DecideWith(Example).RuleId);
        result.Status = "preliminary";
        Assert.Equal("default-deny", result.DecideWith(Example).RuleId);
    }

    private static string ExampleText()
    {
        var doc = File.ReadAllText(Path.Combine(RepositoryRoot(), "docs", "formats", "policy.md"));
        var section = doc[doc.IndexOf("## A full example", StringComparison.Ordinal)..];
        var start = section.IndexOf("```yaml\n", StringComparison.Ordinal) + "```yaml\n".Length;
        return section[start..section.IndexOf("```\n", start, StringComparison.Ordinal)];
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Wardline.slnx"))) return dir.FullName;
        }
        throw new InvalidOperationException($"No Wardline.slnx above {AppContext.BaseDirectory}.");
    }
}
