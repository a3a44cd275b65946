namespace Wardline.Monitoring.Tests.Detections;

public sealed class ProbingTests
{
    private static Kit Hospital()
    {
        var kit = new Kit();
        kit.Staff.Add(new StaffMember("clerk.joe", ["clerk"], ["admissions"], []));
        return kit;
    }

    /// <summary><paramref name="count"/> denials over <paramref name="patients"/> patients in turn, one every <paramref name="everyMinutes"/>.</summary>
    private static List<MonitorEvent> Denials(Kit kit, int count, int patients, double everyMinutes = 1, DateTimeOffset? from = null) =>
        [.. Enumerable.Range(0, count).Select(i => kit.Denied("clerk.joe", $"p-{i % patients}", (from ?? Kit.Start).AddMinutes(i * everyMinutes)))];

    [Fact]
    public void Fourteen_refusals_on_nine_patients_within_an_hour_are_one_finding()
    {
        var kit = Hospital();
        var events = Denials(kit, 14, 9);
        var f = Assert.Single(kit.Run(events), f => f.Detection == "probing");
        Assert.Equal("clerk.joe", f.User);
        Assert.Null(f.Patient);
        Assert.Equal(Severity.High, f.Severity);
        Assert.Equal("was refused 10 times on 9 patients' records within 60 minutes", f.Evidence);
        Assert.Equal(events.Take(10).Select(e => e.Index), f.Entries);
    }

    [Fact]
    public void Refusals_on_few_patients_or_spread_over_hours_are_not_found()
    {
        var kit = Hospital();
        Assert.DoesNotContain(kit.Run(Denials(kit, 20, 2)), f => f.Detection == "probing");
        Assert.DoesNotContain(kit.Run(Denials(kit, 9, 9)), f => f.Detection == "probing");
        Assert.DoesNotContain(kit.Run(Denials(kit, 20, 10, everyMinutes: 7)), f => f.Detection == "probing");
    }

    [Fact]
    public void Permitted_reads_are_not_refusals()
    {
        var kit = Hospital();
        var reads = Enumerable.Range(0, 20).Select(i => kit.Read("clerk.joe", $"p-{i}", Kit.Start.AddMinutes(i)));
        Assert.DoesNotContain(kit.Run(reads), f => f.Detection == "probing");
    }

    [Fact]
    public void Configured_thresholds_change_the_result()
    {
        var kit = Hospital();
        var events = Denials(kit, 5, 5);
        Assert.DoesNotContain(kit.Run(events), f => f.Detection == "probing");
        kit.ConfigText = "version: 1\ndetections:\n  probing:\n    min-denials: 3\n";
        var f = Assert.Single(kit.Run(events), f => f.Detection == "probing");
        Assert.Equal("was refused 5 times on 5 patients' records within 60 minutes", f.Evidence);
    }

    [Fact]
    public void A_second_burst_in_a_later_window_is_found_again()
    {
        var kit = Hospital();
        var events = Denials(kit, 10, 10);
        events.AddRange(Denials(kit, 10, 10, from: Kit.Start.AddHours(3)));
        Assert.Equal(2, kit.Run(events).Count(f => f.Detection == "probing"));
    }

    [Fact]
    public void A_refusal_stamped_back_in_time_does_not_join_an_old_burst()
    {
        var kit = Hospital();
        var events = Denials(kit, 9, 9);
        events.Add(kit.Read("dr.other", "p-x", Kit.Start.AddHours(2)));
        events.Add(kit.Denied("clerk.joe", "p-9", Kit.Start.AddMinutes(30)));
        Assert.DoesNotContain(kit.Run(events), f => f.Detection == "probing");
    }

    [Fact]
    public void A_burst_whose_clock_jumped_back_half_way_is_still_found()
    {
        var kit = Hospital();
        var events = Denials(kit, 5, 5);
        events.AddRange(Denials(kit, 5, 5, from: Kit.Start.AddHours(-5)));
        Assert.Single(kit.Run(events), f => f.Detection == "probing");
    }

    [Fact]
    public void Unknown_users_and_patients_do_not_throw()
    {
        var kit = new Kit();
        var events = Enumerable.Range(0, 10).Select(i => kit.Denied("nobody", $"gone-{i}", Kit.Start.AddMinutes(i)));
        Assert.Single(kit.Run(events), f => f.Detection == "probing");
    }
}
