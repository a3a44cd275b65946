using System.Net;
using System.Security.Cryptography;
using System.Text;
using Wardline.Backup;
using Wardline.Ledger;
using Wardline.Server.Hosting;
using Wardline.Server.Modules.Ledger;
using Wardline.Server.Tests.Infrastructure;
using Wardline.Server.Tests.Modules.Ledger.Infrastructure;
using static Wardline.Server.Tests.Modules.Ledger.Infrastructure.LedgerTestKit;

namespace Wardline.Server.Tests.Modules.Ledger;

/// <summary>The real targets a blob witness is tested on: a folder, Azurite and s3rver (started by scripts/services.sh).</summary>
internal static class WitnessTargets
{
    public static BackupTargetSettings Quick(BackupTargetSettings s)
    {
        s.MaxRetries = 1;
        s.RetryBaseDelay = TimeSpan.FromMilliseconds(50);
        s.RetryMaxDelay = TimeSpan.FromMilliseconds(100);
        s.NetworkTimeout = TimeSpan.FromSeconds(5);
        return s;
    }

    public static string Azurite => Environment.GetEnvironmentVariable("WARDLINE_TEST_AZURITE")
        ?? throw new InvalidOperationException("WARDLINE_TEST_AZURITE is not set: run the tests with scripts/services.sh sourced, which starts Azurite.");

    public static string S3 => Environment.GetEnvironmentVariable("WARDLINE_TEST_S3")
        ?? throw new InvalidOperationException("WARDLINE_TEST_S3 is not set: run the tests with scripts/services.sh sourced, which starts s3rver.");

    public static string Unique(string stem) => $"{stem}-{Guid.NewGuid():N}"[..(stem.Length + 13)];

    public static (string Uri, BackupTargetSettings Settings) FreshAzure() =>
        ($"azure://devstoreaccount1/{Unique("witness")}/heads", Quick(new BackupTargetSettings { AzureConnectionString = Azurite }));
}

/// <summary>
/// The blob witness's contract on each kind of target: the first key is pinned, heads come back in size order, a proven
/// restore sets heads aside without deleting anything, and an object that is not what its name says is reported.
/// </summary>
public abstract class StoreWitnessConformance
{
    private protected abstract (string Uri, BackupTargetSettings Settings) FreshTarget();

    /// <summary>
    /// Whether the target refuses a second create of one name atomically. s3rver ignores If-None-Match and writes an object's
    /// file in place, so servers racing to create key.pub there can tear it for a reader (CI, 2026-11-30: "Expected hash not
    /// equal to calculated hash"); Azure and S3 themselves refuse the second create.
    /// </summary>
    private protected virtual bool CreateIsAtomic => true;

    private static StoreWitness Open((string Uri, BackupTargetSettings Settings) target) =>
        new(BackupTargets.Open(target.Uri, target.Settings), 0, TimeProvider.System);

    private static TreeHead Head(TreeHeadSigner signer, long size, DateTimeOffset at) =>
        signer.Sign(size, SHA256.HashData(BitConverter.GetBytes(size)), at);

    [Fact]
    public async Task An_empty_target_holds_no_key_and_no_heads()
    {
        await using var witness = Open(FreshTarget());

        Assert.Null(await witness.PinnedKeyAsync(CancellationToken.None));
        Assert.Empty(await witness.HeadsAsync(CancellationToken.None));
    }

    [Fact]
    public async Task Pins_the_first_key_and_lists_every_head_in_size_order()
    {
        var target = FreshTarget();
        using var first = TreeHeadSigner.Create();
        using var second = TreeHeadSigner.Create();
        var t0 = DateTimeOffset.UtcNow;
        await using (var witness = Open(target))
        {
            await witness.PublishAsync(Head(first, 9, t0.AddSeconds(2)), first.PublicKey, CancellationToken.None);
            await witness.PublishAsync(Head(first, 1, t0), first.PublicKey, CancellationToken.None);
            await witness.PublishAsync(Head(first, 5, t0.AddSeconds(1)), first.PublicKey, CancellationToken.None);
            // Another key cannot replace the pin: the head is stored, and the verifier finds it is not signed by the pinned key.
            await witness.PublishAsync(Head(second, 12, t0.AddSeconds(3)), second.PublicKey, CancellationToken.None);
        }

        await using var reopened = Open(target);
        Assert.Equal(first.PublicKey, await reopened.PinnedKeyAsync(CancellationToken.None));
        var heads = await reopened.HeadsAsync(CancellationToken.None);
        Assert.Equal([1L, 5L, 9L, 12L], heads.Select(h => h.Size));
        Assert.All(heads.Take(3), h => Assert.True(h.IsSignedBy(first.PublicKey)));
        Assert.False(heads[^1].IsSignedBy(first.PublicKey));
    }

