using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Wardline.Ledger;
using Wardline.Server.Modules.Records;
using Wardline.Server.Modules.Records.Storage;
using Wardline.Server.Tests.Infrastructure;
using static Wardline.Server.Tests.Modules.Ledger.Infrastructure.LedgerTestKit;

namespace Wardline.Server.Tests.Modules.Ledger;

/// <summary>A ledger of a few hundred entries, with a head signed on demand by an administrator.</summary>
public abstract class ProofFixture(StoreKind kind) : IAsyncLifetime
{
    public TestStore Store { get; private set; } = null!;

    public TestServer Server { get; private set; } = null!;

    public HttpClient Admin { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Store = await TestStore.CreateAsync(kind);
        Server = await TestServer.StartAsync(Store.SharedOptions());
        Admin = await ClientAsync(Server, "ledger.admin", "administrator");
        var patients = new List<string>();
        foreach (var batch in Enumerable.Range(0, 60).Chunk(10))
        {
            patients.AddRange(await Task.WhenAll(batch.Select(i => Server.Client.CreateAsync("Patient", FhirTest.Patient("Proof" + i)))));
        }
        await Task.WhenAll(patients.Take(40).Select(id => Server.Client.GetAsync($"Patient/{id}")));
    }

    public async Task DisposeAsync()
    {
        Admin.Dispose();
        await Server.DisposeAsync();
        await Store.DisposeAsync();
    }
}

public sealed class SqliteProofFixture() : ProofFixture(StoreKind.Sqlite);

public sealed class PostgresProofFixture() : ProofFixture(StoreKind.Postgres);

/// <summary>
/// The proofs API (/ledger/proof/inclusion, /ledger/proof/consistency, /ledger/head): every proof checks out
/// with the offline ProofVerifier against the root and against a head signed with the witness's pinned key;
/// bad parameters are a 400 with an OperationOutcome; a write's receipt leads to its entry.
/// </summary>
public abstract class ProofApiConformance(ProofFixture fixture)
{
    private TestServer Server => fixture.Server;

    [Fact]
    public async Task Inclusion_proofs_for_sample_indexes_and_sizes_verify_against_their_roots()
    {
        var size = await CurrentSizeAsync();
        Assert.True(size >= 200, $"the ledger holds only {size} entries");
        var checkedProofs = 0;
        foreach (var treeSize in new[] { 1L, 2, 3, 7, 8, 16, 17, 63, 64, 65, 100, 127, 128, 129, 199, size - 1, size })
        {
            foreach (var index in new[] { 0L, 1, treeSize / 2, treeSize - 2, treeSize - 1 }.Where(i => i >= 0 && i < treeSize).Distinct())
            {
                var proof = await GetJsonAsync(fixture.Admin, LedgerUri(Server, $"proof/inclusion?index={index}&size={treeSize}"));
                var leaf = Hex(proof["leafHash"]);
                var entry = Encoding.UTF8.GetBytes((string)proof["entry"]!);
                Assert.Equal(MerkleHash.Leaf(entry), leaf);
                var check = ProofVerifier.VerifyInclusion(index, treeSize, leaf, Path(proof["auditPath"]), Hex(proof["rootHash"]));
                Assert.True(check.Valid, $"index {index} of {treeSize}: {check.Problem}");
                Assert.Equal(index, (long)proof["index"]!);
                Assert.Equal(treeSize, (long)proof["treeSize"]!);
                checkedProofs++;
            }
        }
        Assert.True(checkedProofs > 60, $"{checkedProofs} proofs");
    }

    [Fact]
    public async Task Consistency_proofs_between_sample_sizes_verify_against_both_roots()
    {
        var size = await CurrentSizeAsync();
        var sizes = new[] { 1L, 2, 3, 4, 5, 15, 16, 17, 31, 64, 100, 150, size - 1, size };
        foreach (var first in sizes)
        {
            foreach (var second in sizes.Where(s => s >= first))
            {
                var proof = await GetJsonAsync(Server.Client, LedgerUri(Server, $"proof/consistency?first={first}&second={second}"));
                var check = ProofVerifier.VerifyConsistency(first, second, Hex(proof["firstRootHash"]), Hex(proof["secondRootHash"]), Path(proof["consistencyPath"]));
                Assert.True(check.Valid, $"{first} -> {second}: {check.Problem}");
                var firstRoot = await GetJsonAsync(Server.Client, LedgerUri(Server, $"proof/inclusion?index=0&size={first}"));
                Assert.Equal(Hex(firstRoot["rootHash"]), Hex(proof["firstRootHash"]));
            }
        }
    }

