using System.Net;
using System.Text;
using System.Xml.Linq;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.AuthenticatedEncryption.ConfigurationModel;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.Extensions.Options;
using Wardline.Crypto;
using Wardline.Server.Hosting;
using Wardline.Server.Modules.Console;
using Wardline.Server.Modules.Records;
using Wardline.Server.Modules.Records.Storage;
using Wardline.Server.Tests.Infrastructure;
using Wardline.Server.Tests.Modules.Access.OAuth;

namespace Wardline.Server.Tests.Console;

/// <summary>
/// The console's Data Protection key ring lives in the store (dataprotection_keys), each key's secret sealed under
/// the keyring: a session signed in on one server is accepted by every server sharing the store and keyring, and
/// after a restart; the rows hold no key material; and a server with another keyring opens none of the keys, so an
/// old cookie only leads back to the sign-in page. Servers are <see cref="OAuthServer"/>s (hospital policy; physicians
/// sign in with a password alone, through the real form).
/// </summary>
public sealed class ConsoleKeyPersistenceTests
{
    private const string User = "dr.keys";

    [Theory]
    [InlineData(StoreKind.Postgres)]
    [InlineData(StoreKind.Sqlite)]
    public async Task A_session_and_a_form_of_one_server_are_accepted_by_another_server_on_the_same_store(StoreKind kind)
    {
        await using var store = await TestStore.CreateAsync(kind);
        await using var a = await OAuthServer.StartAsync(store, store.Options);
        await using var b = await OAuthServer.StartAsync(store, store.SharedOptions());
        await a.CreatePhysicianAsync(User);
        var cookies = new CookieContainer();
        using var onA = Browser(a, cookies);
        using var onB = Browser(b, cookies);

        await OAuthServer.SignInAsync(onA, User);

        await AssertSignedInAsync(onB);
        // A page of server A posted to server B: its anti-forgery token opens there too, and B signs the session out.
        var token = await AntiforgeryTokenAsync(onA, "/console");
        var signOut = await onB.PostAsync("/console/sign-out", new FormUrlEncodedContent([KeyValuePair.Create("__RequestVerificationToken", token)]));
        Assert.Equal(HttpStatusCode.Redirect, signOut.StatusCode);
        Assert.Equal(ConsoleAuth.SignInPath + "?signed-out=1", signOut.Headers.Location?.OriginalString);
        await AssertSentToSignInAsync(onA);
    }

    [Theory]
    [InlineData(StoreKind.Sqlite)]
    [InlineData(StoreKind.Postgres)]
    public async Task A_session_survives_a_restart_of_the_server(StoreKind kind)
    {
        await using var store = await TestStore.CreateAsync(kind);
        var cookies = await SignedInOnAServerSinceStoppedAsync(store);

        await using var restarted = await OAuthServer.StartAsync(store, store.SharedOptions());
        using var again = Browser(restarted, cookies);

        await AssertSignedInAsync(again);
    }

