using Wardline.Server.Modules.Backup;

namespace Wardline.Server.Tests.Modules.Backup;

/// <summary>The overdue threshold: three intervals and a minute unless set; out-of-range values are refused at start with the setting's name.</summary>
public sealed class BackupOptionsTests
{
    [Theory]
    [InlineData(60, 0, 240)]
    [InlineData(1, 0, 63)]
    [InlineData(0, 0, 3 * 86_400 + 60)]
    [InlineData(60, 900, 900)]
    public void The_overdue_threshold_is_three_intervals_and_a_minute_unless_set(int interval, int overdueAfter, int expected)
    {
        var options = new BackupOptions { IntervalSeconds = interval, OverdueAfterSeconds = overdueAfter };

        Assert.Equal(expected, options.OverdueSeconds);
        Assert.Empty(options.Validate());
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(31_622_401)]
    public void An_overdue_threshold_out_of_range_is_refused_naming_the_setting(int overdueAfter)
    {
        var problems = new BackupOptions { OverdueAfterSeconds = overdueAfter }.Validate();

        Assert.Contains(problems, p => p.Contains("Wardline:Backup:OverdueAfterSeconds must be between 0", StringComparison.Ordinal));
    }
}