    [Fact]
    public async Task Servers_of_one_store_publishing_their_first_heads_at_once_pin_its_key_and_keep_every_head()
    {
        // Servers sharing a store sign with the one key the store holds: four of them race to pin it and publish heads of
        // the same size at the same millisecond (the signatures differ), and every head is its own object.
        var target = FreshTarget();
        using var signer = TreeHeadSigner.Create();
        var witnesses = Enumerable.Range(0, 4).Select(_ => Open(target)).ToList();
        try
        {
            var at = DateTimeOffset.UtcNow;
            if (CreateIsAtomic) await Task.WhenAll(witnesses.Select(w => Task.Run(() => w.PublishAsync(Head(signer, 3, at), signer.PublicKey, CancellationToken.None))));
            else foreach (var w in witnesses) await w.PublishAsync(Head(signer, 3, at), signer.PublicKey, CancellationToken.None);

            foreach (var w in witnesses) Assert.Equal(signer.PublicKey, await w.PinnedKeyAsync(CancellationToken.None));
            var heads = await witnesses[0].HeadsAsync(CancellationToken.None);
            Assert.Equal(4, heads.Count);
            Assert.All(heads, h => Assert.True(h.IsSignedBy(signer.PublicKey)));
            Assert.Equal(4, heads.Select(h => Convert.ToHexString(h.Signature)).Distinct().Count());
        }
        finally
        {
            foreach (var w in witnesses) await w.DisposeAsync();
        }
    }

    [Fact]
    public async Task The_newest_head_is_read_from_the_names_and_one_object()
    {
        var target = FreshTarget();
        using var signer = TreeHeadSigner.Create();
        var t0 = DateTimeOffset.UtcNow.AddMinutes(-5);
        await using (var witness = Open(target))
        {
            Assert.Null(await witness.NewestAsync(CancellationToken.None));
            foreach (var size in new long[] { 100, 7, 42 })
                await witness.PublishAsync(Head(signer, size, t0.AddSeconds(size)), signer.PublicKey, CancellationToken.None);
        }
        await using (var store = BackupTargets.Open(target.Uri, target.Settings))
        {
            // An older head altered in place would only be found by reading it; the newest is what start-up reads.
            await store.PutAsync("heads/00000000000000000001-0000000000001-00000000.json", Encoding.UTF8.GetBytes("{}"), null, CancellationToken.None);
        }

        await using var reopened = Open(target);
        Assert.Equal(100, (await reopened.NewestAsync(CancellationToken.None))!.Size);
        await Assert.ThrowsAsync<LedgerFormatException>(() => reopened.HeadsAsync(CancellationToken.None));
    }

