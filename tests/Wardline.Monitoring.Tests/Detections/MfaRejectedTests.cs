namespace Wardline.Monitoring.Tests.Detections;

public sealed class MfaRejectedTests
{
    private static MonitorEvent Rejected(Kit kit, string? user, DateTimeOffset at, string detail = "wrong code") =>
        kit.Security("MfaFailed", user, at, outcome: "failed", detail: detail, source: "10.0.0.9");

    [Fact]
    public void A_correct_password_followed_by_four_wrong_codes_is_one_finding()
    {
        var kit = new Kit();
        var signIn = kit.Security("SignIn", "dr.bob", Kit.Start, outcome: "pending", detail: "password accepted; awaiting totp", source: "10.0.0.9");
        var codes = Enumerable.Range(1, 4).Select(i => Rejected(kit, "dr.bob", Kit.Start.AddMinutes(i))).ToList();
        var f = Assert.Single(kit.Run([signIn, .. codes]), f => f.Detection == "mfa-rejected");
        Assert.Equal("dr.bob", f.User);
        Assert.Equal(Severity.High, f.Severity);
        Assert.Equal("a correct password was followed by 3 wrong or refused second factors within 15 minutes", f.Evidence);
        Assert.Equal(codes.Take(3).Select(e => e.Index), f.Entries);
    }

    [Fact]
    public void Two_mistyped_codes_or_codes_without_a_password_are_not_found()
    {
        var kit = new Kit();
        Assert.DoesNotContain(kit.Run(Rejected(kit, "dr.bob", Kit.Start), Rejected(kit, "dr.bob", Kit.Start.AddMinutes(1))), f => f.Detection == "mfa-rejected");
        var blind = Enumerable.Range(0, 6).Select(i => Rejected(kit, "dr.bob", Kit.Start.AddMinutes(i), "code without a correct password first"));
        Assert.DoesNotContain(kit.Run(blind), f => f.Detection == "mfa-rejected");
        var slow = Enumerable.Range(0, 6).Select(i => Rejected(kit, "dr.bob", Kit.Start.AddMinutes(i * 20)));
        Assert.DoesNotContain(kit.Run(slow), f => f.Detection == "mfa-rejected");
    }

    [Fact]
    public void Configured_thresholds_change_the_result()
    {
        var kit = new Kit();
        var events = Enumerable.Range(0, 4).Select(i => Rejected(kit, "dr.bob", Kit.Start.AddMinutes(i))).ToList();
        Assert.Single(kit.Run(events), f => f.Detection == "mfa-rejected");
        kit.ConfigText = "version: 1\ndetections:\n  mfa-rejected:\n    max-rejections: 5\n";
        Assert.DoesNotContain(kit.Run(events), f => f.Detection == "mfa-rejected");
    }

    [Fact]
    public void Rejections_stamped_back_in_time_neither_crash_nor_join_an_old_run()
    {
        var kit = new Kit();
        var events = new List<MonitorEvent>
        {
            Rejected(kit, "dr.bob", Kit.Start),
            Rejected(kit, "dr.bob", Kit.Start.AddMinutes(1)),
            kit.Read("dr.other", "p-1", Kit.Start.AddHours(1)),
            Rejected(kit, "dr.bob", Kit.Start.AddMinutes(2)),
        };
        Assert.DoesNotContain(kit.Run(events), f => f.Detection == "mfa-rejected");
    }

    [Fact]
    public void Rejections_naming_no_account_do_not_throw()
    {
        var kit = new Kit();
        Assert.DoesNotContain(kit.Run(Enumerable.Range(0, 5).Select(i => Rejected(kit, null, Kit.Start.AddMinutes(i)))), f => f.Detection == "mfa-rejected");
    }
}
