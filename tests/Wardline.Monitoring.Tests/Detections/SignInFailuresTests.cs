namespace Wardline.Monitoring.Tests.Detections;

public sealed class SignInFailuresTests
{
    private static MonitorEvent Failed(Kit kit, string? user, string source, DateTimeOffset at, string outcome = "failed") =>
        kit.Security("SignInFailed", user, at, outcome: outcome, detail: "wrong name or password", source: source);

    [Fact]
    public void Twelve_failures_from_three_addresses_within_fifteen_minutes_are_one_finding()
    {
        var kit = new Kit();
        var events = Enumerable.Range(0, 12).Select(i => Failed(kit, "nurse.ann", $"10.0.0.{i % 3}", Kit.Start.AddMinutes(i))).ToList();
        var f = Assert.Single(kit.Run(events), f => f.Detection == "sign-in-failures");
        Assert.Equal("nurse.ann", f.User);
        Assert.Equal(Severity.Medium, f.Severity);
        Assert.Equal("sign-in failed 10 times within 15 minutes from 3 addresses", f.Evidence);
        Assert.Equal(events.Take(10).Select(e => e.Index), f.Entries);
    }

    [Fact]
    public void Nine_failures_or_failures_spread_over_hours_are_not_found()
    {
        var kit = new Kit();
        Assert.DoesNotContain(kit.Run(Enumerable.Range(0, 9).Select(i => Failed(kit, "nurse.ann", "10.0.0.1", Kit.Start.AddMinutes(i)))), f => f.Detection == "sign-in-failures");
        Assert.DoesNotContain(kit.Run(Enumerable.Range(0, 20).Select(i => Failed(kit, "nurse.ann", "10.0.0.1", Kit.Start.AddMinutes(i * 5)))), f => f.Detection == "sign-in-failures");
    }

    [Fact]
    public void A_lockout_is_found_with_the_failures_before_it()
    {
        var kit = new Kit();
        var failures = Enumerable.Range(0, 5).Select(i => Failed(kit, "nurse.ann", "10.0.0.1", Kit.Start.AddMinutes(i))).ToList();
        var lockout = kit.Security("Lockout", "nurse.ann", Kit.Start.AddMinutes(5), outcome: "locked-out", detail: "5 failed attempts within 15 minutes", source: "10.0.0.1");
        var f = Assert.Single(kit.Run([.. failures, lockout]), f => f.Detection == "sign-in-failures");
        Assert.Equal("the account was locked out after repeated failures", f.Evidence);
        Assert.Equal([.. failures.Select(e => e.Index), lockout.Index], f.Entries);
    }

    [Fact]
    public void Configured_thresholds_change_the_result()
    {
        var kit = new Kit();
        var events = Enumerable.Range(0, 3).Select(i => Failed(kit, "nurse.ann", "10.0.0.1", Kit.Start.AddMinutes(i))).ToList();
        Assert.DoesNotContain(kit.Run(events), f => f.Detection == "sign-in-failures");
        kit.ConfigText = "version: 1\ndetections:\n  sign-in-failures:\n    max-failures: 3\n";
        Assert.Equal("sign-in failed 3 times within 15 minutes from 1 address", Assert.Single(kit.Run(events), f => f.Detection == "sign-in-failures").Evidence);
    }

    [Fact]
    public void Failures_stamped_back_in_time_neither_crash_nor_join_an_old_run()
    {
        var kit = new Kit();
        var events = Enumerable.Range(0, 9).Select(i => Failed(kit, "nurse.ann", "10.0.0.1", Kit.Start.AddMinutes(i))).ToList();
        events.Add(kit.Read("dr.other", "p-1", Kit.Start.AddHours(1)));
        events.Add(Failed(kit, "nurse.ann", "10.0.0.1", Kit.Start.AddMinutes(10)));
        Assert.DoesNotContain(kit.Run(events), f => f.Detection == "sign-in-failures");
    }

    [Fact]
    public void Failures_naming_no_account_are_left_to_password_spraying()
    {
        var kit = new Kit();
        var events = Enumerable.Range(0, 12).Select(i => Failed(kit, null, "10.0.0.1", Kit.Start.AddMinutes(i)));
        Assert.DoesNotContain(kit.Run(events), f => f.Detection == "sign-in-failures");
    }
}
