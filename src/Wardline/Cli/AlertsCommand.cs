using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Spectre.Console;
using Wardline.Monitoring;
using Wardline.Server.Modules.Monitoring;

namespace Wardline.Cli;

/// <summary>
/// <c>wardline alerts list|show|close|review|escalate|assign|comment</c>: the privacy officer's alert queue on the
/// command line. Every value is checked before the store is opened; a change goes through the alert store, which
/// records it in the ledger with the actor "cli:&lt;os user&gt;". A refused change writes nothing (exit code 2).
/// </summary>
internal static class AlertsCommand
{
    private const int MaxNote = 4000;

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    public static Command Create()
    {
        var command = new Command("alerts", "Review monitoring alerts: list and filter the queue, show one with its evidence and history, and take it through review to closure.");
        command.Subcommands.Add(List());
        command.Subcommands.Add(Show());
        command.Subcommands.Add(Close());
        command.Subcommands.Add(Review());
        command.Subcommands.Add(Escalate());
        command.Subcommands.Add(Assign());
        command.Subcommands.Add(Comment());
        return command;
    }

    private static Argument<string> IdArgument() => new("id") { Description = "The alert's number, as alerts list shows it." };

    private static Option<string?> NoteOption(string description) => new("--note") { Description = description };

    private static Option<int?> RevisionOption() => new("--revision")
    {
        Description = "The revision you reviewed (alerts show prints it): the change is refused if someone else changed the alert since.",
    };

