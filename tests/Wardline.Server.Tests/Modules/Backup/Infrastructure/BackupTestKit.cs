using System.Diagnostics;
using System.Text.Json.Nodes;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Wardline.Backup;
using Wardline.Backup.Format;
using Wardline.Crypto;
using Wardline.Server.Hosting;
using Wardline.Server.Modules.Backup;
using Wardline.Server.Modules.Ledger;
using Wardline.Server.Modules.Records;
using Wardline.Server.Modules.Records.Storage;
using Wardline.Server.Tests.Infrastructure;

namespace Wardline.Server.Tests.Modules.Backup.Infrastructure;

/// <summary>Tests that change <see cref="BackupWriter"/>'s segment sizes (process-wide statics) run one at a time.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class BackupStaticsCollection
{
    public const string Name = "Backup segment sizes";
}

/// <summary>What the backup tests share: a store with a server, a folder target, restoring into another store and proving it.</summary>
internal static class BackupTestKit
{
    /// <summary>The records a backup test starts from: patients, conditions and observations, some updated, one deleted.</summary>
    internal sealed record Seeded(string Family, string Patient, string OtherPatient, string UpdatedCondition, string Condition, string DeletedObservation, IReadOnlyList<string> Observations);

    /// <summary>Options of a server on the store; heads are published only when a test asks, so the witness stands still between a backup and a restore.</summary>
    public static WardlineOptions ServerOptions(TestStore store)
    {
        var o = store.SharedOptions();
        o.Ledger.HeadIntervalSeconds = 3600;
        // The seed changes a confirmed diagnosis, which monitoring rightly alerts on: its AlertRaised entry would reach
        // the ledger at a moment of its own and make "nothing changed since the last backup" untrue at random.
        o.Monitoring.Enabled = false;
        return o;
    }

    public static Task<TestServer> StartAsync(TestStore store) => TestServer.StartAsync(ServerOptions(store));

    public static async Task<Seeded> SeedAsync(HttpClient client, int observations = 6)
    {
        var family = "Backup" + Guid.NewGuid().ToString("N")[..8];
        var patient = await client.CreateAsync("Patient", FhirTest.Patient(family, "Robin"));
        var other = await client.CreateAsync("Patient", FhirTest.Patient(family + "x", "Sam", birthDate: "1955-01-09", gender: "male"));
        var updated = await client.CreateAsync("Condition", FhirTest.Condition(patient));
        var condition = await client.CreateAsync("Condition", FhirTest.Condition(other, "44054006", "Diabetes mellitus type 2"));
        var put = await client.PutJsonAsync($"Condition/{updated}", FhirTest.Condition(patient, "22298006", "Myocardial infarction", "2024-03-06", updated));
        Assert.Equal(System.Net.HttpStatusCode.OK, put.StatusCode);
        var put2 = await client.PutJsonAsync($"Patient/{patient}", FhirTest.Patient(family, "Robin", patient, birthDate: "1980-04-03"));
        Assert.Equal(System.Net.HttpStatusCode.OK, put2.StatusCode);
        var obs = new List<string>();
        for (var i = 0; i < observations; i++)
            obs.Add(await client.CreateAsync("Observation", FhirTest.Observation(i % 2 == 0 ? patient : other, value: 60 + i, date: $"2024-05-{(i % 28) + 1:D2}T10:00:{i % 60:D2}Z")));
        var deleted = obs[^1];
        var del = await client.DeleteAsync($"Observation/{deleted}");
        Assert.True(del.IsSuccessStatusCode, $"delete answered {(int)del.StatusCode}");
        return new Seeded(family, patient, other, updated, condition, deleted, obs);
    }

    /// <summary>A few more writes after a backup: a new observation and an update of a condition.</summary>
    public static async Task<string> WriteMoreAsync(HttpClient client, Seeded seeded, string onset)
    {
        var o = await client.CreateAsync("Observation", FhirTest.Observation(seeded.Patient, value: 99, date: "2024-07-01T10:00:00Z"));
        var put = await client.PutJsonAsync($"Condition/{seeded.Condition}", FhirTest.Condition(seeded.OtherPatient, "44054006", "Diabetes mellitus type 2", onset, seeded.Condition));
        Assert.Equal(System.Net.HttpStatusCode.OK, put.StatusCode);
        return o;
    }

    public static Task<BackupRunResult> BackupAsync(TestServer server, IBackupStore target, bool full = false, BackupOptions? options = null) =>
        server.Service<BackupWriter>().RunAsync(target, options ?? new BackupOptions(), full, "test", null, CancellationToken.None);

