using Wardline.Monitoring;
using Wardline.Server.Modules.Monitoring;
using Wardline.Server.Tests.Infrastructure;
using static Wardline.Server.Tests.Modules.Ledger.Infrastructure.LedgerTestKit;

namespace Wardline.Server.Tests.Modules.Monitoring;

/// <summary>
/// The alert store on both engines: findings grouped into cases, replays that add nothing, repeat offenders, and the
/// review workflow (allowed and refused transitions, stale revisions, sealed notes), each change in the ledger.
/// </summary>
public abstract class AlertStoreConformance(StoreKind kind) : IAsyncLifetime
{
    private MonitoringHarness _h = null!;
    private readonly MonitorConfig _config = MonitorConfig.Default;

    private AlertStore Alerts => _h.Alerts;

    public async Task InitializeAsync()
    {
        _h = await MonitoringHarness.CreateAsync(kind);
        await _h.AccountAsync("privacy.pat", "privacy_officer");
    }

    public async Task DisposeAsync() => await _h.DisposeAsync();

    private async Task<Alert> RaiseAsync(string user = "nurse.snoop", string detection = "self-access")
    {
        var idx = (await _h.EntriesAsync(1))[0];
        var result = await Alerts.RecordFindingsAsync([MonitoringHarness.Finding(detection, user, "p-" + idx, idx)], _config, "stream", null, CancellationToken.None);
        var id = Assert.Single(result.NewAlertIds);
        return (await Alerts.GetAsync(id, CancellationToken.None))!.Alert;
    }

    [Fact]
    public async Task A_spree_across_forty_patients_is_one_alert_with_forty_patients()
    {
        var entries = await _h.EntriesAsync(40);
        var findings = entries.Select((idx, i) => MonitoringHarness.Finding("no-care-relationship", "clerk.spree", "patient-" + i, idx)).ToList();

        var result = await Alerts.RecordFindingsAsync(findings, _config, "stream", entries[^1], CancellationToken.None);

        Assert.Equal(1, result.New);
        Assert.Equal(39, result.Grouped);
        var page = await Alerts.QueryAsync(new AlertQuery(User: "clerk.spree"), CancellationToken.None);
        var alert = Assert.Single(page.Alerts);
        Assert.Equal(40, alert.Patients);
        Assert.Equal(40, alert.Entries);
        Assert.Equal(AlertStatus.New, alert.Status);
        var detail = (await Alerts.GetAsync(alert.Id, CancellationToken.None))!;
        Assert.Equal(40, detail.Entries.Count);
        Assert.Equal(39, detail.Events.Count(e => e.Kind == "grouped"));
        Assert.Equal(entries[^1], await Alerts.CursorAsync(CancellationToken.None));
        Assert.Equal(1, await _h.CountAsync("SELECT COUNT(*) FROM ledger_entries WHERE type = 'security' AND event = 'AlertRaised' AND user_name = 'clerk.spree'"));
    }

    [Fact]
    public async Task Recording_the_same_findings_twice_adds_nothing_the_second_time()
    {
        var entries = await _h.EntriesAsync(3);
        var findings = entries.Select(idx => MonitoringHarness.Finding("self-access", "nurse.twice", "own", idx, groupKey: "own")).ToList();
        await Alerts.RecordFindingsAsync(findings, _config, "replay:1", null, CancellationToken.None);
        var ledger = await _h.LedgerSizeAsync();

        var again = await Alerts.RecordFindingsAsync(findings, _config, "replay:2", null, CancellationToken.None);

        Assert.Equal(new RecordResult(0, 0, 3, []), again with { NewAlertIds = [] });
        Assert.Empty(again.NewAlertIds);
        Assert.Equal(ledger, await _h.LedgerSizeAsync());
        Assert.Equal(3, await _h.CountAsync("SELECT COUNT(*) FROM monitor_alert_entries"));
    }

    [Fact]
    public async Task A_finding_after_the_grouping_window_raises_a_new_alert()
    {
        var entries = await _h.EntriesAsync(2);
        var first = DateTimeOffset.UtcNow.AddHours(-30);
        await Alerts.RecordFindingsAsync([MonitoringHarness.Finding("vip", "porter.late", "star", entries[0], first)], _config, "stream", null, CancellationToken.None);

        var later = await Alerts.RecordFindingsAsync([MonitoringHarness.Finding("vip", "porter.late", "star", entries[1], first.AddMinutes(_config.GroupWindowMinutes + 1))],
            _config, "stream", null, CancellationToken.None);

        Assert.Equal(1, later.New);
        Assert.Equal(2, (await Alerts.QueryAsync(new AlertQuery(User: "porter.late"), CancellationToken.None)).Alerts.Count);
    }

