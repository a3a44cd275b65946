using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Wardline.Crypto;
using Wardline.Server.Modules.Records.Storage;
using Wardline.Server.Tests.Infrastructure;

namespace Wardline.Server.Tests.EndToEnd;

/// <summary>`wardline keys rotate` run as its own process while a server keeps reading and writing the same store.</summary>
public abstract class KeyRotationTests(StoreKind kind)
{
    [Fact]
    public async Task Keys_rotate_while_the_server_runs_rewraps_every_data_key_and_every_resource_still_reads()
    {
        await using var store = await TestStore.CreateAsync(kind);
        await using var server = await TestServer.StartAsync(store.Options);
        var ids = new ConcurrentQueue<string>();
        for (var i = 0; i < 20; i++) ids.Enqueue(await server.Client.CreateAsync("Patient", FhirTest.Patient("Before" + i)));
        var keyringPath = store.Options.KeyringFile();
        var oldKek = ReadUnprotected(keyringPath).Active;

        using var stop = new CancellationTokenSource();
        var failures = new ConcurrentQueue<string>();
        var traffic = Task.Run(async () =>
        {
            var n = 0;
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    ids.Enqueue(await server.Client.CreateAsync("Patient", FhirTest.Patient("During" + n)));
                    var some = ids.ElementAt(n % ids.Count);
                    var read = await server.Client.GetAsync($"Patient/{some}");
                    if (read.StatusCode != HttpStatusCode.OK) failures.Enqueue($"read Patient/{some}: {(int)read.StatusCode}");
                    var update = await server.Client.PutJsonAsync($"Patient/{some}", FhirTest.Patient("Updated" + n, id: some));
                    if (update.StatusCode != HttpStatusCode.OK) failures.Enqueue($"update Patient/{some}: {(int)update.StatusCode}");
                }
                catch (Exception ex) when (ex is HttpRequestException or InvalidOperationException)
                {
                    failures.Enqueue(ex.Message);
                }
                n++;
                await Task.Delay(20);
            }
        });

        var rotate = await WardlineCli.RunAsync(["keys", "rotate", .. StoreArguments(store)]);
        await Task.Delay(TimeSpan.FromSeconds(1.5)); // writes after the rotation go through the server's reloaded keyring
        await stop.CancelAsync();
        await traffic;

        Assert.True(rotate.ExitCode == 0, rotate.Output);
        Assert.Empty(failures);
        var (active, keks) = ReadUnprotected(keyringPath);
        Assert.Equal(2, keks.Count);
        Assert.Equal(keks[1], active);
        Assert.NotEqual(oldKek, active);
        Assert.Contains(active, rotate.Output, StringComparison.Ordinal);
        var records = server.Service<RecordStore>();
        Assert.True(await records.CountAsync("SELECT COUNT(*) FROM data_keys", CancellationToken.None) >= ids.Count);
        Assert.Equal(0, await records.CountAsync($"SELECT COUNT(*) FROM data_keys WHERE kek_id <> '{active}'", CancellationToken.None));
        foreach (var id in ids)
        {
            Assert.Equal(HttpStatusCode.OK, (await server.Client.GetAsync($"Patient/{id}")).StatusCode);
        }
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, KeyFile.Mode(keyringPath));
        // A new server process (a restart) reads everything with the rotated keyring too.
        await using var restarted = await TestServer.StartAsync(store.SharedOptions(), "restarted");
        Assert.Equal(HttpStatusCode.OK, (await restarted.Client.GetAsync($"Patient/{ids.First()}")).StatusCode);
    }

    private static string[] StoreArguments(TestStore store) => store.Kind == StoreKind.Sqlite
        ? ["--data", store.Options.DataDirectory!]
        : ["--db", store.PostgresConnectionString!, "--keyring", store.Options.KeyringPath!, "--witness", store.Options.Ledger.WitnessPath!];

    private static (string Active, IReadOnlyList<string> Keks) ReadUnprotected(string path)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
        Assert.False(doc.RootElement.GetProperty("protected").GetBoolean());
        var keyring = doc.RootElement.GetProperty("keyring");
        return (keyring.GetProperty("activeKek").GetString()!, [.. keyring.GetProperty("keks").EnumerateArray().Select(k => k.GetProperty("id").GetString()!)]);
    }
}

public sealed class KeyRotationOnSqlite() : KeyRotationTests(StoreKind.Sqlite);

