using System.Text.Json;
using Microsoft.Data.Sqlite;
using Wardline.Server.Hosting;
using Wardline.Server.Tests.Infrastructure;
using static Wardline.Server.Tests.Modules.Ledger.Infrastructure.LedgerTestKit;

namespace Wardline.Server.Tests.EndToEnd;

/// <summary>
/// A store whose ledger holds a member of staff ("tester") creating and opening their own patient record
/// (identifier of the staff system), and the same user opening another patient's: real requests to a real
/// server, with streaming monitoring off, so only a replay raises alerts. Tests work on copies of it.
/// </summary>
public sealed class SelfAccessLedger : IAsyncLifetime
{
    public const string OwnPatient = "staff-own-1";
    public const string OtherPatient = "someone-else-1";

    /// <summary>An officer's account in the store, to assign alerts to.</summary>
    public const string Reviewer = "privacy.rev";

    private TestStore? _store;

    public string Data => _store!.Options.DataDirectory!;

    public async Task InitializeAsync()
    {
        _store = await TestStore.CreateAsync(StoreKind.Sqlite);
        await WriteAsync(_store.Options);
        SqliteConnection.ClearAllPools();
    }

    /// <summary>Starts a server on the store (streaming monitoring off), makes the requests, and stops it.</summary>
    public static async Task WriteAsync(WardlineOptions options)
    {
        options.Monitoring.Enabled = false;
        await using var server = await TestServer.StartAsync(options);
        // A reviewer to assign alerts to: an alert about the tester is never assigned to the tester.
        var officer = await server.Service<Wardline.Server.Modules.Access.Identity.AccountService>().CreateAsync(
            Wardline.Server.Modules.Access.Identity.Account.New(Reviewer, "Privacy Reviewer") with { Roles = ["privacy_officer"] }, null, "test", CancellationToken.None);
        Assert.IsType<Wardline.Server.Modules.Access.Identity.AccountResult.Done>(officer);
        var own = JsonSerializer.Serialize(new
        {
            resourceType = "Patient",
            id = OwnPatient,
            identifier = new[] { new { system = "https://wardline.example/staff", value = "tester" } },
            gender = "female",
            birthDate = "1980-04-02",
        });
        (await server.Client.PutJsonAsync("Patient/" + OwnPatient, own)).EnsureSuccessStatusCode();
        (await server.Client.PutJsonAsync("Patient/" + OtherPatient, FhirTest.Patient("Other", id: OtherPatient))).EnsureSuccessStatusCode();
        (await server.Client.GetAsync(new Uri("Patient/" + OwnPatient, UriKind.Relative))).EnsureSuccessStatusCode();
        (await server.Client.GetAsync(new Uri("Patient/" + OtherPatient, UriKind.Relative))).EnsureSuccessStatusCode();
    }

    /// <summary>A copy of the store (database, keyring, witness) for a test that changes it.</summary>
    public string Copy(string to)
    {
        foreach (var file in Directory.EnumerateFiles(Data, "*", SearchOption.AllDirectories))
        {
            var copy = Path.Combine(to, Path.GetRelativePath(Data, file));
            Directory.CreateDirectory(Path.GetDirectoryName(copy)!);
            File.Copy(file, copy);
        }
        return to;
    }

    public async Task DisposeAsync()
    {
        if (_store is not null) await _store.DisposeAsync();
    }
}