    [Fact]
    public async Task A_user_with_alerts_closed_as_violations_is_marked_a_repeat_offender()
    {
        for (var i = 0; i < _config.RepeatOffenderViolations; i++)
        {
            var a = await RaiseAsync("clerk.again", "detection-" + i);
            Assert.False(a.RepeatOffender);
            Assert.IsType<AlertChange.Done>(await Alerts.ChangeStatusAsync(a.Id, AlertStatus.ClosedViolation, "privacy.pat", "confirmed with the manager", a.Revision, CancellationToken.None));
        }

        var next = await RaiseAsync("clerk.again", "another");
        var other = await RaiseAsync("clerk.first", "another");

        Assert.True(next.RepeatOffender);
        Assert.False(other.RepeatOffender);
    }

    [Theory]
    [InlineData("under-review")]
    [InlineData("escalated")]
    [InlineData("closed-violation")]
    [InlineData("closed-legitimate")]
    [InlineData("under-review escalated")]
    [InlineData("under-review closed-violation")]
    [InlineData("under-review closed-legitimate")]
    [InlineData("escalated closed-violation")]
    [InlineData("escalated closed-legitimate")]
    [InlineData("closed-violation under-review")]
    [InlineData("closed-legitimate under-review")]
    public async Task Each_allowed_transition_is_made_and_recorded_in_the_ledger(string path)
    {
        var alert = await RaiseAsync();
        var from = AlertStatus.New;
        foreach (var to in Statuses(path))
        {
            var change = await Alerts.ChangeStatusAsync(alert.Id, to, "privacy.pat", "reviewed the access with the ward manager", alert.Revision, CancellationToken.None);

            alert = Assert.IsType<AlertChange.Done>(change).Alert;
            Assert.Equal(to, alert.Status);
            var detail = $"alert {alert.Id} {AlertStatuses.Name(from)} -> {AlertStatuses.Name(to)}";
            Assert.Equal(1, await _h.CountAsync($"SELECT COUNT(*) FROM ledger_entries WHERE type = 'security' AND event = 'AlertUpdated' AND actor = 'privacy.pat' AND user_name = 'nurse.snoop' AND outcome = '{AlertStatuses.Name(to)}' AND detail = '{detail}'"));
            from = to;
        }
    }

    [Theory]
    [InlineData("", "new")]
    [InlineData("under-review", "new")]
    [InlineData("under-review", "under-review")]
    [InlineData("escalated", "under-review")]
    [InlineData("escalated", "new")]
    [InlineData("closed-violation", "closed-legitimate")]
    [InlineData("closed-violation", "escalated")]
    [InlineData("closed-legitimate", "new")]
    public async Task A_refused_transition_writes_nothing(string path, string target)
    {
        var alert = await RaiseAsync();
        foreach (var step in Statuses(path))
            alert = Assert.IsType<AlertChange.Done>(await Alerts.ChangeStatusAsync(alert.Id, step, "privacy.pat", "a note", null, CancellationToken.None)).Alert;
        var ledger = await _h.LedgerSizeAsync();
        var events = await _h.CountAsync("SELECT COUNT(*) FROM monitor_alert_events");

        var change = await Alerts.ChangeStatusAsync(alert.Id, AlertStatuses.Parse(target)!.Value, "privacy.pat", "a note", alert.Revision, CancellationToken.None);

        Assert.Contains("cannot become", Assert.IsType<AlertChange.Invalid>(change).Problem, StringComparison.Ordinal);
        Assert.Equal(ledger, await _h.LedgerSizeAsync());
        Assert.Equal(events, await _h.CountAsync("SELECT COUNT(*) FROM monitor_alert_events"));
        Assert.Equal(alert, (await Alerts.GetAsync(alert.Id, CancellationToken.None))!.Alert);
    }

    private static IEnumerable<AlertStatus> Statuses(string path) =>
        path.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(s => AlertStatuses.Parse(s)!.Value);

    [Fact]
    public async Task A_change_on_a_stale_revision_is_a_conflict_and_writes_nothing()
    {
        var alert = await RaiseAsync();
        Assert.IsType<AlertChange.Done>(await Alerts.ChangeStatusAsync(alert.Id, AlertStatus.UnderReview, "privacy.pat", null, alert.Revision, CancellationToken.None));
        var ledger = await _h.LedgerSizeAsync();

        var stale = await Alerts.ChangeStatusAsync(alert.Id, AlertStatus.ClosedLegitimate, "privacy.pat", "on the care team", alert.Revision, CancellationToken.None);
        var staleAssign = await Alerts.AssignAsync(alert.Id, "privacy.pat", "privacy.pat", alert.Revision, CancellationToken.None);

        Assert.Equal(AlertStatus.UnderReview, Assert.IsType<AlertChange.Conflict>(stale).Current.Status);
        Assert.IsType<AlertChange.Conflict>(staleAssign);
        Assert.Equal(ledger, await _h.LedgerSizeAsync());
    }

