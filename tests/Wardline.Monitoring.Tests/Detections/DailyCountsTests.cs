using Wardline.Monitoring.Detections;

namespace Wardline.Monitoring.Tests.Detections;

public sealed class DailyCountsTests
{
    private static MonitorContext Context(string zone) =>
        new(MonitorConfig.Default, OrgDirectory.Empty, TimeZoneInfo.FindSystemTimeZoneById(zone));

    private static void Now(MonitorContext ctx, long atMs) =>
        ctx.Begin(new MonitorEvent { Index = 0, AtMs = atMs, Kind = EntryKind.System }, null);

    [Theory]
    [InlineData("UTC", "2026-03-02T00:00:00Z")]
    [InlineData("Asia/Kolkata", "2026-03-02T00:00:00Z")]
    [InlineData("Europe/London", "2026-03-28T00:00:00Z")]
    [InlineData("Australia/Lord_Howe", "2026-04-03T00:00:00Z")]
    public void The_cached_local_day_and_hour_agree_with_the_zone_across_offsets_and_daylight_saving(string zone, string from)
    {
        var ctx = Context(zone);
        var clock = new LocalClock();
        var start = DateTimeOffset.Parse(from, System.Globalization.CultureInfo.InvariantCulture).ToUnixTimeMilliseconds();
        for (var at = start; at < start + (3 * 86_400_000L); at += 7 * 60_000)
        {
            Now(ctx, at);
            Assert.Equal(ctx.LocalDay(at), clock.Day(ctx));
            Assert.Equal(ctx.LocalHour(at), clock.Hour(ctx));
        }
    }

    [Fact]
    public void A_window_counts_distinct_items_unnamed_items_and_items_seen_at_most_twice()
    {
        var w = new SlidingWindow();
        w.Add(0, 1, "a");
        w.Add(0, 2, "a");
        w.Add(0, 3, "a");
        w.Add(0, 4, "b");
        w.Add(0, 5, null);
        Assert.Equal((5, 2, 1, 1), (w.Count, w.Distinct, w.NullItems, w.Few));
        w.Add(100, 6, "c");
        w.Prune(50, 50);
        Assert.Equal((1, 1, 0, 1), (w.Count, w.Distinct, w.NullItems, w.Few));
        Assert.Equal([6L], w.Indexes(10));
    }

    [Fact]
    public void A_window_holds_at_most_its_cap()
    {
        var w = new SlidingWindow();
        for (var i = 0; i < SlidingWindow.Cap + 5; i++) w.Add(0, i, "p-" + i);
        Assert.Equal(SlidingWindow.Cap, w.Count);
        Assert.Equal(SlidingWindow.Cap, w.Distinct);
        Assert.Equal(5L, w.Indexes(SlidingWindow.Cap)[0]);
    }

    [Fact]
    public void Windows_that_fell_quiet_are_forgotten()
    {
        var windows = new SlidingWindows(60_000);
        for (var i = 0; i < 1000; i++) windows.Get("user-" + i, 0).Add(0, i, "p");
        Assert.Equal(1000, windows.Keys);
        windows.Get("late", 200_000);
        Assert.Equal(1, windows.Keys);
    }

    [Fact]
    public void A_users_days_roll_into_a_bounded_baseline()
    {
        var kit = new Kit();
        var ctx = Context("UTC");
        var counts = new DailyCounts(3);
        DailyCounts.UserDays? Add(MonitorEvent e)
        {
            ctx.Begin(e, null);
            return counts.Add(e, ctx);
        }
        for (var day = 0; day < 10; day++)
        {
            for (var i = 0; i <= day; i++) Add(kit.Read("u", $"p-{i}", Kit.Start.AddDays(day)));
        }
        var crossing = kit.Read("u", "p-x", Kit.Start.AddDays(10));
        var u = Add(crossing)!;
        Assert.Equal(3, u.HistoryDays);
        Assert.Equal((8 + 9 + 10) / 3.0, u.Mean);
        Assert.Equal([crossing.Index], u.TakeSample());
        Assert.Same(u, counts.Add(crossing, ctx));
        Assert.Null(Add(kit.Read("u", "p-x", Kit.Start.AddDays(10))));
    }

    [Fact]
    public void Detections_of_one_engine_share_one_count_per_baseline_length()
    {
        var ctx = Context("UTC");
        Assert.Same(DailyCounts.For(ctx, 28), DailyCounts.For(ctx, 28));
        Assert.NotSame(DailyCounts.For(ctx, 28), DailyCounts.For(ctx, 14));
        Assert.NotSame(DailyCounts.For(ctx, 28), DailyCounts.For(Context("UTC"), 28));
    }
}
