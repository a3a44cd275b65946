namespace Wardline.Monitoring.Tests;

public sealed class MonitorConfigTests
{
    [Fact]
    public void The_built_in_configuration_reads_and_enables_every_detection()
    {
        var config = MonitorConfig.Default;
        Assert.All(Catalog.All, d => Assert.True(config.For(d.Id).Enabled, d.Id));
        Assert.Equal(1440, config.GroupWindowMinutes);
    }

    [Theory]
    [InlineData("version: 1\ndetections:\n  self-acess:\n    severity: high\n", "test.yaml:3:3: 'self-acess' is not known in detections")]
    [InlineData("version: 1\ndetections:\n  self-access:\n    severity: urgent\n", "test.yaml:4:15: detections.self-access.severity must be low, medium, high or critical, not 'urgent'")]
    [InlineData("version: 1\ndetections:\n  self-access:\n    enabled: yes\n", "test.yaml:4:14: detections.self-access.enabled must be true or false")]
    [InlineData("version: 2\n", "test.yaml:1:10: version must be 1")]
    [InlineData("detections: {}\n", "test.yaml:1:1: 'version: 1' is missing")]
    [InlineData("version: 1\ngrouping:\n  window-minutes: 0\n", "test.yaml:3:19: grouping.window-minutes must be between 1 and 10080, not 0")]
    [InlineData("version: 1\ngrouping:\n  window-minutes: [1]\n", "test.yaml:3:19: grouping.window-minutes must be a single value")]
    [InlineData("version: 1\ntime-zone: Mars/Olympus\n", "test.yaml:2:12: 'Mars/Olympus' is not a known time zone")]
    [InlineData("version: 1\nexplanations:\n  care-team:\n    suppresses: [self-access]\n", "test.yaml:4:18: self-access cannot be explained away")]
    [InlineData("version: 1\nexplanations:\n  friendship:\n    suppresses: []\n", "test.yaml:3:3: 'friendship' is not known in explanations")]
    [InlineData("version: 1\n  bad: [indent\n", "test.yaml:")]
    [InlineData("- a\n- b\n", "test.yaml:1:1: the file must be a mapping")]
    [InlineData("version: 1\ndetections:\n  break-glass-overuse:\n    max-declarations: 3.5\n", "test.yaml:4:23: detections.break-glass-overuse.max-declarations must be a whole number, not 3.5")]
    public void A_bad_file_is_refused_with_its_position(string text, string expected)
    {
        var e = Assert.Throws<MonitorConfigException>(() => MonitorConfig.Parse(text, "test.yaml"));
        Assert.StartsWith(expected, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_ratio_may_be_fractional()
    {
        var config = MonitorConfig.Parse("version: 1\ndetections:\n  volume-spike:\n    factor: 2.5\n", "test.yaml");
        Assert.Equal(2.5, config.For("volume-spike")["factor"]);
    }

    [Fact]
    public void A_switched_off_detection_does_not_run()
    {
        var kit = new Kit { ConfigText = "version: 1\ndetections:\n  self-access:\n    enabled: false\n" };
        kit.Patients.Add(new PatientProfile("p-ann", StaffUser: "nurse.ann"));
        Assert.DoesNotContain("self-access", kit.Engine().ActiveDetections);
        Assert.Empty(kit.Run(kit.Read("nurse.ann", "p-ann", Kit.Start)));
    }
}
