using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Wardline.Server.Modules.Access.Identity;
using Wardline.Server.Modules.Records.Storage;
using Wardline.Server.Tests.EndToEnd;
using Wardline.Server.Tests.Infrastructure;

namespace Wardline.Server.Tests.Modules.Access.Identity;

/// <summary>`wardline users ...` as an operator runs it: the real command against a store of either engine.</summary>
public abstract class UsersCliConformance(StoreKind kind) : IAsyncLifetime
{
    private TestStore _store = null!;

    public async Task InitializeAsync() => _store = await TestStore.CreateAsync(kind);

    public async Task DisposeAsync() => await _store.DisposeAsync();

    private Task<CliResult> RunAsync(string? input, params string[] args) => UsersCli.RunAsync([.. args, .. UsersCli.StoreArgs(_store)], input);

    private async Task<JsonElement> ListedAsync(string name)
    {
        var list = await RunAsync(null, "users", "list", "--json");
        Assert.True(list.ExitCode == 0, list.Output);
        return JsonDocument.Parse(list.Output).RootElement.EnumerateArray().Single(a => a.GetProperty("name").GetString() == name);
    }

    [Fact]
    public async Task Add_list_update_disable_enable_and_reset_mfa_work_end_to_end()
    {
        const string password = "a long operator passphrase";
        var add = await RunAsync(password + "\n", "users", "add", "dr.cli", "--display", "Dr. Cli Ent", "--role", "physician", "--role", "executive",
            "--department", "oncology", "--tier", "1", "--treats", "PSY,ETH", "--practitioner", "prac-1", "--break-glass", "--expires", "2099-12-31",
            "--shift", "7-19", "--password-stdin");

        Assert.True(add.ExitCode == 0, add.Output);
        Assert.DoesNotContain(password, add.Output, StringComparison.Ordinal);
        var listed = await ListedAsync("dr.cli");
        Assert.Equal("Dr. Cli Ent", listed.GetProperty("display").GetString());
        Assert.Equal(["physician", "executive"], listed.GetProperty("roles").EnumerateArray().Select(r => r.GetString()));
        Assert.Equal(1, listed.GetProperty("tier").GetInt32());
        Assert.Equal(["oncology"], listed.GetProperty("departments").EnumerateArray().Select(r => r.GetString()));
        Assert.Equal(["PSY", "ETH"], listed.GetProperty("treats").EnumerateArray().Select(r => r.GetString()));
        Assert.Equal("prac-1", listed.GetProperty("practitionerId").GetString());
        Assert.True(listed.GetProperty("breakGlass").GetBoolean());
        Assert.False(listed.GetProperty("disabled").GetBoolean());
        Assert.False(listed.GetProperty("mfaEnrolled").GetBoolean());
        Assert.Equal("2100-01-01T00:00:00.0000000+00:00", listed.GetProperty("expires").GetString());
        Assert.Equal("7-19", listed.GetProperty("shift").GetString());

        // The person signs in and enrols; then the operator resets the app.
        await using (var h = await IdentityHarness.CreateAsync(kind, _store))
        {
            Assert.IsType<SignInOutcome.NeedsMfaEnrolment>(await h.SignIn.PasswordAsync("dr.cli", password, "10.0.0.1", CancellationToken.None));
            var enrolment = (await h.SignIn.BeginEnrolmentAsync("dr.cli", CancellationToken.None))!;
            var code = new OtpNet.Totp(OtpNet.Base32Encoding.ToBytes(enrolment.Secret)).ComputeTotp(h.Time.GetUtcNow().UtcDateTime);
            Assert.IsType<SignInOutcome.Succeeded>(await h.SignIn.CompleteEnrolmentAsync("dr.cli", code, "10.0.0.1", CancellationToken.None));
        }
        Assert.True((await ListedAsync("dr.cli")).GetProperty("mfaEnrolled").GetBoolean());
        var reset = await RunAsync(null, "users", "reset-mfa", "dr.cli");
        Assert.True(reset.ExitCode == 0, reset.Output);
        Assert.False((await ListedAsync("dr.cli")).GetProperty("mfaEnrolled").GetBoolean());

        var update = await RunAsync(null, "users", "update", "dr.cli", "--role", "nurse", "--tier", "2", "--treats", "none", "--expires", "never", "--shift", "none", "--break-glass", "no");
        Assert.True(update.ExitCode == 0, update.Output);
        listed = await ListedAsync("dr.cli");
        Assert.Equal(["nurse"], listed.GetProperty("roles").EnumerateArray().Select(r => r.GetString()));
        Assert.Equal(["oncology"], listed.GetProperty("departments").EnumerateArray().Select(r => r.GetString()));
        Assert.Empty(listed.GetProperty("treats").EnumerateArray());
        Assert.Equal(JsonValueKind.Null, listed.GetProperty("expires").ValueKind);
        Assert.Equal(JsonValueKind.Null, listed.GetProperty("shift").ValueKind);
        Assert.False(listed.GetProperty("breakGlass").GetBoolean());

        Assert.Equal(0, (await RunAsync(null, "users", "disable", "dr.cli")).ExitCode);
        Assert.True((await ListedAsync("dr.cli")).GetProperty("disabled").GetBoolean());
        var refused = await RunAsync(null, "token", "--user", "dr.cli");
        Assert.Equal(2, refused.ExitCode);
        Assert.Equal(0, (await RunAsync(null, "users", "enable", "dr.cli")).ExitCode);
        var token = await RunAsync(null, "token", "--user", "dr.cli");
        Assert.True(token.ExitCode == 0, token.Output);
        Assert.Equal(3, token.Output.Trim().Split('.').Length); // a signed JWT

        await using var check = await IdentityHarness.CreateAsync(kind, _store);
        foreach (var eventKind in new[] { "AccountCreated", "MfaReset", "AccountDisabled" })
        {
            Assert.Equal(1, await check.CountAsync($"SELECT COUNT(*) FROM security_events WHERE kind = '{eventKind}' AND user_name = 'dr.cli' AND actor LIKE 'cli:%'"));
        }
        Assert.Equal(2, await check.CountAsync("SELECT COUNT(*) FROM security_events WHERE kind = 'AccountChanged' AND user_name = 'dr.cli' AND actor LIKE 'cli:%'"));
    }