    private static Command List()
    {
        var store = new StoreArgs();
        var status = new Option<string?>("--status") { Description = "Only alerts in this status: new, under-review, escalated, closed-violation, closed-legitimate, or open (every status but closed)." };
        var severity = new Option<string?>("--severity") { Description = "Only alerts of this severity or above: low, medium, high or critical." };
        var detection = new Option<string?>("--detection") { Description = "Only alerts of this detection (self-access, same-surname, ...)." };
        var user = new Option<string?>("--user") { Description = "Only alerts about this account." };
        var patient = new Option<string?>("--patient") { Description = "Only alerts that involve this Patient resource id." };
        var since = new Option<string?>("--since") { Description = "Only alerts active since this time: yyyy-MM-dd (local midnight in Wardline:Access:TimeZone) or an ISO 8601 instant." };
        var limit = new Option<int>("--limit") { Description = "At most this many alerts, newest first (1-1000).", DefaultValueFactory = _ => 50 };
        var json = new Option<bool>("--json") { Description = "Print a JSON array (id, severity, detection, user, groupKey (null here; see show), status, assignee, firstAt, lastAt, patients, entries, evidence, repeatOffender, config, source, created, updated, revision) and nothing else." };
        var command = new Command("list", "List alerts, newest first: severity, detection, user, patients, first and last finding, status, assignee, repeat offender.");
        store.AddTo(command);
        foreach (var o in new Option[] { status, severity, detection, user, patient, since, limit, json }) command.Options.Add(o);
        command.SetAction((parse, ct) => CommandRunner.RunAsync(async () =>
        {
            AlertStatus? wanted = null;
            var openOnly = false;
            if (parse.GetValue(status) is { } s)
            {
                if (s.Trim() == "open") openOnly = true;
                else wanted = AlertStatuses.Parse(s.Trim()) ?? throw new CliException($"--status '{s}' is not a status: use new, under-review, escalated, closed-violation, closed-legitimate or open.");
            }
            Severity? min = null;
            if (parse.GetValue(severity) is { } sev) min = MonitorCli.ParseSeverity(sev) ?? throw new CliException($"--severity '{sev}' is not a severity: use low, medium, high or critical.");
            var det = parse.GetValue(detection)?.Trim();
            if (det is not null && Catalog.Find(det) is null)
                throw new CliException($"--detection '{det}' is not a detection; known: {string.Join(", ", Catalog.All.Select(d => d.Id).Order(StringComparer.Ordinal))}.");
            var who = parse.GetValue(user)?.Trim();
            if (who is { Length: 0 }) throw new CliException("--user must name an account.");
            var pid = PatientId(parse.GetValue(patient));
            var n = parse.GetValue(limit);
            if (n is < 1 or > 1000) throw new CliException("--limit must be from 1 to 1000.");
            var options = store.Resolve(parse);
            var from = parse.GetValue(since) is { } sinceText ? MonitorCli.Instant(sinceText, "--since", MonitorCli.Zone(options)) : (DateTimeOffset?)null;

            await using var sp = await StoreArgs.OpenAsync(options, ct);
            var alertStore = sp.GetRequiredService<AlertStore>();
            var alerts = new List<Alert>();
            long? before = null;
            // The store answers at most AlertStore.MaxLimit a page; --limit may ask for more.
            while (alerts.Count < n)
            {
                var query = new AlertQuery(Status: wanted, Detection: det, User: who, Patient: pid, MinSeverity: min, From: from, OpenOnly: openOnly,
                    Limit: Math.Min(n - alerts.Count, AlertStore.MaxLimit), BeforeId: before);
                // The first page goes through ListAsync, which records a queue about one patient as a read of their trail (as the API does).
                var page = before is null ? await alertStore.ListAsync(query, MonitorCli.Actor, null, ct) : await alertStore.QueryAsync(query, ct);
                alerts.AddRange(page.Alerts);
                if (page.Next is not { } next) break;
                before = next;
            }
            if (parse.GetValue(json))
            {
                Console.Out.WriteLine(JsonSerializer.Serialize(alerts.Select(a => ToJson(a)), Json));
                return 0;
            }
            if (alerts.Count == 0)
            {
                AnsiConsole.MarkupLine("no alerts match");
                return 0;
            }
            var table = new Table().AddColumns("id", "severity", "detection", "user", "patients", "first (UTC)", "last (UTC)", "status", "assignee", "repeat offender");
            foreach (var a in alerts)
            {
                table.AddRow(a.Id.ToString(CultureInfo.InvariantCulture), SeverityMarkup(a.Severity), Markup.Escape(a.Detection), Markup.Escape(a.User),
                    a.Patients.ToString(CultureInfo.InvariantCulture), Time(a.FirstAt), Time(a.LastAt), StatusMarkup(a.Status),
                    Markup.Escape(a.Assignee ?? "-"), a.RepeatOffender ? "[red]yes[/]" : "no");
            }
            AnsiConsole.Write(table);
            AnsiConsole.MarkupLine($"{alerts.Count} alert{(alerts.Count == 1 ? "" : "s")}{(alerts.Count == n ? $" (the newest {n}; --limit shows more)" : "")}");
            return 0;
        }));
        return command;
    }

