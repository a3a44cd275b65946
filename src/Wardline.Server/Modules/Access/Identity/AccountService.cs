using Wardline.Server.Pipeline;

namespace Wardline.Server.Modules.Access.Identity;

/// <summary>
/// Administers local accounts: every change is checked (<see cref="AccountRules"/>,
/// <see cref="PasswordPolicy"/>) before anything is written, and recorded as a security event naming
/// the account and the actor (an administrator's name, or "cli:&lt;os user&gt;" for the command line).
/// </summary>
internal sealed class AccountService(AccountStore store, IAccessRecorder recorder, TimeProvider time)
{
    /// <summary>The account named exactly <paramref name="name"/>, cached briefly (see <see cref="AccountStore.FindAsync"/>).</summary>
    public Task<Account?> FindAsync(string name, CancellationToken ct) => store.FindAsync(name, ct);

    public Task<IReadOnlyList<Account>> ListAsync(CancellationToken ct) => store.ListAsync(ct);

    /// <summary>
    /// Creates <paramref name="account"/> (its name must be new and lower case; it starts enabled or
    /// disabled as given, never MFA-enrolled). <paramref name="password"/> null makes an account that
    /// can only use operator-issued tokens until a password is set.
    /// </summary>
    public async Task<AccountResult> CreateAsync(Account account, string? password, string actor, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(account);
        var problems = AccountRules.Check(account).ToList();
        if (!AccountRules.IsValidNewName(account.Name) && problems.Count == 0) problems.Add(AccountRules.NameRule);
        if (account.MfaEnrolled) problems.Add("A new account cannot be MFA-enrolled; it enrols at its first sign-in.");
        var now = time.GetUtcNow();
        if (account.Expires <= now) problems.Add("The expiry must be in the future.");
        if (problems.Count > 0) return new AccountResult.Invalid(problems);
        if (password is not null && PasswordPolicy.Check(password, account.Name, account.Display) is { } weak) return new AccountResult.WeakPassword(weak);

        var hash = password is null ? null : PasswordHashing.Hash(password);
        if (!await store.InsertAsync(account, hash, now, ct)) return new AccountResult.AlreadyExists();
        await RecordAsync(SecurityEventKind.AccountCreated, account.Name, actor, AccountRules.Describe(account) + (password is null ? " password=none" : ""), now, ct);
        return new AccountResult.Done(account);
    }

    /// <summary>
    /// Changes the administered fields (display, roles, tier, departments, treats, practitioner,
    /// break-glass approval, expiry, shift) by applying <paramref name="change"/> to the current account,
    /// e.g. <c>a =&gt; a with { Roles = ["nurse"] }</c>. The name, disabled flag and MFA state change only
    /// through their own operations. <see cref="AccountResult.Conflict"/> if another change came first.
    /// </summary>
    public async Task<AccountResult> UpdateAsync(string name, Func<Account, Account> change, string actor, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(change);
        var creds = await store.ReadCredentialsAsync(name, ct);
        if (creds is null) return new AccountResult.NotFound();
        var before = creds.Account;
        var after = change(before);
        var problems = AccountRules.Check(after).ToList();
        if (after.Name != before.Name) problems.Add("An account cannot be renamed; create a new one and disable this one.");
        if (after.Disabled != before.Disabled) problems.Add("Use disable or enable to change whether an account is disabled.");
        if (after.MfaEnrolled != before.MfaEnrolled) problems.Add("MFA enrolment changes only by enrolling or by reset-mfa.");
        var now = time.GetUtcNow();
        if (after.Expires != before.Expires && after.Expires <= now) problems.Add("The expiry must be in the future (to stop an account now, disable it).");
        if (problems.Count > 0) return new AccountResult.Invalid(problems);
        var changed = Changes(before, after);
        if (changed.Count == 0) return new AccountResult.Done(before);
        if (!await store.UpdateFieldsAsync(after, creds.Revision, now, ct)) return new AccountResult.Conflict();
        await RecordAsync(SecurityEventKind.AccountChanged, name, actor, "changed " + string.Join(',', changed) + "; now " + AccountRules.Describe(after), now, ct);
        return new AccountResult.Done(after);
    }

