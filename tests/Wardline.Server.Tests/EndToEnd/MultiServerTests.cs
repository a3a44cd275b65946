using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Wardline.Server.Modules.Ledger;
using Wardline.Server.Modules.Records.Storage;
using Wardline.Server.Tests.Infrastructure;

namespace Wardline.Server.Tests.EndToEnd;

/// <summary>Several stateless Wardline servers on one PostgreSQL, as behind a load balancer.</summary>
public sealed class MultiServerTests : IAsyncLifetime
{
    private TestStore _store = null!;
    private TestServer _a = null!;
    private TestServer _b = null!;

    public async Task InitializeAsync()
    {
        _store = await TestStore.CreateAsync(StoreKind.Postgres);
        // Started together on an empty database: both run the migrations at once, and the keyring is created once.
        var a = TestServer.StartAsync(_store.Options, "server-a-user");
        var b = TestServer.StartAsync(_store.SharedOptions(), "server-b-user");
        await Task.WhenAll(a, b);
        (_a, _b) = (a.Result, b.Result);
    }

    public async Task DisposeAsync()
    {
        await _a.DisposeAsync();
        await _b.DisposeAsync();
        await _store.DisposeAsync();
    }

    [Fact]
    public async Task Two_servers_started_at_once_apply_each_migration_exactly_once()
    {
        var store = _a.Service<RecordStore>();
        Assert.Equal(Migrations.Latest, await store.CountAsync("SELECT COUNT(*) FROM schema_migrations", CancellationToken.None));
        Assert.Equal(Migrations.Latest, await store.CountAsync("SELECT MAX(version) FROM schema_migrations", CancellationToken.None));
        // Both servers answer, each with its own users' tokens.
        Assert.Equal(HttpStatusCode.OK, (await _a.Client.GetAsync("metadata")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await _b.Client.GetAsync("metadata")).StatusCode);
    }

    [Fact]
    public async Task Each_server_sees_the_other_servers_writes_immediately()
    {
        var family = "Shared" + Guid.NewGuid().ToString("N")[..8];
        var id = await _a.Client.CreateAsync("Patient", FhirTest.Patient(family));

        var readOnB = await _b.Client.GetAsync($"Patient/{id}");
        Assert.Equal(HttpStatusCode.OK, readOnB.StatusCode);
        var found = await (await _b.Client.GetAsync($"Patient?family={family}")).ReadJsonAsync();
        Assert.Equal(id, (string?)Assert.Single(found.Resources())["id"]);

        Assert.Equal(HttpStatusCode.OK, (await _b.Client.PutJsonAsync($"Patient/{id}", FhirTest.Patient(family + "b", id: id))).StatusCode);
        var readOnA = await (await _a.Client.GetAsync($"Patient/{id}")).ReadJsonAsync();
        Assert.Equal("2", (string?)readOnA["meta"]!["versionId"]);
        Assert.Equal(family + "b", (string?)readOnA["name"]![0]!["family"]);

        Assert.Equal(HttpStatusCode.NoContent, (await _a.Client.DeleteAsync($"Patient/{id}")).StatusCode);
        Assert.Equal(HttpStatusCode.Gone, (await _b.Client.GetAsync($"Patient/{id}")).StatusCode);
    }

    [Fact]
    public async Task Concurrent_updates_with_the_same_If_Match_on_two_servers_exactly_one_wins()
    {
        for (var round = 0; round < 5; round++)
        {
            var id = await _a.Client.CreateAsync("Patient", FhirTest.Patient("Race" + round));
            var attempts = Enumerable.Range(0, 8).Select(async i =>
            {
                var server = i % 2 == 0 ? _a : _b;
                using var request = new HttpRequestMessage(HttpMethod.Put, $"Patient/{id}") { Content = FhirTest.Json(FhirTest.Patient("Writer" + i, id: id)) };
                request.Headers.TryAddWithoutValidation("If-Match", "W/\"1\"");
                return (await server.Client.SendAsync(request)).StatusCode;
            });
            var statuses = await Task.WhenAll(attempts);

            Assert.Equal(1, statuses.Count(s => s == HttpStatusCode.OK));
            Assert.Equal(7, statuses.Count(s => s == HttpStatusCode.PreconditionFailed));
            var history = await (await _b.Client.GetAsync($"Patient/{id}/_history")).ReadJsonAsync();
            Assert.Equal(2, (int)history["total"]!);
        }
    }

    [Fact]
    public async Task Two_servers_making_the_ledger_key_at_once_store_one_key_and_both_sign_with_it()
    {
        // The race of a first start, run again and again: each round empties ledger_keys and gives each server a fresh
        // signer with a witness that has pinned nothing, and both make the key at the same moment.
        var dialect = _a.Service<SqlDialect>();
        for (var round = 0; round < 20; round++)
        {
            await using (var c = await dialect.OpenAsync(CancellationToken.None))
            await using (var cmd = c.CreateCommand())
            {
                cmd.CommandText = "DELETE FROM ledger_keys";
                await cmd.ExecuteNonQueryAsync();
            }
            var folder = Directory.CreateTempSubdirectory("wl-witness-").FullName;
            try
            {
                using var witnessA = new FolderWitness(Path.Combine(folder, "a"));
                using var witnessB = new FolderWitness(Path.Combine(folder, "b"));
                using var headsA = ActivatorUtilities.CreateInstance<TreeHeads>(_a.App.Services, witnessA);
                using var headsB = ActivatorUtilities.CreateInstance<TreeHeads>(_b.App.Services, witnessB);
                var keys = await Task.WhenAll(
                    Task.Run(() => headsA.PublicKeyAsync(CancellationToken.None)),
                    Task.Run(() => headsB.PublicKeyAsync(CancellationToken.None)));

                Assert.Equal(1, await _a.Service<RecordStore>().CountAsync("SELECT COUNT(*) FROM ledger_keys", CancellationToken.None));
                Assert.Equal(keys[0], keys[1]);
            }
            finally
            {
                Directory.Delete(folder, recursive: true);
            }
        }
    }
}
