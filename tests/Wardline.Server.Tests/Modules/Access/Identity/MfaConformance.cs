using System.Diagnostics;
using System.Text;
using Microsoft.Extensions.Options;
using Npgsql;
using OtpNet;
using Wardline.Server.Modules.Access.Identity;
using Wardline.Server.Tests.Infrastructure;

namespace Wardline.Server.Tests.Modules.Access.Identity;

/// <summary>TOTP second factor: enrolment, codes that work once within one step, and a secret sealed at rest.</summary>
public abstract class MfaConformance(StoreKind kind) : IAsyncLifetime
{
    private const string Password = "quiet river under stone";
    private IdentityHarness _h = null!;

    public async Task InitializeAsync() => _h = await IdentityHarness.CreateAsync(kind);

    public Task DisposeAsync() => _h.DisposeWithStoreAsync();

    private static CancellationToken None => CancellationToken.None;

    private long Step => _h.Time.GetUtcNow().ToUnixTimeSeconds() / 30;

    private static string Code(byte[] secret, long step) =>
        new OtpNet.Totp(secret).ComputeTotp(DateTimeOffset.FromUnixTimeSeconds(step * 30).UtcDateTime);

    private Task<SignInOutcome> PasswordAsync(string name) => _h.SignIn.PasswordAsync(name, Password, "10.8.0.1", None);

    private Task<SignInOutcome> TotpAsync(string name, string code) => _h.SignIn.TotpAsync(name, code, "10.8.0.1", None);

    /// <summary>Creates an account that needs MFA and enrols it with the current step's code; returns the secret.</summary>
    private async Task<byte[]> EnrolAsync(string name)
    {
        await _h.CreateAsync(name, Password, "physician");
        Assert.IsType<SignInOutcome.NeedsMfaEnrolment>(await PasswordAsync(name));
        var enrolment = (await _h.SignIn.BeginEnrolmentAsync(name, None))!;
        var secret = Base32Encoding.ToBytes(enrolment.Secret);
        Assert.IsType<SignInOutcome.Succeeded>(await _h.SignIn.CompleteEnrolmentAsync(name, Code(secret, Step), "10.8.0.1", None));
        return secret;
    }