    [Theory]
    [InlineData(StoreKind.Sqlite)]
    [InlineData(StoreKind.Postgres)]
    public async Task The_stored_keys_hold_no_key_material_in_the_clear_only_envelopes_the_keyring_opens(StoreKind kind)
    {
        await using var store = await TestStore.CreateAsync(kind);
        await using var server = await OAuthServer.StartAsync(store, store.Options);
        await server.CreatePhysicianAsync(User);
        using var browser = Browser(server, new CookieContainer());
        await OAuthServer.SignInAsync(browser, User);
        // The master keys as Data Protection holds them in memory, to look for in the rows.
        var inMemory = server.Service<IKeyManager>().GetAllKeys().ToDictionary(k => k.KeyId, k => MasterKey(k.Descriptor.ExportToXml().SerializedDescriptorElement));
        Assert.NotEmpty(inMemory);

        var rows = await RowsAsync(server.Service<SqlDialect>());

        var keyRows = rows.Where(r => r.Name.StartsWith("key-", StringComparison.Ordinal)).ToList();
        Assert.Equal(inMemory.Count, keyRows.Count);
        var recordKeys = server.Service<RecordKeys>();
        foreach (var (name, xml) in keyRows)
        {
            var key = XElement.Parse(xml);
            var keyId = Guid.Parse((string)key.Attribute("id")!);
            var masterKey = inMemory[keyId];
            Assert.Equal("key-" + keyId.ToString("D"), name);
            Assert.DoesNotContain("masterKey", xml, StringComparison.Ordinal);
            Assert.DoesNotContain(masterKey, xml, StringComparison.Ordinal);
            var secret = Convert.FromBase64String(masterKey);
            Assert.Equal(-1, Encoding.UTF8.GetBytes(xml).AsSpan().IndexOf(secret.AsSpan(0, 16)));
            // Where the secret was, an envelope of the keyring: a data key wrapped by the active KEK, and the sealed secret.
            var encrypted = Assert.Single(key.Descendants(XName.Get("encryptedSecret", "http://schemas.asp.net/2015/03/dataProtection")));
            Assert.Equal(typeof(KeyringXmlDecryptor).FullName, ((string)encrypted.Attribute("decryptorType")!).Split(',')[0]);
            var envelope = Assert.Single(encrypted.Elements());
            Assert.Equal(KeyringXmlEncryptor.SealedName, envelope.Name);
            Assert.Equal(recordKeys.ActiveKekId, recordKeys.Cipher.WrappingKekId(Convert.FromBase64String(envelope.Element(KeyringXmlEncryptor.WrappedKeyName)!.Value)));
            Assert.Equal(masterKey, MasterKey(KeyringXmlEncryptor.Open(recordKeys, envelope)));
        }
        if (kind == StoreKind.Sqlite)
        {
            foreach (var path in Directory.GetFiles(store.Options.DataDirectory!, "wardline.db*"))
            {
                var bytes = await File.ReadAllBytesAsync(path);
                foreach (var masterKey in inMemory.Values)
                {
                    Assert.Equal(-1, bytes.AsSpan().IndexOf(Convert.FromBase64String(masterKey).AsSpan(0, 16)));
                    Assert.Equal(-1, bytes.AsSpan().IndexOf(Encoding.ASCII.GetBytes(masterKey)));
                }
            }
        }
    }

    [Theory]
    [InlineData(StoreKind.Sqlite)]
    [InlineData(StoreKind.Postgres)]
    public async Task A_server_with_another_keyring_opens_none_of_the_keys_and_sends_an_old_session_to_sign_in(StoreKind kind)
    {
        await using var store = await TestStore.CreateAsync(kind);
        var cookies = await SignedInOnAServerSinceStoppedAsync(store);

        // The store's database (a copy of the SQLite file; the PostgreSQL database itself) under a keyring of its own,
        // as whoever took the database would run it: the OAuth and ledger keys, which stop such a server (every request
        // would fail on them), emptied; the console's key ring left for it to use.
        var other = await AnotherKeyringAsync(store);
        await using var server = await OAuthServer.StartAsync(store, other);
        using var again = Browser(server, cookies);

        // The old session cookie is refused (the sign-in page renders: the old anti-forgery cookie is unreadable too, and
        // a new one is issued): the server could not open the stored key and made one of its own, sealed under its keyring.
        await AssertSentToSignInAsync(again);
        await AssertSentToSignInAsync(again);
        var recordKeys = server.Service<RecordKeys>();
        var envelopes = (await RowsAsync(server.Service<SqlDialect>()))
            .Where(r => r.Name.StartsWith("key-", StringComparison.Ordinal))
            .Select(r => XElement.Parse(r.Xml).Descendants(KeyringXmlEncryptor.SealedName).Single())
            .ToList();
        Assert.Equal(2, envelopes.Count);
        Assert.Single(envelopes, e => Opens(recordKeys, e));
    }

    [Fact]
    public async Task The_key_ring_is_the_stores_under_a_fixed_application_name_each_key_sealed_and_used_for_90_days()
    {
        await using var store = await TestStore.CreateAsync(StoreKind.Sqlite);
        await using var server = await OAuthServer.StartAsync(store, store.Options);

        var keyManagement = server.Service<IOptions<KeyManagementOptions>>().Value;
        Assert.IsType<ConsoleKeyRepository>(keyManagement.XmlRepository);
        // With an encryptor configured, Data Protection never writes a key unencrypted (nor warns that it would).
        Assert.IsType<KeyringXmlEncryptor>(keyManagement.XmlEncryptor);
        Assert.Equal(TimeSpan.FromDays(90), keyManagement.NewKeyLifetime);
        Assert.Equal(ConsoleModule.DataProtectionApplicationName, server.Service<IOptions<DataProtectionOptions>>().Value.ApplicationDiscriminator);
        var key = Assert.Single(server.Service<IKeyManager>().GetAllKeys());
        Assert.Equal(TimeSpan.FromDays(90), key.ExpirationDate - key.ActivationDate);
    }

