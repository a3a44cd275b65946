using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Wardline.Crypto;
using Wardline.Server.Pipeline;

namespace Wardline.Server.Modules.Access.Identity;

/// <summary>
/// Signs people in with a password and, where required, a TOTP code; enrols authenticator apps.
/// The caller (the console's sign-in page, the OAuth authorisation endpoint) keeps the step the
/// person is at; this service keeps what must hold across servers in the database.
/// </summary>
/// <remarks>
/// <para>Throttling (NIST SP 800-63B 5.2.2): every failed check is stored with the account name and
/// the source (client address). After <see cref="SignInOptions.FreeFailures"/> failures from one source
/// within the window, that source's next attempt is refused unchecked until 2^(n-5) seconds after its
/// last failure (at most <see cref="SignInOptions.MaxBackoff"/>). Back-off is per source so that
/// someone hammering an account from one place does not make its owner wait elsewhere; the lockout
/// is per account: at <see cref="SignInOptions.LockoutFailures"/> failures within the rolling window,
/// from all sources together, nothing is checked until failures age out or an administrator unlocks.
/// (With one source alone, the back-off allows only a few tries an hour, so the lockout is what
/// stops guessing spread over many addresses.) Refused, unchecked attempts are not failures.</para>
/// <para>Unknown names: the same queries, a password hash of the same cost, the same failure rows,
/// back-off and lockout, and the same <see cref="SignInOutcome.Failed"/>. Their security events carry
/// no user name: a name that matches no account is often a password typed into the wrong field.</para>
/// <para>The second step (TOTP or enrolment) is accepted only within <see cref="SignInOptions.SecondStepWindow"/>
/// after a correct password for that account, so a code alone never signs anyone in.</para>
/// </remarks>
internal sealed class SignInService(
    AccountStore store,
    MfaSecrets secrets,
    MfaRequirement mfa,
    IAccessRecorder recorder,
    TimeProvider time,
    IOptions<SignInOptions> options,
    ILogger<SignInService> logger)
{
    private const string PasswordFactor = "password";
    private const string TotpFactor = "totp";

    private SignInOptions Options => options.Value;

    /// <summary>First step: name and password. <paramref name="source"/> is the client address (it keys the back-off).</summary>
    public async Task<SignInOutcome> PasswordAsync(string name, string password, string? source, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(password);
        var now = time.GetUtcNow();
        var key = Normalise(name);
        var from = source ?? "";
        var creds = key is null ? null : await store.ReadCredentialsAsync(key, ct);
        var known = creds?.Account.Name;
        if (key is not null && await GateAsync(key, from, now, known, source, PasswordFactor, ct) is { } refused) return refused;

        var verdict = PasswordHashing.Verify(creds?.PasswordHash, password);
        if (creds is null || verdict == PasswordVerificationResult.Failed)
        {
            return await FailAsync(key, from, PasswordFactor, now, known, source, SecurityEventKind.SignInFailed, "wrong name or password", ct);
        }
        var account = creds.Account;
        if (!account.IsActive(now))
        {
            await RecordAsync(SecurityEventKind.SignInFailed, account.Name, "refused", account.Disabled ? "account disabled" : "account expired", source, now, ct);
            return new SignInOutcome.Disabled();
        }
        if (verdict == PasswordVerificationResult.SuccessRehashNeeded)
        {
            await store.RehashPasswordAsync(account.Name, creds.PasswordHash!, PasswordHashing.Hash(password), now);
        }
        if (account.MfaEnrolled || mfa.IsRequired(account))
        {
            await store.SetSecondStepUntilAsync(account.Name, now + Options.SecondStepWindow, ct);
            var next = account.MfaEnrolled ? "totp" : "mfa enrolment";
            await RecordAsync(SecurityEventKind.SignIn, account.Name, "pending", "password accepted; awaiting " + next, source, now, ct);
            return account.MfaEnrolled ? new SignInOutcome.NeedsMfa() : new SignInOutcome.NeedsMfaEnrolment();
        }
        return await SucceedAsync(account, from, source, now, "password", ct);
    }

    /// <summary>Second step for an enrolled account: a TOTP code, after <see cref="SignInOutcome.NeedsMfa"/>. Each code works once.</summary>
    public Task<SignInOutcome> TotpAsync(string name, string code, string? source, CancellationToken ct) =>
        SecondStepAsync(name, code, source, enrol: false, ct);

    /// <summary>
    /// Starts enrolment after <see cref="SignInOutcome.NeedsMfaEnrolment"/>: a new secret, sealed in the
    /// database until confirmed. Null unless a correct password for this not yet enrolled account was
    /// given within the second-step window. Calling it again replaces the secret.
    /// </summary>
    public async Task<MfaEnrolment?> BeginEnrolmentAsync(string name, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var key = Normalise(name);
        var creds = key is null ? null : await store.ReadCredentialsAsync(key, ct);
        if (creds is null || creds.Account.MfaEnrolled || !InSecondStep(creds, now)) return null;
        var secret = Totp.NewSecret();
        try
        {
            var (wrappedKey, sealedSecret) = secrets.Seal(creds.Account.Name, secret);
            return await store.StorePendingSecretAsync(creds.Account.Name, wrappedKey, sealedSecret, ct) ? Totp.Enrolment(creds.Account.Name, secret) : null;
        }
        finally
        {
            Array.Clear(secret);
        }
    }

    /// <summary>Confirms enrolment with the first code from the app; on success the person is signed in.</summary>
    public Task<SignInOutcome> CompleteEnrolmentAsync(string name, string code, string? source, CancellationToken ct) =>
        SecondStepAsync(name, code, source, enrol: true, ct);

    private async Task<SignInOutcome> SecondStepAsync(string name, string code, string? source, bool enrol, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(code);
        var now = time.GetUtcNow();
        var key = Normalise(name);
        if (key is null) return new SignInOutcome.Failed();
        var from = source ?? "";
        var creds = await store.ReadCredentialsAsync(key, ct);
        var known = creds?.Account.Name;
        if (await GateAsync(key, from, now, known, source, TotpFactor, ct) is { } refused) return refused;

        var what = enrol ? "enrolment code" : "code";
        if (creds is null || creds.Account.MfaEnrolled == enrol || creds.MfaKey is null || creds.MfaSecret is null || !InSecondStep(creds, now))
        {
            return await FailAsync(key, from, TotpFactor, now, known, source, SecurityEventKind.MfaFailed, what + " without a correct password first", ct);
        }
        var account = creds.Account;
        if (!account.IsActive(now))
        {
            await RecordAsync(SecurityEventKind.SignInFailed, account.Name, "refused", account.Disabled ? "account disabled" : "account expired", source, now, ct);
            return new SignInOutcome.Disabled();
        }
        var step = OpenAndMatch(account.Name, creds.MfaKey, creds.MfaSecret, code, now);
        if (step is null)
        {
            return await FailAsync(key, from, TotpFactor, now, known, source, SecurityEventKind.MfaFailed, "wrong " + what, ct);
        }
        if (!await store.UseStepAsync(account.Name, step.Value, enrol, now, ct))
        {
            return await FailAsync(key, from, TotpFactor, now, known, source, SecurityEventKind.MfaFailed, what + " already used", ct);
        }
        if (enrol)
        {
            await RecordAsync(SecurityEventKind.MfaEnrolled, account.Name, "succeeded", "totp", source, now, ct);
        }
        return await SucceedAsync(account with { MfaEnrolled = true }, from, source, now, "password+totp", ct);
    }

    private long? OpenAndMatch(string account, byte[] wrappedKey, byte[] sealedSecret, string code, DateTimeOffset now)
    {
        byte[] secret;
        try
        {
            secret = secrets.Open(account, wrappedKey, sealedSecret);
        }
        catch (EnvelopeException ex)
        {
            Log.MfaSecretUnreadable(logger, account, ex);
            return null;
        }
        try
        {
            return Totp.Match(secret, code, now);
        }
        finally
        {
            Array.Clear(secret);
        }
    }

    /// <summary>Refuses the attempt unchecked if the account is locked out or this source must still wait.</summary>
    private async Task<SignInOutcome?> GateAsync(string key, string from, DateTimeOffset now, string? known, string? source, string factor, CancellationToken ct)
    {
        var counts = await store.CountFailuresAsync(key, from, now - Options.FailureWindow, ct);
        if (counts.Account >= Options.LockoutFailures)
        {
            await RecordAsync(SecurityEventKind.SignInFailed, known, "locked-out", factor + " not checked: account locked out", source, now, ct);
            return new SignInOutcome.LockedOut();
        }
        if (counts.Source >= Options.FreeFailures && counts.LastFromSource is { } last)
        {
            var retryAt = last + Backoff(counts.Source);
            if (now < retryAt)
            {
                await RecordAsync(SecurityEventKind.SignInFailed, known, "throttled", factor + " not checked: back-off after repeated failures", source, now, ct);
                return new SignInOutcome.Throttled(retryAt - now);
            }
        }
        return null;
    }

    /// <summary>The wait after <paramref name="failures"/> failures from one source: 1 s, 2 s, 4 s, ... up to the cap.</summary>
    internal TimeSpan Backoff(int failures)
    {
        var exponent = failures - Options.FreeFailures;
        return exponent >= 30 ? Options.MaxBackoff : TimeSpan.FromSeconds(Math.Min(1L << exponent, (long)Options.MaxBackoff.TotalSeconds));
    }

    private async Task<SignInOutcome> FailAsync(string? key, string from, string factor, DateTimeOffset now, string? known, string? source,
        SecurityEventKind kind, string reason, CancellationToken ct)
    {
        await RecordAsync(kind, known, "failed", known is null ? reason + " (no such account)" : reason, source, now, ct);
        if (key is null) return new SignInOutcome.Failed();
        await store.AddFailureAsync(key, from, factor, now, now - Options.FailureWindow, ct);
        var failures = (await store.CountFailuresAsync(key, from, now - Options.FailureWindow, ct)).Account;
        if (failures < Options.LockoutFailures) return new SignInOutcome.Failed();
        if (known is not null) Log.AccountLockedOut(logger, known, failures, Options.FailureWindow.TotalMinutes);
        await RecordAsync(SecurityEventKind.Lockout, known, "locked-out", $"{failures} failed attempts within {Options.FailureWindow.TotalMinutes:0} minutes", source, now, ct);
        return new SignInOutcome.LockedOut();
    }

    private async Task<SignInOutcome> SucceedAsync(Account account, string from, string? source, DateTimeOffset now, string factors, CancellationToken ct)
    {
        // The owner's own earlier mistakes from here no longer slow them down; failures from other
        // sources stay, so a correct sign-in never resets the account's lockout count.
        await store.ClearFailuresAsync(account.Name, from, ct);
        await RecordAsync(SecurityEventKind.SignIn, account.Name, "succeeded", factors, source, now, ct);
        return new SignInOutcome.Succeeded(account);
    }

    private static bool InSecondStep(Credentials creds, DateTimeOffset now) =>
        creds.SecondStepUntil is { } until && now.ToUnixTimeMilliseconds() < until;

    /// <summary>What was typed, as an account key: trimmed, lower case; null if it cannot be an account name.</summary>
    internal static string? Normalise(string? name)
    {
        var key = name?.Trim().ToLowerInvariant();
        return key is not null && AccountRules.IsValidName(key) ? key : null;
    }

    private ValueTask RecordAsync(SecurityEventKind kind, string? user, string outcome, string detail, string? source, DateTimeOffset now, CancellationToken ct) =>
        recorder.RecordAsync(new SecurityEvent(now, kind, user, user, outcome, detail, null, source), ct);
}
