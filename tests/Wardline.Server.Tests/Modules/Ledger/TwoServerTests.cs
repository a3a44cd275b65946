using System.Collections.Concurrent;
using System.Net;
using Wardline.Ledger;
using Wardline.Server.Tests.Infrastructure;
using static Wardline.Server.Tests.Modules.Ledger.Infrastructure.LedgerTestKit;

namespace Wardline.Server.Tests.Modules.Ledger;

/// <summary>
/// Two Wardline servers on one PostgreSQL under concurrent load from both: the database sequences their
/// appends into one tree, with no gaps or duplicates, and the heads either of them signs are of that one tree.
/// </summary>
public sealed class TwoServerTests : IAsyncLifetime
{
    private TestStore _store = null!;

    public async Task InitializeAsync() => _store = await TestStore.CreateAsync(StoreKind.Postgres);

    public async Task DisposeAsync()
    {
        ReleasePools();
        await _store.DisposeAsync();
    }

    [Fact]
    public async Task Two_servers_under_concurrent_load_append_to_one_tree_without_gaps_and_sign_heads_of_it()
    {
        var created = new ConcurrentBag<(string Server, string Id, long Index, long TreeSize)>();
        var reads = new ConcurrentDictionary<string, int>();
        long headA, headB;
        await using (var a = await StartAsync(_store))
        await using (var b = await StartAsync(_store))
        {
            async Task LoadAsync(TestServer server, string name, int worker)
            {
                for (var i = 0; i < 15; i++)
                {
                    var response = await server.Client.PostJsonAsync("Patient", FhirTest.Patient($"Two{name}{worker}x{i}"));
                    Assert.Equal(HttpStatusCode.Created, response.StatusCode);
                    var id = (string)(await response.ReadJsonAsync())["id"]!;
                    var (index, _, treeSize) = Receipt(response);
                    created.Add((name, id, index, treeSize));
                    var read = await server.Client.GetAsync($"Patient/{id}");
                    Assert.Equal(HttpStatusCode.OK, read.StatusCode);
                    reads.AddOrUpdate(id, 1, (_, n) => n + 1);
                }
            }
            var load = Enumerable.Range(0, 4).SelectMany(w => new[] { LoadAsync(a, "A", w), LoadAsync(b, "B", w) }).ToList();
            await Task.Delay(300);
            var midway = (await a.Service<Wardline.Server.Modules.Ledger.TreeHeads>().PublishAsync(force: true, CancellationToken.None))!;
            await Task.WhenAll(load);
            var last = (await b.Service<Wardline.Server.Modules.Ledger.TreeHeads>().PublishAsync(force: true, CancellationToken.None))!;
            (headA, headB) = (midway.Size, last.Size);

            // A proof from either server shows the midway head (signed by A) inside the later head (signed by B).
            var proof = await GetJsonAsync(a.Client, LedgerUri(a, $"proof/consistency?first={headA}&second={headB}"));
            var check = ProofVerifier.VerifyConsistency(headA, headB, midway.Root, last.Root,
                proof["consistencyPath"]!.AsArray().Select(n => Convert.FromHexString((string)n!)).ToList());
            Assert.True(check.Valid, check.Problem);
            Assert.Equal(Convert.ToHexStringLower(midway.Root), (string?)(await GetJsonAsync(b.Client, LedgerUri(b, $"proof/inclusion?index=0&size={headA}")))["rootHash"]);
        }

        var o = _store.Options;
        var size = await CountAsync(o, "SELECT size FROM ledger_state WHERE id = 1");
        Assert.Equal(size, await CountAsync(o, "SELECT COUNT(*) FROM ledger_entries"));
        Assert.Equal(size, await CountAsync(o, "SELECT COUNT(DISTINCT idx) FROM ledger_entries"));
        Assert.Equal(0, await CountAsync(o, "SELECT MIN(idx) FROM ledger_entries"));
        Assert.Equal(size - 1, await CountAsync(o, "SELECT MAX(idx) FROM ledger_entries"));

        Assert.Equal(120, created.Count);
        Assert.Equal(created.Count, created.Select(c => c.Index).Distinct().Count());
        Assert.Contains(created, c => c.Server == "A");
        Assert.Contains(created, c => c.Server == "B");
        foreach (var (_, id, index, _) in created)
        {
            Assert.Equal(index, await CountAsync(o, "SELECT idx FROM ledger_entries WHERE type = 'write' AND res_type = 'Patient' AND res_id = @id AND version = 1", ("@id", id)));
            Assert.Equal(reads[id], await CountAsync(o, "SELECT COUNT(*) FROM access_log WHERE phase = 'outcome' AND action = 'Read' AND res_id = @id AND status = 200", ("@id", id)));
            Assert.Equal(1, await CountAsync(o, "SELECT COUNT(*) FROM access_log WHERE phase = 'outcome' AND action = 'Create' AND res_id = @id", ("@id", id)));
        }
        Assert.True(headA < headB, $"{headA} < {headB}");
        Assert.True(await CountAsync(o, "SELECT COUNT(*) FROM ledger_heads") >= 2);

        var verify = await VerifyAsync(o);
        Assert.True(verify.ExitCode == 0, verify.Output);
        Assert.Matches(@"[2-9]\d* signed heads|1\d+ signed heads", verify.Flat);
    }
}
