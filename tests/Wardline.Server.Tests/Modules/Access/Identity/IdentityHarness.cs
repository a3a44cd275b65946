using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Wardline.Server.Hosting;
using Wardline.Server.Modules.Access;
using Wardline.Server.Modules.Access.Identity;
using Wardline.Server.Modules.Records.Storage;
using Wardline.Server.Tests.Infrastructure;

namespace Wardline.Server.Tests.Modules.Access.Identity;

/// <summary>A clock the test moves by hand.</summary>
public sealed class SettableTime(DateTimeOffset start) : TimeProvider
{
    private DateTimeOffset _now = start;

    public override DateTimeOffset GetUtcNow() => _now;

    public void Advance(TimeSpan by) => _now += by;
}

/// <summary>
/// The account services over a fresh store of either engine, as the server wires them (AddStores),
/// with a settable clock. Accounts whose every role is "receptionist" need no MFA here, so password
/// sign-in can be tested on its own; every other account needs MFA, as in the product.
/// </summary>
public sealed class IdentityHarness : IAsyncDisposable
{
    public const string NoMfaRole = "receptionist";

    private readonly ServiceProvider _services;

    private IdentityHarness(TestStore store, ServiceProvider services, SettableTime time)
    {
        Store = store;
        _services = services;
        Time = time;
    }

    public TestStore Store { get; }

    public SettableTime Time { get; }

    internal AccountService Accounts => Service<AccountService>();

    internal SignInService SignIn => Service<SignInService>();

    internal T Service<T>() where T : notnull => _services.GetRequiredService<T>();

    public static async Task<IdentityHarness> CreateAsync(StoreKind kind, TestStore? shared = null)
    {
        var store = shared ?? await TestStore.CreateAsync(kind);
        // Whole seconds on a TOTP step boundary: codes computed by the tests line up with the server's.
        var time = new SettableTime(new DateTimeOffset(2026, 11, 2, 8, 0, 0, TimeSpan.Zero));
        var services = new ServiceCollection();
        services.AddLogging(l => l.SetMinimumLevel(LogLevel.Warning));
        services.AddSingleton(Options.Create(store.Options));
        services.AddStores(store.Options);
        services.AddSingleton<TimeProvider>(time);
        services.Configure<SignInOptions>(o => o.MfaOptionalRoles.Add(NoMfaRole));
        var sp = services.BuildServiceProvider();
        await sp.GetRequiredService<RecordStore>().MigrateAsync(CancellationToken.None);
        return new IdentityHarness(store, sp, time);
    }

    /// <summary>Another process's view of the same store: new services, nothing cached.</summary>
    public Task<IdentityHarness> ReopenAsync() => CreateAsync(Store.Kind, Store);

    /// <summary>Creates an account with a password; MFA is needed unless <paramref name="roles"/> are all <see cref="NoMfaRole"/>.</summary>
    internal async Task<Account> CreateAsync(string name, string password, params string[] roles)
    {
        var result = await Accounts.CreateAsync(Account.New(name, "Test " + name) with { Roles = roles.Length > 0 ? roles : [NoMfaRole] }, password, "test", CancellationToken.None);
        return Assert.IsType<AccountResult.Done>(result).Account;
    }

    public Task<long> CountAsync(string sql) => Service<RecordStore>().CountAsync(sql, CancellationToken.None);

    /// <summary>Security events of one kind (and outcome) about <paramref name="user"/> (null: events that name no user).</summary>
    public Task<long> EventsAsync(string kind, string? user, string? outcome = null) =>
        CountAsync("SELECT COUNT(*) FROM security_events WHERE kind = '" + kind + "'"
            + (user is null ? " AND user_name IS NULL" : " AND user_name = '" + user + "'")
            + (outcome is null ? "" : " AND outcome = '" + outcome + "'"));

    internal AccessTokens Tokens => Service<AccessTokens>();

    public async ValueTask DisposeAsync()
    {
        await _services.DisposeAsync();
    }

    /// <summary>Disposes the services and the store (which drops a PostgreSQL database).</summary>
    public async Task DisposeWithStoreAsync()
    {
        await _services.DisposeAsync();
        await Store.DisposeAsync();
    }
}