    [Fact]
    public async Task A_witness_folder_given_as_a_container_is_refused_rather_than_read_as_empty()
    {
        var target = FreshTarget();
        await using (var store = BackupTargets.Open(target.Uri, target.Settings))
        {
            await store.PrepareAsync(CancellationToken.None);
            await store.PutAsync("heads.jsonl", Encoding.UTF8.GetBytes("{}\n"), null, CancellationToken.None);
        }

        await using var witness = Open(target);
        var ex = await Assert.ThrowsAsync<LedgerFormatException>(() => witness.NewestAsync(CancellationToken.None));
        Assert.Contains("is a witness folder", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_rebase_sets_aside_the_heads_beyond_its_size_and_later_heads_count_again()
    {
        var target = FreshTarget();
        using var signer = TreeHeadSigner.Create();
        await using var witness = Open(target);
        var t0 = DateTimeOffset.UtcNow.AddMinutes(-10);
        foreach (var size in new long[] { 4, 8, 16 })
            await witness.PublishAsync(Head(signer, size, t0.AddSeconds(size)), signer.PublicKey, CancellationToken.None);

        Assert.Null(await witness.RebaseAsync(16, CancellationToken.None));
        var marker = await witness.RebaseAsync(8, CancellationToken.None);

        Assert.NotNull(marker);
        Assert.Contains("rebases/", marker, StringComparison.Ordinal);
        Assert.Equal([4L, 8L], (await witness.HeadsAsync(CancellationToken.None)).Select(h => h.Size));
        // The restored store grows again: its new heads beyond 8 count, the old head at 16 stays set aside.
        await witness.PublishAsync(Head(signer, 12, DateTimeOffset.UtcNow.AddSeconds(1)), signer.PublicKey, CancellationToken.None);
        await using var reopened = Open(target);
        Assert.Equal([4L, 8L, 12L], (await reopened.HeadsAsync(CancellationToken.None)).Select(h => h.Size));
        Assert.Equal(signer.PublicKey, await reopened.PinnedKeyAsync(CancellationToken.None));
        // Nothing was deleted: the set-aside head is still in the target.
        await using var store = BackupTargets.Open(target.Uri, target.Settings);
        var names = new List<string>();
        await foreach (var o in store.ListAsync("heads/", CancellationToken.None)) names.Add(o.Name);
        Assert.Equal(4, names.Count);
    }

    [Fact]
    public async Task A_head_object_that_is_not_the_head_its_name_describes_is_reported_by_name()
    {
        var target = FreshTarget();
        using var signer = TreeHeadSigner.Create();
        await using (var witness = Open(target))
            await witness.PublishAsync(Head(signer, 2, DateTimeOffset.UtcNow), signer.PublicKey, CancellationToken.None);
        await using (var store = BackupTargets.Open(target.Uri, target.Settings))
        {
            await store.PrepareAsync(CancellationToken.None);
            // A head for size 7 stored under a name that says size 3: written by someone other than the witness.
            var forged = Head(signer, 7, DateTimeOffset.UtcNow).ToJson();
            await store.PutAsync("heads/00000000000000000003-0000000000001-deadbeef.json", forged, null, CancellationToken.None);
            await store.PutAsync("heads/00000000000000000004-0000000000001-deadbeef.json", Encoding.UTF8.GetBytes("not json"), null, CancellationToken.None);
        }

        await using var reopened = Open(target);
        var ex = await Assert.ThrowsAsync<LedgerFormatException>(() => reopened.HeadsAsync(CancellationToken.None));
        Assert.Contains("heads/0000000000000000000", ex.Message, StringComparison.Ordinal);
    }
}

public sealed class StoreWitnessOnFolder : StoreWitnessConformance, IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("wl-store-witness-").FullName;

    private protected override (string Uri, BackupTargetSettings Settings) FreshTarget() =>
        (new Uri(Path.Combine(_root, Guid.NewGuid().ToString("N"))).AbsoluteUri, new BackupTargetSettings());

    public void Dispose() => Directory.Delete(_root, recursive: true);
}

public sealed class StoreWitnessOnAzurite : StoreWitnessConformance
{
    private protected override (string Uri, BackupTargetSettings Settings) FreshTarget() => WitnessTargets.FreshAzure();
}

public sealed class StoreWitnessOnS3rver : StoreWitnessConformance
{
    private protected override bool CreateIsAtomic => false;

    private protected override (string Uri, BackupTargetSettings Settings) FreshTarget() =>
        ($"s3://{WitnessTargets.Unique("witness")}/heads", WitnessTargets.Quick(new BackupTargetSettings { S3Endpoint = WitnessTargets.S3, S3AccessKey = "S3RVER", S3SecretKey = "S3RVER" }));
}

/// <summary>A server whose witness is a blob container (Azurite): heads go there, a rollback is caught there, and a witness it cannot reach keeps it read-only.</summary>
public abstract class BlobWitnessServerConformance(StoreKind kind) : IAsyncLifetime
{
    private TestStore _store = null!;

    public async Task InitializeAsync() => _store = await TestStore.CreateAsync(kind);

    public async Task DisposeAsync()
    {
        ReleasePools();
        await _store.DisposeAsync();
    }

    private static WardlineOptions WithWitness(WardlineOptions o, string uri, BackupTargetSettings settings)
    {
        o.Ledger.WitnessPath = null;
        o.Ledger.WitnessTarget = uri;
        o.Ledger.WitnessStore = settings;
        return o;
    }

    [Fact]
    public async Task Heads_go_to_the_container_and_a_database_rolled_back_behind_them_is_refused_writes()
    {
        var (uri, settings) = WitnessTargets.FreshAzure();
        await using (var server = await TestServer.StartAsync(WithWitness(_store.SharedOptions(), uri, settings)))
        {
            await SeedAsync(server.Client);
            await PublishHeadAsync(server);
            Assert.Equal($"witness at {uri}", server.Service<TreeHeads>().Witness.Describe());
        }
        await using var older = await Snapshot.TakeAsync(_store);
        await using (var server = await TestServer.StartAsync(WithWitness(_store.SharedOptions(), uri, settings)))
        {
            await SeedAsync(server.Client);
            await PublishHeadAsync(server);
        }
        await using (var store = BackupTargets.Open(uri, settings))
        {
            var names = new List<string>();
            await foreach (var o in store.ListAsync("", CancellationToken.None)) names.Add(o.Name);
            Assert.Contains("key.pub", names);
            Assert.True(names.Count(n => n.StartsWith("heads/", StringComparison.Ordinal)) >= 2, string.Join(", ", names));
        }
        Assert.False(Directory.Exists(_store.Options.Ledger.WitnessPath ?? Path.Combine(_store.Options.DataDirectory!, "witness")));

        var restored = WithWitness(await older.RestoreAsync(), uri, settings);
        await using (var server = await TestServer.StartAsync(restored))
        {
            var head = await GetJsonAsync(server.Client, LedgerUri(server, "head"));
            Assert.Contains("rolled back", (string?)head["readOnly"] ?? "<writable>", StringComparison.Ordinal);
            var refused = await server.Client.PostAsync("Patient", FhirTest.Json(FhirTest.Patient("Refused")));
            Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
        }
    }

