using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Xml.Linq;
using Wardline.Crypto;
using Wardline.Server.Modules.Access.Identity;
using Wardline.Server.Modules.Access.OAuth;
using Wardline.Server.Modules.Console;
using Wardline.Server.Modules.Ledger;
using Wardline.Server.Modules.Records;
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

    [Fact]
    public async Task Keys_rotate_rewraps_every_other_wrapped_key_and_a_keyring_without_the_old_key_still_opens_them()
    {
        await using var store = await TestStore.CreateAsync(kind);
        await using var server = await TestServer.StartAsync(store.Options);
        var keys = server.Service<RecordKeys>();
        var committer = server.Service<GroupCommitter>();
        var oldKek = keys.ActiveKekId;
        await server.Client.CreateAsync("Patient", FhirTest.Patient("Wrapped"));

        // One of every kind, each sealed by its owner's code where the owner offers it.
        var mfa = server.Service<MfaSecrets>();
        var secret = "twenty bytes secret!"u8.ToArray();
        var (mfaKey, mfaSealed) = mfa.Seal("tester", secret);
        Assert.True(await server.Service<AccountStore>().StorePendingSecretAsync("tester", mfaKey, mfaSealed, CancellationToken.None));
        await server.Service<TokenKeys>().GetAsync(CancellationToken.None);
        await server.Service<TreeHeads>().PublishAsync(true, CancellationToken.None);
        var bgId = Guid.NewGuid().ToString("N");
        var bgContext = Encoding.UTF8.GetBytes("break-glass/" + bgId);
        using (var created = keys.Cipher.CreateDataKey(bgContext))
        {
            var sealedReason = keys.Cipher.Encrypt(created.DataKey, "patient collapsed in A&E"u8, bgContext);
            await committer.RunAsync(async (c, tx, ct) => await ExecAsync(c, tx,
                "INSERT INTO break_glass (id, user_name, patient, purpose, reason, reason_key, declared_at, expires_at) VALUES (@a, 'tester', 'p1', 'emergency', @b, @c, 1, 2)",
                ct, bgId, sealedReason, created.Wrapped));
        }
        var alertContext = Encoding.UTF8.GetBytes("monitor-alert/77");
        using (var created = keys.Cipher.CreateDataKey(alertContext))
        {
            var sealedNote = keys.Cipher.Encrypt(created.DataKey, "looked into it"u8, Encoding.UTF8.GetBytes("monitor-alert/77/note"));
            await committer.RunAsync(async (c, tx, ct) => await ExecAsync(c, tx,
                "INSERT INTO monitor_alert_events (alert_id, at, actor, kind, note, note_key) VALUES (77, 1, 'tester', 'comment', @a, @b)",
                ct, sealedNote, created.Wrapped));
        }
        var consoleSecret = new XElement("masterKey", new XElement("value", "c2VjcmV0"));
        var sealedConsole = new KeyringXmlEncryptor(keys).Encrypt(consoleSecret).EncryptedElement;
        var consoleXml = new XElement("key", new XAttribute("id", "k1"), new XElement("descriptor", sealedConsole)).ToString(SaveOptions.DisableFormatting);
        await committer.RunAsync(async (c, tx, ct) => await ExecAsync(c, tx,
            "INSERT INTO dataprotection_keys (name, xml, created) VALUES ('key-test', @a, 1)", ct, consoleXml));

        var rotate = await WardlineCli.RunAsync(["keys", "rotate", .. StoreArguments(store)]);
        Assert.True(rotate.ExitCode == 0, rotate.Output);
        var active = ReadUnprotected(store.Options.KeyringFile()).Active;
        Assert.NotEqual(oldKek, active);

        // A keyring holding only the new key: the old one, had it leaked, opens nothing written before the rotation.
        var newOnlyPath = Path.Combine(Path.GetTempPath(), "wl-newonly-" + Guid.NewGuid().ToString("N") + ".json");
        try
        {
            File.WriteAllText(newOnlyPath, WithoutKek(File.ReadAllText(store.Options.KeyringFile()), oldKek));
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(newOnlyPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            var newOnly = Keyring.Load(newOnlyPath, null);
            Assert.Equal([active], newOnly.KekIds);
            var cipher = new EnvelopeCipher(newOnly);
            var dialect = server.Service<SqlDialect>();
            await using var conn = await dialect.OpenAsync(CancellationToken.None);
            foreach (var column in WrappedKeyColumns.All)
            {
                var rows = 0;
                await using var cmd = conn.CreateCommand();
                cmd.CommandText = $"SELECT {string.Join(", ", column.IdColumns)}, {column.KeyColumn} FROM {column.Table} WHERE {column.KeyColumn} IS NOT NULL";
                await using var r = await cmd.ExecuteReaderAsync();
                while (await r.ReadAsync())
                {
                    var ids = Enumerable.Range(0, column.IdColumns.Count).Select(r.GetValue).ToArray();
                    var wrapped = (byte[])r.GetValue(column.IdColumns.Count);
                    Assert.Equal(active, cipher.WrappingKekId(wrapped));
                    using var _ = cipher.UnwrapDataKey(wrapped, column.Context(ids));
                    rows++;
                }
                Assert.True(rows > 0, $"no {column.Kind} to check");
            }
            await using (var cmd = conn.CreateCommand())
            {
                cmd.CommandText = "SELECT xml FROM dataprotection_keys WHERE name = 'key-test'";
                var xml = XElement.Parse((string)(await cmd.ExecuteScalarAsync())!);
                var wrapped = Convert.FromBase64String(xml.Descendants(KeyringXmlEncryptor.WrappedKeyName).Single().Value);
                Assert.Equal(active, cipher.WrappingKekId(wrapped));
                using var _ = cipher.UnwrapDataKey(wrapped, WrappedKeyColumns.DataProtectionContext);
                // ... and the console's own decryptor opens it.
                var opened = KeyringXmlEncryptor.Open(keys, xml.Descendants(KeyringXmlEncryptor.SealedName).Single());
                Assert.Equal(consoleSecret.ToString(), opened.ToString());
            }
            // Through the owners' code: the MFA secret, the break-glass reason, the alert note, the ledger.
            await using (var cmd = conn.CreateCommand())
            {
                cmd.CommandText = "SELECT mfa_key, mfa_secret FROM accounts WHERE name = 'tester'";
                await using var r = await cmd.ExecuteReaderAsync();
                Assert.True(await r.ReadAsync());
                Assert.Equal(secret, mfa.Open("tester", (byte[])r.GetValue(0), (byte[])r.GetValue(1)));
            }
            await using (var cmd = conn.CreateCommand())
            {
                cmd.CommandText = $"SELECT reason, reason_key FROM break_glass WHERE id = '{bgId}'";
                await using var r = await cmd.ExecuteReaderAsync();
                Assert.True(await r.ReadAsync());
                using var key = cipher.UnwrapDataKey((byte[])r.GetValue(1), bgContext);
                Assert.Equal("patient collapsed in A&E", Encoding.UTF8.GetString(cipher.Decrypt(key, (byte[])r.GetValue(0), bgContext)));
            }
            await using (var cmd = conn.CreateCommand())
            {
                cmd.CommandText = "SELECT note, note_key FROM monitor_alert_events WHERE alert_id = 77";
                await using var r = await cmd.ExecuteReaderAsync();
                Assert.True(await r.ReadAsync());
                using var key = cipher.UnwrapDataKey((byte[])r.GetValue(1), alertContext);
                Assert.Equal("looked into it", Encoding.UTF8.GetString(cipher.Decrypt(key, (byte[])r.GetValue(0), Encoding.UTF8.GetBytes("monitor-alert/77/note"))));
            }
        }
        finally
        {
            File.Delete(newOnlyPath);
        }
        Assert.NotNull(await server.Service<TreeHeads>().PublishAsync(true, CancellationToken.None));
        var verify = await WardlineCli.RunAsync(["ledger", "verify", .. StoreArguments(store)]);
        Assert.True(verify.ExitCode == 0, verify.Output);

        // The output counts every kind.
        foreach (var column in WrappedKeyColumns.All) Assert.Contains(column.Kind, rotate.Output, StringComparison.Ordinal);
        Assert.Contains(WrappedKeyColumns.DataProtectionKind, rotate.Output, StringComparison.Ordinal);
        // Re-running finds nothing left to re-wrap under the (newer) key it adds, and still succeeds.
        var again = await WardlineCli.RunAsync(["keys", "rotate", .. StoreArguments(store)]);
        Assert.True(again.ExitCode == 0, again.Output);
    }

    private static async Task<int> ExecAsync(System.Data.Common.DbConnection c, System.Data.Common.DbTransaction tx, string sql, CancellationToken ct, params object[] values)
    {
        await using var cmd = c.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = sql;
        for (var i = 0; i < values.Length; i++) RecordStore.Add(cmd, "@" + (char)('a' + i), values[i]);
        return await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>The keyring file (unprotected JSON) without <paramref name="kekId"/>: the Keyring API cannot drop a key.</summary>
    private static string WithoutKek(string json, string kekId)
    {
        var root = System.Text.Json.Nodes.JsonNode.Parse(json)!;
        var keks = root["keyring"]!["keks"]!.AsArray();
        foreach (var k in keks.Where(k => (string?)k!["id"] == kekId).ToList()) keks.Remove(k);
        return root.ToJsonString();
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
