using System.Net;
using Wardline.Server.Hosting;
using Wardline.Server.Tests.Infrastructure;
using static Wardline.Server.Tests.Modules.Ledger.Infrastructure.LedgerTestKit;

namespace Wardline.Server.Tests.Modules.Ledger;

/// <summary>
/// A storage fault while entries are appended (a trigger on ledger_entries that raises while a row of
/// test_fault says so): the request fails with 503, discloses nothing, and the write and its entries are
/// rolled back together; once the fault is gone the ledger verifies and requests succeed again.
/// </summary>
public abstract class StorageFaultConformance(StoreKind kind) : IAsyncLifetime
{
    private TestStore _store = null!;
    private TestServer _server = null!;

    private WardlineOptions Options => _store.Options;

    public async Task InitializeAsync()
    {
        _store = await TestStore.CreateAsync(kind);
        _server = await StartAsync(_store);
        if (kind == StoreKind.Sqlite)
        {
            await ExecAsync(Options, "CREATE TABLE test_fault (kind TEXT NOT NULL)");
            await ExecAsync(Options, """
                CREATE TRIGGER test_fault_ledger BEFORE INSERT ON ledger_entries
                WHEN EXISTS (SELECT 1 FROM test_fault WHERE kind = 'all' OR kind = NEW.type)
                BEGIN SELECT RAISE(ABORT, 'injected storage fault'); END
                """);
        }
        else
        {
            await ExecAsync(Options, "CREATE TABLE test_fault (kind TEXT NOT NULL)");
            await ExecAsync(Options, """
                CREATE FUNCTION test_fault_raise() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    IF EXISTS (SELECT 1 FROM test_fault WHERE kind = 'all' OR kind = NEW.type) THEN
                        RAISE EXCEPTION 'injected storage fault';
                    END IF;
                    RETURN NEW;
                END $$
                """);
            await ExecAsync(Options, "CREATE TRIGGER test_fault_ledger BEFORE INSERT ON ledger_entries FOR EACH ROW EXECUTE FUNCTION test_fault_raise()");
        }
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        ReleasePools();
        await _store.DisposeAsync();
    }

    [Fact]
    public async Task When_no_entry_can_be_appended_reads_and_writes_fail_with_503_and_disclose_nothing()
    {
        var existing = await _server.Client.CreateAsync("Patient", FhirTest.Patient("Faultless"));
        var condition = await _server.Client.CreateAsync("Condition", FhirTest.Condition(existing));
        var entries = await LedgerShapeAsync();

        await ExecAsync(Options, "INSERT INTO test_fault (kind) VALUES ('all')");
        var created = await _server.RefusedAsync(HttpStatusCode.ServiceUnavailable,
            new HttpRequestMessage(HttpMethod.Post, "Patient") { Content = FhirTest.Json(FhirTest.Patient("Unrecorded")) });
        var updated = await _server.RefusedAsync(HttpStatusCode.ServiceUnavailable,
            new HttpRequestMessage(HttpMethod.Put, $"Condition/{condition}") { Content = FhirTest.Json(FhirTest.Condition(existing, "44054006", "Diabetes mellitus type 2", id: condition)) });
        var read = await _server.Client.GetAsync($"Condition/{condition}");
        var readText = await read.Content.ReadAsStringAsync();
        var search = await _server.Client.GetAsync($"Condition?subject=Patient/{existing}");
        var searchText = await search.Content.ReadAsStringAsync();

        foreach (var outcome in new[] { created, updated })
        {
            Assert.Matches("could not be (recorded|committed).* nothing was (written|disclosed)", string.Join(" ", outcome.Diagnostics()));
        }
        Assert.Equal(HttpStatusCode.ServiceUnavailable, read.StatusCode);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, search.StatusCode);
        Assert.Contains("could not be recorded", readText, StringComparison.Ordinal);
        foreach (var text in new[] { readText, searchText, string.Join(" ", created.Diagnostics()), string.Join(" ", updated.Diagnostics()) })
        {
            Assert.Matches("could not be (recorded|committed)", text);
            Assert.DoesNotContain("Myocardial", text, StringComparison.Ordinal);
            Assert.DoesNotContain("Diabetes", text, StringComparison.Ordinal);
            Assert.DoesNotContain("Unrecorded", text, StringComparison.Ordinal);
            Assert.DoesNotContain("injected", text, StringComparison.Ordinal);
        }
        Assert.Equal(entries, await LedgerShapeAsync());

