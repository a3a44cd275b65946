using Microsoft.AspNetCore.Identity;
using Wardline.Server.Modules.Access.Identity;
using Wardline.Server.Tests.Infrastructure;

namespace Wardline.Server.Tests.Modules.Access.Identity;

/// <summary>Administering accounts: what is stored, what is refused, and that every change is recorded.</summary>
public abstract class AccountConformance(StoreKind kind) : IAsyncLifetime
{
    private const string Password = "plum orchard at dawn";
    private IdentityHarness _h = null!;

    public async Task InitializeAsync() => _h = await IdentityHarness.CreateAsync(kind);

    public Task DisposeAsync() => _h.DisposeWithStoreAsync();

    private static CancellationToken None => CancellationToken.None;

    [Fact]
    public async Task A_created_account_reads_back_with_every_field_also_from_another_process()
    {
        var expires = new DateTimeOffset(2027, 6, 30, 0, 0, 0, TimeSpan.Zero);
        var account = Account.New("dr.psych", "Dr. Priya Raman") with
        {
            Roles = ["psychiatrist", "physician"], Tier = 1, Departments = ["psychiatry"], Treats = ["PSY", "ETH"],
            PractitionerId = "3f1c-77.a", BreakGlassApproved = true, Expires = expires, ShiftStartHour = 22, ShiftEndHour = 6,
        };

        Assert.IsType<AccountResult.Done>(await _h.Accounts.CreateAsync(account, Password, "admin", None));

        await using var other = await _h.ReopenAsync();
        var read = await other.Accounts.FindAsync("dr.psych", None);
        Assert.NotNull(read);
        Assert.Equal(account with { Roles = read.Roles, Departments = read.Departments, Treats = read.Treats }, read);
        Assert.Equal(["psychiatrist", "physician"], read.Roles);
        Assert.Equal(["psychiatry"], read.Departments);
        Assert.Equal(["PSY", "ETH"], read.Treats);
        Assert.False(read.MfaEnrolled);
        Assert.Contains(await other.Accounts.ListAsync(None), a => a.Name == "dr.psych");
        Assert.Null(await other.Accounts.FindAsync("nobody", None));
    }

    [Fact]
    public async Task The_stored_hash_is_not_the_password_and_verifies_after_a_reload()
    {
        await _h.CreateAsync("hash.check", Password);

        await using var other = await _h.ReopenAsync();
        var stored = (await other.Service<AccountStore>().ReadCredentialsAsync("hash.check", None))!.PasswordHash!;
        Assert.DoesNotContain(Password, stored, StringComparison.Ordinal);
        var bytes = Convert.FromBase64String(stored);
        Assert.Equal(1, bytes[0]); // Identity v3 format marker
        Assert.Equal(PasswordVerificationResult.Success, PasswordHashing.Verify(stored, Password));
        Assert.Equal(PasswordVerificationResult.Failed, PasswordHashing.Verify(stored, Password + "!"));
        Assert.NotEqual(stored, PasswordHashing.Hash(Password)); // salted
        Assert.IsType<SignInOutcome.Succeeded>(await other.SignIn.PasswordAsync("hash.check", Password, "10.0.0.1", None));
    }

    [Fact]
    public async Task An_update_changes_only_the_given_fields_and_a_stale_update_is_refused()
    {
        await _h.CreateAsync("nurse.x", Password, "nurse");

        var result = await _h.Accounts.UpdateAsync("nurse.x", a => a with { Departments = ["cardiology", "emergency"], Tier = 3, ShiftStartHour = 7, ShiftEndHour = 19 }, "admin", None);

        var after = Assert.IsType<AccountResult.Done>(result).Account;
        Assert.Equal(["nurse"], after.Roles);
        Assert.Equal(["cardiology", "emergency"], (await _h.Accounts.FindAsync("nurse.x", None))!.Departments);
        Assert.Equal(3, after.Tier);
        Assert.Equal(1, await _h.EventsAsync("AccountChanged", "nurse.x"));

        // Read by both, written by one: the other must not overwrite the first change.
        var store = _h.Service<AccountStore>();
        var stale = (await store.ReadCredentialsAsync("nurse.x", None))!;
        Assert.IsType<AccountResult.Done>(await _h.Accounts.UpdateAsync("nurse.x", a => a with { Tier = 2 }, "admin", None));
        Assert.False(await store.UpdateFieldsAsync(stale.Account with { Tier = 1 }, stale.Revision, _h.Time.GetUtcNow(), None));
        Assert.Equal(2, (await _h.Accounts.FindAsync("nurse.x", None))!.Tier);
    }

