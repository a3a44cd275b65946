using Wardline.Cli;

namespace Wardline.Server.Tests.Modules.Monitoring;

/// <summary>
/// The dates `wardline monitor replay` and `wardline alerts list --since` take: a day is its local midnight in the
/// institution's zone, and a day whose midnight falls outside the calendar is refused with a message, not a stack trace.
/// </summary>
public sealed class MonitorCliDatesTests
{
    [Theory]
    [InlineData("Asia/Tokyo", "0001-01-01")]
    [InlineData("Pacific/Kiritimati", "0001-01-01")]
    [InlineData("Europe/Paris", "0001-01-01")]
    public void A_day_whose_local_midnight_is_before_the_calendar_in_UTC_is_refused_naming_the_option_and_the_range(string zone, string day)
    {
        var e = Assert.Throws<CliException>(() => MonitorCli.Instant(day, "--from", TimeZoneInfo.FindSystemTimeZoneById(zone)));

        Assert.Contains($"--from '{day}'", e.Message, StringComparison.Ordinal);
        Assert.Contains("0001-01-02 to 9999-12-31", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("0001-01-01T00:00:00+01:00")]
    [InlineData("9999-12-31T23:00:00-05:00")]
    public void An_instant_outside_the_calendar_in_UTC_is_refused_as_not_a_date(string text)
    {
        var e = Assert.Throws<CliException>(() => MonitorCli.Instant(text, "--to", TimeZoneInfo.Utc));

        Assert.Contains("--to", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("UTC", "0001-01-01")]
    [InlineData("UTC", "9999-12-31")]
    [InlineData("Asia/Tokyo", "0001-01-02")]
    [InlineData("Asia/Tokyo", "9999-12-31")]
    [InlineData("America/New_York", "0001-01-01")]
    [InlineData("America/New_York", "9999-12-31")]
    [InlineData("UTC", "0001-01-01T00:00:00Z")]
    [InlineData("UTC", "9999-12-31T23:59:59.9999999Z")]
    public void Days_and_instants_at_the_edges_of_the_calendar_are_read(string zone, string text)
    {
        var at = MonitorCli.Instant(text, "--from", TimeZoneInfo.FindSystemTimeZoneById(zone));

        Assert.Equal(TimeSpan.Zero, at.Offset);
        if (zone == "UTC") Assert.Equal(int.Parse(text[..4], System.Globalization.CultureInfo.InvariantCulture), at.Year);
    }
}