    [Fact]
    public async Task Add_without_a_password_prints_a_generated_one_once_that_signs_in_and_set_password_replaces_it()
    {
        var add = await RunAsync(null, "users", "add", "gen.user", "--role", IdentityHarness.NoMfaRole);

        Assert.True(add.ExitCode == 0, add.Output);
        var generated = add.Output.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)[^1];
        Assert.Matches("^[a-z2-9]{5}(-[a-z2-9]{5}){3}$", generated);
        await using (var h = await IdentityHarness.CreateAsync(kind, _store))
        {
            Assert.IsType<SignInOutcome.Succeeded>(await h.SignIn.PasswordAsync("gen.user", generated, "10.0.0.1", CancellationToken.None));
        }
        Assert.DoesNotContain(generated, (await RunAsync(null, "users", "list")).Output, StringComparison.Ordinal);

        var set = await RunAsync("my own chosen passphrase", "users", "set-password", "gen.user", "--password-stdin");

        Assert.True(set.ExitCode == 0, set.Output);
        await using var after = await IdentityHarness.CreateAsync(kind, _store);
        Assert.IsType<SignInOutcome.Failed>(await after.SignIn.PasswordAsync("gen.user", generated, "10.0.0.1", CancellationToken.None));
        Assert.IsType<SignInOutcome.Succeeded>(await after.SignIn.PasswordAsync("gen.user", "my own chosen passphrase", "10.0.0.1", CancellationToken.None));
    }
}

public sealed class UsersCliOnSqlite() : UsersCliConformance(StoreKind.Sqlite);

public sealed class UsersCliOnPostgres() : UsersCliConformance(StoreKind.Postgres);

/// <summary>A SQLite store holding one account, for the refusal tests.</summary>
public sealed class UsersCliStore : IAsyncLifetime
{
    public TestStore Store { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Store = await TestStore.CreateAsync(StoreKind.Sqlite);
        var add = await UsersCli.RunAsync(["users", "add", "existing.user", "--role", "nurse", .. UsersCli.StoreArgs(Store)], null);
        Assert.True(add.ExitCode == 0, add.Output);
    }

    public async Task DisposeAsync() => await Store.DisposeAsync();

    /// <summary>Everything a refused command might have written: accounts (with their revisions and times) and events.</summary>
    public async Task<string> SnapshotAsync()
    {
        await using var dialect = SqlDialect.Sqlite(Path.Combine(Store.Options.DataDirectory!, "wardline.db"));
        await using var c = await dialect.OpenAsync(CancellationToken.None);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT (SELECT COUNT(*) FROM accounts), (SELECT SUM(revision) FROM accounts), (SELECT MAX(updated) FROM accounts), " +
            "(SELECT COUNT(*) FROM security_events), (SELECT password_hash FROM accounts WHERE name = 'existing.user')";
        await using var r = await cmd.ExecuteReaderAsync();
        await r.ReadAsync();
        return string.Join('|', Enumerable.Range(0, 5).Select(i => r.GetValue(i).ToString()));
    }
}