    [Theory]
    [InlineData(null)]
    [InlineData("   ")]
    public async Task Closing_without_a_note_is_refused(string? note)
    {
        var alert = await RaiseAsync();
        var ledger = await _h.LedgerSizeAsync();

        var change = await Alerts.ChangeStatusAsync(alert.Id, AlertStatus.ClosedLegitimate, "privacy.pat", note, alert.Revision, CancellationToken.None);

        Assert.Contains("needs a note", Assert.IsType<AlertChange.Invalid>(change).Problem, StringComparison.Ordinal);
        Assert.Equal(ledger, await _h.LedgerSizeAsync());
        Assert.IsType<AlertChange.Invalid>(await Alerts.ChangeStatusAsync(alert.Id, AlertStatus.ClosedLegitimate, "privacy.pat", new string('x', 4001), null, CancellationToken.None));
    }

    [Fact]
    public async Task Notes_are_sealed_in_the_database_and_kept_out_of_the_ledger()
    {
        var alert = await RaiseAsync();
        const string note = "Spoke to her: she looked up her neighbour's HIV result";

        var closed = await Alerts.ChangeStatusAsync(alert.Id, AlertStatus.ClosedViolation, "privacy.pat", note, alert.Revision, CancellationToken.None);
        await Alerts.CommentAsync(alert.Id, "privacy.pat", "second " + note, CancellationToken.None);

        Assert.IsType<AlertChange.Done>(closed);
        var raw = await QueryAsync(_h.Store.Options, "SELECT note FROM monitor_alert_events WHERE note IS NOT NULL", r => (byte[])r.GetValue(0));
        Assert.Equal(2, raw.Count);
        var bytes = System.Text.Encoding.UTF8.GetBytes("neighbour");
        Assert.All(raw, b => Assert.Equal(-1, b.AsSpan().IndexOf(bytes)));
        Assert.Equal(0, await _h.CountAsync("SELECT COUNT(*) FROM ledger_entries WHERE detail LIKE '%neighbour%'"));
        var events = (await Alerts.GetAsync(alert.Id, CancellationToken.None))!.Events;
        Assert.Equal(note, events.Single(e => e.Kind == "status").Note);
        Assert.Equal("second " + note, events.Single(e => e.Kind == "comment").Note);
    }

    [Fact]
    public async Task Assigning_needs_an_existing_account_and_is_recorded_in_the_ledger()
    {
        var alert = await RaiseAsync();

        var unknown = await Alerts.AssignAsync(alert.Id, "nobody.here", "privacy.pat", alert.Revision, CancellationToken.None);
        var assigned = await Alerts.AssignAsync(alert.Id, "privacy.pat", "privacy.pat", alert.Revision, CancellationToken.None);

        Assert.Contains("no account", Assert.IsType<AlertChange.Invalid>(unknown).Problem, StringComparison.Ordinal);
        Assert.Equal("privacy.pat", Assert.IsType<AlertChange.Done>(assigned).Alert.Assignee);
        Assert.Equal(1, await _h.CountAsync($"SELECT COUNT(*) FROM ledger_entries WHERE event = 'AlertUpdated' AND detail = 'alert {alert.Id} assigned to privacy.pat'"));
        Assert.Single((await Alerts.QueryAsync(new AlertQuery(Assignee: "privacy.pat"), CancellationToken.None)).Alerts);
        Assert.IsType<AlertChange.NotFound>(await Alerts.AssignAsync(alert.Id + 1000, null, "privacy.pat", null, CancellationToken.None));
    }

    private const string OwnAlert = "An alert about your own activity is reviewed by another officer.";

