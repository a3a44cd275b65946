namespace Wardline.Monitoring.Tests.Detections;

public sealed class PasswordSprayingTests
{
    private static MonitorEvent Failed(Kit kit, string? user, string source, DateTimeOffset at, string outcome = "failed") =>
        kit.Security("SignInFailed", user, at, outcome: outcome, detail: user is null ? "wrong name or password (no such account)" : "wrong name or password", source: source);

    [Fact]
    public void Fourteen_accounts_failing_from_one_address_are_one_finding_about_the_address()
    {
        var kit = new Kit();
        var events = Enumerable.Range(0, 14).Select(i => Failed(kit, $"user-{i}", "10.0.0.7", Kit.Start.AddMinutes(i))).ToList();
        var f = Assert.Single(kit.Run(events), f => f.Detection == "password-spraying");
        Assert.Equal("source:10.0.0.7", f.User);
        Assert.Null(f.Patient);
        Assert.Equal(Severity.High, f.Severity);
        Assert.Equal("sign-in failed for 8 different accounts from 10.0.0.7 within 30 minutes", f.Evidence);
        Assert.Equal(events.Take(8).Select(e => e.Index), f.Entries);
    }

    [Fact]
    public void Names_no_account_has_count_as_accounts_of_their_own()
    {
        var kit = new Kit();
        var events = Enumerable.Range(0, 5).Select(i => Failed(kit, $"user-{i}", "10.0.0.7", Kit.Start.AddMinutes(i))).ToList();
        events.AddRange(Enumerable.Range(0, 3).Select(i => Failed(kit, null, "10.0.0.7", Kit.Start.AddMinutes(10 + i))));
        var f = Assert.Single(kit.Run(events), f => f.Detection == "password-spraying");
        Assert.Equal("sign-in failed for 8 different accounts from 10.0.0.7 within 30 minutes (3 of them names no account here has)", f.Evidence);
    }

    [Fact]
    public void One_account_failing_often_few_accounts_or_failures_spread_over_hours_are_not_spraying()
    {
        var kit = new Kit();
        Assert.DoesNotContain(kit.Run(Enumerable.Range(0, 20).Select(i => Failed(kit, "nurse.ann", "10.0.0.7", Kit.Start.AddMinutes(i)))), f => f.Detection == "password-spraying");
        Assert.DoesNotContain(kit.Run(Enumerable.Range(0, 7).Select(i => Failed(kit, $"user-{i}", "10.0.0.7", Kit.Start.AddMinutes(i)))), f => f.Detection == "password-spraying");
        Assert.DoesNotContain(kit.Run(Enumerable.Range(0, 20).Select(i => Failed(kit, $"user-{i}", "10.0.0.7", Kit.Start.AddMinutes(i * 10)))), f => f.Detection == "password-spraying");
    }

    [Fact]
    public void Throttled_attempts_that_checked_no_password_are_not_counted()
    {
        var kit = new Kit();
        var events = Enumerable.Range(0, 14).Select(i => Failed(kit, $"user-{i}", "10.0.0.7", Kit.Start.AddMinutes(i), outcome: "throttled"));
        Assert.DoesNotContain(kit.Run(events), f => f.Detection == "password-spraying");
    }

    [Fact]
    public void Thirty_accounts_failing_once_each_from_six_addresses_are_distributed_spraying()
    {
        var kit = new Kit();
        var events = Enumerable.Range(0, 30).Select(i => Failed(kit, $"user-{i}", $"10.0.1.{i % 6}", Kit.Start.AddSeconds(i * 30))).ToList();
        var f = Assert.Single(kit.Run(events), f => f.Detection == "password-spraying");
        Assert.Equal("source:many", f.User);
        Assert.Equal("sign-in failed for 25 different accounts, each once or twice, from 6 addresses within 30 minutes", f.Evidence);
    }

    [Fact]
    public void Many_accounts_from_two_addresses_are_not_distributed()
    {
        var kit = new Kit();
        // Four accounts per address, never eight: neither kind of spraying.
        var events = Enumerable.Range(0, 8).Select(i => Failed(kit, $"user-{i}", $"10.0.1.{i % 2}", Kit.Start.AddSeconds(i * 30)));
        Assert.DoesNotContain(kit.Run(events), f => f.Detection == "password-spraying");
    }

    [Fact]
    public void Configured_thresholds_change_the_result()
    {
        var kit = new Kit();
        var events = Enumerable.Range(0, 3).Select(i => Failed(kit, $"user-{i}", "10.0.0.7", Kit.Start.AddMinutes(i))).ToList();
        Assert.DoesNotContain(kit.Run(events), f => f.Detection == "password-spraying");
        kit.ConfigText = "version: 1\ndetections:\n  password-spraying:\n    min-accounts: 3\n";
        Assert.Single(kit.Run(events), f => f.Detection == "password-spraying");
    }

    [Fact]
    public void Failures_stamped_back_in_time_neither_crash_nor_join_an_old_run()
    {
        var kit = new Kit();
        var events = Enumerable.Range(0, 7).Select(i => Failed(kit, $"user-{i}", "10.0.0.7", Kit.Start.AddMinutes(i))).ToList();
        events.Add(kit.Read("dr.other", "p-1", Kit.Start.AddHours(2)));
        events.Add(Failed(kit, "user-7", "10.0.0.7", Kit.Start.AddMinutes(8)));
        Assert.DoesNotContain(kit.Run(events), f => f.Detection == "password-spraying");
    }

    [Fact]
    public void Failures_without_an_address_do_not_throw()
    {
        var kit = new Kit();
        var events = Enumerable.Range(0, 8).Select(i => kit.Security("SignInFailed", $"user-{i}", Kit.Start.AddMinutes(i), outcome: "failed"));
        Assert.Equal("source:unknown", Assert.Single(kit.Run(events), f => f.Detection == "password-spraying").User);
    }
}