    private static Command Show()
    {
        var store = new StoreArgs();
        var id = IdArgument();
        var json = new Option<bool>("--json") { Description = "Print one JSON object (alert, entries, history, notifications) and nothing else." };
        var command = new Command("show", "Show an alert: its evidence, the ledger entries it rests on, its history (status changes, assignments, comments) and its notifications.");
        store.AddTo(command);
        command.Arguments.Add(id);
        command.Options.Add(json);
        command.SetAction((parse, ct) => CommandRunner.RunAsync(async () =>
        {
            var alertId = AlertId(parse.GetValue(id));
            var options = store.Resolve(parse);
            await using var sp = await StoreArgs.OpenAsync(options, ct);
            var detail = await sp.GetRequiredService<AlertStore>().ShowAsync(alertId, MonitorCli.Actor, null, ct) ?? throw NotFound(alertId);
            var ledger = await LedgerFactsAsync(sp, detail.Entries.Select(e => e.Index).ToList(), ct);
            var a = detail.Alert;
            if (parse.GetValue(json))
            {
                Console.Out.WriteLine(JsonSerializer.Serialize(new
                {
                    alert = ToJson(a, withGroupKey: true),
                    entries = detail.Entries.Select(e =>
                    {
                        var l = ledger.GetValueOrDefault(e.Index);
                        return new
                        {
                            index = e.Index,
                            at = Iso(e.At),
                            detection = e.Detection,
                            action = l?.Action,
                            resource = l?.Resource,
                            patient = e.Patient,
                            decision = l?.Decision,
                            rule = l?.Rule,
                            evidence = e.Evidence,
                        };
                    }),
                    history = detail.Events.Select(h => new
                    {
                        seq = h.Seq,
                        at = Iso(h.At),
                        actor = h.Actor,
                        kind = h.Kind,
                        from = h.From is { } f ? AlertStatuses.Name(f) : null,
                        to = h.To is { } t ? AlertStatuses.Name(t) : null,
                        assignee = h.Assignee,
                        note = h.Note,
                    }),
                    notifications = detail.Notifications.Select(x => new
                    {
                        id = x.Id,
                        channel = x.Channel,
                        target = x.Target,
                        status = x.Status,
                        attempts = x.Attempts,
                        nextAt = Iso(x.NextAt),
                        lastError = x.LastError,
                        created = Iso(x.Created),
                        sentAt = x.SentAt is { } sent ? Iso(sent) : null,
                    }),
                }, Json));
                return 0;
            }
            AnsiConsole.MarkupLine($"alert [bold]{a.Id}[/]: {SeverityMarkup(a.Severity)} {Markup.Escape(a.Detection)} ({Markup.Escape(Catalog.Find(a.Detection)?.Title ?? "unknown detection")}), user {Markup.Escape(a.User)}");
            AnsiConsole.MarkupLine($"status: {StatusMarkup(a.Status)}; assignee: {Markup.Escape(a.Assignee ?? "-")}; revision {a.Revision}{(a.RepeatOffender ? "; [red]repeat offender[/]" : "")}");
            AnsiConsole.MarkupLine($"first {Time(a.FirstAt)}, last {Time(a.LastAt)} (UTC); {a.Patients} patient{(a.Patients == 1 ? "" : "s")}, {a.Entries} entr{(a.Entries == 1 ? "y" : "ies")}; raised by {Markup.Escape(a.Source)} with configuration {Markup.Escape(a.Config)}");
            AnsiConsole.MarkupLine($"evidence: {Markup.Escape(a.Evidence)}");
            var entries = new Table().Title("ledger entries").AddColumns("index", "time (UTC)", "action", "resource", "patient", "decision", "evidence");
            foreach (var e in detail.Entries)
            {
                var l = ledger.GetValueOrDefault(e.Index);
                entries.AddRow(e.Index.ToString(CultureInfo.InvariantCulture), Time(e.At), Markup.Escape(l?.Action ?? "-"), Markup.Escape(l?.Resource ?? "-"),
                    Markup.Escape(e.Patient ?? "-"), Markup.Escape(l?.Decision ?? "-"), Markup.Escape(e.Evidence));
            }
            AnsiConsole.Write(entries);
            var history = new Table().Title("history").AddColumns("time (UTC)", "actor", "what", "status", "assignee", "note");
            foreach (var h in detail.Events)
            {
                var change = h.To is { } to ? (h.From is { } from ? $"{AlertStatuses.Name(from)} -> " : "") + AlertStatuses.Name(to) : "";
                history.AddRow(Time(h.At), Markup.Escape(h.Actor), Markup.Escape(h.Kind), Markup.Escape(change), Markup.Escape(h.Assignee ?? ""), Markup.Escape(h.Note ?? ""));
            }
            AnsiConsole.Write(history);
            if (detail.Notifications.Count == 0)
            {
                AnsiConsole.MarkupLine("notifications: none");
            }
            else
            {
                var notes = new Table().Title("notifications").AddColumns("channel", "target", "status", "attempts", "sent / next (UTC)", "last error");
                foreach (var x in detail.Notifications)
                {
                    notes.AddRow(Markup.Escape(x.Channel), Markup.Escape(x.Target), x.Status == "failed" ? "[red]failed[/]" : Markup.Escape(x.Status),
                        x.Attempts.ToString(CultureInfo.InvariantCulture), x.SentAt is { } sent ? Time(sent) : Time(x.NextAt), Markup.Escape(x.LastError ?? ""));
                }
                AnsiConsole.Write(notes);
            }
            return 0;
        }));
        return command;
    }

