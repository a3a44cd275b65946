using Wardline.Server.Modules.Console;

namespace Wardline.Server.Tests.Console;

public sealed class ConsoleOptionsTests
{
    [Fact]
    public void The_defaults_are_a_15_minute_idle_time_out_and_an_8_hour_session()
    {
        var o = new ConsoleOptions();

        Assert.Equal(TimeSpan.FromMinutes(15), o.IdleTimeout);
        Assert.Equal(TimeSpan.FromHours(8), o.AbsoluteLifetime);
        Assert.Empty(o.Validate());
    }

    [Theory]
    [InlineData(0, 60)]
    [InlineData(180, 600)]
    [InlineData(30, 20)]
    [InlineData(15, 1500)]
    public void Out_of_range_session_limits_are_refused(int idleMinutes, int lifetimeMinutes)
    {
        var o = new ConsoleOptions { IdleTimeout = TimeSpan.FromMinutes(idleMinutes), AbsoluteLifetime = TimeSpan.FromMinutes(lifetimeMinutes) };

        Assert.NotEmpty(o.Validate());
    }
}
