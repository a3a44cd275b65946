using System.Data.Common;
using System.Globalization;
using Microsoft.Extensions.Caching.Memory;
using Wardline.Server.Modules.Records.Storage;

namespace Wardline.Server.Modules.Access.Identity;

/// <summary>An account with what only sign-in may see. <see cref="Revision"/> guards read-modify-write updates.</summary>
internal sealed record Credentials(
    Account Account,
    string? PasswordHash,
    byte[]? MfaKey,
    byte[]? MfaSecret,
    long? MfaLastStep,
    long? SecondStepUntil,
    int Revision);

/// <summary>Failed attempts in the current window: for the whole account, and from one source (with the latest).</summary>
internal readonly record struct FailureCounts(int Account, int Source, DateTimeOffset? LastFromSource);

/// <summary>
/// The <c>accounts</c> and <c>sign_in_failures</c> tables (schema step 4), on either engine. Reads use
/// pooled connections; every write goes through the store's group committer (one writer, fsync'd).
/// <see cref="FindAsync"/> is cached briefly: a change made in this process is seen at once, one made
/// by another server sharing the database within <see cref="CacheFor"/>.
/// </summary>
internal sealed class AccountStore(SqlDialect dialect, GroupCommitter committer, IMemoryCache cache)
{
    public static readonly TimeSpan CacheFor = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Raised with the account name after any change to an account made in this process, for caches
    /// built on accounts (the policy's subjects) to drop their entry too.
    /// </summary>
    public event Action<string>? Changed;

    private const string AccountColumns =
        "name, display, roles, tier, departments, treats, practitioner_id, break_glass, disabled, expires, shift_start, shift_end, mfa_enrolled, sessions_after, tokens_after, external_subject";

    /// <summary>The account named exactly <paramref name="name"/> (disabled and expired ones too), or null.</summary>
    public async Task<Account?> FindAsync(string name, CancellationToken ct)
    {
        var key = CacheKey(name);
        if (cache.TryGetValue(key, out Account? hit)) return hit;
        var found = (await ReadCredentialsAsync(name, ct))?.Account;
        cache.Set(key, found, CacheFor);
        return found;
    }

    public async Task<IReadOnlyList<Account>> ListAsync(CancellationToken ct)
    {
        await using var c = await dialect.OpenAsync(ct);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = $"SELECT {AccountColumns} FROM accounts ORDER BY name";
        await using var r = await cmd.ExecuteReaderAsync(ct);
        var list = new List<Account>();
        while (await r.ReadAsync(ct)) list.Add(ReadAccount(r));
        return list;
    }

    /// <summary>Uncached: sign-in and updates must see the committed state.</summary>
    public async Task<Credentials?> ReadCredentialsAsync(string name, CancellationToken ct)
    {
        await using var c = await dialect.OpenAsync(ct);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = $"SELECT {AccountColumns}, password_hash, mfa_key, mfa_secret, mfa_last_step, second_step_until, revision FROM accounts WHERE name = @n";
        RecordStore.Add(cmd, "@n", name);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        if (!await r.ReadAsync(ct)) return null;
        return new Credentials(ReadAccount(r), NullableString(r, 16), NullableBytes(r, 17), NullableBytes(r, 18), NullableLong(r, 19), NullableLong(r, 20), r.GetInt32(21));
    }

    /// <summary>False if the name is taken.</summary>
    public async Task<bool> InsertAsync(Account a, string? passwordHash, DateTimeOffset now, CancellationToken ct)
    {
        var rows = await WriteAsync(
            "INSERT INTO accounts (name, display, password_hash, roles, tier, departments, treats, practitioner_id, break_glass, disabled, expires, " +
            "shift_start, shift_end, mfa_enrolled, revision, created, updated) " +
            "VALUES (@n, @d, @h, @r, @t, @dep, @tr, @p, @bg, @dis, @e, @ss, @se, 0, 1, @now, @now) ON CONFLICT (name) DO NOTHING",
            cmd =>
            {
                BindFields(cmd, a);
                RecordStore.Add(cmd, "@n", a.Name);
                RecordStore.Add(cmd, "@h", passwordHash);
                RecordStore.Add(cmd, "@dis", a.Disabled ? 1 : 0);
                RecordStore.Add(cmd, "@now", now.ToUnixTimeMilliseconds());
            });
        Invalidate(a.Name);
        return rows == 1;
    }