    /// <summary>Stops sign-in and every token of the account at once (other servers within <see cref="AccountStore.CacheFor"/>).</summary>
    public Task<AccountResult> DisableAsync(string name, string actor, CancellationToken ct) =>
        ChangeAsync(name, actor, SecurityEventKind.AccountDisabled, "disabled", (now, token) => store.SetDisabledAsync(name, true, now, token), ct);

    public Task<AccountResult> EnableAsync(string name, string actor, CancellationToken ct) =>
        ChangeAsync(name, actor, SecurityEventKind.AccountChanged, "enabled", (now, token) => store.SetDisabledAsync(name, false, now, token), ct);

    /// <summary>Forgets the account's authenticator; its next sign-in walks through enrolment again.</summary>
    public Task<AccountResult> ResetMfaAsync(string name, string actor, CancellationToken ct) =>
        ChangeAsync(name, actor, SecurityEventKind.MfaReset, "mfa reset", (now, token) => store.ResetMfaAsync(name, now, token), ct);

    /// <summary>
    /// Forgets which external provider user the account is bound to (<see cref="Account.ExternalSubject"/>): after the person's
    /// provider account was re-created, say. Their next sign-in through the provider binds anew.
    /// </summary>
    public Task<AccountResult> UnlinkExternalAsync(string name, string actor, CancellationToken ct) =>
        ChangeAsync(name, actor, SecurityEventKind.AccountChanged, "external provider user unlinked", (now, token) => store.UnbindExternalAsync(name, now, token), ct);

    /// <summary>Ends a lockout: forgets the account's failed sign-in attempts.</summary>
    public Task<AccountResult> UnlockAsync(string name, string actor, CancellationToken ct) =>
        ChangeAsync(name, actor, SecurityEventKind.AccountChanged, "unlocked (failed sign-in attempts cleared)", async (_, token) =>
        {
            await store.ClearFailuresAsync(name, null, token);
            return true;
        }, ct);

    /// <summary>Sets a new password (an administrator's reset, or the person's own change after checking the old one).</summary>
    public async Task<AccountResult> SetPasswordAsync(string name, string password, string actor, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(password);
        var account = await store.FindAsync(name, ct);
        if (account is null) return new AccountResult.NotFound();
        if (PasswordPolicy.Check(password, account.Name, account.Display) is { } weak) return new AccountResult.WeakPassword(weak);
        return await ChangeAsync(name, actor, SecurityEventKind.PasswordChanged, "password set",
            (now, token) => store.SetPasswordHashAsync(name, PasswordHashing.Hash(password), now, token), ct);
    }

    private async Task<AccountResult> ChangeAsync(string name, string actor, SecurityEventKind kind, string detail,
        Func<DateTimeOffset, CancellationToken, Task<bool>> write, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        if (await store.FindAsync(name, ct) is null || !await write(now, ct)) return new AccountResult.NotFound();
        await RecordAsync(kind, name, actor, detail, now, ct);
        return await store.FindAsync(name, ct) is { } after ? new AccountResult.Done(after) : new AccountResult.NotFound();
    }

    private static List<string> Changes(Account a, Account b)
    {
        var changed = new List<string>();
        if (a.Display != b.Display) changed.Add("display");
        if (!a.Roles.SequenceEqual(b.Roles)) changed.Add("roles");
        if (a.Tier != b.Tier) changed.Add("tier");
        if (!a.Departments.SequenceEqual(b.Departments)) changed.Add("departments");
        if (!a.Treats.SequenceEqual(b.Treats)) changed.Add("treats");
        if (a.PractitionerId != b.PractitionerId) changed.Add("practitioner");
        if (a.BreakGlassApproved != b.BreakGlassApproved) changed.Add("break-glass");
        if (a.Expires != b.Expires) changed.Add("expires");
        if (a.ShiftStartHour != b.ShiftStartHour || a.ShiftEndHour != b.ShiftEndHour) changed.Add("shift");
        return changed;
    }

    private ValueTask RecordAsync(SecurityEventKind kind, string user, string actor, string detail, DateTimeOffset now, CancellationToken ct) =>
        recorder.RecordAsync(new SecurityEvent(now, kind, user, actor, "succeeded", detail, null, null), ct);
}
