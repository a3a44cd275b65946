using System.Data.Common;

namespace Wardline.Server.Modules.Records.Storage;

/// <summary>
/// Versioned schema. Each step runs once, inside one transaction with the migration lock held,
/// so several servers starting together on one PostgreSQL apply each step exactly once.
/// Steps are append-only: never edit a released step, add a new one.
/// </summary>
internal static class Migrations
{
    private static IReadOnlyList<(int Version, string Name, Func<SqlDialect, string> Sql)> Steps { get; } =
    [
        (1, "records", d => $"""
            CREATE TABLE data_keys (
                res_type TEXT NOT NULL, res_id TEXT NOT NULL,
                kek_id TEXT NOT NULL, wrapped {d.BlobType} NOT NULL,
                PRIMARY KEY (res_type, res_id));
            CREATE TABLE resource_versions (
                res_type TEXT NOT NULL, res_id TEXT NOT NULL, version INTEGER NOT NULL,
                last_updated BIGINT NOT NULL, deleted SMALLINT NOT NULL, body {d.BlobType},
                PRIMARY KEY (res_type, res_id, version));
            CREATE INDEX ix_versions_type_time ON resource_versions (res_type, last_updated);
            CREATE TABLE resources (
                rid {d.AutoIdColumn}, res_type TEXT NOT NULL, res_id TEXT NOT NULL, version INTEGER NOT NULL,
                last_updated BIGINT NOT NULL, deleted SMALLINT NOT NULL);
            CREATE UNIQUE INDEX ux_resources_key ON resources (res_type, res_id);
            CREATE INDEX ix_resources_type_time ON resources (res_type, last_updated);
            CREATE TABLE search_params (
                pid INTEGER NOT NULL PRIMARY KEY, res_type TEXT NOT NULL, param TEXT NOT NULL);
            CREATE UNIQUE INDEX ux_search_params ON search_params (res_type, param);
            CREATE TABLE search_token (
                pid INTEGER NOT NULL, hash {d.BlobType} NOT NULL, rid BIGINT NOT NULL,
                PRIMARY KEY (pid, hash, rid)){d.ClusteredTableSuffix};
            CREATE INDEX ix_search_token_owner ON search_token (rid);
            CREATE TABLE search_ref (
                pid INTEGER NOT NULL, ref TEXT NOT NULL, rid BIGINT NOT NULL,
                PRIMARY KEY (pid, ref, rid)){d.ClusteredTableSuffix};
            CREATE INDEX ix_search_ref_owner ON search_ref (rid);
            CREATE TABLE search_date (
                pid INTEGER NOT NULL, lo BIGINT NOT NULL, hi BIGINT NOT NULL, rid BIGINT NOT NULL,
                PRIMARY KEY (pid, lo, hi, rid)){d.ClusteredTableSuffix};
            CREATE INDEX ix_search_date_owner ON search_date (rid, pid);
            CREATE TABLE users (
                name TEXT NOT NULL PRIMARY KEY, display TEXT NOT NULL,
                created BIGINT NOT NULL, disabled SMALLINT NOT NULL);
            CREATE TABLE api_tokens (
                token_hash {d.BlobType} NOT NULL PRIMARY KEY, user_name TEXT NOT NULL,
                created BIGINT NOT NULL, expires BIGINT NOT NULL);
            """ + Immutability(d)),
        (2, "access-log", d => $"""
            CREATE TABLE access_log (
                seq {d.AutoIdColumn}, at BIGINT NOT NULL, user_name TEXT, action TEXT NOT NULL,
                res_type TEXT, res_id TEXT, phase TEXT NOT NULL, permitted SMALLINT NOT NULL, rule TEXT NOT NULL,
                status INTEGER, resource_ref TEXT, correlation TEXT NOT NULL, source TEXT);
            CREATE INDEX ix_access_log_at ON access_log (at);
            """),
        (3, "security-events", d => $"""
            CREATE TABLE security_events (
                seq {d.AutoIdColumn}, at BIGINT NOT NULL, kind TEXT NOT NULL, user_name TEXT, actor TEXT,
                outcome TEXT NOT NULL, detail TEXT, correlation TEXT, source TEXT);
            CREATE INDEX ix_security_events_at ON security_events (at);
            CREATE INDEX ix_security_events_user ON security_events (user_name, at);
            """),
        // Local accounts replace the interim users (kept, no longer read; their rows are carried over
        // as token-only accounts). Lists are space-separated; the MFA secret is sealed (mfa_key wraps its
        // data key, see Modules/Access/Identity/Totp.cs). sign_in_failures holds the rolling window only.
        (4, "identity", d => $"""
            CREATE TABLE accounts (
                name TEXT NOT NULL PRIMARY KEY, display TEXT NOT NULL, password_hash TEXT,
                roles TEXT NOT NULL, tier INTEGER NOT NULL, departments TEXT NOT NULL, treats TEXT NOT NULL,
                practitioner_id TEXT, break_glass SMALLINT NOT NULL, disabled SMALLINT NOT NULL, expires BIGINT,
                shift_start SMALLINT, shift_end SMALLINT,
                mfa_key {d.BlobType}, mfa_secret {d.BlobType}, mfa_enrolled SMALLINT NOT NULL, mfa_last_step BIGINT,
                second_step_until BIGINT, revision INTEGER NOT NULL, created BIGINT NOT NULL, updated BIGINT NOT NULL);
            INSERT INTO accounts (name, display, roles, tier, departments, treats, break_glass, disabled, mfa_enrolled, revision, created, updated)
                SELECT name, display, '', 2, '', '', 0, disabled, 0, 1, created, created FROM users;
            CREATE TABLE sign_in_failures (
                seq {d.AutoIdColumn}, name TEXT NOT NULL, source TEXT NOT NULL, factor TEXT NOT NULL, at BIGINT NOT NULL);
            CREATE INDEX ix_sign_in_failures_name ON sign_in_failures (name, at);
            CREATE INDEX ix_sign_in_failures_at ON sign_in_failures (at);
            """),
        (5, "access-facts", d => $"""
            CREATE TABLE access_facts (
                rid BIGINT NOT NULL PRIMARY KEY, department TEXT, encounter TEXT, patient TEXT,
                labels TEXT NOT NULL, status TEXT, restricted SMALLINT NOT NULL, research_consent SMALLINT NOT NULL,
                staff_user TEXT);
            CREATE INDEX ix_access_facts_patient ON access_facts (patient, department);
            CREATE INDEX ix_access_facts_department ON access_facts (department);
            CREATE TABLE care_relations (
                rid BIGINT NOT NULL, practitioner TEXT NOT NULL, patient TEXT NOT NULL, until_at BIGINT,
                PRIMARY KEY (rid, practitioner, patient));
            CREATE INDEX ix_care_relations_practitioner ON care_relations (practitioner, patient);
            CREATE TABLE break_glass (
                id TEXT NOT NULL PRIMARY KEY, user_name TEXT NOT NULL, patient TEXT NOT NULL, purpose TEXT NOT NULL,
                reason {d.BlobType} NOT NULL, reason_key {d.BlobType} NOT NULL, declared_at BIGINT NOT NULL, expires_at BIGINT NOT NULL,
                reviewed_at BIGINT, reviewer TEXT, review_outcome TEXT, review_note {d.BlobType});
            CREATE INDEX ix_break_glass_user ON break_glass (user_name, expires_at);
            CREATE INDEX ix_break_glass_open ON break_glass (reviewed_at, declared_at);
            ALTER TABLE access_log ADD COLUMN purpose TEXT;
            """),
        // OAuth (Modules/Access/OAuth): the token keys, sealed under the keyring (wrapped_key wraps the data
        // key that seals the key material); registered clients, with a password hash of the secret; and
        // the ids of redeemed authorization codes, so a code works once on every server sharing the store.
        (6, "oauth", d => $"""
            CREATE TABLE oauth_keys (
                purpose TEXT NOT NULL PRIMARY KEY, key_id TEXT NOT NULL,
                wrapped_key {d.BlobType} NOT NULL, sealed {d.BlobType} NOT NULL, created BIGINT NOT NULL);
            CREATE TABLE oauth_clients (
                client_id TEXT NOT NULL PRIMARY KEY, display TEXT NOT NULL, secret_hash TEXT,
                grant_types TEXT NOT NULL, redirect_uris TEXT NOT NULL, scopes TEXT NOT NULL, account TEXT,
                created BIGINT NOT NULL);
            CREATE TABLE oauth_redeemed_codes (
                code_id TEXT NOT NULL PRIMARY KEY, client_id TEXT NOT NULL, redeemed BIGINT NOT NULL, expires BIGINT NOT NULL);
            CREATE INDEX ix_oauth_redeemed_codes_expires ON oauth_redeemed_codes (expires);
            """),
        // The audit ledger (Modules/Ledger, docs/formats/ledger-entry.md): one row per entry, holding the
        // canonical bytes that are hashed and, beside them, the same facts as columns to search by (the
        // verifier checks that they agree); the hashes of complete subtrees at every fourth level, so a
        // proof reads a few dozen rows; the tree's size and root, whose row lock sequences appends from
        // every server; the signed heads; and the head-signing key, sealed under the keyring.
        // The interim access log and security events (steps 2, 3) are kept, renamed, and the names now
        // read the ledger.
        (7, "ledger", d => $"""
            CREATE TABLE ledger_entries (
                idx BIGINT NOT NULL PRIMARY KEY, at BIGINT NOT NULL, type TEXT NOT NULL, event TEXT,
                user_name TEXT, client TEXT, actor TEXT, patient TEXT, resource TEXT, res_type TEXT, res_id TEXT,
                version INTEGER, action TEXT, purpose TEXT, permitted SMALLINT, rule TEXT, status INTEGER,
                outcome TEXT, detail TEXT, correlation TEXT, source TEXT,
                entry {d.BlobType} NOT NULL, leaf {d.BlobType} NOT NULL);
            CREATE INDEX ix_ledger_at ON ledger_entries (at);
            CREATE INDEX ix_ledger_patient ON ledger_entries (patient, at) WHERE patient IS NOT NULL;
            CREATE INDEX ix_ledger_user ON ledger_entries (user_name, at) WHERE user_name IS NOT NULL;
            CREATE INDEX ix_ledger_writes ON ledger_entries (res_type, res_id, version) WHERE type = 'write';
            CREATE TABLE ledger_nodes (
                level SMALLINT NOT NULL, idx BIGINT NOT NULL, hash {d.BlobType} NOT NULL,
                PRIMARY KEY (level, idx)){d.ClusteredTableSuffix};
            CREATE TABLE ledger_state (
                id SMALLINT NOT NULL PRIMARY KEY, size BIGINT NOT NULL, root {d.BlobType} NOT NULL);
            INSERT INTO ledger_state (id, size, root) VALUES (1, 0, {d.HexBlob("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")});
            CREATE TABLE ledger_heads (
                size BIGINT NOT NULL PRIMARY KEY, root {d.BlobType} NOT NULL, at BIGINT NOT NULL,
                key_id TEXT NOT NULL, signature {d.BlobType} NOT NULL);
            CREATE TABLE ledger_keys (
                key_id TEXT NOT NULL PRIMARY KEY, public_key {d.BlobType} NOT NULL,
                wrapped_key {d.BlobType} NOT NULL, sealed {d.BlobType} NOT NULL, created BIGINT NOT NULL);
            CREATE TABLE ledger_export_cursors (
                name TEXT NOT NULL PRIMARY KEY, acknowledged BIGINT NOT NULL, updated BIGINT NOT NULL);
            ALTER TABLE access_log RENAME TO interim_access_log;
            ALTER TABLE security_events RENAME TO interim_security_events;
            CREATE VIEW access_log AS
                SELECT idx AS seq, at, user_name, action, res_type, res_id, event AS phase, permitted, rule, status,
                       resource AS resource_ref, correlation, source, purpose, patient, client
                FROM ledger_entries WHERE type = 'access';
            CREATE VIEW security_events AS
                SELECT idx AS seq, at, event AS kind, user_name, actor, outcome, detail, correlation, source
                FROM ledger_entries WHERE type = 'security';
            """),
        // Backup (Modules/Backup, docs/formats/backup.md): this server's record of its backup runs (the target's
        // manifests are the backups themselves; these rows say what was tried, when, and why it failed), the segments
        // each run stored (so a run that failed half-way is resumed, not redone), and the restore drills, which are
        // evidence for the security programme.
        (8, "backup", d => $"""
            CREATE TABLE backup_runs (
                id TEXT NOT NULL PRIMARY KEY, target TEXT NOT NULL, kind TEXT NOT NULL, trigger_by TEXT NOT NULL,
                started BIGINT NOT NULL, finished BIGINT, status TEXT NOT NULL, ledger_from BIGINT, ledger_size BIGINT,
                objects INTEGER NOT NULL, stored_bytes BIGINT NOT NULL, reused INTEGER NOT NULL, manifest TEXT, error TEXT,
                immutability TEXT);
            CREATE INDEX ix_backup_runs_target ON backup_runs (target, started);
            CREATE TABLE backup_segments (
                run_id TEXT NOT NULL, name TEXT NOT NULL, sha256 TEXT NOT NULL, bytes BIGINT NOT NULL, kind TEXT NOT NULL,
                from_idx BIGINT NOT NULL, to_idx BIGINT NOT NULL, row_count BIGINT NOT NULL, fingerprint TEXT NOT NULL,
                PRIMARY KEY (run_id, name));
            CREATE TABLE backup_drills (
                id TEXT NOT NULL PRIMARY KEY, at BIGINT NOT NULL, target TEXT NOT NULL, trigger_by TEXT NOT NULL, manifest TEXT, status TEXT NOT NULL,
                restore_ms BIGINT, verify_ms BIGINT, rto_ms BIGINT, rpo_ms BIGINT, ledger_size BIGINT, versions BIGINT,
                problems TEXT);
            """),
        // Monitoring (Modules/Monitoring, docs/operations/monitoring.md): alerts raised by the detections over
        // the ledger, each a case that groups one user's findings (its entries, one row per ledger index and
        // detection, so a replay never raises the same finding twice); the case's history (status changes,
        // assignments, comments sealed like break-glass notes, notifications); the notification outbox, kept
        // until delivered so an SMTP server or SIEM that is down loses nothing; and the streaming cursor.
        (9, "monitoring", d => $"""
            CREATE TABLE monitor_alerts (
                id {d.AutoIdColumn}, detection TEXT NOT NULL, severity SMALLINT NOT NULL, user_name TEXT NOT NULL,
                group_key TEXT, status TEXT NOT NULL, assignee TEXT, first_at BIGINT NOT NULL, last_at BIGINT NOT NULL,
                patients INTEGER NOT NULL, entries INTEGER NOT NULL, evidence TEXT NOT NULL, repeat_offender SMALLINT NOT NULL,
                config TEXT NOT NULL, source TEXT NOT NULL, created BIGINT NOT NULL, updated BIGINT NOT NULL, revision INTEGER NOT NULL);
            CREATE INDEX ix_monitor_alerts_status ON monitor_alerts (status, last_at);
            CREATE INDEX ix_monitor_alerts_user ON monitor_alerts (user_name, detection, last_at);
            CREATE TABLE monitor_alert_entries (
                alert_id BIGINT NOT NULL, detection TEXT NOT NULL, idx BIGINT NOT NULL, patient TEXT, at BIGINT NOT NULL,
                evidence TEXT NOT NULL, PRIMARY KEY (detection, idx));
            CREATE INDEX ix_monitor_alert_entries_alert ON monitor_alert_entries (alert_id, idx);
            CREATE INDEX ix_monitor_alert_entries_patient ON monitor_alert_entries (patient, at) WHERE patient IS NOT NULL;
            CREATE TABLE monitor_alert_events (
                seq {d.AutoIdColumn}, alert_id BIGINT NOT NULL, at BIGINT NOT NULL, actor TEXT NOT NULL, kind TEXT NOT NULL,
                from_status TEXT, to_status TEXT, assignee TEXT, note {d.BlobType}, note_key {d.BlobType});
            CREATE INDEX ix_monitor_alert_events_alert ON monitor_alert_events (alert_id, seq);
            CREATE TABLE monitor_notifications (
                id {d.AutoIdColumn}, alert_id BIGINT NOT NULL, channel TEXT NOT NULL, target TEXT NOT NULL, status TEXT NOT NULL,
                attempts INTEGER NOT NULL, next_at BIGINT NOT NULL, last_error TEXT, created BIGINT NOT NULL, sent_at BIGINT);
            CREATE INDEX ix_monitor_notifications_due ON monitor_notifications (status, next_at);
            CREATE INDEX ix_monitor_notifications_alert ON monitor_notifications (alert_id);
            CREATE TABLE monitor_state (
                name TEXT NOT NULL PRIMARY KEY, cursor BIGINT NOT NULL, config TEXT, updated BIGINT NOT NULL);
            """),
        // A relation says what links the practitioner to the patient (the explanation names of monitoring: encounter,
        // care-team, episode; from now on also appointment, consult-order and referral, which explain an access to
        // monitoring but grant none) and since when (unix s). Existing rows take their resource's kind and start.
        (10, "care-relation-kinds", _ => """
            ALTER TABLE care_relations ADD COLUMN kind TEXT;
            ALTER TABLE care_relations ADD COLUMN from_at BIGINT;
            UPDATE care_relations SET
                kind = (SELECT CASE r.res_type WHEN 'Encounter' THEN 'encounter' WHEN 'CareTeam' THEN 'care-team' WHEN 'EpisodeOfCare' THEN 'episode' END
                        FROM resources r WHERE r.rid = care_relations.rid),
                from_at = (SELECT MIN(d.lo) / 1000 FROM search_date d JOIN search_params p ON p.pid = d.pid
                           WHERE d.rid = care_relations.rid AND p.param = 'date' AND d.lo > 0);
            """),
        // A search parameter added to a type whose resources were stored before it is pending until they are
        // re-indexed (RecordService.ReindexPendingAsync, at start-up): a search on it would otherwise miss them.
        (11, "search-param-pending", _ => "ALTER TABLE search_params ADD COLUMN pending SMALLINT NOT NULL DEFAULT 0;"),
        // The console's ASP.NET Core Data Protection key ring (Modules/Console/ConsoleKeyRepository.cs): the keys of its
        // session cookies and anti-forgery tokens, shared by every server on the store. One row per element Data
        // Protection writes (a key, or a revocation), its XML as written: a key's secret is sealed under the keyring
        // (Modules/Console/KeyringXmlEncryptor.cs), so the row holds its dates and algorithms and no key material.
        (12, "dataprotection-keys", _ => """
            CREATE TABLE dataprotection_keys (
                name TEXT NOT NULL PRIMARY KEY, xml TEXT NOT NULL, created BIGINT NOT NULL);
            """),
        // Console sessions signed in before this instant (Unix ms) are over: set by sign-out, a password change, an MFA
        // reset and disabling, so a copied session cookie dies with them on every server (Console/ConsoleAuth.cs).
        (13, "account-sessions-after", _ => "ALTER TABLE accounts ADD COLUMN sessions_after BIGINT;"),
        // Bearer tokens issued before this instant (Unix ms) are refused: set by a password change, an MFA reset and
        // disabling (Access/AccessTokens.cs); an account changed so before this step starts from its sessions_after (the same
        // events and sign-out), so a disabled account enabled later revives no token of before. And an authorization code
        // redeemed twice is marked, so the token issued from it the first time is refused too (RFC 6749 4.1.2: a replay
        // means the code leaked).
        (14, "token-revocation", _ => """
            ALTER TABLE accounts ADD COLUMN tokens_after BIGINT;
            ALTER TABLE oauth_redeemed_codes ADD COLUMN replayed BIGINT;
            UPDATE accounts SET tokens_after = sessions_after WHERE sessions_after IS NOT NULL;
            """),
        // The external OpenID provider's user ("issuer|subject") bound to a local account at its first sign-in through the
        // provider (Access/OAuth/ExternalOidc.cs): a provider user who merely carries the account's name is refused.
        (15, "account-external-subject", _ => "ALTER TABLE accounts ADD COLUMN external_subject TEXT;"),
        // Monitor blocks (Monitoring/MonitorBlocks.cs, docs/formats/monitor-block.md): the ledger's entries as the detections
        // see them, 4,096 to a block, packed for replays and warm-ups; derived, tagged under the keyring and bound to the
        // ledger's subtree hash of their range, so a block that does not verify is passed over and its rows read instead.
        (16, "monitor-blocks", d => $"""
            CREATE TABLE monitor_blocks (
                block BIGINT NOT NULL PRIMARY KEY, data {d.BlobType} NOT NULL, tag {d.BlobType} NOT NULL, built BIGINT NOT NULL);
            """),
        // Whether each backup target's backups are overdue, as last announced (Backup/BackupService.cs): shared by the
        // servers of one database, so that the first to see the change records and mails it and the others do not.
        (17, "backup-watch", _ => """
            CREATE TABLE backup_watch (
                target TEXT NOT NULL PRIMARY KEY, overdue SMALLINT NOT NULL);
            """),
    ];