    /// <summary>Writes the administered fields if the account is still at <paramref name="revision"/>; false otherwise.</summary>
    public async Task<bool> UpdateFieldsAsync(Account a, int revision, DateTimeOffset now, CancellationToken ct)
    {
        var rows = await WriteAsync(
            "UPDATE accounts SET display = @d, roles = @r, tier = @t, departments = @dep, treats = @tr, practitioner_id = @p, break_glass = @bg, " +
            "expires = @e, shift_start = @ss, shift_end = @se, revision = revision + 1, updated = @now WHERE name = @n AND revision = @rev",
            cmd =>
            {
                BindFields(cmd, a);
                RecordStore.Add(cmd, "@n", a.Name);
                RecordStore.Add(cmd, "@rev", revision);
                RecordStore.Add(cmd, "@now", now.ToUnixTimeMilliseconds());
            });
        Invalidate(a.Name);
        return rows == 1;
    }

    /// <summary>
    /// Disables or enables the account; disabling also ends its console sessions and its bearer tokens issued before now,
    /// so enabling it again revives none.
    /// </summary>
    public Task<bool> SetDisabledAsync(string name, bool disabled, DateTimeOffset now, CancellationToken ct) =>
        UpdateOneAsync(name, "disabled = @v, revision = revision + 1, updated = @now" + (disabled ? ", sessions_after = @now, tokens_after = @now" : ""), disabled ? 1 : 0, now);

    /// <summary>
    /// Sets a new password: ends the account's console sessions and its bearer tokens issued before now (a password is
    /// changed because it may be known to someone else, who may also hold a token from it).
    /// </summary>
    public Task<bool> SetPasswordHashAsync(string name, string hash, DateTimeOffset now, CancellationToken ct) =>
        UpdateOneAsync(name, "password_hash = @v, updated = @now, sessions_after = @now, tokens_after = @now", hash, now);

    /// <summary>
    /// Stores the same password's hash in a newer form (at sign-in): no session or token ends. Only over the hash it was checked
    /// against (<paramref name="old"/>): a password set meanwhile is never overwritten by the old one's new hash.
    /// </summary>
    public async Task<bool> RehashPasswordAsync(string name, string old, string hash, DateTimeOffset now)
    {
        var rows = await WriteAsync("UPDATE accounts SET password_hash = @v, updated = @now WHERE name = @n AND password_hash = @old", cmd =>
        {
            RecordStore.Add(cmd, "@n", name);
            RecordStore.Add(cmd, "@v", hash);
            RecordStore.Add(cmd, "@old", old);
            RecordStore.Add(cmd, "@now", now.ToUnixTimeMilliseconds());
        });
        Invalidate(name);
        return rows == 1;
    }

    /// <summary>Forgets the second factor (the next sign-in enrols again) and ends the account's console sessions and bearer tokens issued before now.</summary>
    public Task<bool> ResetMfaAsync(string name, DateTimeOffset now, CancellationToken ct) =>
        UpdateOneAsync(name, "mfa_key = NULL, mfa_secret = NULL, mfa_enrolled = 0, mfa_last_step = NULL, second_step_until = NULL, updated = @now, sessions_after = @now, tokens_after = @now", null, now);

    /// <summary>
    /// Ends every console session of the account signed in before <paramref name="now"/>, on every server (within <see cref="CacheFor"/>
    /// elsewhere): signing out. The bearer tokens apps hold stay valid, as after signing out of any OpenID provider.
    /// </summary>
    public Task<bool> EndSessionsAsync(string name, DateTimeOffset now, CancellationToken ct) =>
        UpdateOneAsync(name, "sessions_after = @now", null, now);

    /// <summary>
    /// Binds the account to the external provider's user (<c>issuer|subject</c>) that first signed in as it; false if it is
    /// bound already (to that user or another) or gone. Not a change an administrator makes: no revision.
    /// </summary>
    public async Task<bool> BindExternalAsync(string name, string subject)
    {
        var rows = await WriteAsync("UPDATE accounts SET external_subject = @s WHERE name = @n AND external_subject IS NULL", cmd =>
        {
            RecordStore.Add(cmd, "@n", name);
            RecordStore.Add(cmd, "@s", subject);
        });
        Invalidate(name);
        return rows == 1;
    }