    [Fact]
    public async Task The_user_an_alert_is_about_cannot_change_its_status_or_assignment_nor_be_assigned_it_and_nothing_is_written()
    {
        await _h.AccountAsync("privacy.sam", "privacy_officer");
        var alert = await RaiseAsync("privacy.sam");
        var ledger = await _h.LedgerSizeAsync();
        var events = await _h.CountAsync("SELECT COUNT(*) FROM monitor_alert_events");

        var refused = new[]
        {
            await Alerts.ChangeStatusAsync(alert.Id, AlertStatus.UnderReview, "privacy.sam", null, alert.Revision, CancellationToken.None),
            await Alerts.ChangeStatusAsync(alert.Id, AlertStatus.ClosedLegitimate, "privacy.sam", "that was me, and it was work", null, CancellationToken.None),
            await Alerts.AssignAsync(alert.Id, "privacy.sam", "privacy.sam", alert.Revision, CancellationToken.None),
            await Alerts.AssignAsync(alert.Id, "privacy.pat", "privacy.sam", null, CancellationToken.None),
            await Alerts.AssignAsync(alert.Id, null, "privacy.sam", null, CancellationToken.None),
        };
        var toSubject = await Alerts.AssignAsync(alert.Id, "privacy.sam", "privacy.pat", alert.Revision, CancellationToken.None);

        Assert.All(refused, r => Assert.Equal(OwnAlert, Assert.IsType<AlertChange.Invalid>(r).Problem));
        Assert.Contains("cannot be assigned to the user it is about", Assert.IsType<AlertChange.Invalid>(toSubject).Problem, StringComparison.Ordinal);
        Assert.Equal(ledger, await _h.LedgerSizeAsync());
        Assert.Equal(events, await _h.CountAsync("SELECT COUNT(*) FROM monitor_alert_events"));
        Assert.Equal(alert, (await Alerts.GetAsync(alert.Id, CancellationToken.None))!.Alert);

        // The subject may still comment; another officer reviews.
        Assert.IsType<AlertChange.Done>(await Alerts.CommentAsync(alert.Id, "privacy.sam", "I was covering the ward that night", CancellationToken.None));
        var assigned = Assert.IsType<AlertChange.Done>(await Alerts.AssignAsync(alert.Id, "privacy.pat", "privacy.pat", alert.Revision, CancellationToken.None)).Alert;
        var closed = await Alerts.ChangeStatusAsync(alert.Id, AlertStatus.ClosedLegitimate, "privacy.pat", "covering the ward", assigned.Revision, CancellationToken.None);
        Assert.Equal(AlertStatus.ClosedLegitimate, Assert.IsType<AlertChange.Done>(closed).Alert.Status);
    }

    [Fact]
    public async Task The_queue_filters_pages_newest_first_and_counts_by_status()
    {
        var a = await RaiseAsync("u.one", "self-access");
        var b = await RaiseAsync("u.two", "vip");
        var c = await RaiseAsync("u.three", "vip");
        await Alerts.ChangeStatusAsync(a.Id, AlertStatus.ClosedLegitimate, "privacy.pat", "fine", null, CancellationToken.None);

        var first = await Alerts.QueryAsync(new AlertQuery(Limit: 2), CancellationToken.None);
        var second = await Alerts.QueryAsync(new AlertQuery(Limit: 2, BeforeId: first.Next), CancellationToken.None);
        var open = await Alerts.QueryAsync(new AlertQuery(OpenOnly: true, Detection: "vip"), CancellationToken.None);

        Assert.Equal([c.Id, b.Id], first.Alerts.Select(x => x.Id));
        Assert.Equal([a.Id], second.Alerts.Select(x => x.Id));
        Assert.Null(second.Next);
        Assert.Equal(2, first.Counts["new"]);
        Assert.Equal(1, first.Counts["closed-legitimate"]);
        Assert.Equal(2, open.Alerts.Count);
        var byPatient = await Alerts.QueryAsync(new AlertQuery(Patient: "p-" + (await Alerts.GetAsync(b.Id, CancellationToken.None))!.Entries[0].Index), CancellationToken.None);
        Assert.Equal(b.Id, Assert.Single(byPatient.Alerts).Id);
    }

    [Fact]
    public async Task A_users_activity_lists_their_entries_and_records_that_an_officer_saw_the_patients_named()
    {
        var entries = await _h.EntriesAsync(3, "nurse.busy");
        var from = DateTimeOffset.UtcNow.AddMinutes(-5);

        var items = await Alerts.UserActivityAsync("nurse.busy", from, DateTimeOffset.UtcNow.AddMinutes(1), 100, "privacy.pat", null, CancellationToken.None);
        var accesses = await Alerts.PatientAccessesAsync("p-none", from, DateTimeOffset.UtcNow.AddMinutes(1), 100, "privacy.pat", null, CancellationToken.None);

        Assert.Equal(entries, items.Select(i => i.Index));
        Assert.All(items, i => Assert.Equal("SignIn", i.Event));
        Assert.Empty(accesses);
        Assert.Equal(1, await _h.CountAsync("SELECT COUNT(*) FROM ledger_entries WHERE type = 'access' AND event = 'audit' AND user_name = 'privacy.pat' AND patient = 'Patient/p-none'"));
    }
}

public sealed class AlertStoreOnSqlite() : AlertStoreConformance(StoreKind.Sqlite);

public sealed class AlertStoreOnPostgres() : AlertStoreConformance(StoreKind.Postgres);