    /// <summary>Full backups of a SQLite store as row segments, not a database image: for tests of what a damaged or reused segment does.</summary>
    public static BackupOptions RowSegments => new() { SqliteImage = false };

    public static Keyring KeyringOf(TestServer server) => server.Service<RecordKeys>().Keyring;

    public static ContentAuthenticator Authenticator(Keyring keyring) => new(keyring, BackupCatalog.ManifestPurpose);

    /// <summary>The store's database, opened as the restorer opens a destination.</summary>
    public static SqlDialect Dialect(TestStore store)
    {
        if (store.Kind == StoreKind.Postgres) return SqlDialect.Postgres(store.PostgresConnectionString!);
        Directory.CreateDirectory(store.Options.DataDirectory!);
        return SqlDialect.Sqlite(Path.Combine(store.Options.DataDirectory!, "wardline.db"));
    }

    public static string KeyringPath(TestStore store) => store.Options.KeyringPath ?? Path.Combine(store.Options.DataDirectory!, "keyring.json");

    public static string WitnessPath(TestStore store) => store.Options.Ledger.WitnessPath ?? Path.Combine(store.Options.DataDirectory!, "witness");

    /// <summary>
    /// Restores the manifest into the (empty) destination store, as <c>wardline restore</c> does, and gives the
    /// destination the source's keyring and a copy of its witness, so a server can start on it.
    /// </summary>
    public static async Task<RestoreReport> RestoreIntoAsync(IBackupStore target, Manifest manifest, TestStore destination, TestStore source, bool skipDamaged = false)
    {
        var keyring = Keyring.Load(KeyringPath(source), null);
        BackupRestorer.CheckKeys(manifest, keyring);
        RestoreReport report;
        await using (var dialect = Dialect(destination))
        {
            report = await BackupRestorer.RestoreAsync(target, manifest, dialect, new EnvelopeCipher(keyring), skipDamaged, null, CancellationToken.None);
        }
        var keyringCopy = KeyringPath(destination);
        Directory.CreateDirectory(Path.GetDirectoryName(keyringCopy)!);
        if (!File.Exists(keyringCopy)) File.Copy(KeyringPath(source), keyringCopy);
        CopyFolder(WitnessPath(source), WitnessPath(destination));
        return report;
    }

    /// <summary>Proves the restored store against the source's witness and the manifest; once proven, it may be served (its restore mark is cleared, as `wardline restore` does).</summary>
    public static async Task<RestoreVerdict> VerifyAsync(TestStore restored, Manifest manifest, string? witnessFolder)
    {
        var keyring = Keyring.Load(KeyringPath(restored), null);
        await using var dialect = Dialect(restored);
        using var witness = witnessFolder is null ? null : new FolderWitness(witnessFolder);
        var verdict = await RestoreCheck.VerifyAsync(dialect, new RecordKeys(keyring, null, NullLogger<RecordKeys>.Instance), witness, manifest, CancellationToken.None);
        if (verdict.Proven) await RestoreMarker.ClearAsync(dialect, CancellationToken.None);
        return verdict;
    }

    /// <summary>The ledger's recorded size and root in the store, read directly.</summary>
    public static async Task<(long Size, string Root)> LedgerStateAsync(TestStore store)
    {
        await using var dialect = Dialect(store);
        await using var c = await dialect.OpenAsync(CancellationToken.None);
        var (size, root) = await LedgerNodes.ReadStateAsync(c, null, forUpdate: false, CancellationToken.None);
        return (size, Convert.ToHexStringLower(root));
    }

