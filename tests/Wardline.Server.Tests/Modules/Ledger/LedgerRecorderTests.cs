using Wardline.Ledger;
using Wardline.Server.Modules.Ledger;
using Wardline.Server.Pipeline;

namespace Wardline.Server.Tests.Modules.Ledger;

/// <summary>What the recorder makes of text from outside: an entry is always encodable, so recording never fails on input.</summary>
public sealed class LedgerRecorderTests
{
    private static readonly string Lone = "dr" + '\ud800' + "x";

    [Fact]
    public void A_sign_in_name_with_a_lone_surrogate_is_recorded_with_a_replacement_character()
    {
        var e = LedgerRecorder.ToEntry(new SecurityEvent(DateTimeOffset.UnixEpoch, SecurityEventKind.SignInFailed, Lone, Lone, "failed", "no such account " + Lone, "c1", "10.0.0.1"));

        var decoded = LedgerEntry.Decode(e.Encode());

        Assert.Equal("dr\uFFFDx", decoded.User);
        Assert.Equal("no such account dr\uFFFDx", decoded.Detail);
    }

    [Fact]
    public void Roles_and_departments_from_an_external_token_with_a_lone_surrogate_are_recorded_with_a_replacement_character()
    {
        var record = new AccessRecord(DateTimeOffset.UnixEpoch, "dr.ext", new FhirInteraction(FhirAction.Read, "Patient", "p1"), "decision",
            new AccessDecision(true, "rule-1", "ok"), null, null, "c2", null)
        { Roles = ["physician", Lone], Departments = [Lone], Client = Lone };

        var decoded = LedgerEntry.Decode(LedgerRecorder.ToEntry(record).Encode());

        Assert.Equal(["physician", "dr\uFFFDx"], decoded.Roles);
        Assert.Equal(["dr\uFFFDx"], decoded.Departments);
        Assert.Equal("dr\uFFFDx", decoded.Client);
        Assert.Equal("Patient/p1", decoded.Patient);
    }
}