        await ExecAsync(Options, "DELETE FROM test_fault");
        await AssertRecoveredAsync(existing, condition);
    }

    [Fact]
    public async Task When_only_write_entries_fail_the_write_and_its_entry_are_rolled_back_together()
    {
        var existing = await _server.Client.CreateAsync("Patient", FhirTest.Patient("Halfway"));
        var condition = await _server.Client.CreateAsync("Condition", FhirTest.Condition(existing));
        var writes = await CountAsync(Options, "SELECT COUNT(*) FROM ledger_entries WHERE type = 'write'");

        await ExecAsync(Options, "INSERT INTO test_fault (kind) VALUES ('write')");
        var burst = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => _server.Client.PostJsonAsync("Patient", FhirTest.Patient("Unwritten" + i))));
        var updated = await _server.RefusedAsync(HttpStatusCode.ServiceUnavailable,
            new HttpRequestMessage(HttpMethod.Put, $"Condition/{condition}") { Content = FhirTest.Json(FhirTest.Condition(existing, "44054006", "Diabetes mellitus type 2", id: condition)) });
        var read = await _server.Client.GetAsync($"Condition/{condition}");

        foreach (var response in burst)
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
            var text = await response.Content.ReadAsStringAsync();
            Assert.Contains("nothing was written", text, StringComparison.Ordinal);
            Assert.DoesNotContain("Unwritten", text, StringComparison.Ordinal);
            Assert.False(response.Headers.Contains("X-Ledger-Receipt"));
        }
        Assert.Contains("nothing was written", string.Join(" ", updated.Diagnostics()), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, read.StatusCode);
        Assert.Equal(writes, await CountAsync(Options, "SELECT COUNT(*) FROM ledger_entries WHERE type = 'write'"));
        Assert.Equal(2, await CountAsync(Options, "SELECT COUNT(*) FROM resource_versions WHERE res_id IN (@p, @c)", ("@p", existing), ("@c", condition)));
        var shape = await LedgerShapeAsync();
        Assert.Equal(shape.Size, shape.Rows);

        await ExecAsync(Options, "DELETE FROM test_fault");
        await AssertRecoveredAsync(existing, condition);
    }

    /// <summary>The fault is gone: writes succeed with receipts, and the whole ledger verifies.</summary>
    private async Task AssertRecoveredAsync(string patient, string condition)
    {
        var again = await _server.Client.PostJsonAsync("Patient", FhirTest.Patient("Recovered"));
        Assert.Equal(HttpStatusCode.Created, again.StatusCode);
        Assert.True(again.Headers.Contains("X-Ledger-Receipt"));
        var put = await _server.Client.PutJsonAsync($"Condition/{condition}", FhirTest.Condition(patient, "44054006", "Diabetes mellitus type 2", id: condition));
        Assert.Equal(HttpStatusCode.OK, put.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await _server.Client.GetAsync($"Condition/{condition}")).StatusCode);
        var shape = await LedgerShapeAsync();
        Assert.Equal(shape.Size, shape.Rows);
        Assert.Equal(shape.Size - 1, shape.Max);

        await PublishHeadAsync(_server);
        var verify = await VerifyAsync(Options);
        Assert.True(verify.ExitCode == 0, verify.Output);
    }

    /// <summary>The recorded size, the row count and the highest index: equal (and one apart) when no half entry is left.</summary>
    private async Task<(long Size, long Rows, long Max)> LedgerShapeAsync() => (
        await CountAsync(Options, "SELECT size FROM ledger_state WHERE id = 1"),
        await CountAsync(Options, "SELECT COUNT(*) FROM ledger_entries"),
        await CountAsync(Options, "SELECT COALESCE(MAX(idx), -1) FROM ledger_entries"));
}

public sealed class StorageFaultOnSqlite() : StorageFaultConformance(StoreKind.Sqlite);

public sealed class StorageFaultOnPostgres() : StorageFaultConformance(StoreKind.Postgres);