    [Fact]
    public async Task A_witness_container_that_cannot_be_reached_at_start_keeps_the_server_read_only_and_says_why()
    {
        var (uri, settings) = WitnessTargets.FreshAzure();
        settings.AzureConnectionString = System.Text.RegularExpressions.Regex.Replace(settings.AzureConnectionString!, @"BlobEndpoint=http://127\.0\.0\.1:\d+/", "BlobEndpoint=http://127.0.0.1:9/");
        await using var server = await TestServer.StartAsync(WithWitness(_store.SharedOptions(), uri, settings));

        var head = await GetJsonAsync(server.Client, LedgerUri(server, "head"));
        var problem = (string?)head["readOnly"] ?? "<writable>";
        Assert.Contains($"witness at {uri}", problem, StringComparison.Ordinal);
        Assert.Contains("cannot be read", problem, StringComparison.Ordinal);
        Assert.DoesNotContain("AccountKey", problem, StringComparison.Ordinal);
        var refused = await server.Client.PostAsync("Patient", FhirTest.Json(FhirTest.Patient("Refused")));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
    }

    [Fact]
    public async Task A_head_asked_for_while_the_container_is_gone_answers_503_naming_it_and_the_server_goes_on()
    {
        var (uri, settings) = WitnessTargets.FreshAzure();
        await using var server = await TestServer.StartAsync(WithWitness(_store.SharedOptions(), uri, settings));
        var container = new Uri(uri).AbsolutePath.Trim('/').Split('/')[0];
        // The client speaks the service version Azurite knows, as the product's store does.
        await new Azure.Storage.Blobs.BlobContainerClient(WitnessTargets.Azurite, container,
            new Azure.Storage.Blobs.BlobClientOptions(Azure.Storage.Blobs.BlobClientOptions.ServiceVersion.V2025_11_05)).DeleteAsync();

        using var admin = await ClientAsync(server, "witness.admin", "administrator");
        var signed = await admin.PostAsync(LedgerUri(server, "head"), null);

        Assert.Equal(HttpStatusCode.ServiceUnavailable, signed.StatusCode);
        var text = await signed.Content.ReadAsStringAsync();
        Assert.Contains($"witness at {uri}", text, StringComparison.Ordinal);
        Assert.DoesNotContain("AccountKey", text, StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Created, (await server.Client.PostAsync("Patient", FhirTest.Json(FhirTest.Patient("StillWriting")))).StatusCode);
    }

    [Fact]
    public async Task A_witness_folder_and_a_witness_container_together_are_refused_by_name()
    {
        var options = _store.SharedOptions();
        options.Ledger.WitnessPath = Path.Combine(_store.Folder, "w");
        options.Ledger.WitnessTarget = "azure://devstoreaccount1/witness";
        options.Ledger.WitnessRetainDays = -1;

        var problems = options.Validate();

        Assert.Contains(problems, p => p.Contains("Set one of Wardline:Ledger:WitnessPath and WitnessTarget", StringComparison.Ordinal));
        // The witness's credentials are its own: the message names its settings, and the backup's environment variables are not read.
        Assert.Contains(problems, p => p.StartsWith("Wardline:Ledger:WitnessTarget: ", StringComparison.Ordinal) && p.Contains("set Wardline:Ledger:WitnessStore:AzureConnectionString.", StringComparison.Ordinal));
        Assert.Contains(problems, p => p.Contains("WitnessRetainDays must be between 0 and 36500", StringComparison.Ordinal));
    }
}

public sealed class BlobWitnessServerOnSqlite() : BlobWitnessServerConformance(StoreKind.Sqlite);

public sealed class BlobWitnessServerOnPostgres() : BlobWitnessServerConformance(StoreKind.Postgres);
