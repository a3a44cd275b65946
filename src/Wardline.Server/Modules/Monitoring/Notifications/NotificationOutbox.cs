using System.Data.Common;
using System.Globalization;
using Wardline.Monitoring;
using Wardline.Server.Modules.Records.Storage;

namespace Wardline.Server.Modules.Monitoring.Notifications;

/// <summary>The channels a notification goes through.</summary>
internal static class Channels
{
    public const string Email = "email";
    public const string Webhook = "webhook";
    public const string Syslog = "syslog";
}

/// <summary>What a notification says of its alert, read when it is delivered: identifiers, counts and the evidence in words only.</summary>
internal sealed record NotifiedAlert(
    long Id, string Detection, string Title, Severity Severity, string User, string? Patient, string Status,
    DateTimeOffset FirstAt, DateTimeOffset LastAt, int Patients, int Entries);

/// <summary>A notification whose time to be sent has come.</summary>
internal sealed record DueNotification(long Id, long AlertId, string Channel, string Target, int Attempts);

/// <summary>What a retry by hand came to.</summary>
internal enum RetryOutcome
{
    Reset,
    NotFound,
    AlreadySent,
}

/// <summary>
/// The notification outbox (<c>monitor_notifications</c>) and its cursor over the alerts (<c>monitor_state</c> 'notify').
/// A row leaves "pending" only by being delivered ("sent") or by running out of attempts ("failed"), so a notification
/// whose channel is down waits in the database, across restarts, until it goes out or someone looks at it.
/// </summary>
internal sealed class NotificationOutbox(SqlDialect dialect, TimeProvider time)
{
    private const string CursorName = "notify";
    private const string RisesCursorName = "notify-severity";

    /// <summary>
    /// How far below the cursor the fill looks again for alerts with no notification. PostgreSQL hands out identity values
    /// before commit, so an alert whose transaction commits after a later one's would sit below the cursor unseen; a lost
    /// alert costs more than this look back.
    /// </summary>
    private const int LookBackIds = 1000;

    private static readonly TimeSpan LookBackTime = TimeSpan.FromMinutes(2);

    /// <summary>
    /// Queues a notification per channel target for each alert past the cursor (of <paramref name="min"/> severity and above)
    /// and advances the cursor, in one transaction. With no cursor yet it starts at the newest alert: turning notifications on
    /// does not mail the history. Returns the number of notifications queued.
    /// </summary>
    public async Task<int> FillAsync(IReadOnlyList<(string Channel, string Target)> targets, Severity min, CancellationToken ct)
    {
        await using var c = await dialect.OpenAsync(ct);
        long? cursor = null;
        var started = 0L;
        await using (var read = c.CreateCommand())
        {
            // config holds when the cursor was started (Unix ms): alerts created before it are history, never notified.
            read.CommandText = "SELECT cursor, config FROM monitor_state WHERE name = @n";
            Migrations.AddParam(read, "@n", CursorName);
            await using var r = await read.ExecuteReaderAsync(ct);
            if (await r.ReadAsync(ct))
            {
                cursor = r.GetInt64(0);
                if (!r.IsDBNull(1)) _ = long.TryParse(r.GetString(1), NumberStyles.None, CultureInfo.InvariantCulture, out started);
            }
        }
        var now = time.GetUtcNow();
        if (cursor is not { } from)
        {
            await StartCursorAsync(c, CursorName, "SELECT MAX(id) FROM monitor_alerts", now.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture), now, ct);
            return 0;
        }

