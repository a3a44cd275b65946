using Wardline.Server.Hosting;
using Wardline.Server.Modules.Access;
using Wardline.Server.Modules.Access.Identity;
using Wardline.Server.Modules.Records.Storage;
using Wardline.Server.Tests.Infrastructure;

namespace Wardline.Server.Tests.Modules.Access;

/// <summary>The privacy officers hear of a break-glass declaration at once, by e-mail through a real SMTP server (aiosmtpd).</summary>
public sealed class BreakGlassNotificationTests : IAsyncLifetime
{
    private const string Reason = "Unconscious in resus, needs full history now";
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "wl-notify-" + Guid.NewGuid().ToString("N")[..8]);
    private SmtpSink _smtp = null!;

    public async Task InitializeAsync()
    {
        _smtp = await SmtpSink.StartAsync();
    }

    public Task DisposeAsync()
    {
        _smtp.Dispose();
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
        return Task.CompletedTask;
    }

    private async Task<(TestServer Server, string Patient)> StartAsync(int smtpPort, string name)
    {
        var options = new WardlineOptions { DataDirectory = Path.Combine(_dir, name) };
        options.Access.Notify.SmtpHost = "127.0.0.1";
        options.Access.Notify.SmtpPort = smtpPort;
        options.Access.Notify.From = "wardline@hospital.example";
        options.Access.Notify.PrivacyOfficers.Add("privacy@hospital.example");
        var server = await TestServer.StartAsync(options);
        var patient = await server.Client.CreateAsync("Patient", FhirTest.Patient("Glass" + name));
        await server.Service<AccountService>().CreateAsync(
            Account.New("dr.er", "Dr ER") with { Roles = ["physician"], Departments = ["emergency"], BreakGlassApproved = true }, null, "test", CancellationToken.None);
        return (server, patient);
    }

    [Fact]
    public async Task A_declaration_is_mailed_to_the_privacy_officers_at_once_without_its_reason()
    {
        var (server, patient) = await StartAsync(_smtp.Port, "mailed");
        await using var _ = server;

        var (outcome, declaration) = await server.Service<BreakGlass>().DeclareAsync("dr.er", true, patient, Reason, "127.0.0.1", "corr-1", CancellationToken.None);

        Assert.Equal(BreakGlassOutcome.Declared, outcome);
        await _smtp.WaitForAsync("Subject: Break-glass declared by dr.er", TimeSpan.FromSeconds(20));
        await _smtp.WaitForAsync(declaration!.Id, TimeSpan.FromSeconds(5));
        Assert.Contains("privacy@hospital.example", _smtp.Output, StringComparison.Ordinal);
        Assert.Contains($"Patient/{patient}", _smtp.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("resus", _smtp.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task When_mail_cannot_be_sent_the_emergency_is_still_granted_and_the_failure_is_a_security_event()
    {
        var (server, patient) = await StartAsync(SmtpSink.FreePort(), "unreachable");
        await using var _ = server;

        var (outcome, declaration) = await server.Service<BreakGlass>().DeclareAsync("dr.er", true, patient, Reason, "127.0.0.1", "corr-2", CancellationToken.None);

        Assert.Equal(BreakGlassOutcome.Declared, outcome);
        Assert.Single(await server.Service<BreakGlass>().ListAsync(openOnly: true, 10, CancellationToken.None), d => d.Id == declaration!.Id);
        Assert.Equal(1, await server.Service<RecordStore>().CountAsync(
            $"SELECT COUNT(*) FROM security_events WHERE kind = 'NotificationFailed' AND detail LIKE '%{declaration!.Id}%'", CancellationToken.None));
    }

    [Fact]
    public async Task Showing_declarations_to_a_reviewer_is_recorded_as_access_to_their_patients()
    {
        var (server, patient) = await StartAsync(SmtpSink.FreePort(), "reviewed");
        await using var _ = server;
        var glass = server.Service<BreakGlass>();
        await glass.DeclareAsync("dr.er", true, patient, Reason, "127.0.0.1", "corr-3", CancellationToken.None);

        var shown = await glass.ListAsync(openOnly: true, 10, CancellationToken.None, viewer: "privacy.officer", source: "console");

        Assert.Single(shown);
        Assert.Equal(1, await server.Service<RecordStore>().CountAsync(
            $"SELECT COUNT(*) FROM access_log WHERE phase = 'review' AND user_name = 'privacy.officer' AND resource_ref = 'Patient/{patient}'", CancellationToken.None));
    }
}
