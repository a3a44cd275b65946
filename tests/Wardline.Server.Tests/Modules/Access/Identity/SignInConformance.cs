using System.Diagnostics;
using Wardline.Server.Modules.Access.Identity;
using Wardline.Server.Tests.Infrastructure;

namespace Wardline.Server.Tests.Modules.Access.Identity;

/// <summary>Password sign-in: results, back-off, lockout, and unknown names that look like known ones.</summary>
public abstract class SignInConformance(StoreKind kind) : IAsyncLifetime
{
    private const string Password = "velvet lantern harbour";
    private const string Wrong = "not the right one at all";
    private IdentityHarness _h = null!;

    public async Task InitializeAsync() => _h = await IdentityHarness.CreateAsync(kind);

    public Task DisposeAsync() => _h.DisposeWithStoreAsync();

    private Task<SignInOutcome> SignInAsync(string name, string password, string source = "10.1.1.1") =>
        _h.SignIn.PasswordAsync(name, password, source, CancellationToken.None);

    [Fact]
    public async Task The_right_password_signs_in_whatever_the_case_and_spaces_of_the_name()
    {
        await _h.CreateAsync("front.desk", Password);

        var result = await SignInAsync("  Front.Desk ", Password);

        Assert.Equal("front.desk", Assert.IsType<SignInOutcome.Succeeded>(result).Account.Name);
        Assert.Equal(1, await _h.EventsAsync("SignIn", "front.desk", "succeeded"));
    }

    [Fact]
    public async Task An_account_that_needs_mfa_is_asked_to_enrol_after_the_right_password_and_nothing_else_is_told_before()
    {
        await _h.CreateAsync("dr.mfa", Password, "physician");

        Assert.IsType<SignInOutcome.Failed>(await SignInAsync("dr.mfa", Wrong));
        Assert.IsType<SignInOutcome.NeedsMfaEnrolment>(await SignInAsync("dr.mfa", Password));
        Assert.Equal(1, await _h.EventsAsync("SignIn", "dr.mfa", "pending"));
        Assert.Equal(0, await _h.EventsAsync("SignIn", "dr.mfa", "succeeded"));
    }

    [Fact]
    public async Task Back_off_starts_after_five_failures_from_one_source_and_doubles_up_to_fifteen_minutes()
    {
        await _h.CreateAsync("slow.down", Password);
        for (var i = 0; i < 5; i++)
        {
            Assert.IsType<SignInOutcome.Failed>(await SignInAsync("slow.down", Wrong));
        }

        var waits = new List<TimeSpan>();
        for (var i = 0; i < 12; i++)
        {
            var throttled = Assert.IsType<SignInOutcome.Throttled>(await SignInAsync("slow.down", Wrong));
            // Even the right password is not checked while the source must wait.
            Assert.IsType<SignInOutcome.Throttled>(await SignInAsync("slow.down", Password));
            waits.Add(throttled.RetryAfter);
            _h.Time.Advance(throttled.RetryAfter);
            Assert.IsType<SignInOutcome.Failed>(await SignInAsync("slow.down", Wrong));
        }

        Assert.Equal([1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900], waits.Select(w => w.TotalSeconds));
        Assert.Equal(17, await _h.EventsAsync("SignInFailed", "slow.down", "failed"));
        Assert.Equal(24, await _h.EventsAsync("SignInFailed", "slow.down", "throttled"));
        // Another source is not slowed down by this one, and the owner signs in from there.
        Assert.IsType<SignInOutcome.Succeeded>(await SignInAsync("slow.down", Password, "10.9.9.9"));
    }

    [Fact]
    public async Task The_hundredth_failure_within_an_hour_locks_the_account_and_the_ninety_ninth_does_not()
    {
        await _h.CreateAsync("locked.out", Password);
        for (var i = 1; i <= 99; i++)
        {
            // Spread over sources (as a distributed attack is): no back-off, only the account's count.
            Assert.IsType<SignInOutcome.Failed>(await SignInAsync("locked.out", Wrong, $"10.2.{i / 250}.{i % 250}"));
            _h.Time.Advance(TimeSpan.FromSeconds(30));
        }
        Assert.IsType<SignInOutcome.Succeeded>(await SignInAsync("locked.out", Password, "10.3.0.1"));

        Assert.IsType<SignInOutcome.LockedOut>(await SignInAsync("locked.out", Wrong, "10.3.0.2"));

        Assert.IsType<SignInOutcome.LockedOut>(await SignInAsync("locked.out", Password, "10.3.0.3"));
        Assert.Equal(1, await _h.EventsAsync("Lockout", "locked.out"));
        Assert.Equal(1, await _h.EventsAsync("SignInFailed", "locked.out", "locked-out"));
        Assert.Equal(100, await _h.CountAsync("SELECT COUNT(*) FROM sign_in_failures WHERE name = 'locked.out'"));
    }