    public static async Task<long> CountAsync(TestStore store, string sql)
    {
        await using var dialect = Dialect(store);
        await using var c = await dialect.OpenAsync(CancellationToken.None);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        return Convert.ToInt64(await cmd.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }

    public static void CopyFolder(string from, string to)
    {
        if (!Directory.Exists(from)) return;
        Directory.CreateDirectory(to);
        foreach (var file in Directory.GetFiles(from)) File.Copy(file, Path.Combine(to, Path.GetFileName(file)), overwrite: true);
    }

    /// <summary>Releases every pooled connection, so databases can be dropped and files removed.</summary>
    public static void ReleasePools()
    {
        SqliteConnection.ClearAllPools();
        NpgsqlConnection.ClearAllPools();
    }

    public static StoreKind Other(StoreKind kind) => kind == StoreKind.Sqlite ? StoreKind.Postgres : StoreKind.Sqlite;

    /// <summary>
    /// What a FHIR answer says about the records, without what differs between two servers of the same data
    /// (the base address, the bundle's own id, timestamp and links).
    /// </summary>
    public static async Task<string> AnswerAsync(TestServer server, string url)
    {
        var r = await server.Client.GetAsync(url);
        var text = (await r.Content.ReadAsStringAsync()).Replace(server.BaseUri.ToString(), "BASE/", StringComparison.Ordinal);
        if (!r.IsSuccessStatusCode) return $"{(int)r.StatusCode}";
        var body = JsonNode.Parse(text)!.AsObject();
        if ((string?)body["resourceType"] == "Bundle")
        {
            body.Remove("id");
            body.Remove("meta");
            body.Remove("link");
            body.Remove("timestamp");
        }
        return $"{(int)r.StatusCode} {body.ToJsonString()}";
    }

    /// <summary>Every answer the round-trip compares: read, vread, history and searches (by blind-indexed name, by reference).</summary>
    public static IReadOnlyList<string> Questions(Seeded s) =>
    [
        $"Patient/{s.Patient}", $"Patient/{s.Patient}/_history/1", $"Patient/{s.Patient}/_history",
        $"Condition/{s.UpdatedCondition}", $"Condition/{s.UpdatedCondition}/_history/1", $"Condition/{s.UpdatedCondition}/_history",
        $"Observation/{s.DeletedObservation}", $"Observation/{s.DeletedObservation}/_history",
        $"Observation/{s.Observations[0]}",
        $"Patient?name={s.Family}", $"Patient?family={s.Family}x",
        $"Condition?subject=Patient/{s.Patient}", $"Observation?subject=Patient/{s.Patient}", $"Observation?patient={s.OtherPatient}",
    ];

    public static async Task<List<string>> AskAllAsync(TestServer server, Seeded s)
    {
        var answers = new List<string>();
        foreach (var q in Questions(s)) answers.Add(q + " -> " + await AnswerAsync(server, q));
        return answers;
    }

    /// <summary>The objects a run stored itself (not carried over from earlier backups of the chain).</summary>
    public static List<ManifestObject> StoredBy(Manifest m) => [.. m.Objects.Where(o => o.Name.StartsWith($"segments/{m.Id}/", StringComparison.Ordinal))];
}

/// <summary>A real folder target in a temporary folder, removed on dispose.</summary>
internal sealed class FolderTarget : IAsyncDisposable
{
    public FolderTarget()
    {
        Folder = Directory.CreateTempSubdirectory("wardline-backup-target-").FullName;
        Uri = new Uri(Folder).AbsoluteUri;
        Store = BackupTargets.Open(Uri, new BackupTargetSettings());
    }

    public string Folder { get; }

    public string Uri { get; }

    public IBackupStore Store { get; }

    public string PathOf(string name) => Path.Combine(Folder, name.Replace('/', Path.DirectorySeparatorChar));

    public List<string> Manifests() =>
        Directory.Exists(Path.Combine(Folder, "manifests")) ? [.. Directory.GetFiles(Path.Combine(Folder, "manifests")).Select(f => Path.GetFileName(f)).Order(StringComparer.Ordinal)] : [];