    [Fact]
    public async Task Invalid_accounts_are_refused_with_every_problem_named_and_nothing_is_written()
    {
        var before = await _h.CountAsync("SELECT COUNT(*) FROM accounts") + await _h.CountAsync("SELECT COUNT(*) FROM security_events");
        var bad = Account.New("bad.fields", " ") with
        {
            Roles = ["Physician"], Tier = 4, Departments = ["Cardio logy"], Treats = ["psy"], PractitionerId = "no spaces allowed", ShiftStartHour = 7,
        };

        var invalid = Assert.IsType<AccountResult.Invalid>(await _h.Accounts.CreateAsync(bad, Password, "admin", None));

        Assert.Equal(7, invalid.Problems.Count);
        Assert.Contains(invalid.Problems, p => p.Contains("'Physician' is not a role", StringComparison.Ordinal));
        Assert.Contains(invalid.Problems, p => p.Contains("tier", StringComparison.Ordinal));
        Assert.IsType<AccountResult.Invalid>(await _h.Accounts.CreateAsync(Account.New("Upper.Case", "U"), Password, "admin", None));
        Assert.IsType<AccountResult.Invalid>(await _h.Accounts.CreateAsync(Account.New("past.expiry", "P") with { Expires = _h.Time.GetUtcNow() }, Password, "admin", None));
        Assert.IsType<AccountResult.WeakPassword>(await _h.Accounts.CreateAsync(Account.New("weak.pw", "W"), "password1234", "admin", None));
        Assert.Equal(before, await _h.CountAsync("SELECT COUNT(*) FROM accounts") + await _h.CountAsync("SELECT COUNT(*) FROM security_events"));
        Assert.IsType<AccountResult.NotFound>(await _h.Accounts.UpdateAsync("nobody", a => a, "admin", None));
    }

    [Fact]
    public async Task A_name_is_taken_once()
    {
        await _h.CreateAsync("only.once", Password);

        Assert.IsType<AccountResult.AlreadyExists>(await _h.Accounts.CreateAsync(Account.New("only.once", "Again"), Password, "admin", None));
        Assert.Equal("Test only.once", (await _h.Accounts.FindAsync("only.once", None))!.Display);
    }

    [Fact]
    public async Task Disabling_an_account_stops_its_tokens_and_sign_in_at_once_tells_caches_and_enabling_restores_them()
    {
        await _h.CreateAsync("to.disable", Password);
        var token = (await _h.Tokens.IssueAsync("to.disable", TimeSpan.FromHours(1), None))!;
        Assert.Equal("to.disable", await _h.Tokens.ValidateAsync(token, None));

        var changed = new List<string>();
        _h.Service<AccountStore>().Changed += changed.Add;

        Assert.IsType<AccountResult.Done>(await _h.Accounts.DisableAsync("to.disable", "admin", None));

        Assert.Equal(["to.disable"], changed);
        Assert.Null(await _h.Tokens.ValidateAsync(token, None));
        Assert.Null(await _h.Tokens.IssueAsync("to.disable", TimeSpan.FromHours(1), None));
        Assert.IsType<SignInOutcome.Disabled>(await _h.SignIn.PasswordAsync("to.disable", Password, "10.0.0.1", None));
        // Only the right password learns that the account is disabled.
        Assert.IsType<SignInOutcome.Failed>(await _h.SignIn.PasswordAsync("to.disable", "not the password!", "10.0.0.1", None));

        Assert.IsType<AccountResult.Done>(await _h.Accounts.EnableAsync("to.disable", "admin", None));
        Assert.Equal("to.disable", await _h.Tokens.ValidateAsync(token, None));
        Assert.IsType<AccountResult.NotFound>(await _h.Accounts.DisableAsync("nobody", "admin", None));
    }

