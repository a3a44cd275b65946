using Wardline.Monitoring.Synthetic;

namespace Wardline.Monitoring.Tests;

/// <summary>
/// A replay on more than one core must find exactly what one engine finds, in the same order (alerts are grouped in the order
/// findings are recorded): held on three synthetic weeks of a hospital with every kind of violation in them.
/// </summary>
public sealed class SplitEngineTests
{
    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public async Task Split_engines_find_what_one_engine_finds_in_the_same_order(int parts)
    {
        var hospital = new SyntheticHospital(new SyntheticOptions { Seed = 23, Days = 21, WarmDays = 7 });
        var events = hospital.Events().ToList();
        var examineFrom = events.First(e => e.AtMs >= hospital.EvaluationStartMs).Index;

        var one = new MonitorEngine(MonitorConfig.Default, hospital.Directory, TimeZoneInfo.Utc);
        var expected = new List<Finding>();
        foreach (var e in events)
        {
            if (e.Index < examineFrom) one.Warm(e);
            else one.Examine(e, expected);
        }
        var split = new SplitEngine(MonitorConfig.Default, hospital.Directory, TimeZoneInfo.Utc, parts);
        var found = new List<Finding>();
        foreach (var batch in events.Chunk(3_000)) await split.RunAsync(batch, examineFrom, found);

        Assert.True(expected.Count > 200, $"{expected.Count} findings");
        Assert.True(expected.Select(f => f.Detection).Distinct().Count() >= 15);
        Assert.Equal(expected.Select(Text), found.Select(Text));
    }

    private static string Text(Finding f) =>
        $"{f.Detection}|{f.Severity}|{f.User}|{f.Patient}|{f.AtMs}|{string.Join(',', f.Entries)}|{f.Evidence}|{f.GroupKey}";
}