    /// <summary>A browser's cookies after <see cref="User"/> signed in on a server of <paramref name="store"/> that has stopped since.</summary>
    private static async Task<CookieContainer> SignedInOnAServerSinceStoppedAsync(TestStore store)
    {
        var cookies = new CookieContainer();
        await using var first = await OAuthServer.StartAsync(store, store.Options);
        await first.CreatePhysicianAsync(User);
        using var browser = Browser(first, cookies);
        await OAuthServer.SignInAsync(browser, User);
        await AssertSignedInAsync(browser);
        return cookies;
    }

    private static HttpClient Browser(OAuthServer server, CookieContainer cookies) => ConsoleHttp.Browser(server.Origin, cookies);

    private static Task AssertSignedInAsync(HttpClient browser) => ConsoleHttp.AssertSignedInAsync(browser, User);

    private static Task AssertSentToSignInAsync(HttpClient browser) => ConsoleHttp.AssertSentToSignInAsync(browser);

    private static Task<string> AntiforgeryTokenAsync(HttpClient browser, string path) => ConsoleHttp.AntiforgeryTokenAsync(browser, path);

    /// <summary>The base64 key inside a descriptor's &lt;masterKey&gt;&lt;value&gt;.</summary>
    private static string MasterKey(XElement element) =>
        (element.Name.LocalName == "masterKey" ? element : element.Descendants("masterKey").Single()).Element("value")!.Value;

    private static bool Opens(RecordKeys keys, XElement envelope)
    {
        try
        {
            KeyringXmlEncryptor.Open(keys, envelope);
            return true;
        }
        catch (EnvelopeException)
        {
            return false;
        }
    }

    private static async Task<List<(string Name, string Xml)>> RowsAsync(SqlDialect dialect)
    {
        var rows = new List<(string, string)>();
        await using var c = await dialect.OpenAsync(CancellationToken.None);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT name, xml FROM dataprotection_keys ORDER BY created, name";
        await using var r = await cmd.ExecuteReaderAsync();
        while (await r.ReadAsync()) rows.Add((r.GetString(0), r.GetString(1)));
        return rows;
    }

    /// <summary>Options for a server on the store's data with a new keyring (and witness) of its own; its OAuth and ledger keys emptied.</summary>
    private static async Task<WardlineOptions> AnotherKeyringAsync(TestStore store)
    {
        var folder = Path.Combine(store.Folder, "elsewhere");
        WardlineOptions options;
        SqlDialect dialect;
        if (store.Kind == StoreKind.Postgres)
        {
            options = new WardlineOptions
            {
                PostgresConnectionString = store.PostgresConnectionString,
                KeyringPath = Path.Combine(folder, "keyring.json"),
                Ledger = { WitnessPath = Path.Combine(folder, "witness") },
            };
            dialect = SqlDialect.Postgres(store.PostgresConnectionString!);
        }
        else
        {
            var data = Directory.CreateDirectory(Path.Combine(folder, "data")).FullName;
            foreach (var file in Directory.GetFiles(store.Options.DataDirectory!, "wardline.db*"))
            {
                File.Copy(file, Path.Combine(data, Path.GetFileName(file)));
            }
            options = new WardlineOptions { DataDirectory = data };
            dialect = SqlDialect.Sqlite(Path.Combine(data, "wardline.db"));
        }
        await using (dialect)
        await using (var c = await dialect.OpenAsync(CancellationToken.None))
        await using (var cmd = c.CreateCommand())
        {
            cmd.CommandText = "DELETE FROM oauth_keys; DELETE FROM ledger_keys";
            await cmd.ExecuteNonQueryAsync();
        }
        return options;
    }
}
