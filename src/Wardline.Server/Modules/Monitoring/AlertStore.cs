using System.Data.Common;
using System.Globalization;
using System.Text;
using Wardline.Monitoring;
using Wardline.Server.Modules.Ledger;
using Wardline.Server.Modules.Records;
using Wardline.Server.Modules.Records.Storage;
using Wardline.Server.Pipeline;

namespace Wardline.Server.Modules.Monitoring;

/// <summary>
/// The alerts raised by the detections and their review. Findings are recorded in one transaction per batch,
/// grouped into open cases (one user's spree across 40 patients is one alert), and never twice (monitor_alert_entries'
/// key is the detection and the ledger index, so a replay of a period seen before adds nothing). Every alert raised and
/// every change by a reviewer is a security entry in the ledger, committed in the same transaction as the change.
/// Notes are free text that may name a diagnosis: sealed like break-glass reasons, never logged nor put in the ledger.
/// </summary>
internal sealed class AlertStore(SqlDialect dialect, GroupCommitter committer, RecordKeys keys, AuditTrail trail, TimeProvider time)
{
    public const int MaxNote = 4000;

    public const int MaxLimit = 500;

    /// <summary>The history event of a case whose severity a later finding raised.</summary>
    public const string SeverityRaised = "severity-raised";

    private const string Columns = "id, detection, severity, user_name, group_key, status, assignee, first_at, last_at, patients, entries, evidence, repeat_offender, config, source, created, updated, revision";

    /// <summary>Raised with the ids of new alerts once they are committed (the notification outbox listens).</summary>
    public event Action<IReadOnlyList<long>>? Raised;

    /// <summary>
    /// Records findings in one transaction: entries already recorded are skipped, a finding joins the open alert of
    /// its detection, user and group key whose last entry is within the grouping window, else raises a new alert
    /// (recorded in the ledger as AlertRaised). With <paramref name="cursor"/>, the streaming cursor moves in the same transaction.
    /// </summary>
    public async Task<RecordResult> RecordFindingsAsync(IReadOnlyList<Finding> findings, MonitorConfig config, string source, long? cursor, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        if (findings.Count == 0 && cursor is null) return RecordResult.None;
        var result = await committer.RunAsync(async (c, tx, ledger, token) =>
        {
            var now = time.GetUtcNow();
            var created = new List<long>();
            int grouped = 0, known = 0;
            foreach (var f in findings)
            {
                var outcome = await RecordOneAsync(c, tx, f, config, source, now, ledger, token);
                switch (outcome)
                {
                    case null: known++; break;
                    case { New: true }: created.Add(outcome.Value.Id); break;
                    default: grouped++; break;
                }
            }
            if (cursor is { } at)
            {
                await using var cmd = Command(c, tx, "INSERT INTO monitor_state (name, cursor, config, updated) VALUES ('stream', @c, @cfg, @u) "
                    + "ON CONFLICT (name) DO UPDATE SET cursor = excluded.cursor, config = excluded.config, updated = excluded.updated");
                Add(cmd, "@c", at);
                Add(cmd, "@cfg", config.Fingerprint);
                Add(cmd, "@u", now.ToUnixTimeMilliseconds());
                await cmd.ExecuteNonQueryAsync(token);
            }
            return new RecordResult(created.Count, grouped, known, created);
        });
        if (result.Value.NewAlertIds.Count > 0) Raised?.Invoke(result.Value.NewAlertIds);
        return result.Value;
    }