    [Fact]
    public async Task An_expired_account_cannot_sign_in_or_use_tokens()
    {
        var result = await _h.Accounts.CreateAsync(Account.New("temp.staff", "Temp") with { Roles = [IdentityHarness.NoMfaRole], Expires = _h.Time.GetUtcNow().AddDays(1) }, Password, "admin", None);
        Assert.IsType<AccountResult.Done>(result);
        var token = (await _h.Tokens.IssueAsync("temp.staff", TimeSpan.FromDays(7), None))!;

        _h.Time.Advance(TimeSpan.FromDays(1));

        Assert.Null(await _h.Tokens.ValidateAsync(token, None));
        Assert.IsType<SignInOutcome.Disabled>(await _h.SignIn.PasswordAsync("temp.staff", Password, "10.0.0.1", None));
        Assert.Equal(1, await _h.EventsAsync("SignInFailed", "temp.staff", "refused"));
    }

    [Fact]
    public async Task A_new_password_replaces_the_old_one_and_must_follow_the_rules()
    {
        await _h.CreateAsync("pw.change", Password);

        Assert.IsType<AccountResult.WeakPassword>(await _h.Accounts.SetPasswordAsync("pw.change", "pw.change is me", "admin", None));
        Assert.IsType<AccountResult.Done>(await _h.Accounts.SetPasswordAsync("pw.change", "a brand new passphrase", "admin", None));

        Assert.IsType<SignInOutcome.Failed>(await _h.SignIn.PasswordAsync("pw.change", Password, "10.0.0.1", None));
        Assert.IsType<SignInOutcome.Succeeded>(await _h.SignIn.PasswordAsync("pw.change", "a brand new passphrase", "10.0.0.1", None));
        Assert.IsType<AccountResult.NotFound>(await _h.Accounts.SetPasswordAsync("nobody", "a brand new passphrase", "admin", None));
        Assert.Equal(1, await _h.EventsAsync("PasswordChanged", "pw.change"));
    }

    [Fact]
    public async Task A_token_only_account_made_for_tools_has_no_password_to_sign_in_with()
    {
        await _h.Tokens.AddUserAsync("tool.user", "tool.user", None);
        await _h.Tokens.AddUserAsync("tool.user", "tool.user", None);

        Assert.NotNull(await _h.Tokens.IssueAsync("tool.user", TimeSpan.FromMinutes(5), None));
        Assert.IsType<SignInOutcome.Failed>(await _h.SignIn.PasswordAsync("tool.user", "", "10.0.0.1", None));
        Assert.Equal(1, await _h.EventsAsync("TokenIssued", "tool.user"));
    }

    [Fact]
    public async Task Every_account_change_is_recorded_with_its_actor_and_no_secret()
    {
        await _h.CreateAsync("audited", Password, "nurse");
        await _h.Accounts.UpdateAsync("audited", a => a with { Tier = 1 }, "admin.one", None);
        await _h.Accounts.DisableAsync("audited", "admin.one", None);
        await _h.Accounts.EnableAsync("audited", "admin.one", None);
        await _h.Accounts.ResetMfaAsync("audited", "admin.one", None);
        await _h.Accounts.SetPasswordAsync("audited", "another fine passphrase", "admin.one", None);
        await _h.Accounts.UnlockAsync("audited", "admin.one", None);

        foreach (var kind in new[] { "AccountCreated", "AccountDisabled", "MfaReset", "PasswordChanged" })
        {
            Assert.True(await _h.EventsAsync(kind, "audited") == 1, kind);
        }
        Assert.Equal(3, await _h.EventsAsync("AccountChanged", "audited")); // tier, enabled, unlocked
        Assert.Equal(6, await _h.CountAsync("SELECT COUNT(*) FROM security_events WHERE user_name = 'audited' AND actor = 'admin.one'"));
        Assert.Equal(0, await _h.CountAsync("SELECT COUNT(*) FROM security_events WHERE detail LIKE '%passphrase%' OR detail LIKE '%plum%'"));
    }
}

public sealed class AccountsOnSqlite() : AccountConformance(StoreKind.Sqlite);

public sealed class AccountsOnPostgres() : AccountConformance(StoreKind.Postgres);
