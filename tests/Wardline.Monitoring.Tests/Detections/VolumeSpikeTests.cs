namespace Wardline.Monitoring.Tests.Detections;

public sealed class VolumeSpikeTests
{
    private static Kit Hospital()
    {
        var kit = new Kit();
        kit.Staff.Add(new StaffMember("nurse.ann", ["nurse"], ["cardiology"], []));
        kit.Staff.Add(new StaffMember("interface.lab", ["service"], ["lab"], [], Service: true));
        return kit;
    }

    /// <summary>Four weeks of weekdays (20 working days) with <paramref name="perDay"/> distinct patients each, then the Monday after.</summary>
    private static List<MonitorEvent> History(Kit kit, string user, int perDay, int weeks = 4)
    {
        var events = new List<MonitorEvent>();
        for (var day = 0; day < weeks * 7; day++)
        {
            var at = Kit.Start.AddDays(day);
            if (at.DayOfWeek is DayOfWeek.Saturday or DayOfWeek.Sunday) continue;
            for (var i = 0; i < perDay; i++) events.Add(kit.Read(user, $"p-{day}-{i}", at.AddMinutes(i)));
        }
        return events;
    }

    private static IEnumerable<MonitorEvent> Today(Kit kit, string user, int patients, int weeks = 4)
    {
        var at = Kit.Start.AddDays(weeks * 7);
        for (var i = 0; i < patients; i++) yield return kit.Read(user, $"t-{i}", at.AddSeconds(i * 20));
    }

    [Fact]
    public void Nurse_opening_64_patients_against_a_usual_9_is_found_once_with_a_sample()
    {
        var kit = Hospital();
        var events = History(kit, "nurse.ann", 9);
        events.AddRange(Today(kit, "nurse.ann", 64));
        var findings = kit.Run(events).Where(f => f.Detection == "volume-spike").ToList();
        var f = Assert.Single(findings);
        Assert.Equal("nurse.ann", f.User);
        Assert.Null(f.Patient);
        Assert.Equal(Severity.Medium, f.Severity);
        Assert.Equal("opened 31 patients' records today; this user's usual is 9 a day (mean of 20 working days)", f.Evidence);
        Assert.Equal(21, f.Entries.Count);
        Assert.Equal(f.Entries.Order(), f.Entries);
        var crossing = events.Single(e => e.Patient == "t-30");
        Assert.Equal(crossing.Index, f.Entries[^1]);
    }

    [Fact]
    public void A_busy_day_within_three_times_the_usual_is_not_found()
    {
        var kit = Hospital();
        var events = History(kit, "nurse.ann", 15);
        events.AddRange(Today(kit, "nurse.ann", 44));
        Assert.DoesNotContain(kit.Run(events), f => f.Detection == "volume-spike");
    }

    [Fact]
    public void A_new_user_without_a_weeks_history_is_not_judged()
    {
        var kit = Hospital();
        var events = History(kit, "nurse.ann", 2, weeks: 1);
        events.AddRange(Today(kit, "nurse.ann", 100, weeks: 1));
        Assert.DoesNotContain(kit.Run(events), f => f.Detection == "volume-spike");
    }

    [Fact]
    public void A_service_account_moving_many_records_is_not_found()
    {
        var kit = Hospital();
        var events = History(kit, "interface.lab", 9);
        events.AddRange(Today(kit, "interface.lab", 200));
        Assert.DoesNotContain(kit.Run(events), f => f.Detection == "volume-spike");
    }

    [Fact]
    public void Configured_thresholds_change_the_result()
    {
        var kit = Hospital();
        var events = History(kit, "nurse.ann", 5);
        events.AddRange(Today(kit, "nurse.ann", 20));
        Assert.DoesNotContain(kit.Run(events), f => f.Detection == "volume-spike");
        kit.ConfigText = "version: 1\ndetections:\n  volume-spike:\n    min-patients: 10\n    factor: 2\n";
        var f = Assert.Single(kit.Run(events), f => f.Detection == "volume-spike");
        Assert.StartsWith("opened 11 patients' records today; this user's usual is 5 a day", f.Evidence, StringComparison.Ordinal);
    }

    [Fact]
    public void A_shorter_baseline_judges_by_the_last_days_only()
    {
        var kit = Hospital();
        // Three weeks at 30 a day, then a quiet week at 5 a day, then 35 today.
        var events = History(kit, "nurse.ann", 30, weeks: 3);
        events.AddRange(History(kit, "nurse.ann", 5, weeks: 1).Select(e => e with { AtMs = e.AtMs + (21 * 86_400_000L) }));
        events.AddRange(Today(kit, "nurse.ann", 35));
        Assert.DoesNotContain(kit.Run(events), f => f.Detection == "volume-spike");
        // min-history-days (7) is more than a 5-day baseline holds: it is held to 5.
        kit.ConfigText = "version: 1\ndetections:\n  volume-spike:\n    baseline-days: 5\n";
        Assert.Equal("opened 31 patients' records today; this user's usual is 5 a day (mean of 5 working days)",
            Assert.Single(kit.Run(events), f => f.Detection == "volume-spike").Evidence);
    }

    [Fact]
    public void The_baseline_learns_while_the_engine_warms_on_history()
    {
        var kit = Hospital();
        var engine = kit.Engine();
        foreach (var e in History(kit, "nurse.ann", 9)) engine.Warm(e);
        var findings = new List<Finding>();
        foreach (var e in Today(kit, "nurse.ann", 40)) engine.Examine(e, findings);
        Assert.Single(findings, f => f.Detection == "volume-spike");
    }

    [Fact]
    public void Entries_from_a_clock_that_jumped_back_count_in_the_day_they_arrived()
    {
        var kit = Hospital();
        var events = History(kit, "nurse.ann", 9);
        // Every other entry of today says yesterday: it is still today's work, and neither lost nor a day of its own.
        var today = Today(kit, "nurse.ann", 40).Select((e, i) => i % 2 == 0 ? e : e with { AtMs = e.AtMs - 86_400_000 }).ToList();
        events.AddRange(today);
        var f = Assert.Single(kit.Run(events), f => f.Detection == "volume-spike");
        Assert.StartsWith("opened 31 patients' records today", f.Evidence, StringComparison.Ordinal);
    }

    [Fact]
    public void A_clock_jump_back_alone_does_not_fake_a_spike()
    {
        var kit = Hospital();
        var events = History(kit, "nurse.ann", 9);
        var last = events[^1];
        // Twenty of the last day's reads are replayed with times a week earlier: they arrive on the last day, which stays ordinary.
        for (var i = 0; i < 20; i++) events.Add(kit.Read("nurse.ann", $"late-{i}", last.At.AddDays(-7)));
        Assert.DoesNotContain(kit.Run(events), f => f.Detection == "volume-spike");
    }

    [Fact]
    public void Unknown_users_and_patients_do_not_throw()
    {
        var kit = Hospital();
        var events = History(kit, "left.long.ago", 9);
        events.AddRange(Today(kit, "left.long.ago", 40));
        Assert.Single(kit.Run(events), f => f.Detection == "volume-spike");
    }
}