    /// <summary>Null: every entry of the finding was recorded before.</summary>
    private async Task<(long Id, bool New)?> RecordOneAsync(DbConnection c, DbTransaction tx, Finding f, MonitorConfig config, string source, DateTimeOffset now,
        List<LedgerRow> ledger, CancellationToken ct)
    {
        var fresh = new List<long>(f.Entries.Distinct());
        if (fresh.Count == 0) return null;
        await using (var cmd = Command(c, tx, ""))
        {
            cmd.CommandText = "SELECT idx FROM monitor_alert_entries WHERE detection = @d AND idx IN (" + InList(cmd, fresh) + ")";
            Add(cmd, "@d", f.Detection);
            await using var r = await cmd.ExecuteReaderAsync(ct);
            var seen = new HashSet<long>();
            while (await r.ReadAsync(ct)) seen.Add(r.GetInt64(0));
            fresh.RemoveAll(seen.Contains);
        }
        if (fresh.Count == 0) return null;
        var times = await EntryTimesAsync(c, tx, fresh, ct);
        var windowMs = config.GroupWindowMinutes * 60_000L;

        long? open = null;
        await using (var cmd = Command(c, tx, "SELECT id FROM monitor_alerts WHERE detection = @d AND user_name = @u AND "
            + (f.GroupKey is null ? "group_key IS NULL" : "group_key = @g")
            + " AND status NOT IN ('closed-violation', 'closed-legitimate') AND last_at >= @lo AND first_at <= @hi ORDER BY last_at DESC, id DESC LIMIT 1"))
        {
            Add(cmd, "@d", f.Detection);
            Add(cmd, "@u", f.User);
            if (f.GroupKey is not null) Add(cmd, "@g", f.GroupKey);
            Add(cmd, "@lo", f.AtMs - windowMs);
            Add(cmd, "@hi", f.AtMs + windowMs);
            if (await cmd.ExecuteScalarAsync(ct) is { } id and not DBNull) open = Convert.ToInt64(id, CultureInfo.InvariantCulture);
        }

        if (open is { } alertId)
        {
            var hadPatient = f.Patient is not null && await ScalarLongAsync(c, tx,
                "SELECT COUNT(*) FROM monitor_alert_entries WHERE alert_id = @a AND patient = @p", ct, ("@a", alertId), ("@p", f.Patient)) > 0;
            var severityBefore = await ScalarLongAsync(c, tx, "SELECT severity FROM monitor_alerts WHERE id = @a", ct, ("@a", alertId));
            await InsertEntriesAsync(c, tx, alertId, f, fresh, times, ct);
            await using (var cmd = Command(c, tx, """
                UPDATE monitor_alerts SET
                    patients = (SELECT COUNT(DISTINCT patient) FROM monitor_alert_entries WHERE alert_id = @a),
                    entries = (SELECT COUNT(*) FROM monitor_alert_entries WHERE alert_id = @a),
                    last_at = CASE WHEN last_at < @at THEN @at ELSE last_at END,
                    first_at = CASE WHEN first_at > @first THEN @first ELSE first_at END,
                    severity = CASE WHEN severity < @s THEN @s ELSE severity END,
                    evidence = @e, updated = @now, revision = revision + 1
                WHERE id = @a
                """))
            {
                Add(cmd, "@a", alertId);
                Add(cmd, "@at", f.AtMs);
                Add(cmd, "@first", f.AtMs);
                Add(cmd, "@s", (int)f.Severity);
                Add(cmd, "@e", f.Evidence);
                Add(cmd, "@now", now.ToUnixTimeMilliseconds());
                await cmd.ExecuteNonQueryAsync(ct);
            }
            if (f.Patient is not null && !hadPatient)
                await InsertEventAsync(c, tx, alertId, now, "monitor", "grouped", null, null, null, null, ct);
            // A finding more severe than the case so far raises it; the notifier announces a case that now reaches its
            // minimum severity (NotificationOutbox.FillRisesAsync), so one that began below it is not missed.
            if ((int)f.Severity > severityBefore)
                await InsertEventAsync(c, tx, alertId, now, "monitor", SeverityRaised, null, null, null, null, ct);
            return (alertId, false);
        }

        var repeat = await ScalarLongAsync(c, tx,
            // Judged by when each was closed as a violation (its status event), not by its last change: a later comment
            // on an old case must not bring it back into the window.
            "SELECT COUNT(DISTINCT a.id) FROM monitor_alerts a JOIN monitor_alert_events e ON e.alert_id = a.id"
            + " WHERE a.user_name = @u AND a.status = 'closed-violation' AND e.kind = 'status' AND e.to_status = 'closed-violation' AND e.at >= @since", ct,
            ("@u", f.User), ("@since", now.AddDays(-config.RepeatOffenderWithinDays).ToUnixTimeMilliseconds())) >= config.RepeatOffenderViolations;
        long newId;
        await using (var cmd = Command(c, tx, """
            INSERT INTO monitor_alerts (detection, severity, user_name, group_key, status, assignee, first_at, last_at, patients, entries, evidence,
                repeat_offender, config, source, created, updated, revision)
            VALUES (@d, @s, @u, @g, 'new', NULL, @first, @last, 0, 0, @e, @r, @cfg, @src, @now, @now, 1) RETURNING id
            """))
        {
            Add(cmd, "@d", f.Detection);
            Add(cmd, "@s", (int)f.Severity);
            Add(cmd, "@u", f.User);
            Add(cmd, "@g", f.GroupKey);
            Add(cmd, "@first", f.AtMs);
            Add(cmd, "@last", f.AtMs);
            Add(cmd, "@e", f.Evidence);
            Add(cmd, "@r", repeat ? 1 : 0);
            Add(cmd, "@cfg", config.Fingerprint);
            Add(cmd, "@src", source);
            Add(cmd, "@now", now.ToUnixTimeMilliseconds());
            newId = Convert.ToInt64(await cmd.ExecuteScalarAsync(ct), CultureInfo.InvariantCulture);
        }
        await InsertEntriesAsync(c, tx, newId, f, fresh, times, ct);
        await using (var cmd = Command(c, tx, "UPDATE monitor_alerts SET patients = @p, entries = @n WHERE id = @a"))
        {
            Add(cmd, "@p", f.Patient is null ? 0 : 1);
            Add(cmd, "@n", fresh.Count);
            Add(cmd, "@a", newId);
            await cmd.ExecuteNonQueryAsync(ct);
        }
        await InsertEventAsync(c, tx, newId, now, "monitor", "raised", null, AlertStatus.New, null, null, ct);
        ledger.Add(new LedgerRow(LedgerRecorder.ToEntry(new SecurityEvent(now, SecurityEventKind.AlertRaised, f.User, "monitor", "raised",
            string.Create(CultureInfo.InvariantCulture, $"alert {newId} {f.Detection} severity {Name(f.Severity)}"), null, null))));
        return (newId, true);
    }