    /// <summary>Forgets the account's external provider user (its next sign-in through the provider binds anew).</summary>
    public Task<bool> UnbindExternalAsync(string name, DateTimeOffset now, CancellationToken ct) =>
        UpdateOneAsync(name, "external_subject = NULL, updated = @now", null, now);

    /// <summary>Opens (a time) or closes (null) the window in which the second step may follow a correct password.</summary>
    public async Task SetSecondStepUntilAsync(string name, DateTimeOffset? until, CancellationToken ct) =>
        await WriteAsync("UPDATE accounts SET second_step_until = @u WHERE name = @n", cmd =>
        {
            RecordStore.Add(cmd, "@n", name);
            RecordStore.Add(cmd, "@u", until?.ToUnixTimeMilliseconds());
        });

    /// <summary>Stores a new, not yet confirmed secret; refused (false) once the account is enrolled.</summary>
    public async Task<bool> StorePendingSecretAsync(string name, byte[] wrappedKey, byte[] sealedSecret, CancellationToken ct) =>
        await WriteAsync("UPDATE accounts SET mfa_key = @k, mfa_secret = @s, mfa_last_step = NULL WHERE name = @n AND mfa_enrolled = 0", cmd =>
        {
            RecordStore.Add(cmd, "@n", name);
            RecordStore.Add(cmd, "@k", wrappedKey);
            RecordStore.Add(cmd, "@s", sealedSecret);
        }) == 1;

    /// <summary>
    /// Marks <paramref name="step"/> used, atomically: true only if no code of this or a later step was
    /// used before (on any server sharing the database). Enrols the account if <paramref name="enrol"/>.
    /// Closes the second-step window.
    /// </summary>
    public async Task<bool> UseStepAsync(string name, long step, bool enrol, DateTimeOffset now, CancellationToken ct)
    {
        var rows = await WriteAsync(
            "UPDATE accounts SET mfa_last_step = @s, mfa_enrolled = 1, second_step_until = NULL, updated = @now " +
            "WHERE name = @n AND mfa_secret IS NOT NULL AND mfa_enrolled = @e AND (mfa_last_step IS NULL OR mfa_last_step < @s)",
            cmd =>
            {
                RecordStore.Add(cmd, "@n", name);
                RecordStore.Add(cmd, "@s", step);
                RecordStore.Add(cmd, "@e", enrol ? 0 : 1);
                RecordStore.Add(cmd, "@now", now.ToUnixTimeMilliseconds());
            });
        Invalidate(name);
        return rows == 1;
    }

    public async Task<FailureCounts> CountFailuresAsync(string name, string source, DateTimeOffset since, CancellationToken ct)
    {
        await using var c = await dialect.OpenAsync(ct);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT COUNT(*), SUM(CASE WHEN source = @s THEN 1 ELSE 0 END), MAX(CASE WHEN source = @s THEN at END) " +
            "FROM sign_in_failures WHERE name = @n AND at > @since";
        RecordStore.Add(cmd, "@n", name);
        RecordStore.Add(cmd, "@s", source);
        RecordStore.Add(cmd, "@since", since.ToUnixTimeMilliseconds());
        await using var r = await cmd.ExecuteReaderAsync(ct);
        await r.ReadAsync(ct);
        var last = NullableLong(r, 2);
        return new FailureCounts(
            Convert.ToInt32(r.GetValue(0), CultureInfo.InvariantCulture),
            r.IsDBNull(1) ? 0 : Convert.ToInt32(r.GetValue(1), CultureInfo.InvariantCulture),
            last is { } ms ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : null);
    }

    /// <summary>Records a failed attempt, and drops every failure that has left the window (of any name).</summary>
    public Task AddFailureAsync(string name, string source, string factor, DateTimeOffset at, DateTimeOffset windowStart, CancellationToken ct) =>
        committer.RunAsync(async (c, tx, token) =>
        {
            await dialect.InsertRowsAsync(c, tx, "sign_in_failures (name, source, factor, at)", 4, 1, (_, add) =>
            {
                add(name); add(source); add(factor); add(at.ToUnixTimeMilliseconds());
            }, token);
            await using var prune = c.CreateCommand();
            prune.Transaction = tx;
            prune.CommandText = "DELETE FROM sign_in_failures WHERE at <= @before";
            RecordStore.Add(prune, "@before", windowStart.ToUnixTimeMilliseconds());
            return await prune.ExecuteNonQueryAsync(token);
        });