    [Fact]
    public async Task A_lockout_ends_when_failures_age_out_of_the_hour_or_when_an_administrator_unlocks()
    {
        await _h.CreateAsync("locked.twice", Password);
        for (var i = 0; i < 100; i++)
        {
            await SignInAsync("locked.twice", Wrong, $"10.4.{i / 250}.{i % 250}");
        }
        Assert.IsType<SignInOutcome.LockedOut>(await SignInAsync("locked.twice", Password, "10.5.0.1"));

        _h.Time.Advance(TimeSpan.FromMinutes(59));
        Assert.IsType<SignInOutcome.LockedOut>(await SignInAsync("locked.twice", Password, "10.5.0.1"));
        _h.Time.Advance(TimeSpan.FromMinutes(1));
        Assert.IsType<SignInOutcome.Succeeded>(await SignInAsync("locked.twice", Password, "10.5.0.1"));

        for (var i = 0; i < 100; i++)
        {
            await SignInAsync("locked.twice", Wrong, $"10.6.{i / 250}.{i % 250}");
        }
        Assert.IsType<SignInOutcome.LockedOut>(await SignInAsync("locked.twice", Password, "10.5.0.1"));
        Assert.IsType<AccountResult.Done>(await _h.Accounts.UnlockAsync("locked.twice", "admin", CancellationToken.None));
        Assert.IsType<SignInOutcome.Succeeded>(await SignInAsync("locked.twice", Password, "10.5.0.1"));
    }

    [Fact]
    public async Task An_unknown_name_gets_the_same_answers_after_the_same_time_and_its_events_name_no_one()
    {
        await _h.CreateAsync("real.person", Password);
        // Warm both paths once (first use of the hasher, connection pools).
        await SignInAsync("real.person", Wrong, "10.7.0.1");
        await SignInAsync("ghost.person", Wrong, "10.7.0.1");

        var known = new List<Type>();
        var unknown = new List<Type>();
        var knownTime = new List<double>();
        var unknownTime = new List<double>();
        for (var i = 0; i < 7; i++)
        {
            var clock = Stopwatch.StartNew();
            known.Add((await SignInAsync("real.person", Wrong)).GetType());
            knownTime.Add(clock.Elapsed.TotalMilliseconds);
            clock.Restart();
            unknown.Add((await SignInAsync("ghost.person", Wrong)).GetType());
            unknownTime.Add(clock.Elapsed.TotalMilliseconds);
        }

        Assert.Equal(known, unknown);
        Assert.Equal(typeof(SignInOutcome.Throttled), unknown[^1]);
        // Timing over the attempts that were checked (hashed): medians within a factor of two.
        var checkedKnown = Median(knownTime.Take(4));
        var checkedUnknown = Median(unknownTime.Take(4));
        Assert.InRange(checkedUnknown / checkedKnown, 0.5, 2.0);
        Assert.True(checkedUnknown > 20, $"an unknown name is hashed too ({checkedUnknown:0} ms)");
        Assert.Equal(6, await _h.EventsAsync("SignInFailed", null, "failed"));
        Assert.Equal(0, await _h.CountAsync("SELECT COUNT(*) FROM security_events WHERE detail LIKE '%ghost%'"));
    }

    [Fact]
    public async Task Names_that_cannot_be_accounts_fail_like_any_wrong_name()
    {
        Assert.IsType<SignInOutcome.Failed>(await SignInAsync("", Wrong));
        Assert.IsType<SignInOutcome.Failed>(await SignInAsync(new string('a', 500), Wrong));
        Assert.IsType<SignInOutcome.Failed>(await SignInAsync("'; DROP TABLE accounts; --", Wrong));
        Assert.Equal(0, await _h.CountAsync("SELECT COUNT(*) FROM sign_in_failures"));
    }

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted[sorted.Count / 2];
    }
}

public sealed class SignInOnSqlite() : SignInConformance(StoreKind.Sqlite);

public sealed class SignInOnPostgres() : SignInConformance(StoreKind.Postgres);
