namespace Wardline.Monitoring.Tests.Detections;

public sealed class AfterHoursTests
{
    private static Kit Hospital()
    {
        var kit = new Kit();
        kit.Staff.Add(new StaffMember("dr.day", ["physician"], ["cardiology"], []));
        kit.Staff.Add(new StaffMember("nurse.shift", ["nurse"], ["cardiology"], [], ShiftStartHour: 8, ShiftEndHour: 16));
        kit.Staff.Add(new StaffMember("nurse.night", ["nurse"], ["cardiology"], [], ShiftStartHour: 22, ShiftEndHour: 6));
        kit.Staff.Add(new StaffMember("interface.lab", ["service"], ["lab"], [], Service: true));
        kit.Patients.Add(new PatientProfile("p-1"));
        return kit;
    }

    /// <summary>Four weeks of weekdays (20 working days) read from 09:00 to 16:00 each.</summary>
    private static List<MonitorEvent> DayWork(Kit kit, string user)
    {
        var events = new List<MonitorEvent>();
        for (var day = 0; day < 28; day++)
        {
            var date = Kit.Start.Date.AddDays(day);
            if (date.DayOfWeek is DayOfWeek.Saturday or DayOfWeek.Sunday) continue;
            for (var hour = 9; hour <= 16; hour++) events.Add(kit.Read(user, $"p-{day}-{hour}", new DateTimeOffset(date.AddHours(hour), TimeSpan.Zero)));
        }
        return events;
    }

    private static DateTimeOffset Day28(int hour) => new(Kit.Start.Date.AddDays(28).AddHours(hour), TimeSpan.Zero);

    [Fact]
    public void A_day_worker_reading_at_three_in_the_morning_is_found()
    {
        var kit = Hospital();
        var events = DayWork(kit, "dr.day");
        var night = kit.Read("dr.day", "p-1", Day28(3));
        events.Add(night);
        var f = Assert.Single(kit.Run(events), f => f.Detection == "after-hours");
        Assert.Equal("dr.day", f.User);
        Assert.Equal("p-1", f.Patient);
        Assert.Equal(Severity.Low, f.Severity);
        Assert.Equal([night.Index], f.Entries);
        Assert.Equal("read records at 03:00 local time; in the last 28 days this user worked at this hour on 0 of 20 working days", f.Evidence);
    }

    [Fact]
    public void Reading_at_the_usual_hours_or_an_hour_past_them_is_not_found()
    {
        var kit = Hospital();
        var events = DayWork(kit, "dr.day");
        events.Add(kit.Read("dr.day", "p-1", Day28(10)));
        events.Add(kit.Read("dr.day", "p-1", Day28(17)));
        events.Add(kit.Read("dr.day", "p-1", Day28(8)));
        Assert.DoesNotContain(kit.Run(events), f => f.Detection == "after-hours");
    }

    [Fact]
    public void A_night_of_reading_is_one_finding_a_day()
    {
        var kit = Hospital();
        var events = DayWork(kit, "dr.day");
        for (var hour = 0; hour < 5; hour++) events.Add(kit.Read("dr.day", $"n-{hour}", Day28(hour)));
        Assert.Single(kit.Run(events), f => f.Detection == "after-hours");
    }

    [Fact]
    public void Outside_the_contracted_shift_is_found_without_history()
    {
        var kit = Hospital();
        var f = Assert.Single(kit.Run(kit.Read("nurse.shift", "p-1", Kit.Start.AddHours(10))), f => f.Detection == "after-hours");
        Assert.Equal("read records at 20:00 local time; outside this user's contracted hours (08:00-16:00)", f.Evidence);
        Assert.DoesNotContain(kit.Run(kit.Read("nurse.shift", "p-1", Kit.Start.AddHours(1))), f => f.Detection == "after-hours");
    }