    private static async Task<Dictionary<long, long>> EntryTimesAsync(DbConnection c, DbTransaction tx, List<long> indexes, CancellationToken ct)
    {
        var times = new Dictionary<long, long>();
        await using var cmd = Command(c, tx, "");
        cmd.CommandText = "SELECT idx, at FROM ledger_entries WHERE idx IN (" + InList(cmd, indexes) + ")";
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) times[r.GetInt64(0)] = r.GetInt64(1);
        return times;
    }

    private async Task InsertEntriesAsync(DbConnection c, DbTransaction tx, long alertId, Finding f, List<long> indexes, Dictionary<long, long> times, CancellationToken ct) =>
        await dialect.InsertRowsAsync(c, tx, "monitor_alert_entries (alert_id, detection, idx, patient, at, evidence)", 6, indexes.Count, (i, add) =>
        {
            add(alertId); add(f.Detection); add(indexes[i]); add(f.Patient); add(times.GetValueOrDefault(indexes[i], f.AtMs)); add(f.Evidence);
        }, ct);

    /// <summary>
    /// The queue as shown to <paramref name="viewer"/>: alerts carry counts, not patients, but a queue filtered by a
    /// patient answers "what was found about this patient", so it is recorded as a read of that patient's audit trail first.
    /// </summary>
    public async Task<AlertPage> ListAsync(AlertQuery q, string viewer, string? source, CancellationToken ct)
    {
        if (q.Patient is { } patient) await trail.RecordReadAsync([patient], viewer, source, ct);
        return await QueryAsync(q, ct);
    }

    /// <summary>The alert queue, newest first (by last entry, then id).</summary>
    public async Task<AlertPage> QueryAsync(AlertQuery q, CancellationToken ct)
    {
        var limit = Math.Clamp(q.Limit, 1, MaxLimit);
        await using var c = await dialect.OpenAsync(ct);
        await using var cmd = c.CreateCommand();
        var where = Filters(cmd, q);
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (AlertStatus s in Enum.GetValues<AlertStatus>()) counts[AlertStatuses.Name(s)] = 0;
        cmd.CommandText = "SELECT status, COUNT(*) FROM monitor_alerts" + Where(where) + " GROUP BY status";
        await using (var r = await cmd.ExecuteReaderAsync(ct))
        {
            while (await r.ReadAsync(ct)) counts[r.GetString(0)] = Convert.ToInt32(r.GetValue(1), CultureInfo.InvariantCulture);
        }
        if (q.Status is { } status)
        {
            where.Add("status = @status");
            Add(cmd, "@status", AlertStatuses.Name(status));
        }
        if (q.OpenOnly) where.Add("status NOT IN ('closed-violation', 'closed-legitimate')");
        if (q.BeforeId is { } before)
        {
            where.Add("(last_at < (SELECT last_at FROM monitor_alerts WHERE id = @before) OR (last_at = (SELECT last_at FROM monitor_alerts WHERE id = @before) AND id < @before))");
            Add(cmd, "@before", before);
        }
        cmd.CommandText = "SELECT " + Columns + " FROM monitor_alerts" + Where(where) + " ORDER BY last_at DESC, id DESC LIMIT @lim";
        Add(cmd, "@lim", limit + 1);
        var list = new List<Alert>();
        await using (var r = await cmd.ExecuteReaderAsync(ct))
        {
            while (await r.ReadAsync(ct)) list.Add(Map(r));
        }
        long? next = null;
        if (list.Count > limit)
        {
            list.RemoveAt(list.Count - 1);
            next = list[^1].Id;
        }
        return new AlertPage(list, counts, next);
    }

    private static List<string> Filters(DbCommand cmd, AlertQuery q)
    {
        var where = new List<string>();
        if (q.Detection is { } d)
        {
            where.Add("detection = @det");
            Add(cmd, "@det", d);
        }
        if (q.User is { } u)
        {
            where.Add("user_name = @user");
            Add(cmd, "@user", u);
        }
        if (q.Patient is { } p)
        {
            where.Add("EXISTS (SELECT 1 FROM monitor_alert_entries e WHERE e.alert_id = monitor_alerts.id AND e.patient = @patient)");
            Add(cmd, "@patient", p);
        }
        if (q.MinSeverity is { } s)
        {
            where.Add("severity >= @sev");
            Add(cmd, "@sev", (int)s);
        }
        if (q.Assignee is { } a)
        {
            where.Add("assignee = @assignee");
            Add(cmd, "@assignee", a);
        }
        if (q.From is { } from)
        {
            where.Add("last_at >= @from");
            Add(cmd, "@from", from.ToUnixTimeMilliseconds());
        }
        if (q.To is { } to)
        {
            where.Add("first_at < @to");
            Add(cmd, "@to", to.ToUnixTimeMilliseconds());
        }
        return where;
    }

    private static string Where(List<string> where) => where.Count == 0 ? "" : " WHERE " + string.Join(" AND ", where);

    /// <summary>One alert with its entries (by index), history (oldest first, notes unsealed) and notifications; null when there is no such alert.</summary>
    /// <summary>
    /// An alert's detail as shown to <paramref name="viewer"/> (API, console, CLI): its evidence names the patients whose
    /// records the user touched, so showing it is recorded as a read of each patient's audit trail first, as the user's
    /// timeline is. Null (and nothing recorded) when there is no such alert.
    /// </summary>
    public async Task<AlertDetail?> ShowAsync(long id, string viewer, string? source, CancellationToken ct)
    {
        var detail = await GetAsync(id, ct);
        if (detail is not null)
            await trail.RecordReadAsync([.. detail.Entries.Select(e => e.Patient).OfType<string>().Distinct(StringComparer.Ordinal)], viewer, source, ct);
        return detail;
    }

    /// <summary>An alert with its entries, history and notifications, for the server's own use; viewers go through <see cref="ShowAsync"/>.</summary>
    public async Task<AlertDetail?> GetAsync(long id, CancellationToken ct)
    {
        await using var c = await dialect.OpenAsync(ct);
        var alert = await ReadAlertAsync(c, null, id, ct);
        if (alert is null) return null;
        var entries = new List<AlertEntry>();
        await using (var cmd = Command(c, null, "SELECT idx, detection, patient, at, evidence FROM monitor_alert_entries WHERE alert_id = @a ORDER BY idx"))
        {
            Add(cmd, "@a", id);
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
                entries.Add(new AlertEntry(r.GetInt64(0), r.GetString(1), r.IsDBNull(2) ? null : r.GetString(2), DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(3)), r.GetString(4)));
        }
        var events = new List<AlertEvent>();
        await using (var cmd = Command(c, null, "SELECT seq, at, actor, kind, from_status, to_status, assignee, note, note_key FROM monitor_alert_events WHERE alert_id = @a ORDER BY seq"))
        {
            Add(cmd, "@a", id);
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
            {
                var note = r.IsDBNull(7) || r.IsDBNull(8) ? null : Unseal(id, (byte[])r.GetValue(7), (byte[])r.GetValue(8));
                events.Add(new AlertEvent(r.GetInt64(0), DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(1)), r.GetString(2), r.GetString(3),
                    r.IsDBNull(4) ? null : AlertStatuses.Parse(r.GetString(4)), r.IsDBNull(5) ? null : AlertStatuses.Parse(r.GetString(5)),
                    r.IsDBNull(6) ? null : r.GetString(6), note));
            }
        }
        var notifications = new List<AlertNotification>();
        await using (var cmd = Command(c, null, "SELECT id, alert_id, channel, target, status, attempts, next_at, last_error, created, sent_at FROM monitor_notifications WHERE alert_id = @a ORDER BY id"))
        {
            Add(cmd, "@a", id);
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
            {
                notifications.Add(new AlertNotification(r.GetInt64(0), r.GetInt64(1), r.GetString(2), r.GetString(3), r.GetString(4),
                    Convert.ToInt32(r.GetValue(5), CultureInfo.InvariantCulture), DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(6)),
                    r.IsDBNull(7) ? null : r.GetString(7), DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(8)),
                    r.IsDBNull(9) ? null : DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(9))));
            }
        }
        return new AlertDetail(alert, entries, events, notifications);
    }

    /// <summary>Whether <paramref name="to"/> may follow <paramref name="from"/>: forward through review, and a closed alert may be reopened for review.</summary>
    public static bool Allowed(AlertStatus from, AlertStatus to) => (from, to) switch
    {
        (AlertStatus.New, AlertStatus.UnderReview or AlertStatus.Escalated or AlertStatus.ClosedViolation or AlertStatus.ClosedLegitimate) => true,
        (AlertStatus.UnderReview, AlertStatus.Escalated or AlertStatus.ClosedViolation or AlertStatus.ClosedLegitimate) => true,
        (AlertStatus.Escalated, AlertStatus.ClosedViolation or AlertStatus.ClosedLegitimate) => true,
        (AlertStatus.ClosedViolation or AlertStatus.ClosedLegitimate, AlertStatus.UnderReview) => true,
        _ => false,
    };

    /// <summary>The refusal of a status change or an assignment by the user an alert is about.</summary>
    public const string OwnAlertProblem = "An alert about your own activity is reviewed by another officer.";

    /// <summary>The refusal of an assignment to the user an alert is about.</summary>
    public const string AssignToSubjectProblem = "An alert cannot be assigned to the user it is about; it is reviewed by another officer.";

    /// <summary>
    /// Moves an alert along its review. Closing and reopening need a note (the outcome's reasons). The user the
    /// alert is about may not change its status (<see cref="OwnAlertProblem"/>). With <paramref name="expectedRevision"/>,
    /// a change made since the caller read the alert wins. Nothing is written on any refusal.
    /// </summary>
    public async Task<AlertChange> ChangeStatusAsync(long id, AlertStatus to, string actor, string? note, int? expectedRevision, CancellationToken ct)
    {
        note = string.IsNullOrWhiteSpace(note) ? null : note.Trim();
        if (note is { Length: > MaxNote }) return new AlertChange.Invalid($"The note is longer than {MaxNote} characters.");
        var change = await committer.RunAsync(async (c, tx, ledger, token) =>
        {
            var alert = await ReadAlertAsync(c, tx, id, token);
            if (alert is null) return (AlertChange)new AlertChange.NotFound();
            if (IsSubject(alert, actor)) return new AlertChange.Invalid(OwnAlertProblem);
            if (expectedRevision is { } rev && rev != alert.Revision) return new AlertChange.Conflict(alert);
            var from = alert.Status;
            if (!Allowed(from, to))
                return new AlertChange.Invalid($"An alert that is {AlertStatuses.Name(from)} cannot become {AlertStatuses.Name(to)}.");
            if (AlertStatuses.IsClosed(to) && note is null) return new AlertChange.Invalid("Closing an alert needs a note saying why (1 to 4000 characters).");
            if (AlertStatuses.IsClosed(from) && note is null) return new AlertChange.Invalid("Reopening a closed alert needs a note saying why (1 to 4000 characters).");
            var now = time.GetUtcNow();
            if (!await BumpAsync(c, tx, alert, now, "status = @st", token, ("@st", AlertStatuses.Name(to)))) return new AlertChange.Conflict(alert);
            await InsertEventAsync(c, tx, id, now, actor, "status", from, to, null, note, token);
            ledger.Add(Updated(now, alert, actor, AlertStatuses.Name(to), string.Create(CultureInfo.InvariantCulture, $"alert {id} {AlertStatuses.Name(from)} -> {AlertStatuses.Name(to)}")));
            return new AlertChange.Done((await ReadAlertAsync(c, tx, id, token))!);
        });
        return change.Value;
    }

    /// <summary>
    /// Assigns the alert to an account (null: unassigns it). Neither the user the alert is about may (un)assign it
    /// (<see cref="OwnAlertProblem"/>), nor may anyone assign it to that user (<see cref="AssignToSubjectProblem"/>);
    /// nothing is written on a refusal.
    /// </summary>
    public async Task<AlertChange> AssignAsync(long id, string? assignee, string actor, int? expectedRevision, CancellationToken ct)
    {
        assignee = string.IsNullOrWhiteSpace(assignee) ? null : assignee.Trim();
        var change = await committer.RunAsync(async (c, tx, ledger, token) =>
        {
            var alert = await ReadAlertAsync(c, tx, id, token);
            if (alert is null) return (AlertChange)new AlertChange.NotFound();
            if (IsSubject(alert, actor)) return new AlertChange.Invalid(OwnAlertProblem);
            if (assignee is not null && IsSubject(alert, assignee)) return new AlertChange.Invalid(AssignToSubjectProblem);
            if (expectedRevision is { } rev && rev != alert.Revision) return new AlertChange.Conflict(alert);
            if (assignee is not null && await ScalarLongAsync(c, tx, "SELECT COUNT(*) FROM accounts WHERE name = @n", token, ("@n", assignee)) == 0)
                return new AlertChange.Invalid($"There is no account '{assignee}' to assign the alert to.");
            var now = time.GetUtcNow();
            if (!await BumpAsync(c, tx, alert, now, "assignee = @as", token, ("@as", assignee))) return new AlertChange.Conflict(alert);
            await InsertEventAsync(c, tx, id, now, actor, "assign", null, null, assignee, null, token);
            ledger.Add(Updated(now, alert, actor, assignee is null ? "unassigned" : "assigned",
                "alert " + id.ToString(CultureInfo.InvariantCulture) + (assignee is null ? " unassigned" : " assigned to " + assignee)));
            return new AlertChange.Done((await ReadAlertAsync(c, tx, id, token))!);
        });
        return change.Value;
    }

    /// <summary>
    /// Adds a comment (sealed). A comment does not change the alert's state, so its revision stays. The user the alert
    /// is about may comment (an officer's explanation of their own activity belongs in the record); only the status and the
    /// assignment are kept from them.
    /// </summary>
    public async Task<AlertChange> CommentAsync(long id, string actor, string? note, CancellationToken ct)
    {
        note = note?.Trim();
        if (string.IsNullOrEmpty(note) || note.Length > MaxNote) return new AlertChange.Invalid($"A comment needs a note of 1 to {MaxNote} characters.");
        var change = await committer.RunAsync(async (c, tx, ledger, token) =>
        {
            var alert = await ReadAlertAsync(c, tx, id, token);
            if (alert is null) return (AlertChange)new AlertChange.NotFound();
            var now = time.GetUtcNow();
            await using (var cmd = Command(c, tx, "UPDATE monitor_alerts SET updated = @now WHERE id = @id"))
            {
                Add(cmd, "@now", now.ToUnixTimeMilliseconds());
                Add(cmd, "@id", id);
                await cmd.ExecuteNonQueryAsync(token);
            }
            await InsertEventAsync(c, tx, id, now, actor, "comment", null, null, null, note, token);
            ledger.Add(Updated(now, alert, actor, "commented", string.Create(CultureInfo.InvariantCulture, $"alert {id} comment")));
            return new AlertChange.Done((await ReadAlertAsync(c, tx, id, token))!);
        });
        return change.Value;
    }

    /// <summary>
    /// A user's ledger entries in [from, to), oldest first. The timeline names the patients whose records the user
    /// touched, so showing it to <paramref name="viewer"/> is recorded as a read of each patient's audit trail first.
    /// </summary>
    public async Task<IReadOnlyList<ActivityItem>> UserActivityAsync(string user, DateTimeOffset from, DateTimeOffset to, int limit, string viewer, string? source, CancellationToken ct)
    {
        var items = await ActivityAsync("user_name = @k", user, from, to, limit, ct);
        await trail.RecordReadAsync([.. items.Select(i => i.Patient).OfType<string>().Distinct(StringComparer.Ordinal)], viewer, source, ct);
        return items;
    }

    /// <summary>Entries naming the patient in [from, to), oldest first; recorded as a read of the patient's audit trail by <paramref name="viewer"/> first.</summary>
    public async Task<IReadOnlyList<ActivityItem>> PatientAccessesAsync(string patient, DateTimeOffset from, DateTimeOffset to, int limit, string viewer, string? source, CancellationToken ct)
    {
        var items = await ActivityAsync("patient = @k", "Patient/" + patient, from, to, limit, ct);
        await trail.RecordReadAsync([patient], viewer, source, ct);
        return items;
    }

    private async Task<List<ActivityItem>> ActivityAsync(string filter, string key, DateTimeOffset from, DateTimeOffset to, int limit, CancellationToken ct)
    {
        await using var c = await dialect.OpenAsync(ct);
        await using var cmd = Command(c, null, "SELECT idx, at, type, event, user_name, patient, resource, action, permitted, rule, purpose FROM ledger_entries WHERE "
            + filter + " AND at >= @from AND at < @to ORDER BY idx LIMIT @lim");
        Add(cmd, "@k", key);
        Add(cmd, "@from", from.ToUnixTimeMilliseconds());
        Add(cmd, "@to", to.ToUnixTimeMilliseconds());
        Add(cmd, "@lim", Math.Clamp(limit, 1, 5000));
        var list = new List<ActivityItem>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            var patient = r.IsDBNull(5) ? null : r.GetString(5);
            list.Add(new ActivityItem(r.GetInt64(0), DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(1)), r.GetString(2), Text(r, 3), Text(r, 4),
                patient is not null && patient.StartsWith("Patient/", StringComparison.Ordinal) ? patient[8..] : patient,
                Text(r, 6), Text(r, 7), r.IsDBNull(8) ? null : Convert.ToInt32(r.GetValue(8), CultureInfo.InvariantCulture) != 0, Text(r, 9), Text(r, 10)));
        }
        return list;
    }

    /// <summary>The streaming cursor: the last ledger index examined, or null before the first run.</summary>
    public async Task<long?> CursorAsync(CancellationToken ct)
    {
        await using var c = await dialect.OpenAsync(ct);
        await using var cmd = Command(c, null, "SELECT cursor FROM monitor_state WHERE name = 'stream'");
        return await cmd.ExecuteScalarAsync(ct) is { } v and not DBNull ? Convert.ToInt64(v, CultureInfo.InvariantCulture) : null;
    }

    /// <summary>Whether <paramref name="name"/> is the user the alert is about (account names are compared exactly, as stored).</summary>
    private static bool IsSubject(Alert alert, string name) => string.Equals(alert.User, name, StringComparison.Ordinal);

    /// <summary>The AlertUpdated entry of a change: identifiers and statuses only, never the note.</summary>
    private static LedgerRow Updated(DateTimeOffset now, Alert alert, string actor, string outcome, string detail) =>
        new(LedgerRecorder.ToEntry(new SecurityEvent(now, SecurityEventKind.AlertUpdated, alert.User, actor, outcome, detail, null, null)));

    /// <summary>Applies a change and moves the revision on, only if nobody else moved it since <paramref name="alert"/> was read.</summary>
    private static async Task<bool> BumpAsync(DbConnection c, DbTransaction tx, Alert alert, DateTimeOffset now, string set, CancellationToken ct, params (string Name, object? Value)[] values)
    {
        await using var cmd = Command(c, tx, "UPDATE monitor_alerts SET " + set + ", updated = @now, revision = revision + 1 WHERE id = @id AND revision = @rev");
        foreach (var (name, value) in values) Add(cmd, name, value);
        Add(cmd, "@now", now.ToUnixTimeMilliseconds());
        Add(cmd, "@id", alert.Id);
        Add(cmd, "@rev", alert.Revision);
        return await cmd.ExecuteNonQueryAsync(ct) == 1;
    }

    private async Task InsertEventAsync(DbConnection c, DbTransaction tx, long alertId, DateTimeOffset at, string actor, string kind,
        AlertStatus? from, AlertStatus? to, string? assignee, string? note, CancellationToken ct)
    {
        byte[]? sealedNote = null, wrapped = null;
        if (note is not null) (sealedNote, wrapped) = Seal(alertId, note);
        await using var cmd = Command(c, tx, "INSERT INTO monitor_alert_events (alert_id, at, actor, kind, from_status, to_status, assignee, note, note_key) "
            + "VALUES (@a, @at, @actor, @kind, @from, @to, @as, @note, @key)");
        Add(cmd, "@a", alertId);
        Add(cmd, "@at", at.ToUnixTimeMilliseconds());
        Add(cmd, "@actor", actor);
        Add(cmd, "@kind", kind);
        Add(cmd, "@from", from is { } f ? AlertStatuses.Name(f) : null);
        Add(cmd, "@to", to is { } t ? AlertStatuses.Name(t) : null);
        Add(cmd, "@as", assignee);
        Add(cmd, "@note", sealedNote);
        Add(cmd, "@key", wrapped);
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>Seals a note under a data key of its own, wrapped by the keyring and bound to the alert (as break-glass reasons are).</summary>
    private (byte[] Sealed, byte[] Wrapped) Seal(long alertId, string note)
    {
        var context = KeyContext(alertId);
        using var created = keys.Cipher.CreateDataKey(context);
        return (keys.Cipher.Encrypt(created.DataKey, Encoding.UTF8.GetBytes(note), NoteContext(alertId)), created.Wrapped);
    }

    private string Unseal(long alertId, byte[] sealedNote, byte[] wrapped)
    {
        using var key = keys.Cipher.UnwrapDataKey(wrapped, KeyContext(alertId));
        return Encoding.UTF8.GetString(keys.Cipher.Decrypt(key, sealedNote, NoteContext(alertId)));
    }

    /// <summary>What a note's data key is wrapped under (also for <c>keys rotate</c>, which re-wraps it).</summary>
    internal static byte[] KeyContext(long alertId) => Encoding.UTF8.GetBytes("monitor-alert/" + alertId.ToString(CultureInfo.InvariantCulture));

    private static byte[] NoteContext(long alertId) => Encoding.UTF8.GetBytes("monitor-alert/" + alertId.ToString(CultureInfo.InvariantCulture) + "/note");

    private static async Task<Alert?> ReadAlertAsync(DbConnection c, DbTransaction? tx, long id, CancellationToken ct)
    {
        await using var cmd = Command(c, tx, "SELECT " + Columns + " FROM monitor_alerts WHERE id = @id");
        Add(cmd, "@id", id);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        return await r.ReadAsync(ct) ? Map(r) : null;
    }

    private static Alert Map(DbDataReader r) => new(
        r.GetInt64(0), r.GetString(1), (Severity)Convert.ToInt32(r.GetValue(2), CultureInfo.InvariantCulture), r.GetString(3), Text(r, 4),
        AlertStatuses.Parse(r.GetString(5)) ?? AlertStatus.New, Text(r, 6),
        DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(7)), DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(8)),
        Convert.ToInt32(r.GetValue(9), CultureInfo.InvariantCulture), Convert.ToInt32(r.GetValue(10), CultureInfo.InvariantCulture), r.GetString(11),
        Convert.ToInt32(r.GetValue(12), CultureInfo.InvariantCulture) != 0, r.GetString(13), r.GetString(14),
        DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(15)), DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(16)),
        Convert.ToInt32(r.GetValue(17), CultureInfo.InvariantCulture));

    public static string Name(Severity s) => s switch
    {
        Severity.Low => "low",
        Severity.Medium => "medium",
        Severity.High => "high",
        _ => "critical",
    };

    public static Severity? ParseSeverity(string? s) => s switch
    {
        "low" => Severity.Low,
        "medium" => Severity.Medium,
        "high" => Severity.High,
        "critical" => Severity.Critical,
        _ => null,
    };

    private static string? Text(DbDataReader r, int i) => r.IsDBNull(i) ? null : r.GetString(i);

    private static async Task<long> ScalarLongAsync(DbConnection c, DbTransaction tx, string sql, CancellationToken ct, params (string Name, object? Value)[] values)
    {
        await using var cmd = Command(c, tx, sql);
        foreach (var (name, value) in values) Add(cmd, name, value);
        return Convert.ToInt64(await cmd.ExecuteScalarAsync(ct), CultureInfo.InvariantCulture);
    }

    private static DbCommand Command(DbConnection c, DbTransaction? tx, string sql)
    {
        var cmd = c.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = sql;
        return cmd;
    }

    private static string InList(DbCommand cmd, List<long> values)
    {
        var names = new string[values.Count];
        for (var i = 0; i < values.Count; i++)
        {
            names[i] = "@i" + i.ToString(CultureInfo.InvariantCulture);
            Add(cmd, names[i], values[i]);
        }
        return string.Join(", ", names);
    }

    private static void Add(DbCommand cmd, string name, object? value) => Migrations.AddParam(cmd, name, value);
}