    private static Command Close()
    {
        var outcome = new Option<string>("--outcome") { Description = "violation (the access was not legitimate) or legitimate (it was: a reason the records did not show).", Required = true };
        var note = NoteOption("Why: what the review found (required, up to 4000 characters; kept sealed, never in the ledger or logs).");
        return StatusChange("close", "Close an alert as a violation or as legitimate, with a note saying why; recorded in the ledger.", note, [outcome], parse =>
        {
            var o = parse.GetValue(outcome)!.Trim();
            return o switch
            {
                "violation" => AlertStatus.ClosedViolation,
                "legitimate" => AlertStatus.ClosedLegitimate,
                _ => throw new CliException($"--outcome '{o}' is not an outcome: use violation or legitimate."),
            };
        }, noteRequired: "--note is required to close an alert: say what the review found.");
    }

    private static Command Review()
    {
        var note = NoteOption("An optional note (up to 4000 characters); required to reopen a closed alert.");
        return StatusChange("review", "Take an alert under review (or reopen a closed one, with a note); recorded in the ledger.", note, [], _ => AlertStatus.UnderReview, noteRequired: null);
    }

    private static Command Escalate()
    {
        var note = NoteOption("Why it goes to incident response (required, up to 4000 characters).");
        return StatusChange("escalate", "Escalate an alert to incident response, with a note; recorded in the ledger.", note, [], _ => AlertStatus.Escalated,
            noteRequired: "--note is required to escalate an alert: say why it goes to incident response.");
    }

    private static Command StatusChange(string name, string description, Option<string?> note, Option[] extra, Func<ParseResult, AlertStatus> target, string? noteRequired)
    {
        var store = new StoreArgs();
        var id = IdArgument();
        var revision = RevisionOption();
        var command = new Command(name, description);
        store.AddTo(command);
        command.Arguments.Add(id);
        foreach (var o in extra) command.Options.Add(o);
        command.Options.Add(note);
        command.Options.Add(revision);
        command.SetAction((parse, ct) => CommandRunner.RunAsync(async () =>
        {
            var alertId = AlertId(parse.GetValue(id));
            var to = target(parse);
            var text = Note(parse.GetValue(note), noteRequired);
            var expected = parse.GetValue(revision);
            if (expected is < 1) throw new CliException("--revision must be 1 or more (alerts show prints the alert's revision).");
            var options = store.Resolve(parse);
            await using var sp = await StoreArgs.OpenAsync(options, ct);
            var alerts = sp.GetRequiredService<AlertStore>();
            var current = (await alerts.GetAsync(alertId, ct))?.Alert ?? throw NotFound(alertId);
            if (AlertStatuses.IsClosed(to) && AlertStatuses.IsClosed(current.Status))
                throw new CliException($"Alert {alertId} is already closed ({AlertStatuses.Name(current.Status)}); reopen it first with: wardline alerts review {alertId} --note \"...\".");
            if (current.Status == to)
                throw new CliException($"Alert {alertId} is already {AlertStatuses.Name(to)}.");
            var result = await alerts.ChangeStatusAsync(alertId, to, MonitorCli.Actor, text, expected, ct);
            var changed = Outcome(result, alertId);
            AnsiConsole.MarkupLine($"alert {alertId}: {AlertStatuses.Name(current.Status)} -> {StatusMarkup(changed.Status)} (revision {changed.Revision}); recorded in the ledger");
            return 0;
        }));
        return command;
    }