    public static int Latest => Steps.Max(s => s.Version);

    /// <summary>Versions are history: the database itself refuses to change or remove one.</summary>
    private static string Immutability(SqlDialect d) => d.Name == "sqlite"
        ? """

            CREATE TRIGGER resource_versions_no_update BEFORE UPDATE ON resource_versions
            BEGIN SELECT RAISE(ABORT, 'resource versions are immutable'); END;
            CREATE TRIGGER resource_versions_no_delete BEFORE DELETE ON resource_versions
            BEGIN SELECT RAISE(ABORT, 'resource versions are immutable'); END;
            """
        : """

            CREATE FUNCTION wardline_versions_immutable() RETURNS trigger LANGUAGE plpgsql AS
            $$ BEGIN RAISE EXCEPTION 'resource versions are immutable'; END $$;
            CREATE TRIGGER resource_versions_no_change BEFORE UPDATE OR DELETE ON resource_versions
            FOR EACH STATEMENT EXECUTE FUNCTION wardline_versions_immutable();
            """;

    /// <summary>Applies every step not applied yet.</summary>
    public static Task<int> ApplyAsync(SqlDialect dialect, CancellationToken ct) => ApplyAsync(dialect, int.MaxValue, ct);

    /// <summary>Applies every step not applied yet, up to <paramref name="upTo"/> (a restore builds the schema of the backup's version first, then loads, then upgrades).</summary>
    public static async Task<int> ApplyAsync(SqlDialect dialect, int upTo, CancellationToken ct)
    {
        await using var c = await dialect.OpenAsync(ct);
        await using var tx = await dialect.BeginWriteTransactionAsync(c, ct);
        await dialect.LockForMigrationAsync(c, tx, ct);
        await ExecAsync(c, tx, "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER NOT NULL PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)", ct);

        var applied = new HashSet<int>();
        await using (var cmd = c.CreateCommand())
        {
            cmd.Transaction = tx;
            cmd.CommandText = "SELECT version FROM schema_migrations";
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
            {
                applied.Add(r.GetInt32(0));
            }
        }

        if (applied.Count > 0 && applied.Max() > Latest)
        {
            throw new InvalidOperationException(
                $"The database schema is at version {applied.Max()}, newer than this Wardline ({Latest}). Upgrade Wardline before starting it on this store.");
        }

        var count = 0;
        foreach (var (version, name, sql) in Steps.OrderBy(s => s.Version))
        {
            if (applied.Contains(version) || version > upTo)
            {
                continue;
            }
            await ExecAsync(c, tx, sql(dialect), ct);
            await using var ins = c.CreateCommand();
            ins.Transaction = tx;
            ins.CommandText = "INSERT INTO schema_migrations (version, name, applied_at) VALUES (@v, @n, @t)";
            AddParam(ins, "@v", version);
            AddParam(ins, "@n", name);
            AddParam(ins, "@t", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
            await ins.ExecuteNonQueryAsync(ct);
            count++;
        }
        await tx.CommitAsync(ct);
        return count;
    }

    private static async Task ExecAsync(DbConnection c, DbTransaction tx, string sql, CancellationToken ct)
    {
        await using var cmd = c.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = sql;
        await cmd.ExecuteNonQueryAsync(ct);
    }

    internal static void AddParam(DbCommand cmd, string name, object? value)
    {
        var p = cmd.CreateParameter();
        p.ParameterName = name;
        p.Value = value ?? DBNull.Value;
        cmd.Parameters.Add(p);
    }
}