    [Fact]
    public async Task A_head_signed_on_demand_carries_the_pinned_key_and_proofs_verify_against_its_root()
    {
        var signed = await fixture.Admin.PostAsync(LedgerUri(Server, "head"), null);
        Assert.Equal(HttpStatusCode.OK, signed.StatusCode);
        var head = ParseHead((await signed.ReadJsonAsync()).AsObject());
        var pem = await File.ReadAllTextAsync(System.IO.Path.Combine(WitnessFolder(fixture.Store.Options), "key.pub"));
        var pinned = PemEncoding.TryFind(pem, out var fields) ? Convert.FromBase64String(pem[fields.Base64Data].ToString()) : throw new InvalidOperationException("no PEM");
        Assert.True(head.IsSignedBy(pinned));
        Assert.False((head with { Size = head.Size + 1 }).IsSignedBy(pinned));

        var latest = await GetJsonAsync(Server.Client, LedgerUri(Server, "head"));
        Assert.True(ParseHead(latest["head"]!.AsObject()).Size >= head.Size);
        Assert.Null((string?)latest["readOnly"]);
        Assert.Equal(Convert.ToBase64String(pinned), (string?)latest["publicKey"]);

        foreach (var index in new[] { 0L, head.Size / 3, head.Size - 1 })
        {
            var proof = await GetJsonAsync(Server.Client, LedgerUri(Server, $"proof/inclusion?index={index}&size={head.Size}"));
            var check = ProofVerifier.VerifyInclusion(index, head.Size, Hex(proof["leafHash"]), Path(proof["auditPath"]), head.Root);
            Assert.True(check.Valid, check.Problem);
        }
        var consistency = await GetJsonAsync(Server.Client, LedgerUri(Server, $"proof/consistency?first=10&second={head.Size}"));
        var tenRoot = Hex((await GetJsonAsync(Server.Client, LedgerUri(Server, "proof/inclusion?index=0&size=10")))["rootHash"]);
        Assert.True(ProofVerifier.VerifyConsistency(10, head.Size, tenRoot, head.Root, Path(consistency["consistencyPath"])).Valid);
    }