    public async ValueTask DisposeAsync()
    {
        await Store.DisposeAsync();
        try
        {
            Directory.Delete(Folder, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>
/// A real store whose <see cref="PutAsync"/> fails as unreachable from the Nth call on, or for the names <c>refuse</c> picks:
/// a target that goes away half-way through a run (its lease, <see cref="BackupLease"/>, aside). Counts the objects it did store. <c>beforePut</c>, if given, runs
/// before each store (something else happening on the target while a run is under way).
/// </summary>
internal sealed class FailingPutStore(IBackupStore inner, int failFrom = int.MaxValue, Func<string, bool>? refuse = null, Func<string, Task>? beforePut = null) : IBackupStore
{
    private int _puts;
    private int _stored;

    public int Puts => _puts;

    public int Stored => _stored;

    public string Display => inner.Display;

    public BackupImmutability Immutability => inner.Immutability;

    public Task PrepareAsync(CancellationToken ct) => inner.PrepareAsync(ct);

    public async Task PutAsync(string name, ReadOnlyMemory<byte> content, DateTimeOffset? retainUntil, CancellationToken ct)
    {
        if (beforePut is not null) await beforePut(name);
        if (name.StartsWith(BackupLease.Prefix, StringComparison.Ordinal))
        {
            await inner.PutAsync(name, content, retainUntil, ct); // a run's lease: not one of the objects a run stores, counted or failed
            return;
        }
        if (Interlocked.Increment(ref _puts) >= failFrom || refuse?.Invoke(name) == true)
            throw new BackupStoreException(BackupStoreErrorKind.Unreachable, $"{Display} is unreachable: connection reset while storing {name} (injected)");
        await inner.PutAsync(name, content, retainUntil, ct);
        Interlocked.Increment(ref _stored);
    }

    public Task<byte[]> GetAsync(string name, CancellationToken ct) => inner.GetAsync(name, ct);

    public Task<BackupObjectInfo?> StatAsync(string name, CancellationToken ct) => inner.StatAsync(name, ct);

    public IAsyncEnumerable<BackupObjectInfo> ListAsync(string prefix, CancellationToken ct) => inner.ListAsync(prefix, ct);

    public Task DeleteAsync(string name, CancellationToken ct) => inner.DeleteAsync(name, ct);

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}

/// <summary>A server clock set ahead of the real one (a server whose clock is wrong).</summary>
internal sealed class SkewedClock(TimeSpan offset) : TimeProvider
{
    public override DateTimeOffset GetUtcNow() => System.GetUtcNow() + offset;
}

/// <summary>A tmpfs of a few KiB mounted on a fresh temporary folder (needs root, as test.sh has on CI); unmounted and removed on dispose.</summary>
internal sealed class TinyFilesystem : IDisposable
{
    public TinyFilesystem(int kibibytes)
    {
        Path = Directory.CreateTempSubdirectory("wardline-tiny-").FullName;
        Run("mount", "-t", "tmpfs", "-o", $"size={kibibytes}k", "tmpfs", Path);
    }

    public string Path { get; }

    public void Dispose()
    {
        Run("umount", Path);
        Directory.Delete(Path, recursive: true);
    }

    private static void Run(string program, params string[] arguments)
    {
        var info = new ProcessStartInfo(program) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in arguments) info.ArgumentList.Add(a);
        using var p = Process.Start(info) ?? throw new InvalidOperationException($"cannot start {program}");
        var error = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"`{program} {string.Join(' ', arguments)}` failed ({error.Trim()}); this test needs root, as ./test.sh has on CI.");
    }
}

/// <summary>A real store that runs <paramref name="before"/> once, just before the first manifest is stored: something else acting on the target while a run is in progress.</summary>
internal sealed class BeforeManifestStore(IBackupStore inner, Func<IBackupStore, Task> before) : IBackupStore
{
    private bool _done;

    public string Display => inner.Display;

    public BackupImmutability Immutability => inner.Immutability;

    public Task PrepareAsync(CancellationToken ct) => inner.PrepareAsync(ct);

    public async Task PutAsync(string name, ReadOnlyMemory<byte> content, DateTimeOffset? retainUntil, CancellationToken ct)
    {
        if (!_done && name.StartsWith("manifests/", StringComparison.Ordinal))
        {
            _done = true;
            await before(inner);
        }
        await inner.PutAsync(name, content, retainUntil, ct);
    }

    public Task<byte[]> GetAsync(string name, CancellationToken ct) => inner.GetAsync(name, ct);

    public Task<BackupObjectInfo?> StatAsync(string name, CancellationToken ct) => inner.StatAsync(name, ct);

    public IAsyncEnumerable<BackupObjectInfo> ListAsync(string prefix, CancellationToken ct) => inner.ListAsync(prefix, ct);

    public Task DeleteAsync(string name, CancellationToken ct) => inner.DeleteAsync(name, ct);

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}

/// <summary>A real store that holds every object under <c>prefix</c> locked (as an immutability policy or a default retention would) and refuses to delete them.</summary>
internal sealed class LockingStore(IBackupStore inner, string prefix) : IBackupStore
{
    public string Display => inner.Display;

    public BackupImmutability Immutability => inner.Immutability;

    public Task PrepareAsync(CancellationToken ct) => inner.PrepareAsync(ct);

    public Task PutAsync(string name, ReadOnlyMemory<byte> content, DateTimeOffset? retainUntil, CancellationToken ct) => inner.PutAsync(name, content, retainUntil, ct);

    public Task<byte[]> GetAsync(string name, CancellationToken ct) => inner.GetAsync(name, ct);

    public Task<BackupObjectInfo?> StatAsync(string name, CancellationToken ct) => inner.StatAsync(name, ct);

    public IAsyncEnumerable<BackupObjectInfo> ListAsync(string prefix, CancellationToken ct) => inner.ListAsync(prefix, ct);

    public Task DeleteAsync(string name, CancellationToken ct) =>
        name.StartsWith(prefix, StringComparison.Ordinal)
            ? throw new BackupStoreException(BackupStoreErrorKind.Locked, $"{name} on {Display} is locked until its retention date (injected)")
            : inner.DeleteAsync(name, ct);

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