/// <summary>Each bad input is refused with a clear message and exit code 2, and nothing is written.</summary>
public sealed class UsersCliRefusals(UsersCliStore fixture) : IClassFixture<UsersCliStore>
{
    [Theory]
    [InlineData("lower-case", "add", "Upper")]
    [InlineData("lower-case", "add", "bad name")]
    [InlineData("lower-case", "disable", "bad name!")]
    [InlineData("--tier must be a number from 1 to 3", "add", "x1", "--tier", "0")]
    [InlineData("--tier must be a number from 1 to 3", "add", "x1", "--tier", "abc")]
    [InlineData("'Physician' is not a role", "add", "x1", "--role", "Physician")]
    [InlineData("'Cardio logy' is not a department", "add", "x1", "--department", "Cardio logy")]
    [InlineData("'psy' is not a sensitivity label", "add", "x1", "--treats", "psy")]
    [InlineData("A role is given twice", "add", "x1", "--role", "nurse", "--role", "nurse")]
    [InlineData("practitioner id", "add", "x1", "--practitioner", "no/slashes")]
    [InlineData("--expires takes a date", "add", "x1", "--expires", "tomorrow")]
    [InlineData("must be in the future", "add", "x1", "--expires", "2001-01-01")]
    [InlineData("--expires takes a date from today to 9999-12-30", "add", "x1", "--expires", "9999-12-31")]
    [InlineData("--expires takes a date from today to 9999-12-30", "update", "existing.user", "--expires", "9999-12-31")]
    [InlineData("--shift takes", "add", "x1", "--shift", "7")]
    [InlineData("--shift takes", "add", "x1", "--shift", "7-7")]
    [InlineData("--shift takes", "add", "x1", "--shift", "25-3")]
    [InlineData("--display must not be empty", "add", "x1", "--display", " ")]
    [InlineData("only users update", "add", "x1", "--role", "none")]
    [InlineData("already exists", "add", "existing.user")]
    [InlineData("Nothing to change", "update", "existing.user")]
    [InlineData("There is no account 'nobody.here'", "update", "nobody.here", "--tier", "1")]
    [InlineData("--break-glass takes yes or no", "update", "existing.user", "--break-glass", "maybe")]
    [InlineData("must be in the future", "update", "existing.user", "--expires", "2001-01-01")]
    [InlineData("There is no account 'nobody.here'", "disable", "nobody.here")]
    [InlineData("There is no account 'nobody.here'", "enable", "nobody.here")]
    [InlineData("There is no account 'nobody.here'", "reset-mfa", "nobody.here")]
    [InlineData("There is no account 'nobody.here'", "unlock", "nobody.here")]
    [InlineData("--password-stdin", "set-password", "existing.user")]
    public async Task A_bad_argument_is_refused_with_exit_code_2_and_writes_nothing(string message, params string[] args)
    {
        var before = await fixture.SnapshotAsync();

        var result = await UsersCli.RunAsync(["users", .. args, .. UsersCli.StoreArgs(fixture.Store)], null);

        Assert.True(result.ExitCode == 2, $"exit {result.ExitCode}: {result.Output}");
        Assert.Contains(message, result.Flat, StringComparison.Ordinal);
        Assert.Equal(before, await fixture.SnapshotAsync());
    }

    [Theory]
    [InlineData("at least 12 characters", "add", "x2", "short")]
    [InlineData("common or breached", "add", "x2", "Password1234!")]
    [InlineData("user name", "add", "x22", "x22 is my own name")]
    [InlineData("No password on standard input", "add", "x2", "")]
    [InlineData("No password on standard input", "set-password", "existing.user", "\n")]
    [InlineData("user name", "set-password", "existing.user", "existing.user rocks")]
    [InlineData("one short pattern repeated", "set-password", "existing.user", "abcabcabcabcabc")]
    [InlineData("There is no account 'nobody.here'", "set-password", "nobody.here", "a perfectly good passphrase")]
    public async Task A_refused_password_is_never_echoed_and_writes_nothing(string message, string verb, string name, string password)
    {
        var before = await fixture.SnapshotAsync();

        var result = await UsersCli.RunAsync(["users", verb, name, "--password-stdin", .. UsersCli.StoreArgs(fixture.Store)], password);

        Assert.True(result.ExitCode == 2, $"exit {result.ExitCode}: {result.Output}");
        Assert.Contains(message, result.Flat, StringComparison.Ordinal);
        if (password.Trim().Length > 0) Assert.DoesNotContain(password, result.Output, StringComparison.Ordinal);
        Assert.Equal(before, await fixture.SnapshotAsync());
    }
}

/// <summary>Runs `wardline` with text on its standard input (the shared helper gives it none).</summary>
internal static class UsersCli
{
    public static string[] StoreArgs(TestStore store) => store.Kind == StoreKind.Sqlite
        ? ["--data", store.Options.DataDirectory!]
        : ["--db", store.Options.PostgresConnectionString!, "--keyring", store.Options.KeyringPath!, "--witness", store.Options.Ledger.WitnessPath!];

    public static async Task<CliResult> RunAsync(IEnumerable<string> args, string? input)
    {
        var psi = WardlineCli.StartInfo(args);
        psi.RedirectStandardInput = true;
        using var process = Process.Start(psi) ?? throw new InvalidOperationException("dotnet did not start");
        var output = new StringBuilder();
        var gate = new object();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (gate) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (gate) output.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        await process.StandardInput.WriteAsync(input ?? "");
        process.StandardInput.Close();
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(cts.Token);
        process.WaitForExit();
        lock (gate) return new CliResult(process.ExitCode, output.ToString());
    }
}