    [Fact]
    public void A_night_shift_across_midnight_is_usual_at_three()
    {
        var kit = Hospital();
        Assert.DoesNotContain(kit.Run(kit.Read("nurse.night", "p-1", Day28(3))), f => f.Detection == "after-hours");
        Assert.Single(kit.Run(kit.Read("nurse.night", "p-1", Day28(12))), f => f.Detection == "after-hours");
    }

    [Fact]
    public void Too_little_history_or_a_service_account_is_not_judged()
    {
        var kit = Hospital();
        var week = DayWork(kit, "dr.day").Where(e => e.AtMs < Kit.Ms(Kit.Start.AddDays(7))).ToList();
        week.Add(kit.Read("dr.day", "p-1", Day28(3)));
        Assert.DoesNotContain(kit.Run(week), f => f.Detection == "after-hours");
        var service = DayWork(kit, "interface.lab");
        service.Add(kit.Read("interface.lab", "p-1", Day28(3)));
        Assert.DoesNotContain(kit.Run(service), f => f.Detection == "after-hours");
    }

    [Fact]
    public void Configured_thresholds_change_the_result()
    {
        var kit = Hospital();
        var events = DayWork(kit, "dr.day");
        events.Add(kit.Read("dr.day", "p-1", Day28(3)));
        kit.ConfigText = "version: 1\ndetections:\n  after-hours:\n    min-history-days: 25\n";
        Assert.DoesNotContain(kit.Run(events), f => f.Detection == "after-hours");
        kit.ConfigText = "version: 1\ndetections:\n  after-hours:\n    usual-share: 0\n";
        Assert.DoesNotContain(kit.Run(events), f => f.Detection == "after-hours");
    }

    [Fact]
    public void A_care_relationship_explains_the_night_visit_when_configured()
    {
        var kit = Hospital();
        kit.Relationships.Add(("dr.day", "p-1", new Relationship("care-team", Kit.Ms(Kit.Start), null)));
        kit.ConfigText = "version: 1\nexplanations:\n  care-team:\n    suppresses: [after-hours]\n";
        var events = DayWork(kit, "dr.day");
        events.Add(kit.Read("dr.day", "p-1", Day28(3)));
        Assert.DoesNotContain(kit.Run(events), f => f.Detection == "after-hours");
    }

    [Fact]
    public void An_entry_from_a_clock_that_jumped_back_is_judged_at_the_hour_it_arrived()
    {
        var kit = Hospital();
        var events = DayWork(kit, "dr.day");
        events.Add(kit.Read("dr.day", "p-1", Day28(10)));
        events.Add(kit.Read("dr.day", "p-1", Day28(3)));
        Assert.DoesNotContain(kit.Run(events), f => f.Detection == "after-hours");
    }

    [Fact]
    public void Hours_are_judged_in_the_institutions_time_zone()
    {
        var kit = Hospital();
        kit.ConfigText = "version: 1\ntime-zone: Asia/Tokyo\n";
        // 09:00-16:00 in Tokyo is 00:00-07:00 UTC; 03:00 UTC is noon there, 18:00 UTC is 03:00 there.
        var events = DayWork(kit, "dr.day").Select(e => e with { AtMs = e.AtMs - (9 * 3_600_000L) }).ToList();
        events.Add(kit.Read("dr.day", "p-1", Day28(3)));
        Assert.DoesNotContain(kit.Run(events), f => f.Detection == "after-hours");
        events.Add(kit.Read("dr.day", "p-1", Day28(18)));
        Assert.Equal("read records at 03:00 local time; in the last 28 days this user worked at this hour on 0 of 20 working days",
            Assert.Single(kit.Run(events), f => f.Detection == "after-hours").Evidence);
    }

    [Fact]
    public void Unknown_users_and_patients_do_not_throw()
    {
        var kit = Hospital();
        var events = DayWork(kit, "left.long.ago");
        events.Add(kit.Read("left.long.ago", "p-gone", Day28(3)));
        Assert.Single(kit.Run(events), f => f.Detection == "after-hours");
    }
}