/// <summary>
/// The real `wardline alerts ...` and `wardline monitor ...` processes: a replay over real ledger entries raises the
/// self-access alert once, the alert goes through list, show and close with the JSON parsed, and every bad input is
/// refused with a clear message, exit code 2 and nothing written.
/// </summary>
public sealed class MonitoringCliTests(SelfAccessLedger ledger) : IClassFixture<SelfAccessLedger>, IDisposable
{
    private static readonly string Today = DateTime.UtcNow.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture);
    private static readonly string Tomorrow = DateTime.UtcNow.AddDays(1).ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture);
    private static readonly string Yesterday = DateTime.UtcNow.AddDays(-1).ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture);

    private readonly string _folder = Directory.CreateTempSubdirectory("wardline-monitor-cli-").FullName;

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_folder, recursive: true);
    }

    private static Task<CliResult> RunAsync(params string[] args) => WardlineCli.RunAsync(args);

    private string Store() => ledger.Copy(Path.Combine(_folder, "store"));

    private static WardlineOptions Options(string data) => new() { DataDirectory = data };

    private static Task<long> LedgerSizeAsync(string data) => CountAsync(Options(data), "SELECT COUNT(*) FROM ledger_entries");

    private static async Task<JsonElement> JsonAsync(params string[] args)
    {
        var result = await RunAsync(args);
        Assert.True(result.ExitCode == 0, result.Output);
        // --json writes the document and nothing else on stdout (stderr is empty when all is well).
        return JsonDocument.Parse(result.Output).RootElement.Clone();
    }

    [Fact]
    public async Task Replay_finds_a_user_opening_their_own_record_and_a_second_replay_of_the_period_raises_nothing_new()
    {
        var data = Store();

        var first = await RunAsync("monitor", "replay", "--data", data, "--from", Yesterday, "--to", Tomorrow);
        var second = await RunAsync("monitor", "replay", "--data", data, "--from", Yesterday, "--to", Tomorrow);

        Assert.True(first.ExitCode == 0, first.Output);
        Assert.Matches(@"new alerts: [1-9]\d*;", first.Flat);
        Assert.Matches(@"examined: [1-9]\d*", first.Flat);
        Assert.Contains("elapsed:", first.Flat, StringComparison.Ordinal);
        Assert.True(second.ExitCode == 0, second.Output);
        Assert.Contains("new alerts: 0;", second.Flat, StringComparison.Ordinal);
        Assert.Matches(@"already known: [1-9]\d*", second.Flat);
        var alerts = await JsonAsync("alerts", "list", "--data", data, "--detection", "self-access", "--json");
        var only = Assert.Single(alerts.EnumerateArray());
        Assert.Equal("self-access", only.GetProperty("detection").GetString());
        Assert.Equal("tester", only.GetProperty("user").GetString());
        Assert.Equal("high", only.GetProperty("severity").GetString());
        Assert.Equal("new", only.GetProperty("status").GetString());
        Assert.Equal(1, only.GetProperty("patients").GetInt32());
        // Each replay is itself in the ledger, with who ran it.
        Assert.Equal(2, await CountAsync(Options(data), "SELECT COUNT(*) FROM ledger_entries WHERE type = 'system' AND event = 'monitor-replay'"));
    }

    [Fact]
    public async Task An_alert_goes_from_list_to_show_to_closed_as_legitimate_and_the_close_is_in_its_history_and_the_ledger()
    {
        var data = Store();
        Assert.Equal(0, (await RunAsync("monitor", "replay", "--data", data, "--from", Today, "--to", Tomorrow)).ExitCode);

        var listed = Assert.Single((await JsonAsync("alerts", "list", "--data", data, "--detection", "self-access", "--status", "open", "--json")).EnumerateArray());
        var id = listed.GetProperty("id").GetInt64().ToString(System.Globalization.CultureInfo.InvariantCulture);
        var table = await RunAsync("alerts", "list", "--data", data);
        var shown = await JsonAsync("alerts", "show", id, "--data", data, "--json");
        var updatesBefore = await CountAsync(Options(data), "SELECT COUNT(*) FROM ledger_entries WHERE type = 'security' AND event = 'AlertUpdated'");
        var close = await RunAsync("alerts", "close", id, "--data", data, "--outcome", "legitimate", "--note", "Checked with the ward: a test account's own record.",
            "--revision", listed.GetProperty("revision").GetInt32().ToString(System.Globalization.CultureInfo.InvariantCulture));
        var after = await JsonAsync("alerts", "show", id, "--data", data, "--json");
        var closed = await JsonAsync("alerts", "list", "--data", data, "--status", "closed-legitimate", "--json");
        var open = await JsonAsync("alerts", "list", "--data", data, "--detection", "self-access", "--status", "open", "--json");

        Assert.True(table.ExitCode == 0, table.Output);
        Assert.Contains("self-access", table.Output, StringComparison.Ordinal);
        Assert.Matches(@"\d+ alerts?", table.Flat);
        Assert.Equal("self-access", shown.GetProperty("alert").GetProperty("detection").GetString());
        var entries = shown.GetProperty("entries").EnumerateArray().ToList();
        Assert.NotEmpty(entries);
        Assert.All(entries, e => Assert.Equal(SelfAccessLedger.OwnPatient, e.GetProperty("patient").GetString()));
        Assert.All(entries, e => Assert.Equal("permitted", e.GetProperty("decision").GetString()));
        Assert.Contains(entries, e => e.GetProperty("action").GetString() == "Read" && e.GetProperty("resource").GetString()!.StartsWith("Patient/" + SelfAccessLedger.OwnPatient, StringComparison.Ordinal));
        Assert.Contains(shown.GetProperty("history").EnumerateArray(), h => h.GetProperty("kind").GetString() == "raised");
        Assert.True(close.ExitCode == 0, close.Output);
        Assert.Contains("new -> closed-legitimate", close.Flat, StringComparison.Ordinal);
        Assert.Equal("closed-legitimate", after.GetProperty("alert").GetProperty("status").GetString());
        var last = after.GetProperty("history").EnumerateArray().Last();
        Assert.Equal("closed-legitimate", last.GetProperty("to").GetString());
        Assert.Equal("cli:" + Environment.UserName, last.GetProperty("actor").GetString());
        Assert.Equal("Checked with the ward: a test account's own record.", last.GetProperty("note").GetString());
        Assert.Single(closed.EnumerateArray());
        Assert.Empty(open.EnumerateArray());
        Assert.Equal(updatesBefore + 1, await CountAsync(Options(data), "SELECT COUNT(*) FROM ledger_entries WHERE type = 'security' AND event = 'AlertUpdated'"));
        // The note is the reviewer's; the ledger holds the change, never the note.
        Assert.Equal(0, await CountAsync(Options(data), "SELECT COUNT(*) FROM ledger_entries WHERE detail LIKE '%Checked with the ward%'"));
        var verify = await RunAsync("ledger", "verify", "--data", data);
        Assert.True(verify.ExitCode == 0, verify.Output);
    }

    [Fact]
    public async Task On_PostgreSQL_a_replay_raises_the_alert_and_show_and_close_work_with_the_keyring_and_witness_given()
    {
        await using var pg = await TestStore.CreateAsync(StoreKind.Postgres);
        await SelfAccessLedger.WriteAsync(pg.Options);
        string[] store = ["--db", pg.PostgresConnectionString!, "--keyring", pg.Options.KeyringPath!, "--witness", pg.Options.Ledger.WitnessPath!];

        var replay = await RunAsync(["monitor", "replay", .. store, "--from", Yesterday, "--to", Tomorrow]);
        var listed = Assert.Single((await JsonAsync(["alerts", "list", .. store, "--detection", "self-access", "--json"])).EnumerateArray());
        var id = listed.GetProperty("id").GetInt64().ToString(System.Globalization.CultureInfo.InvariantCulture);
        var show = await RunAsync(["alerts", "show", id, .. store]);
        var close = await RunAsync(["alerts", "close", id, .. store, "--outcome", "violation", "--note", "Not through the portal."]);
        var status = await RunAsync(["monitor", "status", .. store]);

        Assert.True(replay.ExitCode == 0, replay.Output);
        Assert.Matches(@"new alerts: [1-9]\d*;", replay.Flat);
        Assert.Equal("tester", listed.GetProperty("user").GetString());
        Assert.True(show.ExitCode == 0, show.Output);
        Assert.Contains($"alert {id}: high self-access (Own record), user tester", show.Flat, StringComparison.Ordinal);
        Assert.Contains("this user opened their own patient record", show.Flat, StringComparison.Ordinal);
        Assert.Contains("Read", show.Output, StringComparison.Ordinal);
        Assert.Contains("permitted", show.Output, StringComparison.Ordinal);
        Assert.Contains(SelfAccessLedger.OwnPatient, show.Output, StringComparison.Ordinal);
        Assert.Contains("raised", show.Output, StringComparison.Ordinal);
        Assert.True(close.ExitCode == 0, close.Output);
        Assert.Contains("new -> closed-violation", close.Flat, StringComparison.Ordinal);
        Assert.True(status.ExitCode == 0, status.Output);
        Assert.Matches(@"ledger size: [1-9]\d*", status.Flat);
        Assert.Equal(1, await CountAsync(pg.Options, "SELECT COUNT(*) FROM monitor_alerts WHERE detection = 'self-access' AND status = 'closed-violation'"));
    }

    [Fact]
    public async Task An_alert_raised_by_streaming_is_listed_status_shows_the_cursor_and_a_replay_of_the_period_adds_no_second_alert()
    {
        await using var store = await TestStore.CreateAsync(StoreKind.Sqlite);
        var data = store.Options.DataDirectory!;
        store.Options.Monitoring.PollMilliseconds = 100;
        await using (var server = await TestServer.StartAsync(store.Options))
        {
            var own = JsonSerializer.Serialize(new
            {
                resourceType = "Patient",
                id = SelfAccessLedger.OwnPatient,
                identifier = new[] { new { system = "https://wardline.example/staff", value = "tester" } },
            });
            (await server.Client.PutJsonAsync("Patient/" + SelfAccessLedger.OwnPatient, own)).EnsureSuccessStatusCode();
            (await server.Client.GetAsync(new Uri("Patient/" + SelfAccessLedger.OwnPatient, UriKind.Relative))).EnsureSuccessStatusCode();
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (await CountAsync(store.Options, "SELECT COUNT(*) FROM monitor_alerts WHERE detection = 'self-access'") == 0)
            {
                Assert.True(DateTime.UtcNow < deadline, "streaming raised no self-access alert within 30 s");
                await Task.Delay(200);
            }
        }
        SqliteConnection.ClearAllPools();

        var status = await RunAsync("monitor", "status", "--data", data);
        var replay = await RunAsync("monitor", "replay", "--data", data, "--from", Today, "--to", Tomorrow);
        var alerts = await JsonAsync("alerts", "list", "--data", data, "--detection", "self-access", "--json");

        Assert.True(status.ExitCode == 0, status.Output);
        Assert.Matches(@"cursor: entry \d+ \(updated [^)]+\); ledger size: [1-9]\d*; lag: \d+ entries", status.Flat);
        Assert.True(replay.ExitCode == 0, replay.Output);
        var alert = Assert.Single(alerts.EnumerateArray());
        Assert.Equal("stream", alert.GetProperty("source").GetString());
        Assert.Equal("tester", alert.GetProperty("user").GetString());
    }

    [Fact]
    public async Task Closing_is_refused_for_an_unknown_outcome_a_missing_note_an_unknown_or_malformed_id_a_stale_revision_and_an_alert_already_closed()
    {
        var data = Store();
        Assert.Equal(0, (await RunAsync("monitor", "replay", "--data", data, "--from", Today, "--to", Tomorrow)).ExitCode);
        var id = Assert.Single((await JsonAsync("alerts", "list", "--data", data, "--detection", "self-access", "--json")).EnumerateArray()).GetProperty("id").GetInt64().ToString(System.Globalization.CultureInfo.InvariantCulture);
        var size = await LedgerSizeAsync(data);

        var outcome = await RunAsync("alerts", "close", id, "--data", data, "--outcome", "maybe", "--note", "n");
        var noNote = await RunAsync("alerts", "close", id, "--data", data, "--outcome", "violation");
        var blankNote = await RunAsync("alerts", "close", id, "--data", data, "--outcome", "violation", "--note", "   ");
        var unknown = await RunAsync("alerts", "close", "999999", "--data", data, "--outcome", "violation", "--note", "n");
        var malformed = await RunAsync("alerts", "close", "twelve", "--data", data, "--outcome", "violation", "--note", "n");
        var stale = await RunAsync("alerts", "close", id, "--data", data, "--outcome", "violation", "--note", "n", "--revision", "99");
        var refusedSize = await LedgerSizeAsync(data);
        var first = await RunAsync("alerts", "close", id, "--data", data, "--outcome", "violation", "--note", "Opened out of curiosity.");
        var again = await RunAsync("alerts", "close", id, "--data", data, "--outcome", "legitimate", "--note", "second thoughts");
        var showUnknown = await RunAsync("alerts", "show", "999999", "--data", data);
        var reopenNoNote = await RunAsync("alerts", "review", id, "--data", data);
        var reopen = await RunAsync("alerts", "review", id, "--data", data, "--note", "New facts from the ward.");

        Assert.True(outcome.ExitCode == 2, outcome.Output);
        Assert.Contains("--outcome 'maybe' is not an outcome: use violation or legitimate", outcome.Flat, StringComparison.Ordinal);
        Assert.True(noNote.ExitCode == 2, noNote.Output);
        Assert.Contains("--note is required to close an alert", noNote.Flat, StringComparison.Ordinal);
        Assert.True(blankNote.ExitCode == 2, blankNote.Output);
        Assert.Contains("--note is required", blankNote.Flat, StringComparison.Ordinal);
        Assert.True(unknown.ExitCode == 2, unknown.Output);
        Assert.Contains("There is no alert 999999.", unknown.Flat, StringComparison.Ordinal);
        Assert.True(malformed.ExitCode == 2, malformed.Output);
        Assert.Contains("'twelve' is not an alert number", malformed.Flat, StringComparison.Ordinal);
        Assert.True(stale.ExitCode == 2, stale.Output);
        Assert.Contains("changed by someone else", stale.Flat, StringComparison.Ordinal);
        Assert.Contains("Nothing was written", stale.Flat, StringComparison.Ordinal);
        Assert.Equal(size, refusedSize);
        Assert.True(first.ExitCode == 0, first.Output);
        Assert.Contains("closed-violation", first.Flat, StringComparison.Ordinal);
        Assert.True(again.ExitCode == 2, again.Output);
        Assert.Contains($"Alert {id} is already closed (closed-violation)", again.Flat, StringComparison.Ordinal);
        Assert.True(showUnknown.ExitCode == 2, showUnknown.Output);
        Assert.Contains("There is no alert 999999.", showUnknown.Flat, StringComparison.Ordinal);
        Assert.True(reopenNoNote.ExitCode == 2, reopenNoNote.Output);
        Assert.Contains("Reopening a closed alert needs a note", reopenNoNote.Flat, StringComparison.Ordinal);
        Assert.True(reopen.ExitCode == 0, reopen.Output);
        Assert.Contains("closed-violation -> under-review", reopen.Flat, StringComparison.Ordinal);
        Assert.Equal(size + 2, await LedgerSizeAsync(data));
        Assert.DoesNotContain("Exception", outcome.Output + noNote.Output + unknown.Output + malformed.Output + stale.Output + again.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Review_assign_comment_and_escalate_move_the_alert_on_and_each_is_recorded()
    {
        var data = Store();
        Assert.Equal(0, (await RunAsync("monitor", "replay", "--data", data, "--from", Today, "--to", Tomorrow)).ExitCode);
        var id = Assert.Single((await JsonAsync("alerts", "list", "--data", data, "--detection", "self-access", "--json")).EnumerateArray()).GetProperty("id").GetInt64().ToString(System.Globalization.CultureInfo.InvariantCulture);
        var size = await LedgerSizeAsync(data);

        var review = await RunAsync("alerts", "review", id, "--data", data);
        var toSubject = await RunAsync("alerts", "assign", id, "--data", data, "--to", "tester");
        var assign = await RunAsync("alerts", "assign", id, "--data", data, "--to", SelfAccessLedger.Reviewer);
        var nobody = await RunAsync("alerts", "assign", id, "--data", data, "--to", "no.such.account");
        var comment = await RunAsync("alerts", "comment", id, "--data", data, "--note", "Asked the ward manager.");
        var escalateNoNote = await RunAsync("alerts", "escalate", id, "--data", data);
        var escalate = await RunAsync("alerts", "escalate", id, "--data", data, "--note", "Pattern across shifts; to incident response.");
        var shown = await JsonAsync("alerts", "show", id, "--data", data, "--json");

        Assert.True(review.ExitCode == 0, review.Output);
        Assert.Contains("new -> under-review", review.Flat, StringComparison.Ordinal);
        Assert.True(toSubject.ExitCode == 2, toSubject.Output);
        Assert.Contains("cannot be assigned to the user it is about", toSubject.Flat, StringComparison.Ordinal);
        Assert.True(assign.ExitCode == 0, assign.Output);
        Assert.Contains("assigned to " + SelfAccessLedger.Reviewer, assign.Flat, StringComparison.Ordinal);
        Assert.True(nobody.ExitCode == 2, nobody.Output);
        Assert.Contains("no.such.account", nobody.Flat, StringComparison.Ordinal);
        Assert.True(comment.ExitCode == 0, comment.Output);
        Assert.True(escalateNoNote.ExitCode == 2, escalateNoNote.Output);
        Assert.Contains("--note is required to escalate", escalateNoNote.Flat, StringComparison.Ordinal);
        Assert.True(escalate.ExitCode == 0, escalate.Output);
        Assert.Contains("under-review -> escalated", escalate.Flat, StringComparison.Ordinal);
        var alert = shown.GetProperty("alert");
        Assert.Equal("escalated", alert.GetProperty("status").GetString());
        Assert.Equal(SelfAccessLedger.Reviewer, alert.GetProperty("assignee").GetString());
        Assert.Contains(shown.GetProperty("history").EnumerateArray(), h => h.GetProperty("note").GetString() == "Asked the ward manager.");
        // Four changes (the refused assignment wrote nothing), and `show`'s read of the patient's audit trail (its evidence names the patient).
        Assert.Equal(size + 5, await LedgerSizeAsync(data));
    }

    [Fact]
    public async Task Replay_refuses_unparsable_dates_an_empty_or_backward_period_and_one_over_366_days_naming_the_option_and_the_form()
    {
        var data = Path.Combine(_folder, "never-opened");

        var month = await RunAsync("monitor", "replay", "--data", data, "--from", "2026-13-01", "--to", "2026-12-01");
        var words = await RunAsync("monitor", "replay", "--data", data, "--from", "2026-11-01", "--to", "next tuesday");
        var noOffset = await RunAsync("monitor", "replay", "--data", data, "--from", "2026-11-01T08:00:00", "--to", "2026-11-02");
        var backward = await RunAsync("monitor", "replay", "--data", data, "--from", "2026-11-02", "--to", "2026-11-01");
        var empty = await RunAsync("monitor", "replay", "--data", data, "--from", "2026-11-01T00:00:00Z", "--to", "2026-11-01");
        var tooLong = await RunAsync("monitor", "replay", "--data", data, "--from", "2025-01-01", "--to", "2026-01-03");
        var missing = await RunAsync("monitor", "replay", "--data", data, "--from", "2026-11-01");

        Assert.True(month.ExitCode == 2, month.Output);
        Assert.Contains("--from '2026-13-01' is not a date: use yyyy-MM-dd", month.Flat, StringComparison.Ordinal);
        Assert.Contains("ISO 8601", month.Flat, StringComparison.Ordinal);
        Assert.True(words.ExitCode == 2, words.Output);
        Assert.Contains("--to 'next tuesday' is not a date", words.Flat, StringComparison.Ordinal);
        Assert.True(noOffset.ExitCode == 2, noOffset.Output);
        Assert.Contains("--from '2026-11-01T08:00:00' is not a date", noOffset.Flat, StringComparison.Ordinal);
        Assert.Contains("with its offset", noOffset.Flat, StringComparison.Ordinal);
        Assert.True(backward.ExitCode == 2, backward.Output);
        Assert.Contains("must be after --from", backward.Flat, StringComparison.Ordinal);
        Assert.True(empty.ExitCode == 2, empty.Output);
        Assert.Contains("must be after --from", empty.Flat, StringComparison.Ordinal);
        Assert.True(tooLong.ExitCode == 2, tooLong.Output);
        Assert.Contains("at most 366 days", tooLong.Flat, StringComparison.Ordinal);
        Assert.NotEqual(0, missing.ExitCode);
        Assert.Contains("--to", missing.Flat, StringComparison.Ordinal);
        // Refused before the store was opened: nothing was created.
        Assert.False(Directory.Exists(data));
    }

    [Fact]
    public async Task Alerts_list_refuses_an_unknown_status_severity_or_detection_and_a_limit_out_of_range()
    {
        var data = Path.Combine(_folder, "never-opened");

        var status = await RunAsync("alerts", "list", "--data", data, "--status", "closed");
        var severity = await RunAsync("alerts", "list", "--data", data, "--severity", "urgent");
        var detection = await RunAsync("alerts", "list", "--data", data, "--detection", "snooping");
        var limit = await RunAsync("alerts", "list", "--data", data, "--limit", "5000");
        var since = await RunAsync("alerts", "list", "--data", data, "--since", "yesterday");

        Assert.True(status.ExitCode == 2, status.Output);
        Assert.Contains("--status 'closed' is not a status", status.Flat, StringComparison.Ordinal);
        Assert.True(severity.ExitCode == 2, severity.Output);
        Assert.Contains("--severity 'urgent' is not a severity: use low, medium, high or critical", severity.Flat, StringComparison.Ordinal);
        Assert.True(detection.ExitCode == 2, detection.Output);
        Assert.Contains("--detection 'snooping' is not a detection; known: ", detection.Flat, StringComparison.Ordinal);
        Assert.Contains("self-access", detection.Flat, StringComparison.Ordinal);
        Assert.True(limit.ExitCode == 2, limit.Output);
        Assert.Contains("--limit must be from 1 to 1000", limit.Flat, StringComparison.Ordinal);
        Assert.True(since.ExitCode == 2, since.Output);
        Assert.Contains("--since 'yesterday' is not a date", since.Flat, StringComparison.Ordinal);
        Assert.False(Directory.Exists(data));
    }

    [Fact]
    public async Task Monitor_status_shows_the_ledger_the_configuration_and_open_alerts_by_severity()
    {
        var data = Store();
        Assert.Equal(0, (await RunAsync("monitor", "replay", "--data", data, "--from", Today, "--to", Tomorrow)).ExitCode);

        var status = await RunAsync("monitor", "status", "--data", data);

        Assert.True(status.ExitCode == 0, status.Output);
        Assert.Contains("cursor: none", status.Flat, StringComparison.Ordinal);
        Assert.Matches(@"ledger size: [1-9]\d*", status.Flat);
        Assert.Contains("config: built in (monitoring.yaml), fingerprint ", status.Flat, StringComparison.Ordinal);
        Assert.Contains("self-access (high)", status.Flat, StringComparison.Ordinal);
        Assert.Matches(@"open alerts: [1-9]\d*", status.Flat);
    }

    [Fact]
    public async Task A_configured_monitoring_file_with_a_problem_stops_a_replay_before_it_writes_and_status_names_the_position()
    {
        var data = Store();
        var yaml = Path.Combine(_folder, "monitoring.yaml");
        await File.WriteAllTextAsync(yaml, "version: 1\ngrouping:\n  window-minutes: 0\n");
        var config = Path.Combine(_folder, "wardline.json");
        await File.WriteAllTextAsync(config, JsonSerializer.Serialize(new { Wardline = new { Monitoring = new { ConfigPath = yaml } } }));
        var size = await LedgerSizeAsync(data);

        var replay = await RunAsync("monitor", "replay", "--data", data, "--config", config, "--from", Today, "--to", Tomorrow);
        var status = await RunAsync("monitor", "status", "--data", data, "--config", config);

        Assert.True(replay.ExitCode == 2, replay.Output);
        Assert.Contains("nothing was replayed", replay.Flat, StringComparison.Ordinal);
        Assert.Contains("monitoring.yaml:3:", replay.Flat, StringComparison.Ordinal);
        Assert.Equal(size, await LedgerSizeAsync(data));
        Assert.Equal(0, await CountAsync(Options(data), "SELECT COUNT(*) FROM monitor_alerts"));
        Assert.True(status.ExitCode == 2, status.Output);
        Assert.Contains("has a problem", status.Flat, StringComparison.Ordinal);
        Assert.Contains("monitoring.yaml:3:", status.Flat, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Check_config_accepts_a_good_file_and_names_the_line_and_column_of_a_bad_one()
    {
        var good = Path.Combine(_folder, "good.yaml");
        await File.WriteAllTextAsync(good, "version: 1\ngrouping:\n  window-minutes: 60\ndetections:\n  self-access:\n    severity: critical\n");
        var off = Path.Combine(_folder, "off.yaml");
        await File.WriteAllTextAsync(off, "version: 1\ndetections:\n  self-access:\n    enabled: false\n");
        var bad = Path.Combine(_folder, "bad.yaml");
        await File.WriteAllTextAsync(bad, "version: 1\ndetections:\n  self-acess:\n    severity: high\n");
        var badValue = Path.Combine(_folder, "bad-value.yaml");
        await File.WriteAllTextAsync(badValue, "version: 1\ngrouping:\n  window-minutes: forever\n");

        var ok = await RunAsync("monitor", "check-config", good);
        var switchedOff = await RunAsync("monitor", "check-config", off);
        var typo = await RunAsync("monitor", "check-config", bad);
        var value = await RunAsync("monitor", "check-config", badValue);
        var missing = await RunAsync("monitor", "check-config", Path.Combine(_folder, "nope.yaml"));

        Assert.True(ok.ExitCode == 0, ok.Output);
        Assert.Matches(@"ok: [1-9]\d* detections enabled", ok.Flat);
        Assert.True(switchedOff.ExitCode == 0, switchedOff.Output);
        Assert.Contains("switched off: self-access", switchedOff.Flat, StringComparison.Ordinal);
        Assert.True(typo.ExitCode == 2, typo.Output);
        Assert.Contains("bad.yaml:3:3:", typo.Flat, StringComparison.Ordinal);
        Assert.Contains("self-acess", typo.Flat, StringComparison.Ordinal);
        Assert.True(value.ExitCode == 2, value.Output);
        Assert.Contains("bad-value.yaml:3:", value.Flat, StringComparison.Ordinal);
        Assert.True(missing.ExitCode == 2, missing.Output);
        Assert.Contains("does not exist", missing.Flat, StringComparison.Ordinal);
    }
}