    private static Command Assign()
    {
        var store = new StoreArgs();
        var id = IdArgument();
        var to = new Option<string?>("--to") { Description = "The account that reviews the alert (an existing account name)." };
        var nobody = new Option<bool>("--unassign") { Description = "Take the alert off its assignee's list." };
        var revision = RevisionOption();
        var command = new Command("assign", "Assign an alert to a reviewer (or unassign it); recorded in the ledger.");
        store.AddTo(command);
        command.Arguments.Add(id);
        command.Options.Add(to);
        command.Options.Add(nobody);
        command.Options.Add(revision);
        command.SetAction((parse, ct) => CommandRunner.RunAsync(async () =>
        {
            var alertId = AlertId(parse.GetValue(id));
            var assignee = parse.GetValue(to)?.Trim();
            var unassign = parse.GetValue(nobody);
            if ((assignee is null or { Length: 0 }) == !unassign) throw new CliException("Give either --to ACCOUNT or --unassign.");
            var expected = parse.GetValue(revision);
            if (expected is < 1) throw new CliException("--revision must be 1 or more (alerts show prints the alert's revision).");
            var options = store.Resolve(parse);
            await using var sp = await StoreArgs.OpenAsync(options, ct);
            var result = await sp.GetRequiredService<AlertStore>().AssignAsync(alertId, unassign ? null : assignee, MonitorCli.Actor, expected, ct);
            var changed = Outcome(result, alertId);
            AnsiConsole.MarkupLine(changed.Assignee is { } a
                ? $"alert {alertId} assigned to [green]{Markup.Escape(a)}[/] (revision {changed.Revision}); recorded in the ledger"
                : $"alert {alertId} unassigned (revision {changed.Revision}); recorded in the ledger");
            return 0;
        }));
        return command;
    }

    private static Command Comment()
    {
        var store = new StoreArgs();
        var id = IdArgument();
        var note = NoteOption("The comment (required, up to 4000 characters; kept sealed, never in the ledger or logs).");
        var command = new Command("comment", "Add a comment to an alert's history; recorded in the ledger (without the comment's text).");
        store.AddTo(command);
        command.Arguments.Add(id);
        command.Options.Add(note);
        command.SetAction((parse, ct) => CommandRunner.RunAsync(async () =>
        {
            var alertId = AlertId(parse.GetValue(id));
            var text = Note(parse.GetValue(note), "--note is required: the comment's text.")!;
            var options = store.Resolve(parse);
            await using var sp = await StoreArgs.OpenAsync(options, ct);
            var result = await sp.GetRequiredService<AlertStore>().CommentAsync(alertId, MonitorCli.Actor, text, ct);
            var changed = Outcome(result, alertId);
            AnsiConsole.MarkupLine($"comment added to alert {alertId} (revision {changed.Revision}); recorded in the ledger");
            return 0;
        }));
        return command;
    }

    /// <summary>The alert a change came to, or the refusal as a message (exit code 2).</summary>
    private static Alert Outcome(AlertChange result, long id) => result switch
    {
        AlertChange.Done done => done.Alert,
        AlertChange.NotFound => throw NotFound(id),
        AlertChange.Conflict c => throw new CliException(
            $"Alert {id} was changed by someone else since the revision you gave: it is now revision {c.Current.Revision}, {AlertStatuses.Name(c.Current.Status)}" +
            $"{(c.Current.Assignee is { } who ? $", assigned to {who}" : "")}. Nothing was written; look again (wardline alerts show {id}) and retry with --revision {c.Current.Revision}."),
        AlertChange.Invalid invalid => throw new CliException($"Alert {id}: {invalid.Problem}"),
        _ => throw new InvalidOperationException("unknown alert change result"),
    };

    private static CliException NotFound(long id) => new($"There is no alert {id}.");