    [Fact]
    public async Task Only_an_administrator_or_an_officer_may_have_a_head_signed()
    {
        var refused = await Server.Client.PostAsync(LedgerUri(Server, "head"), null);

        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Contains("administrator", await refused.DiagnosticsAsync(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("proof/inclusion?index=0&size=0", "size must be between 1")]
    [InlineData("proof/inclusion?index=5&size=5", "index must be between 0")]
    [InlineData("proof/inclusion?index=-1&size=5", "index is required")]
    [InlineData("proof/inclusion?index=0&size=99999999", "size must be between 1")]
    [InlineData("proof/inclusion?size=5", "index is required")]
    [InlineData("proof/inclusion?index=abc&size=5", "index is required")]
    [InlineData("proof/inclusion?index=1&size=99999999999999999999999", "size is required")]
    [InlineData("proof/inclusion?index=1&index=2&size=5", "index is required")]
    [InlineData("proof/inclusion", "size is required")]
    [InlineData("proof/consistency?first=5&second=4", "first must be between 1 and second")]
    [InlineData("proof/consistency?first=0&second=4", "first must be between 1 and second")]
    [InlineData("proof/consistency?first=1&second=99999999", "second must be between 1")]
    [InlineData("proof/consistency?first=1", "second is required")]
    [InlineData("proof/consistency?first=%00&second=2", "first is required")]
    [InlineData("proof/consistency?first=1.5&second=2", "first is required")]
    public async Task Out_of_range_inverted_missing_or_garbage_parameters_are_a_400_with_an_operation_outcome(string query, string message)
    {
        var response = await Server.Client.GetAsync(LedgerUri(Server, query));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.StartsWith("application/fhir+json", response.Content.Headers.ContentType?.ToString());
        Assert.Contains(message, await response.DiagnosticsAsync(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("head")]
    [InlineData("proof/inclusion?index=0&size=1")]
    [InlineData("proof/consistency?first=1&second=2")]
    public async Task The_ledger_api_refuses_an_unauthenticated_caller_with_401(string query)
    {
        using var anonymous = Server.AnonymousClient();

        var response = await anonymous.GetAsync(LedgerUri(Server, query));

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("OperationOutcome", (string?)(await response.ReadJsonAsync())["resourceType"]);
    }

    [Fact]
    public async Task A_write_receipt_names_the_entry_that_holds_the_sha256_of_the_stored_content()
    {
        var created = await Server.Client.PostJsonAsync("Patient", FhirTest.Patient("Receipt"));
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var id = (string)(await created.ReadJsonAsync())["id"]!;
        var (index, count, treeSize) = Receipt(created);

        var proof = await GetJsonAsync(Server.Client, LedgerUri(Server, $"proof/inclusion?index={index}&size={treeSize}"));
        var entry = LedgerEntry.Decode(Encoding.UTF8.GetBytes((string)proof["entry"]!));
        Assert.True(ProofVerifier.VerifyInclusion(index, treeSize, Hex(proof["leafHash"]), Path(proof["auditPath"]), Hex(proof["rootHash"])).Valid);
        Assert.Equal(1, count);
        Assert.Equal("write", entry.Type);
        Assert.Equal("create", entry.Event);
        Assert.Equal($"Patient/{id}/_history/1", entry.Resource);
        Assert.Equal("tester", entry.User);
        Assert.Equal(await StoredSha256Async(id, 1), entry.Sha256);

        var updated = await Server.Client.PutJsonAsync($"Patient/{id}", FhirTest.Patient("Receipt", "Robin", id));
        Assert.Equal(HttpStatusCode.OK, updated.StatusCode);
        var second = Receipt(updated);
        var update = LedgerEntry.Decode(Encoding.UTF8.GetBytes((string)(await GetJsonAsync(Server.Client, LedgerUri(Server, $"proof/inclusion?index={second.Index}&size={second.TreeSize}")))["entry"]!));
        Assert.Equal(("update", $"Patient/{id}/_history/2"), (update.Event, update.Resource));
        Assert.Equal(await StoredSha256Async(id, 2), update.Sha256);
        Assert.NotEqual(entry.Sha256, update.Sha256);
    }

    [Fact]
    public async Task A_proof_shows_an_entry_only_to_the_user_it_is_about_and_to_auditors()
    {
        var created = await Server.Client.PostJsonAsync("Patient", FhirTest.Patient("Private"));
        var (index, _, treeSize) = Receipt(created);
        using var clerk = await ClientAsync(Server, "ledger.clerk", "billing_clerk");

        var theirs = await GetJsonAsync(clerk, LedgerUri(Server, $"proof/inclusion?index={index}&size={treeSize}"));
        var own = await GetJsonAsync(Server.Client, LedgerUri(Server, $"proof/inclusion?index={index}&size={treeSize}"));
        var audited = await GetJsonAsync(fixture.Admin, LedgerUri(Server, $"proof/inclusion?index={index}&size={treeSize}"));

        Assert.Null(theirs["entry"]);
        Assert.Equal(own["leafHash"]!.ToString(), theirs["leafHash"]!.ToString());
        Assert.True(ProofVerifier.VerifyInclusion(index, treeSize, Hex(theirs["leafHash"]), Path(theirs["auditPath"]), Hex(theirs["rootHash"])).Valid);
        Assert.Equal("tester", LedgerEntry.Decode(Encoding.UTF8.GetBytes((string)own["entry"]!)).User);
        Assert.Equal((string)own["entry"]!, (string)audited["entry"]!);
        var patient = LedgerEntry.Decode(Encoding.UTF8.GetBytes((string)own["entry"]!)).Resource!.Split('/')[1];
        Assert.Equal(1, await Server.Service<RecordStore>().CountAsync(
            $"SELECT COUNT(*) FROM access_log WHERE phase = 'audit' AND user_name = 'ledger.admin' AND patient = 'Patient/{patient}'", CancellationToken.None));
    }

    private async Task<string> StoredSha256Async(string id, int version)
    {
        var store = Server.Service<RecordStore>();
        var stored = await store.ReadVersionAsync("Patient", id, version, CancellationToken.None) ?? throw new InvalidOperationException("no version");
        var json = Server.Service<RecordKeys>().Open(stored)!;
        return Convert.ToHexStringLower(SHA256.HashData(json));
    }

    private async Task<long> CurrentSizeAsync() => (long)(await GetJsonAsync(Server.Client, LedgerUri(Server, "head")))["currentSize"]!;

    private static TreeHead ParseHead(JsonObject h) => new(
        (long)h["treeSize"]!, Hex(h["rootHash"]), DateTimeOffset.FromUnixTimeMilliseconds((long)h["timestampMs"]!), (string)h["keyId"]!,
        Convert.FromBase64String((string)h["signature"]!));

    private static byte[] Hex(JsonNode? node) => Convert.FromHexString((string)node!);

    private static List<byte[]> Path(JsonNode? node) => node!.AsArray().Select(Hex).ToList();
}

public sealed class ProofApiOnSqlite(SqliteProofFixture fixture) : ProofApiConformance(fixture), IClassFixture<SqliteProofFixture>;

public sealed class ProofApiOnPostgres(PostgresProofFixture fixture) : ProofApiConformance(fixture), IClassFixture<PostgresProofFixture>;
