using System.Text.Json.Nodes;
using Wardline.Server.Tests.Infrastructure;
using static Wardline.Server.Tests.Modules.Ledger.Infrastructure.LedgerTestKit;

namespace Wardline.Server.Tests.Modules.Records.Storage;

/// <summary>
/// A version of Wardline that adds a search parameter to a type re-indexes the resources of that type stored before it,
/// at start-up and before any request: a search on the new parameter finds them, and their access facts and care
/// relations are derived again. Here the "older version" is made by removing the parameter and what it indexed.
/// </summary>
public abstract class ReindexConformance(StoreKind kind) : IAsyncLifetime
{
    private TestStore _store = null!;

    public async Task InitializeAsync() => _store = await TestStore.CreateAsync(kind);

    public async Task DisposeAsync() => await _store.DisposeAsync();

    [Fact]
    public async Task Resources_stored_before_a_search_parameter_existed_are_found_by_it_after_the_next_start()
    {
        string order, practitioner, patient;
        await using (var first = await TestServer.StartAsync(_store.SharedOptions()))
        {
            Assert.Equal(0, await CountAsync(_store.Options, "SELECT COUNT(*) FROM search_params WHERE pending <> 0"));
            patient = await first.Client.CreateAsync("Patient", """{"resourceType":"Patient","name":[{"family":"Ng","given":["Li"]}]}""");
            practitioner = await first.Client.CreateAsync("Practitioner", """{"resourceType":"Practitioner","name":[{"family":"Doe"}]}""");
            order = await first.Client.CreateAsync("ServiceRequest", $$"""
                {"resourceType":"ServiceRequest","status":"active","intent":"order","subject":{"reference":"Patient/{{patient}}"},
                 "authoredOn":"2026-11-20T10:00:00Z","performer":[{"reference":"Practitioner/{{practitioner}}"}]}
                """);
        }
        var rid = await CountAsync(_store.Options, "SELECT rid FROM resources WHERE res_type = 'ServiceRequest'");
        await ExecAsync(_store.Options, "DELETE FROM search_ref WHERE pid = (SELECT pid FROM search_params WHERE res_type = 'ServiceRequest' AND param = 'performer')");
        await ExecAsync(_store.Options, "DELETE FROM search_params WHERE res_type = 'ServiceRequest' AND param = 'performer'");
        await ExecAsync(_store.Options, "DELETE FROM care_relations WHERE rid = @r", ("@r", rid));

        await using var second = await TestServer.StartAsync(_store.SharedOptions());
        var found = JsonNode.Parse(await (await second.Client.GetAsync($"ServiceRequest?performer=Practitioner/{practitioner}")).Content.ReadAsStringAsync())!;

        Assert.Equal(1, (int)found["total"]!);
        Assert.Equal(order, (string?)found["entry"]![0]!["resource"]!["id"]);
        Assert.Equal(0, await CountAsync(_store.Options, "SELECT COUNT(*) FROM search_params WHERE pending <> 0"));
        Assert.Equal(1, await CountAsync(_store.Options, "SELECT COUNT(*) FROM care_relations WHERE rid = @r AND kind = 'consult-order' AND practitioner = @p",
            ("@r", rid), ("@p", practitioner)));
        Assert.Equal(1, await CountAsync(_store.Options, "SELECT COUNT(*) FROM resource_versions WHERE res_type = 'ServiceRequest'"));
    }
}

public sealed class ReindexOnSqlite() : ReindexConformance(StoreKind.Sqlite);

public sealed class ReindexOnPostgres() : ReindexConformance(StoreKind.Postgres);