    [Fact]
    public async Task Enrolment_goes_from_password_to_qr_code_to_first_code_and_then_every_sign_in_asks_for_a_code()
    {
        await _h.CreateAsync("dr.enrol", Password, "physician");
        Assert.IsType<SignInOutcome.NeedsMfaEnrolment>(await PasswordAsync("dr.enrol"));

        var enrolment = await _h.SignIn.BeginEnrolmentAsync("dr.enrol", None);

        Assert.NotNull(enrolment);
        Assert.Equal(32, enrolment.Secret.Length); // 160 bits in base32
        Assert.StartsWith("otpauth://totp/Wardline:dr.enrol?", enrolment.Uri, StringComparison.Ordinal);
        foreach (var part in new[] { "secret=" + enrolment.Secret, "issuer=Wardline", "algorithm=SHA1", "digits=6", "period=30" })
        {
            Assert.Contains(part, enrolment.Uri, StringComparison.Ordinal);
        }
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], enrolment.QrPng.Take(4));
        Assert.Contains("<svg", enrolment.QrSvg, StringComparison.Ordinal);
        var secret = Base32Encoding.ToBytes(enrolment.Secret);
        Assert.IsType<SignInOutcome.Failed>(await _h.SignIn.CompleteEnrolmentAsync("dr.enrol", "000000" == Code(secret, Step) ? "111111" : "000000", "10.8.0.1", None));
        var done = await _h.SignIn.CompleteEnrolmentAsync("dr.enrol", Code(secret, Step), "10.8.0.1", None);
        Assert.True(Assert.IsType<SignInOutcome.Succeeded>(done).Account.MfaEnrolled);
        Assert.True((await _h.Accounts.FindAsync("dr.enrol", None))!.MfaEnrolled);
        Assert.Equal(1, await _h.EventsAsync("MfaEnrolled", "dr.enrol"));

        _h.Time.Advance(TimeSpan.FromSeconds(30));
        Assert.IsType<SignInOutcome.NeedsMfa>(await PasswordAsync("dr.enrol"));
        Assert.Null(await _h.SignIn.BeginEnrolmentAsync("dr.enrol", None)); // enrolled: no new secret
        Assert.IsType<SignInOutcome.Succeeded>(await TotpAsync("dr.enrol", Code(secret, Step)));
        Assert.Equal(2, await _h.EventsAsync("SignIn", "dr.enrol", "succeeded"));
    }

    [Fact]
    public async Task A_code_is_accepted_one_step_either_side_of_now_and_only_once()
    {
        var secret = await EnrolAsync("dr.drift");
        var enrolled = Step;
        _h.Time.Advance(TimeSpan.FromSeconds(90)); // now enrolled + 3

        await PasswordAsync("dr.drift");
        Assert.IsType<SignInOutcome.Succeeded>(await TotpAsync("dr.drift", Code(secret, enrolled + 2))); // one step behind
        await PasswordAsync("dr.drift");
        Assert.IsType<SignInOutcome.Failed>(await TotpAsync("dr.drift", Code(secret, enrolled + 2))); // the same code again
        Assert.IsType<SignInOutcome.Succeeded>(await TotpAsync("dr.drift", Code(secret, enrolled + 4))); // one step ahead
        await PasswordAsync("dr.drift");
        Assert.IsType<SignInOutcome.Failed>(await TotpAsync("dr.drift", Code(secret, enrolled + 3))); // older than the last used

        _h.Time.Advance(TimeSpan.FromSeconds(90)); // now enrolled + 6
        await PasswordAsync("dr.drift");
        Assert.IsType<SignInOutcome.Failed>(await TotpAsync("dr.drift", Code(secret, enrolled + 4)));
        Assert.IsType<SignInOutcome.Failed>(await TotpAsync("dr.drift", Code(secret, enrolled + 8)));
        Assert.IsType<SignInOutcome.Succeeded>(await TotpAsync("dr.drift", Code(secret, enrolled + 6).Insert(3, " ")));
        Assert.Equal(2, await _h.CountAsync("SELECT COUNT(*) FROM security_events WHERE kind = 'MfaFailed' AND detail = 'code already used'"));
        Assert.Equal(4, await _h.EventsAsync("MfaFailed", "dr.drift", "failed"));
    }

    [Fact]
    public async Task A_code_alone_signs_no_one_in_and_the_second_step_closes_after_five_minutes()
    {
        var secret = await EnrolAsync("dr.alone");
        _h.Time.Advance(TimeSpan.FromSeconds(30));

        Assert.IsType<SignInOutcome.Failed>(await TotpAsync("dr.alone", Code(secret, Step)));

        Assert.IsType<SignInOutcome.NeedsMfa>(await PasswordAsync("dr.alone"));
        _h.Time.Advance(TimeSpan.FromMinutes(5));
        Assert.IsType<SignInOutcome.Failed>(await TotpAsync("dr.alone", Code(secret, Step)));
        await _h.CreateAsync("dr.noenrol", Password, "physician");
        Assert.Null(await _h.SignIn.BeginEnrolmentAsync("dr.noenrol", None));
        Assert.Null(await _h.SignIn.BeginEnrolmentAsync("nobody", None));
        Assert.Equal(2, await _h.CountAsync("SELECT COUNT(*) FROM security_events WHERE kind = 'MfaFailed' AND user_name = 'dr.alone' AND detail LIKE '%without a correct password%'"));
    }

    [Fact]
    public async Task Security_events_hold_no_password_code_or_secret()
    {
        await _h.CreateAsync("dr.quiet", Password, "physician");
        await PasswordAsync("dr.quiet");
        var enrolment = (await _h.SignIn.BeginEnrolmentAsync("dr.quiet", None))!;
        var secret = Base32Encoding.ToBytes(enrolment.Secret);
        var used = new List<string> { Code(secret, Step + 5) };
        await _h.SignIn.CompleteEnrolmentAsync("dr.quiet", used[0], "10.8.0.1", None);
        used.Add(Code(secret, Step));
        await _h.SignIn.CompleteEnrolmentAsync("dr.quiet", used[1], "10.8.0.1", None);
        _h.Time.Advance(TimeSpan.FromSeconds(30));
        await _h.SignIn.PasswordAsync("dr.quiet", "a wrong password here", "10.8.0.1", None);
        await PasswordAsync("dr.quiet");
        used.Add(Code(secret, Step));
        await TotpAsync("dr.quiet", used[2]);
        await TotpAsync("dr.quiet", used[2]);

        var details = new List<string>();
        await using (var c = await _h.Service<Wardline.Server.Modules.Records.Storage.SqlDialect>().OpenAsync(None))
        {
            await using var cmd = c.CreateCommand();
            cmd.CommandText = "SELECT kind, outcome, detail FROM security_events WHERE user_name = 'dr.quiet'";
            await using var r = await cmd.ExecuteReaderAsync();
            while (await r.ReadAsync()) details.Add($"{r.GetString(0)} {r.GetString(1)} {(r.IsDBNull(2) ? "" : r.GetString(2))}");
        }

        Assert.Equal(["AccountCreated", "MfaEnrolled", "MfaFailed", "SignIn", "SignInFailed"], details.Select(d => d.Split(' ')[0]).Distinct().Order());
        foreach (var secretText in used.Concat([Password, "a wrong password here", enrolment.Secret, Convert.ToHexString(secret)]))
        {
            Assert.DoesNotContain(details, d => d.Contains(secretText, StringComparison.OrdinalIgnoreCase));
        }
    }

    [Fact]
    public async Task Wrong_codes_count_as_failures_for_back_off()
    {
        await EnrolAsync("dr.guess");
        Assert.IsType<SignInOutcome.NeedsMfa>(await PasswordAsync("dr.guess"));
        var codes = new[] { "12345", "abcdef", "000003", "000004", "000005", "000006" };

        var results = new List<SignInOutcome>();
        foreach (var code in codes) results.Add(await TotpAsync("dr.guess", code));

        Assert.All(results.Take(5), r => Assert.IsType<SignInOutcome.Failed>(r));
        Assert.IsType<SignInOutcome.Throttled>(results[5]);
        Assert.Equal(5, await _h.CountAsync("SELECT COUNT(*) FROM sign_in_failures WHERE name = 'dr.guess' AND factor = 'totp'"));
    }

    [Fact]
    public async Task Resetting_mfa_makes_the_next_sign_in_enrol_a_new_app()
    {
        var secret = await EnrolAsync("dr.lostphone");

        Assert.IsType<AccountResult.Done>(await _h.Accounts.ResetMfaAsync("dr.lostphone", "admin", None));

        _h.Time.Advance(TimeSpan.FromSeconds(30));
        Assert.IsType<SignInOutcome.NeedsMfaEnrolment>(await PasswordAsync("dr.lostphone"));
        Assert.IsType<SignInOutcome.Failed>(await TotpAsync("dr.lostphone", Code(secret, Step)));
        Assert.NotNull(await _h.SignIn.BeginEnrolmentAsync("dr.lostphone", None));
        Assert.Equal(1, await _h.EventsAsync("MfaReset", "dr.lostphone"));
    }

    [Fact]
    public async Task A_secret_moved_onto_another_account_does_not_open()
    {
        var secret = await EnrolAsync("dr.victim");
        await EnrolAsync("dr.thief");
        await _h.Service<Wardline.Server.Modules.Records.Storage.GroupCommitter>().RunAsync(async (c, tx, ct) =>
        {
            await using var cmd = c.CreateCommand();
            cmd.Transaction = tx;
            cmd.CommandText = "UPDATE accounts SET mfa_key = (SELECT mfa_key FROM accounts WHERE name = 'dr.victim'), " +
                "mfa_secret = (SELECT mfa_secret FROM accounts WHERE name = 'dr.victim') WHERE name = 'dr.thief'";
            return await cmd.ExecuteNonQueryAsync(ct);
        });
        _h.Time.Advance(TimeSpan.FromSeconds(30));

        Assert.IsType<SignInOutcome.NeedsMfa>(await PasswordAsync("dr.thief"));
        Assert.IsType<SignInOutcome.Failed>(await TotpAsync("dr.thief", Code(secret, Step)));
    }

    [Fact]
    public async Task The_database_holds_no_mfa_secret_in_the_clear()
    {
        var secrets = new List<byte[]>();
        for (var i = 0; i < 3; i++) secrets.Add(await EnrolAsync("dr.sealed" + i));

        var stolen = await StolenBytesAsync();

        Assert.True(Has(stolen, "dr.sealed0"u8.ToArray()), "the search works: account names are in the clear");
        foreach (var (secret, i) in secrets.Select((s, i) => (s, i)))
        {
            var base32 = Base32Encoding.ToString(secret);
            Assert.False(Has(stolen, secret), $"secret {i} in raw bytes");
            Assert.False(Has(stolen, Encoding.ASCII.GetBytes(base32)), $"secret {i} in base32");
            Assert.False(Has(stolen, Encoding.Unicode.GetBytes(base32)), $"secret {i} in base32 UTF-16");
            Assert.False(Has(stolen, Encoding.ASCII.GetBytes(Convert.ToHexString(secret))), $"secret {i} in hex");
        }
    }

    /// <summary>What a thief of the storage would hold: the SQLite file and its log, or a dump of the PostgreSQL database.</summary>
    private async Task<byte[]> StolenBytesAsync()
    {
        if (kind == StoreKind.Sqlite)
        {
            var files = Directory.EnumerateFiles(_h.Store.Options.DataDirectory!, "wardline.db*").ToList();
            Assert.Contains(files, f => f.EndsWith("wardline.db", StringComparison.Ordinal));
            var bytes = new List<byte>();
            foreach (var file in files)
            {
                await using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                using var copy = new MemoryStream();
                await stream.CopyToAsync(copy);
                bytes.AddRange(copy.ToArray());
            }
            return [.. bytes];
        }
        var bin = Environment.GetEnvironmentVariable("WARDLINE_PG_BIN")
            ?? throw new InvalidOperationException("WARDLINE_PG_BIN is not set: run the tests with ./test.sh (scripts/services.sh exports it).");
        var admin = new NpgsqlConnectionStringBuilder(TestStore.AdminConnectionString());
        var psi = new ProcessStartInfo(Path.Combine(bin, "pg_dump")) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "-h", "127.0.0.1", "-p", admin.Port.ToString(), "-U", admin.Username ?? "postgres", "--no-password",
            new NpgsqlConnectionStringBuilder(_h.Store.PostgresConnectionString).Database! })
        {
            psi.ArgumentList.Add(a);
        }
        using var process = Process.Start(psi)!;
        using var dump = new MemoryStream();
        var errors = process.StandardError.ReadToEndAsync();
        await process.StandardOutput.BaseStream.CopyToAsync(dump);
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 0, await errors);
        return dump.ToArray();
    }

    private static bool Has(byte[] haystack, byte[] needle) => haystack.AsSpan().IndexOf(needle) >= 0;
}

public sealed class MfaOnSqlite() : MfaConformance(StoreKind.Sqlite);

public sealed class MfaOnPostgres() : MfaConformance(StoreKind.Postgres);

public sealed class MfaRequirementTests
{
    [Fact]
    public void Mfa_is_required_unless_every_role_is_optional_and_by_default_for_everyone()
    {
        var optional = new SignInOptions();
        optional.MfaOptionalRoles.Add("receptionist");
        var some = new MfaRequirement(Options.Create(optional));
        var none = new MfaRequirement(Options.Create(new SignInOptions()));
        var account = Account.New("x", "x");

        Assert.True(none.IsRequired(account with { Roles = ["receptionist"] }));
        Assert.False(some.IsRequired(account with { Roles = ["receptionist"] }));
        Assert.True(some.IsRequired(account with { Roles = ["receptionist", "physician"] }));
        Assert.True(some.IsRequired(account with { Roles = [] }));
    }
}