    /// <summary>Forgets failures of <paramref name="name"/>: from one source, or (null) all of them, which ends a lockout.</summary>
    public Task<int> ClearFailuresAsync(string name, string? source, CancellationToken ct) =>
        WriteAsync("DELETE FROM sign_in_failures WHERE name = @n" + (source is null ? "" : " AND source = @s"), cmd =>
        {
            RecordStore.Add(cmd, "@n", name);
            if (source is not null) RecordStore.Add(cmd, "@s", source);
        });

    private async Task<bool> UpdateOneAsync(string name, string set, object? value, DateTimeOffset now)
    {
        var rows = await WriteAsync($"UPDATE accounts SET {set} WHERE name = @n", cmd =>
        {
            RecordStore.Add(cmd, "@n", name);
            if (value is not null) RecordStore.Add(cmd, "@v", value);
            RecordStore.Add(cmd, "@now", now.ToUnixTimeMilliseconds());
        });
        Invalidate(name);
        return rows == 1;
    }

    /// <summary>One statement as its own unit of the group commit; returns the rows it touched.</summary>
    private Task<int> WriteAsync(string sql, Action<DbCommand> bind) =>
        committer.RunAsync(async (c, tx, token) =>
        {
            await using var cmd = c.CreateCommand();
            cmd.Transaction = tx;
            cmd.CommandText = sql;
            bind(cmd);
            return await cmd.ExecuteNonQueryAsync(token);
        });

    private void Invalidate(string name)
    {
        cache.Remove(CacheKey(name));
        Changed?.Invoke(name);
    }

    private static string CacheKey(string name) => "account:" + name;

    private static void BindFields(DbCommand cmd, Account a)
    {
        RecordStore.Add(cmd, "@d", a.Display);
        RecordStore.Add(cmd, "@r", AccountRules.Join(a.Roles));
        RecordStore.Add(cmd, "@t", a.Tier);
        RecordStore.Add(cmd, "@dep", AccountRules.Join(a.Departments));
        RecordStore.Add(cmd, "@tr", AccountRules.Join(a.Treats));
        RecordStore.Add(cmd, "@p", a.PractitionerId);
        RecordStore.Add(cmd, "@bg", a.BreakGlassApproved ? 1 : 0);
        RecordStore.Add(cmd, "@e", a.Expires?.ToUnixTimeMilliseconds());
        RecordStore.Add(cmd, "@ss", a.ShiftStartHour);
        RecordStore.Add(cmd, "@se", a.ShiftEndHour);
    }

    private static Account ReadAccount(DbDataReader r) => new(
        r.GetString(0),
        r.GetString(1),
        AccountRules.Split(r.GetString(2)),
        r.GetInt32(3),
        AccountRules.Split(r.GetString(4)),
        AccountRules.Split(r.GetString(5)),
        NullableString(r, 6),
        r.GetInt32(7) != 0,
        r.GetInt32(8) != 0,
        NullableLong(r, 9) is { } expires ? DateTimeOffset.FromUnixTimeMilliseconds(expires) : null,
        r.IsDBNull(10) ? null : r.GetInt32(10),
        r.IsDBNull(11) ? null : r.GetInt32(11),
        r.GetInt32(12) != 0,
        NullableLong(r, 13) is { } after ? DateTimeOffset.FromUnixTimeMilliseconds(after) : null,
        NullableLong(r, 14) is { } tokensAfter ? DateTimeOffset.FromUnixTimeMilliseconds(tokensAfter) : null,
        NullableString(r, 15));

    private static string? NullableString(DbDataReader r, int i) => r.IsDBNull(i) ? null : r.GetString(i);

    private static byte[]? NullableBytes(DbDataReader r, int i) => r.IsDBNull(i) ? null : (byte[])r.GetValue(i);

    private static long? NullableLong(DbDataReader r, int i) => r.IsDBNull(i) ? null : Convert.ToInt64(r.GetValue(i), CultureInfo.InvariantCulture);
}
