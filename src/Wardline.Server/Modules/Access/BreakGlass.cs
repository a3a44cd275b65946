using System.Text;
using Wardline.Server.Modules.Records;
using Wardline.Server.Modules.Records.Search;
using Wardline.Server.Modules.Records.Storage;
using Wardline.Server.Pipeline;

namespace Wardline.Server.Modules.Access;

/// <summary>One break-glass declaration as the review queue shows it. The reason is decrypted only for reviewers.</summary>
internal sealed record BreakGlassDeclaration(
    string Id, string User, string Patient, string Purpose, string Reason, DateTimeOffset DeclaredAt, DateTimeOffset ExpiresAt,
    DateTimeOffset? ReviewedAt, string? Reviewer, string? Outcome, string? Note);

internal enum BreakGlassOutcome { Declared, NotApproved, NoSuchPatient, BadReason, TooManyGrants }

/// <summary>How closing a review went: closed, no such open declaration, or refused because the reviewer declared it.</summary>
internal enum BreakGlassReviewOutcome { Closed, NotOpen, OwnDeclaration }

/// <summary>
/// Emergency access (HIPAA 164.312(a)(2)(ii), ONC 170.315(d)(6)). A pre-approved user, having just
/// re-entered MFA, declares an emergency for one patient with a purpose (ETREAT) and a reason; the
/// grant lasts <see cref="AccessOptions.BreakGlassHours"/>. The policy's break-glass condition holds
/// only while the grant is unexpired and the request declares purpose ETREAT, so every access made
/// under it is marked by that purpose and by the rule that permitted it. The declaration is a
/// security event at once, and waits in the review queue until a reviewer other than the declarer
/// closes it. A grant stops counting before its time when its review closes it as
/// <see cref="NotJustified"/>, and when its account is no longer approved for break-glass, disabled
/// or expired (<see cref="ActiveGrantsAsync"/>). A user holds grants for at most
/// <see cref="MaxActiveGrants"/> patients at once. Reasons are free text that may name a diagnosis,
/// so they are encrypted like records.
/// </summary>
internal sealed class BreakGlass(
    SqlDialect dialect, GroupCommitter committer, RecordKeys keys, RecordStore store, IAccessRecorder recorder, BreakGlassNotifier notifier, AccessOptions options, TimeProvider time)
{
    public const int MaxReasonLength = 2000;

    /// <summary>The most patients one user may hold active grants for at once; a declaration for one more is refused.</summary>
    public const int MaxActiveGrants = 3;

    /// <summary>The review outcome that ends a grant at once.</summary>
    public const string NotJustified = "not-justified";

    public const string NotOpenProblem = "That declaration is not open (it may have been closed already).";

    public const string OwnDeclarationProblem = "You declared this emergency access yourself: another reviewer must close its review.";

    public static readonly string TooManyGrantsProblem =
        $"You already hold emergency access to {MaxActiveGrants} patients, the most at once: ask a privacy officer to close a review, or wait for a grant to end.";

    /// <summary>
    /// Raised with the user's name when the user's grants change: a grant recorded, or one ended by a
    /// not-justified review (the access subjects of this process drop the user's cached subject).
    /// </summary>
    public event Action<string>? Granted;

    /// <summary>
    /// The rows of break_glass (alias b) that grant access now (@now, Unix seconds; @nowms, Unix ms): unexpired,
    /// not closed as not-justified, of an account still approved for break-glass, enabled and unexpired.
    /// </summary>
    private const string Active =
        "b.expires_at > @now AND (b.review_outcome IS NULL OR b.review_outcome <> '" + NotJustified + "')"
        + " AND EXISTS (SELECT 1 FROM accounts a WHERE a.name = b.user_name AND a.break_glass <> 0 AND a.disabled = 0 AND (a.expires IS NULL OR a.expires > @nowms))";

    /// <summary>The user's grants in force (<see cref="Active"/>): patient id → end of the latest grant (Unix seconds).</summary>
    public async Task<IReadOnlyDictionary<string, long>> ActiveGrantsAsync(string user, CancellationToken ct)
    {
        await using var c = await dialect.OpenAsync(ct);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT b.patient, MAX(b.expires_at) FROM break_glass b WHERE b.user_name = @u AND " + Active + " GROUP BY b.patient";
        AddActive(cmd, user, time.GetUtcNow());
        var grants = new Dictionary<string, long>(StringComparer.Ordinal);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) grants[r.GetString(0)] = r.GetInt64(1);
        return grants;
    }

    private static void AddActive(System.Data.Common.DbCommand cmd, string user, DateTimeOffset now)
    {
        RecordStore.Add(cmd, "@u", user);
        RecordStore.Add(cmd, "@now", now.ToUnixTimeSeconds());
        RecordStore.Add(cmd, "@nowms", now.ToUnixTimeMilliseconds());
    }

    /// <summary>
    /// Records a declaration. The caller has checked the user's MFA code just before; this checks the
    /// rest: the user is pre-approved, the patient exists, the reason is given, and the user does not
    /// already hold active grants for <see cref="MaxActiveGrants"/> other patients (a declaration for a
    /// patient they hold a grant for renews it). Refusals for approval and for the cap are security events.
    /// </summary>
    public async Task<(BreakGlassOutcome Outcome, BreakGlassDeclaration? Declaration)> DeclareAsync(
        string user, bool approved, string patient, string reason, string? source, string? correlation, CancellationToken ct)
    {
        var at = time.GetUtcNow();
        if (!approved)
        {
            await recorder.RecordAsync(new SecurityEvent(at, SecurityEventKind.BreakGlassDeclared, user, user, "refused", "not pre-approved for break-glass", correlation, source), ct);
            return (BreakGlassOutcome.NotApproved, null);
        }
        reason = reason.Trim();
        if (reason.Length is < 10 or > MaxReasonLength) return (BreakGlassOutcome.BadReason, null);
        if (!FhirIds.IsValid(patient) || (await store.ExistingAsync([("Patient", patient)], ct)).Count == 0)
            return (BreakGlassOutcome.NoSuchPatient, null);

        var id = Guid.NewGuid().ToString("N");
        var expires = at.AddHours(options.BreakGlassHours);
        var context = WrapContext(id);
        var created = keys.Cipher.CreateDataKey(context);
        using (created)
        {
            var sealedReason = keys.Cipher.Encrypt(created.DataKey, Encoding.UTF8.GetBytes(reason), context);
            var inserted = await committer.RunAsync((conn, tx, token) => InsertAsync(conn, tx, id, user, patient, sealedReason, created.Wrapped, at, expires, token));
            if (inserted == 0)
            {
                await recorder.RecordAsync(new SecurityEvent(at, SecurityEventKind.BreakGlassDeclared, user, user, "refused",
                    $"already holds active grants for {MaxActiveGrants} patients, the most at once", correlation, source), ct);
                return (BreakGlassOutcome.TooManyGrants, null);
            }
        }
        Granted?.Invoke(user);
        await recorder.RecordAsync(new SecurityEvent(at, SecurityEventKind.BreakGlassDeclared, user, user, "granted",
            $"declaration {id} patient Patient/{patient} purpose ETREAT until {expires:O}", correlation, source), ct);
        var declaration = new BreakGlassDeclaration(id, user, patient, "ETREAT", reason, at, expires, null, null, null, null);
        await notifier.NotifyAsync(declaration, ct);
        return (BreakGlassOutcome.Declared, declaration);
    }

    /// <summary>
    /// Inserts the declaration unless the user already holds active grants for <see cref="MaxActiveGrants"/> other
    /// patients (0). Counted in the committer's transaction, so concurrent declarations in this process cannot pass it together.
    /// </summary>
    private async Task<int> InsertAsync(System.Data.Common.DbConnection c, System.Data.Common.DbTransaction tx, string id, string user, string patient,
        byte[] reason, byte[] reasonKey, DateTimeOffset at, DateTimeOffset expires, CancellationToken ct)
    {
        await using (var count = c.CreateCommand())
        {
            count.Transaction = tx;
            count.CommandText = "SELECT COUNT(DISTINCT b.patient) FROM break_glass b WHERE b.user_name = @u AND b.patient <> @p AND " + Active;
            AddActive(count, user, at);
            RecordStore.Add(count, "@p", patient);
            if (Convert.ToInt64(await count.ExecuteScalarAsync(ct), System.Globalization.CultureInfo.InvariantCulture) >= MaxActiveGrants) return 0;
        }
        await dialect.InsertRowsAsync(c, tx, "break_glass (id, user_name, patient, purpose, reason, reason_key, declared_at, expires_at, reviewed_at, reviewer, review_outcome, review_note)", 12, 1, (_, add) =>
        {
            add(id); add(user); add(patient); add("ETREAT"); add(reason); add(reasonKey); add(at.ToUnixTimeSeconds()); add(expires.ToUnixTimeSeconds());
            add(null); add(null); add(null); add(null);
        }, ct);
        return 1;
    }

    /// <summary>
    /// Declarations, newest first: the open ones only, or all. Their reasons are free text that may name a
    /// diagnosis: when a person (<paramref name="viewer"/>) is shown them, each shown declaration is
    /// recorded as an access to its patient before the list is returned.
    /// </summary>
    public async Task<IReadOnlyList<BreakGlassDeclaration>> ListAsync(bool openOnly, int limit, CancellationToken ct, string? viewer = null, string? source = null)
    {
        await using var c = await dialect.OpenAsync(ct);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT id, user_name, patient, purpose, reason, reason_key, declared_at, expires_at, reviewed_at, reviewer, review_outcome, review_note FROM break_glass"
            + (openOnly ? " WHERE reviewed_at IS NULL" : "") + " ORDER BY declared_at DESC LIMIT @lim";
        RecordStore.Add(cmd, "@lim", limit);
        var list = new List<BreakGlassDeclaration>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            var id = r.GetString(0);
            list.Add(new BreakGlassDeclaration(id, r.GetString(1), r.GetString(2), r.GetString(3),
                Open(id, (byte[])r.GetValue(4), (byte[])r.GetValue(5), ""),
                DateTimeOffset.FromUnixTimeSeconds(r.GetInt64(6)), DateTimeOffset.FromUnixTimeSeconds(r.GetInt64(7)),
                r.IsDBNull(8) ? null : DateTimeOffset.FromUnixTimeSeconds(r.GetInt64(8)),
                r.IsDBNull(9) ? null : r.GetString(9), r.IsDBNull(10) ? null : r.GetString(10),
                r.IsDBNull(11) ? null : Open(id, (byte[])r.GetValue(11), (byte[])r.GetValue(5), "/note")));
        }
        if (viewer is not null && list.Count > 0)
        {
            var at = time.GetUtcNow();
            var correlation = Guid.NewGuid().ToString("N");
            await recorder.RecordAsync([.. list.Select(d => new AccessRecord(at, viewer, new FhirInteraction(FhirAction.Read, "Patient", d.Patient), "review",
                new AccessDecision(true, "break-glass-review", $"break-glass declaration {d.Id} shown for review"), null, $"Patient/{d.Patient}", correlation, source))], ct);
        }
        return list;
    }

    /// <summary>
    /// Closes a declaration's review. Refused (nothing written) if there is no such open declaration, or if
    /// <paramref name="reviewer"/> made it: nobody reviews their own emergency access. Closing it as
    /// <see cref="NotJustified"/> ends the grant at once (in this process; other servers within their subject cache time).
    /// </summary>
    public async Task<(BreakGlassReviewOutcome Outcome, string? Problem)> ReviewAsync(
        string id, string reviewer, string outcome, string note, string? source, string? correlation, CancellationToken ct)
    {
        var at = time.GetUtcNow();
        byte[]? wrapped = null;
        string? declarer = null;
        await using (var c = await dialect.OpenAsync(ct))
        await using (var cmd = c.CreateCommand())
        {
            cmd.CommandText = "SELECT reason_key, user_name FROM break_glass WHERE id = @id AND reviewed_at IS NULL";
            RecordStore.Add(cmd, "@id", id);
            await using var r = await cmd.ExecuteReaderAsync(ct);
            if (await r.ReadAsync(ct))
            {
                wrapped = (byte[])r.GetValue(0);
                declarer = r.GetString(1);
            }
        }
        if (wrapped is null || declarer is null) return (BreakGlassReviewOutcome.NotOpen, NotOpenProblem);
        if (string.Equals(declarer, reviewer, StringComparison.Ordinal)) return (BreakGlassReviewOutcome.OwnDeclaration, OwnDeclarationProblem);
        var context = WrapContext(id);
        byte[] sealedNote;
        using (var key = keys.Cipher.UnwrapDataKey(wrapped, context))
        {
            sealedNote = keys.Cipher.Encrypt(key, Encoding.UTF8.GetBytes(note), Encoding.UTF8.GetBytes("break-glass/" + id + "/note"));
        }
        var updated = await committer.RunAsync(async (c, tx, token) =>
        {
            await using var cmd = c.CreateCommand();
            cmd.Transaction = tx;
            // Never the declarer's own review, also here in the write: a second guard on the check above.
            cmd.CommandText = "UPDATE break_glass SET reviewed_at = @at, reviewer = @r, review_outcome = @o, review_note = @n WHERE id = @id AND reviewed_at IS NULL AND user_name <> @r";
            RecordStore.Add(cmd, "@at", at.ToUnixTimeSeconds());
            RecordStore.Add(cmd, "@r", reviewer);
            RecordStore.Add(cmd, "@o", outcome);
            RecordStore.Add(cmd, "@n", sealedNote);
            RecordStore.Add(cmd, "@id", id);
            return await cmd.ExecuteNonQueryAsync(token);
        });
        if (updated != 1) return (BreakGlassReviewOutcome.NotOpen, NotOpenProblem);
        if (outcome == NotJustified) Granted?.Invoke(declarer);
        await recorder.RecordAsync(new SecurityEvent(at, SecurityEventKind.BreakGlassReviewed, null, reviewer, outcome, $"declaration {id}", correlation, source), ct);
        return (BreakGlassReviewOutcome.Closed, null);
    }

    /// <summary>Decrypts a reason (<paramref name="part"/> "") or a review note ("/note") of declaration <paramref name="id"/>.</summary>
    private string Open(string id, byte[] sealedText, byte[] wrapped, string part)
    {
        using var key = keys.Cipher.UnwrapDataKey(wrapped, WrapContext(id));
        return Encoding.UTF8.GetString(keys.Cipher.Decrypt(key, sealedText, Encoding.UTF8.GetBytes("break-glass/" + id + part)));
    }

    /// <summary>What declaration <paramref name="id"/>'s data key is wrapped under (also for <c>keys rotate</c>, which re-wraps it).</summary>
    internal static byte[] WrapContext(string id) => Encoding.UTF8.GetBytes("break-glass/" + id);
}