    private static long AlertId(string? text)
    {
        var t = text?.Trim() ?? "";
        return long.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out var id) && id > 0
            ? id
            : throw new CliException($"'{text}' is not an alert number: give the id alerts list shows, e.g. 12.");
    }

    private static string? PatientId(string? text)
    {
        if (text is null) return null;
        var id = text.Trim();
        if (id.StartsWith("Patient/", StringComparison.Ordinal)) id = id["Patient/".Length..];
        return Wardline.Server.Modules.Records.Search.FhirIds.IsValid(id)
            ? id
            : throw new CliException("--patient must be a Patient resource id: 1 to 64 letters, digits, '-' or '.'.");
    }

    private static string? Note(string? text, string? requiredMessage)
    {
        var t = text?.Trim();
        if (string.IsNullOrEmpty(t))
        {
            if (requiredMessage is not null) throw new CliException(requiredMessage);
            return null;
        }
        if (t.Length > MaxNote) throw new CliException($"--note is {t.Length} characters; at most {MaxNote}.");
        return t;
    }

    /// <summary>The group key names a patient for some detections: only <c>show</c>, whose viewing is recorded, prints it.</summary>
    private static object ToJson(Alert a, bool withGroupKey = false) => new
    {
        id = a.Id,
        severity = MonitorCli.Name(a.Severity),
        detection = a.Detection,
        user = a.User,
        groupKey = withGroupKey ? a.GroupKey : null,
        status = AlertStatuses.Name(a.Status),
        assignee = a.Assignee,
        firstAt = Iso(a.FirstAt),
        lastAt = Iso(a.LastAt),
        patients = a.Patients,
        entries = a.Entries,
        evidence = a.Evidence,
        repeatOffender = a.RepeatOffender,
        config = a.Config,
        source = a.Source,
        created = Iso(a.Created),
        updated = Iso(a.Updated),
        revision = a.Revision,
    };

    private static string Iso(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

    private static string Time(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture);

    private static string SeverityMarkup(Severity s) => s switch
    {
        Severity.Critical => "[red bold]critical[/]",
        Severity.High => "[red]high[/]",
        Severity.Medium => "[yellow]medium[/]",
        _ => "low",
    };

    private static string StatusMarkup(AlertStatus s) => s switch
    {
        AlertStatus.New => "[blue]new[/]",
        AlertStatus.Escalated => "[red]escalated[/]",
        AlertStatus.ClosedViolation => "[red]closed-violation[/]",
        AlertStatus.ClosedLegitimate => "[green]closed-legitimate[/]",
        _ => AlertStatuses.Name(s),
    };

    private sealed record LedgerFacts(string? Action, string? Resource, string? Decision, string? Rule);

    /// <summary>What each evidence entry was (action, resource, decision), from the ledger's columns: identifiers only.</summary>
    private static async Task<Dictionary<long, LedgerFacts>> LedgerFactsAsync(ServiceProvider sp, IReadOnlyList<long> indexes, CancellationToken ct)
    {
        var facts = new Dictionary<long, LedgerFacts>();
        if (indexes.Count == 0) return facts;
        var dialect = sp.GetRequiredService<Wardline.Server.Modules.Records.Storage.SqlDialect>();
        await using var c = await dialect.OpenAsync(ct);
        foreach (var chunk in indexes.Chunk(500))
        {
            await using var cmd = c.CreateCommand();
            // The indexes are numbers read from the store, not user input.
            cmd.CommandText = $"SELECT idx, type, event, action, resource, permitted, rule, outcome FROM ledger_entries WHERE idx IN ({string.Join(',', chunk.Select(i => i.ToString(CultureInfo.InvariantCulture)))})";
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
            {
                string? Text(int i) => r.IsDBNull(i) ? null : r.GetString(i);
                var type = Text(1);
                var action = Text(3) ?? (type is "access" ? null : Text(2));
                var decision = r.IsDBNull(5) ? Text(7) : Convert.ToInt32(r.GetValue(5), CultureInfo.InvariantCulture) == 1 ? "permitted" : "denied";
                facts[r.GetInt64(0)] = new LedgerFacts(action, Text(4), decision, Text(6));
            }
        }
        return facts;
    }
}