        var since = Math.Max((now - LookBackTime).ToUnixTimeMilliseconds(), started);
        var alerts = new List<(long Id, int Severity)>();
        await using (var cmd = c.CreateCommand())
        {
            cmd.CommandText = """
                SELECT id, severity FROM monitor_alerts a
                WHERE id > @c OR (id > @back AND created >= @since AND NOT EXISTS (SELECT 1 FROM monitor_notifications n WHERE n.alert_id = a.id))
                ORDER BY id LIMIT 500
                """;
            Migrations.AddParam(cmd, "@c", from);
            Migrations.AddParam(cmd, "@back", from - LookBackIds);
            Migrations.AddParam(cmd, "@since", since);
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct)) alerts.Add((r.GetInt64(0), Convert.ToInt32(r.GetValue(1), CultureInfo.InvariantCulture)));
        }
        var queue = alerts.Where(a => a.Severity >= (int)min).ToList();
        var next = Math.Max(from, alerts.Count > 0 ? alerts.Max(a => a.Id) : from);
        if (next == from && (queue.Count == 0 || targets.Count == 0)) return 0;

        return await QueueAsync(c, CursorName, from, next, [.. queue.Select(a => a.Id)], targets, now, ct);
    }

    /// <summary>Starts a cursor at the newest row <paramref name="maxSql"/> finds: what came before is history, never notified.</summary>
    private async Task StartCursorAsync(DbConnection c, string name, string maxSql, string? config, DateTimeOffset now, CancellationToken ct)
    {
        await using var gate = await dialect.EnterWriteAsync(ct);
        await using var init = await dialect.BeginWriteTransactionAsync(c, ct);
        var max = await ScalarAsync(c, init, maxSql, ct) ?? 0;
        await ExecAsync(c, init, $"INSERT INTO monitor_state (name, cursor, config, updated) VALUES (@n, @c, {(config is null ? "NULL" : "@s")}, @t) ON CONFLICT (name) DO NOTHING", ct,
            [("@n", name), ("@c", max), ("@t", now.ToUnixTimeMilliseconds()), .. config is null ? [] : new[] { ("@s", (object)config) }]);
        await init.CommitAsync(ct);
    }

    /// <summary>Moves cursor <paramref name="name"/> from <paramref name="from"/> to <paramref name="next"/> and queues a notification per target for each alert, in one transaction.</summary>
    private async Task<int> QueueAsync(DbConnection c, string name, long from, long next, IReadOnlyList<long> alertIds,
        IReadOnlyList<(string Channel, string Target)> targets, DateTimeOffset now, CancellationToken ct)
    {
        await using var write = await dialect.EnterWriteAsync(ct);
        await using var tx = await dialect.BeginWriteTransactionAsync(c, ct);
        // The cursor moves only from where this round read it; anything else means another writer and this round is dropped.
        if (await ExecAsync(c, tx, "UPDATE monitor_state SET cursor = @c, updated = @t WHERE name = @n AND cursor = @from", ct,
                ("@c", next), ("@t", now.ToUnixTimeMilliseconds()), ("@n", name), ("@from", from)) != 1)
        {
            await tx.RollbackAsync(ct);
            return 0;
        }
        var queued = 0;
        foreach (var id in alertIds)
        {
            foreach (var (channel, target) in targets)
            {
                queued += await ExecAsync(c, tx, """
                    INSERT INTO monitor_notifications (alert_id, channel, target, status, attempts, next_at, last_error, created, sent_at)
                    VALUES (@a, @ch, @tg, 'pending', 0, @t, NULL, @t, NULL)
                    """, ct, ("@a", id), ("@ch", channel), ("@tg", target), ("@t", now.ToUnixTimeMilliseconds()));
            }
        }
        await tx.CommitAsync(ct);
        return queued;
    }

    /// <summary>
    /// Queues a notification per channel target for each case whose severity a later finding raised to <paramref name="min"/>
    /// or above and that was never announced (it began below the minimum), from its own cursor over the cases' history
    /// events (<c>monitor_state</c> 'notify-severity'), in one transaction. Like <see cref="FillAsync"/> it starts at the
    /// newest event and looks back for events committed out of order. A case already announced is not announced again.
    /// </summary>
    public async Task<int> FillRisesAsync(IReadOnlyList<(string Channel, string Target)> targets, Severity min, CancellationToken ct)
    {
        await using var c = await dialect.OpenAsync(ct);
        var now = time.GetUtcNow();
        var cursor = await ScalarAsync(c, null, "SELECT cursor FROM monitor_state WHERE name = @n", ct, ("@n", RisesCursorName));
        if (cursor is not { } from)
        {
            await StartCursorAsync(c, RisesCursorName, "SELECT MAX(seq) FROM monitor_alert_events", null, now, ct);
            return 0;
        }

        // Read before the rises, so an event committed in between is read next round rather than skipped.
        var newest = await ScalarAsync(c, null, "SELECT MAX(seq) FROM monitor_alert_events", ct) ?? from;
        var rises = new List<(long Seq, long Alert, int Severity)>();
        await using (var cmd = c.CreateCommand())
        {
            cmd.CommandText = """
                SELECT e.seq, a.id, a.severity FROM monitor_alert_events e JOIN monitor_alerts a ON a.id = e.alert_id
                WHERE e.kind = @k AND ((e.seq > @c AND e.seq <= @newest) OR (e.seq > @back AND e.at >= @since))
                  AND NOT EXISTS (SELECT 1 FROM monitor_notifications n WHERE n.alert_id = a.id)
                ORDER BY e.seq LIMIT 500
                """;
            Migrations.AddParam(cmd, "@k", AlertStore.SeverityRaised);
            Migrations.AddParam(cmd, "@c", from);
            Migrations.AddParam(cmd, "@newest", newest);
            Migrations.AddParam(cmd, "@back", from - LookBackIds);
            Migrations.AddParam(cmd, "@since", (now - LookBackTime).ToUnixTimeMilliseconds());
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct)) rises.Add((r.GetInt64(0), r.GetInt64(1), Convert.ToInt32(r.GetValue(2), CultureInfo.InvariantCulture)));
        }
        var next = Math.Max(from, rises.Count == 500 ? rises[^1].Seq : newest);
        var queue = rises.Where(x => x.Severity >= (int)min).Select(x => x.Alert).Distinct().ToList();
        if (next == from && (queue.Count == 0 || targets.Count == 0)) return 0;
        return await QueueAsync(c, RisesCursorName, from, next, queue, targets, now, ct);
    }

    /// <summary>Pending notifications whose time has come, oldest first.</summary>
    public async Task<List<DueNotification>> DueAsync(int limit, CancellationToken ct)
    {
        await using var c = await dialect.OpenAsync(ct);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT id, alert_id, channel, target, attempts FROM monitor_notifications WHERE status = 'pending' AND next_at <= @t ORDER BY id LIMIT @n";
        Migrations.AddParam(cmd, "@t", time.GetUtcNow().ToUnixTimeMilliseconds());
        Migrations.AddParam(cmd, "@n", limit);
        var due = new List<DueNotification>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
            due.Add(new DueNotification(r.GetInt64(0), r.GetInt64(1), r.GetString(2), r.GetString(3), Convert.ToInt32(r.GetValue(4), CultureInfo.InvariantCulture)));
        return due;
    }

    /// <summary>The alert as a notification tells it (null when it no longer exists); the patient is that of its first entry.</summary>
    public async Task<NotifiedAlert?> AlertAsync(long id, CancellationToken ct)
    {
        await using var c = await dialect.OpenAsync(ct);
        string? patient;
        await using (var p = c.CreateCommand())
        {
            p.CommandText = "SELECT patient FROM monitor_alert_entries WHERE alert_id = @a AND patient IS NOT NULL ORDER BY idx LIMIT 1";
            Migrations.AddParam(p, "@a", id);
            patient = await p.ExecuteScalarAsync(ct) as string;
        }
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT detection, severity, user_name, status, first_at, last_at, patients, entries FROM monitor_alerts WHERE id = @a";
        Migrations.AddParam(cmd, "@a", id);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        if (!await r.ReadAsync(ct)) return null;
        var detection = r.GetString(0);
        return new NotifiedAlert(id, detection, Catalog.Find(detection)?.Title ?? detection,
            (Severity)Convert.ToInt32(r.GetValue(1), CultureInfo.InvariantCulture), r.GetString(2), patient, r.GetString(3),
            DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(4)), DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(5)),
            Convert.ToInt32(r.GetValue(6), CultureInfo.InvariantCulture), Convert.ToInt32(r.GetValue(7), CultureInfo.InvariantCulture));
    }

    /// <summary>Marks a notification delivered and adds "notified" to its alert's history.</summary>
    public async Task SentAsync(DueNotification n, CancellationToken ct)
    {
        var now = time.GetUtcNow().ToUnixTimeMilliseconds();
        await using var c = await dialect.OpenAsync(ct);
        await using var gate = await dialect.EnterWriteAsync(ct);
        await using var tx = await dialect.BeginWriteTransactionAsync(c, ct);
        await ExecAsync(c, tx, "UPDATE monitor_notifications SET status = 'sent', attempts = attempts + 1, last_error = NULL, sent_at = @t WHERE id = @id AND status = 'pending'", ct,
            ("@t", now), ("@id", n.Id));
        await ExecAsync(c, tx, """
            INSERT INTO monitor_alert_events (alert_id, at, actor, kind, from_status, to_status, assignee, note, note_key)
            VALUES (@a, @t, @actor, 'notified', NULL, NULL, NULL, NULL, NULL)
            """, ct, ("@a", n.AlertId), ("@t", now), ("@actor", "notify:" + n.Channel));
        await tx.CommitAsync(ct);
    }

    /// <summary>Records a failed attempt: the next one after <paramref name="wait"/>, or none when <paramref name="failed"/>.</summary>
    public async Task AttemptFailedAsync(DueNotification n, string error, TimeSpan wait, bool failed, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        await using var c = await dialect.OpenAsync(ct);
        await using var gate = await dialect.EnterWriteAsync(ct);
        await using var tx = await dialect.BeginWriteTransactionAsync(c, ct);
        await ExecAsync(c, tx, "UPDATE monitor_notifications SET status = @s, attempts = attempts + 1, last_error = @e, next_at = @n WHERE id = @id AND status = 'pending'", ct,
            ("@s", failed ? "failed" : "pending"), ("@e", error), ("@n", (now + wait).ToUnixTimeMilliseconds()), ("@id", n.Id));
        await tx.CommitAsync(ct);
    }

    /// <summary>Sends a pending or failed notification again at once, from attempt 0.</summary>
    public async Task<(RetryOutcome Outcome, AlertNotification? Notification)> RetryAsync(long id, CancellationToken ct)
    {
        await using var c = await dialect.OpenAsync(ct);
        await using (var gate = await dialect.EnterWriteAsync(ct))
        {
            await using var tx = await dialect.BeginWriteTransactionAsync(c, ct);
            var changed = await ExecAsync(c, tx, "UPDATE monitor_notifications SET status = 'pending', attempts = 0, next_at = @t WHERE id = @id AND status IN ('pending', 'failed')", ct,
                ("@t", time.GetUtcNow().ToUnixTimeMilliseconds()), ("@id", id));
            await tx.CommitAsync(ct);
            if (changed == 1) return (RetryOutcome.Reset, (await ReadAsync(c, "WHERE id = @id", 1, ct, ("@id", id))).Single());
        }
        var current = (await ReadAsync(c, "WHERE id = @id", 1, ct, ("@id", id))).SingleOrDefault();
        return current is null ? (RetryOutcome.NotFound, null) : (RetryOutcome.AlreadySent, current);
    }

    /// <summary>Notifications, newest first, of one status or all.</summary>
    public async Task<List<AlertNotification>> ListAsync(string? status, int limit, CancellationToken ct)
    {
        await using var c = await dialect.OpenAsync(ct);
        return status is null
            ? await ReadAsync(c, "", limit, ct)
            : await ReadAsync(c, "WHERE status = @s", limit, ct, ("@s", status));
    }

    /// <summary>What the console shows as undelivered: notifications still waiting after a failed attempt, and those that ran out of attempts.</summary>
    public async Task<List<AlertNotification>> UndeliveredAsync(CancellationToken ct)
    {
        await using var c = await dialect.OpenAsync(ct);
        return await ReadAsync(c, "WHERE (status = 'pending' AND attempts > 0) OR status = 'failed'", 500, ct);
    }

    /// <summary>The notifications of one alert, oldest first.</summary>
    public async Task<List<AlertNotification>> OfAlertAsync(long alertId, CancellationToken ct)
    {
        await using var c = await dialect.OpenAsync(ct);
        var list = await ReadAsync(c, "WHERE alert_id = @a", 1000, ct, ("@a", alertId));
        list.Reverse();
        return list;
    }

    private static async Task<List<AlertNotification>> ReadAsync(DbConnection c, string where, int limit, CancellationToken ct, params (string Name, object Value)[] parameters)
    {
        await using var cmd = c.CreateCommand();
        cmd.CommandText = $"SELECT id, alert_id, channel, target, status, attempts, next_at, last_error, created, sent_at FROM monitor_notifications {where} ORDER BY id DESC LIMIT @limit";
        foreach (var (name, value) in parameters) Migrations.AddParam(cmd, name, value);
        Migrations.AddParam(cmd, "@limit", limit);
        var list = new List<AlertNotification>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            list.Add(new AlertNotification(r.GetInt64(0), r.GetInt64(1), r.GetString(2), r.GetString(3), r.GetString(4),
                Convert.ToInt32(r.GetValue(5), CultureInfo.InvariantCulture), DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(6)),
                r.IsDBNull(7) ? null : r.GetString(7), DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(8)),
                r.IsDBNull(9) ? null : DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(9))));
        }
        return list;
    }

    private static async Task<long?> ScalarAsync(DbConnection c, DbTransaction? tx, string sql, CancellationToken ct, params (string Name, object Value)[] parameters)
    {
        await using var cmd = c.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = sql;
        foreach (var (name, value) in parameters) Migrations.AddParam(cmd, name, value);
        return await cmd.ExecuteScalarAsync(ct) is { } v and not DBNull ? Convert.ToInt64(v, CultureInfo.InvariantCulture) : null;
    }

    private static async Task<int> ExecAsync(DbConnection c, DbTransaction tx, string sql, CancellationToken ct, params (string Name, object Value)[] parameters)
    {
        await using var cmd = c.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = sql;
        foreach (var (name, value) in parameters) Migrations.AddParam(cmd, name, value);
        return await cmd.ExecuteNonQueryAsync(ct);
    }
}
