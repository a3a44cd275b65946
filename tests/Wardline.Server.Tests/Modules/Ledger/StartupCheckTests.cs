using System.Net;
using System.Text;
using Wardline.Ledger;
using Wardline.Server.Hosting;
using Wardline.Server.Tests.Infrastructure;
using Wardline.Server.Tests.Modules.Ledger.Infrastructure;
using static Wardline.Server.Tests.Modules.Ledger.Infrastructure.LedgerTestKit;

namespace Wardline.Server.Tests.Modules.Ledger;

/// <summary>
/// A server started on a damaged ledger goes read-only: changes answer 503 naming the problem and write
/// nothing, reads are still served and recorded, and no new head is vouched for in the witness.
/// </summary>
public abstract class StartupCheckConformance(StoreKind kind) : SeededLedgerStore(kind)
{
    [Fact]
    public async Task A_server_on_a_ledger_with_a_deleted_entry_refuses_writes_and_still_serves_recorded_reads()
    {
        await ExecAsync(Store.Options, "DELETE FROM ledger_entries WHERE idx = 2");

        await AssertReadOnlyAsync(Store.SharedOptions(), "entry 2 is missing");
    }

    [Fact]
    public async Task A_server_on_a_rewritten_ledger_refuses_writes_and_still_serves_recorded_reads()
    {
        var idx = await CountAsync(Store.Options, "SELECT MIN(idx) FROM ledger_entries WHERE type = 'write'");
        var entry = Encoding.UTF8.GetString((byte[])(await ScalarAsync(Store.Options, "SELECT entry FROM ledger_entries WHERE idx = @i", ("@i", idx)))!);
        var forged = Encoding.UTF8.GetBytes(entry.Replace("\"tester\"", "\"mallet\"", StringComparison.Ordinal));
        Assert.NotEqual(entry, Encoding.UTF8.GetString(forged));
        await ExecAsync(Store.Options, "UPDATE ledger_entries SET entry = @e, leaf = @l, user_name = 'mallet' WHERE idx = @i",
            ("@e", forged), ("@l", MerkleHash.Leaf(forged)), ("@i", idx));

        await AssertReadOnlyAsync(Store.SharedOptions(), "rewritten");
    }

    [Fact]
    public async Task A_server_on_a_database_rolled_back_behind_the_witness_refuses_writes_and_still_serves_recorded_reads()
    {
        await using var older = await Snapshot.TakeAsync(Store);
        await using (var server = await StartAsync(Store))
        {
            await SeedAsync(server.Client);
            await PublishHeadAsync(server);
        }
        var restored = await older.RestoreAsync();

        await AssertReadOnlyAsync(restored, "rolled back");
    }

    private async Task AssertReadOnlyAsync(WardlineOptions options, string problem)
    {
        ReleasePools();
        var witness = await WitnessSnapshotAsync(options);
        var headsBefore = await CountAsync(options, "SELECT COUNT(*) FROM ledger_heads");
        await using (var server = await TestServer.StartAsync(options))
        {
            var head = await GetJsonAsync(server.Client, LedgerUri(server, "head"));
            Assert.Contains(problem, (string?)head["readOnly"] ?? "<writable>", StringComparison.Ordinal);

            var entriesBefore = await CountAsync(options, "SELECT COUNT(*) FROM ledger_entries WHERE type = 'write'");
            var create = await server.RefusedAsync(HttpStatusCode.ServiceUnavailable,
                new HttpRequestMessage(HttpMethod.Post, "Patient") { Content = FhirTest.Json(FhirTest.Patient("Refused")) });
            var update = await server.RefusedAsync(HttpStatusCode.ServiceUnavailable,
                new HttpRequestMessage(HttpMethod.Put, $"Condition/{Seeded.Other}") { Content = FhirTest.Json(FhirTest.Condition(Seeded.Patient, "1234", "Changed", id: Seeded.Other)) });
            var delete = await server.RefusedAsync(HttpStatusCode.ServiceUnavailable, new HttpRequestMessage(HttpMethod.Delete, $"Condition/{Seeded.Updated}"));
            foreach (var outcome in new[] { create, update, delete })
            {
                var text = string.Join(" ", outcome.Diagnostics());
                Assert.Contains("read-only", text, StringComparison.Ordinal);
                Assert.Contains(problem, text, StringComparison.Ordinal);
                Assert.DoesNotContain("Refused", text, StringComparison.Ordinal);
            }
            Assert.Equal(entriesBefore, await CountAsync(options, "SELECT COUNT(*) FROM ledger_entries WHERE type = 'write'"));

            var outcomesBefore = await ReadOutcomesAsync(options);
            var read = await server.Client.GetAsync($"Condition/{Seeded.Updated}");
            Assert.Equal(HttpStatusCode.OK, read.StatusCode);
            Assert.Equal("Condition", (string?)(await read.ReadJsonAsync())["resourceType"]);
            Assert.Equal(outcomesBefore + 1, await ReadOutcomesAsync(options));

            using var admin = await ClientAsync(server, "ledger.admin", "administrator");
            var signed = await admin.PostAsync(LedgerUri(server, "head"), null);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, signed.StatusCode);
            Assert.Contains(problem, await signed.DiagnosticsAsync(), StringComparison.Ordinal);
        }
        Assert.Equal(headsBefore, await CountAsync(options, "SELECT COUNT(*) FROM ledger_heads"));
        Assert.Equal(witness, await WitnessSnapshotAsync(options));
    }

    private Task<long> ReadOutcomesAsync(WardlineOptions options) => CountAsync(options,
        "SELECT COUNT(*) FROM access_log WHERE phase = 'outcome' AND action = 'Read' AND res_id = @id AND status = 200", ("@id", Seeded.Updated));
}

public sealed class StartupCheckOnSqlite() : StartupCheckConformance(StoreKind.Sqlite);

public sealed class StartupCheckOnPostgres() : StartupCheckConformance(StoreKind.Postgres);
