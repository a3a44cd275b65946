namespace Wardline.Monitoring.Tests.Detections;

public sealed class PeerOutlierTests
{
    private static readonly string[] Nurses = ["nurse.a", "nurse.b", "nurse.c", "nurse.d"];

    private static Kit Hospital()
    {
        var kit = new Kit();
        foreach (var n in Nurses) kit.Staff.Add(new StaffMember(n, ["nurse"], ["cardiology"], []));
        kit.Staff.Add(new StaffMember("nurse.new", ["nurse"], ["cardiology"], []));
        kit.Staff.Add(new StaffMember("nurse.onc", ["nurse"], ["oncology"], []));
        kit.Staff.Add(new StaffMember("dr.cardio", ["physician"], ["cardiology"], []));
        return kit;
    }

    /// <summary>Two weeks of weekdays on which each peer opens 10 distinct patients.</summary>
    private static List<MonitorEvent> PeersWork(Kit kit, IEnumerable<string> peers, int perDay = 10)
    {
        var events = new List<MonitorEvent>();
        for (var day = 0; day < 14; day++)
        {
            var at = Kit.Start.AddDays(day);
            if (at.DayOfWeek is DayOfWeek.Saturday or DayOfWeek.Sunday) continue;
            foreach (var peer in peers)
            {
                for (var i = 0; i < perDay; i++) events.Add(kit.Read(peer, $"p-{peer}-{day}-{i}", at.AddMinutes(i)));
            }
        }
        return events;
    }

    private static IEnumerable<MonitorEvent> Today(Kit kit, string user, int patients)
    {
        var at = Kit.Start.AddDays(14);
        for (var i = 0; i < patients; i++) yield return kit.Read(user, $"t-{i}", at.AddSeconds(i * 20));
    }

    [Fact]
    public void A_new_nurse_opening_45_patients_against_peers_usual_10_is_found_once()
    {
        var kit = Hospital();
        var events = PeersWork(kit, Nurses);
        events.AddRange(Today(kit, "nurse.new", 45));
        var f = Assert.Single(kit.Run(events), f => f.Detection == "peer-outlier");
        Assert.Equal("nurse.new", f.User);
        Assert.Equal(Severity.Medium, f.Severity);
        Assert.Equal("opened 41 patients' records today, 4.1 times the median of 4 peers (nurse, cardiology)", f.Evidence);
        Assert.Equal(21, f.Entries.Count);
    }

    [Fact]
    public void A_day_within_four_times_the_peers_median_is_not_found()
    {
        var kit = Hospital();
        var events = PeersWork(kit, Nurses);
        events.AddRange(Today(kit, "nurse.new", 38));
        Assert.DoesNotContain(kit.Run(events), f => f.Detection == "peer-outlier");
    }

    [Fact]
    public void Staff_of_another_department_or_role_are_not_peers()
    {
        var kit = Hospital();
        var events = PeersWork(kit, Nurses);
        events.AddRange(Today(kit, "nurse.onc", 60));
        events.AddRange(Today(kit, "dr.cardio", 60));
        Assert.DoesNotContain(kit.Run(events), f => f.Detection == "peer-outlier");
    }

    [Fact]
    public void Fewer_than_three_peers_with_history_are_not_enough()
    {
        var kit = Hospital();
        var events = PeersWork(kit, Nurses.Take(2));
        events.AddRange(Today(kit, "nurse.new", 60));
        Assert.DoesNotContain(kit.Run(events), f => f.Detection == "peer-outlier");
    }

    [Fact]
    public void A_peer_is_not_compared_with_themself()
    {
        var kit = Hospital();
        // nurse.a usually opens 10 like the others; with themself left out there are still 3 peers.
        var events = PeersWork(kit, Nurses);
        events.AddRange(Today(kit, "nurse.a", 45));
        var f = Assert.Single(kit.Run(events), f => f.Detection == "peer-outlier");
        Assert.Contains("median of 3 peers", f.Evidence, StringComparison.Ordinal);
    }

    [Fact]
    public void Volume_spike_and_peer_outlier_count_each_entry_once_and_both_report()
    {
        var kit = Hospital();
        var events = PeersWork(kit, Nurses);
        events.AddRange(Today(kit, "nurse.a", 45));
        var findings = kit.Run(events);
        Assert.StartsWith("opened 31 patients' records today; this user's usual is 10 a day", Assert.Single(findings, f => f.Detection == "volume-spike").Evidence, StringComparison.Ordinal);
        Assert.StartsWith("opened 41 patients' records today, 4.1 times the median of 3 peers", Assert.Single(findings, f => f.Detection == "peer-outlier").Evidence, StringComparison.Ordinal);
    }

    [Fact]
    public void Configured_thresholds_change_the_result()
    {
        var kit = Hospital();
        var events = PeersWork(kit, Nurses);
        events.AddRange(Today(kit, "nurse.new", 32));
        Assert.DoesNotContain(kit.Run(events), f => f.Detection == "peer-outlier");
        kit.ConfigText = "version: 1\ndetections:\n  peer-outlier:\n    factor: 2\n";
        var f = Assert.Single(kit.Run(events), f => f.Detection == "peer-outlier");
        Assert.StartsWith("opened 31 patients' records today, 3.1 times the median of 4 peers", f.Evidence, StringComparison.Ordinal);
    }

    [Fact]
    public void Entries_from_a_clock_that_jumped_back_neither_crash_nor_start_a_day_of_their_own()
    {
        var kit = Hospital();
        var events = PeersWork(kit, Nurses);
        events.AddRange(Today(kit, "nurse.new", 45).Select((e, i) => i % 3 == 0 ? e with { AtMs = e.AtMs - (3 * 86_400_000L) } : e));
        Assert.Single(kit.Run(events), f => f.Detection == "peer-outlier");
    }

    [Fact]
    public void Users_unknown_to_the_directory_have_no_peers_and_do_not_throw()
    {
        var kit = Hospital();
        var events = PeersWork(kit, Nurses);
        events.AddRange(Today(kit, "left.long.ago", 100));
        Assert.DoesNotContain(kit.Run(events), f => f.Detection == "peer-outlier");
    }
}