public sealed class KeyRotationOnPostgres() : KeyRotationTests(StoreKind.Postgres);

/// <summary>A keyring protected by WARDLINE_KEYRING_PASSPHRASE, with the server, the rotation and the token command all real processes.</summary>
public sealed class ProtectedKeyringTests
{
    private const string Passphrase = "correct horse battery staple";

    [Fact]
    public async Task A_passphrase_protected_keyring_rotates_under_a_running_server_and_a_wrong_passphrase_is_refused_with_exit_code_3()
    {
        var folder = Directory.CreateTempSubdirectory("wardline-keys-").FullName;
        try
        {
            var data = Path.Combine(folder, "data");
            var keyringPath = Path.Combine(data, "keyring.json");
            var added = await WardlineCli.RunAsync(["users", "add", "--data", data, "keeper", "--role", "physician", "--tier", "1"], Passphrase);
            Assert.True(added.ExitCode == 0, added.Output);
            Assert.True(JsonDocument.Parse(File.ReadAllBytes(keyringPath)).RootElement.GetProperty("protected").GetBoolean());
            var token = await WardlineCli.RunAsync(["token", "--data", data, "--user", "keeper"], Passphrase);
            Assert.True(token.ExitCode == 0, token.Output);

            var port = FreePort.Next();
            using var serve = RunningProcess.Wardline(["serve", "--data", data, "--urls", $"http://127.0.0.1:{port}"], Passphrase);
            var baseUri = new Uri($"http://127.0.0.1:{port}/fhir/");
            await serve.WaitForHttpAsync(new Uri(baseUri, "metadata"), TimeSpan.FromSeconds(60));
            using var client = new HttpClient { BaseAddress = baseUri };
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token.Output.Trim());
            var ids = new List<string>();
            for (var i = 0; i < 5; i++) ids.Add(await client.CreateAsync("Patient", FhirTest.Patient("Locked" + i)));

            var wrong = await WardlineCli.RunAsync(["keys", "rotate", "--data", data], "not the passphrase");
            var missing = await WardlineCli.RunAsync(["keys", "rotate", "--data", data]);
            var rotate = await WardlineCli.RunAsync(["keys", "rotate", "--data", data], Passphrase);
            ids.Add(await client.CreateAsync("Patient", FhirTest.Patient("AfterRotation")));

            Assert.Equal(3, wrong.ExitCode);
            Assert.Contains("wrong passphrase", wrong.Flat, StringComparison.Ordinal);
            Assert.Equal(3, missing.ExitCode);
            Assert.Contains("WARDLINE_KEYRING_PASSPHRASE", missing.Flat, StringComparison.Ordinal);
            Assert.True(rotate.ExitCode == 0, rotate.Output);
            var keyring = Keyring.Load(keyringPath, Passphrase);
            Assert.Equal(2, keyring.KekIds.Count);
            Assert.Equal(keyring.KekIds[1], keyring.ActiveKekId);
            Assert.True(JsonDocument.Parse(File.ReadAllBytes(keyringPath)).RootElement.GetProperty("protected").GetBoolean());
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, KeyFile.Mode(keyringPath));
            foreach (var id in ids)
            {
                Assert.Equal(HttpStatusCode.OK, (await client.GetAsync($"Patient/{id}")).StatusCode);
            }
            Assert.False(serve.HasExited);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task A_server_started_with_the_wrong_passphrase_stops_with_a_clear_keyring_error()
    {
        var folder = Directory.CreateTempSubdirectory("wardline-keys-").FullName;
        try
        {
            var data = Path.Combine(folder, "data");
            Assert.Equal(0, (await WardlineCli.RunAsync(["users", "add", "--data", data, "keeper"], Passphrase)).ExitCode);

            var serve = await WardlineCli.RunAsync(["serve", "--data", data, "--urls", $"http://127.0.0.1:{FreePort.Next()}"], "not the passphrase", TimeSpan.FromSeconds(30));

            Assert.Equal(3, serve.ExitCode);
            Assert.Contains("keyring error", serve.Flat, StringComparison.Ordinal);
            Assert.Contains("wrong passphrase", serve.Flat, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}

internal static class KeyFile
{
    public static UnixFileMode Mode(string path)
    {
        if (OperatingSystem.IsWindows()) throw new PlatformNotSupportedException("Key file modes are checked on Unix.");
        return File.GetUnixFileMode(path);
    }
}
