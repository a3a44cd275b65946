using System.Net;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Options;
using Wardline.Server.Hosting;
using Wardline.Server.Modules.Ledger;
using Wardline.Server.Modules.Ledger.Export;
using Wardline.Server.Modules.Records.Storage;
using Wardline.Server.Tests.EndToEnd;
using Wardline.Server.Tests.Infrastructure;

namespace Wardline.Server.Tests.Modules.Ledger;

/// <summary>
/// The ledger reaches a SIEM over TLS (RFC 5425) only when the SIEM proves who it is: its certificate must chain to the
/// configured authority and carry the expected name; with mutual TLS, Wardline presents its own certificate. A SIEM that
/// fails the check gets nothing and the cursor does not move. Certificates are made by the test (a CA, a server, a client).
/// </summary>
public sealed class SiemTlsTests : IAsyncLifetime, IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    private readonly string _dir = Directory.CreateTempSubdirectory("wl-siem-tls-").FullName;
    private readonly TestPki _hospital = new("Test Hospital CA");
    private readonly TestPki _other = new("Someone Else CA");
    private TestStore _store = null!;

    public async Task InitializeAsync() => _store = await TestStore.CreateAsync(StoreKind.Sqlite);

    public async Task DisposeAsync() => await _store.DisposeAsync();

    public void Dispose()
    {
        _hospital.Dispose();
        _other.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public async Task Entries_reach_a_siem_whose_certificate_chains_to_the_configured_authority_and_names_it()
    {
        using var cert = _hospital.Issue("siem", server: true, names: ["siem.hospital.example"]);
        await using var siem = SiemListener.Start(tls: new SslServerAuthenticationOptions { ServerCertificate = cert });
        await using var server = await StartAsync(Tls(siem, serverName: "siem.hospital.example"));

        var id = await server.Client.CreateAsync("Patient", FhirTest.Patient("Tls" + Guid.NewGuid().ToString("N")[..8]));
        Assert.Equal(HttpStatusCode.OK, (await server.Client.GetAsync($"Patient/{id}")).StatusCode);
        var size = await SizeAsync(server);
        await siem.WaitForIndexesAsync(size, Patience);

        Assert.Empty(siem.FramingErrors);
        Assert.Equal(0, siem.HandshakeFailures);
        var messages = siem.Messages.Select(SyslogMessage.Parse).ToList();
        Assert.Equal(Enumerable.Range(0, messages.Count).Select(i => (long)i), messages.Select(m => m.Index));
        Assert.Contains(messages, m => m.Cef.Get("act") == "Read" && m.Cef.Get("cs3") == $"Patient/{id}");
        await WaitAsync(async () => await CursorAsync() >= size - 1, "the cursor to reach the last entry");
    }

    public static TheoryData<string> RefusedSiems => ["another authority", "another name"];

    [Theory]
    [MemberData(nameof(RefusedSiems))]
    public async Task A_siem_that_cannot_prove_it_is_the_configured_one_gets_nothing_and_the_cursor_stays(string why)
    {
        // Signed by another CA; or signed by the hospital's CA for another host (the address is 127.0.0.1, no name configured).
        using var cert = why == "another authority"
            ? _other.Issue("siem", server: true, names: ["127.0.0.1"])
            : _hospital.Issue("siem", server: true, names: ["elsewhere.hospital.example"]);
        await using var siem = SiemListener.Start(tls: new SslServerAuthenticationOptions { ServerCertificate = cert });
        await using var server = await StartAsync(Tls(siem));
        await server.Client.CreateAsync("Patient", FhirTest.Patient("Refused"));

        // Wardline connects, refuses the certificate, and tries again after its back-off (1 s, then 2 s). (With TLS 1.3 the
        // SIEM's side of the handshake may end before the client's refusal reaches it, so connections are counted here.)
        await WaitAsync(() => Task.FromResult(siem.Connections >= 3), "three connections");

        Assert.Empty(siem.Messages);
        Assert.Equal(-1, await CursorAsync());
    }

    [Fact]
    public async Task Mutual_tls_presents_the_configured_client_certificate_and_a_siem_that_requires_one_gets_nothing_without_it()
    {
        using var cert = _hospital.Issue("siem", server: true, names: ["127.0.0.1"]);
        var requiring = new SslServerAuthenticationOptions
        {
            ServerCertificate = cert,
            ClientCertificateRequired = true,
            CertificateChainPolicy = _hospital.Policy(),
            RemoteCertificateValidationCallback = (_, presented, _, errors) => presented is not null && errors == SslPolicyErrors.None,
        };
        using var client = _hospital.Issue("wardline-export", server: false, names: []);
        var (certFile, keyFile) = _hospital.WriteWithKey(client, _dir, "export");

        await using (var siem = SiemListener.Start(tls: requiring))
        {
            await using var server = await StartAsync(Tls(siem, clientCert: certFile, clientKey: keyFile));
            await server.Client.CreateAsync("Patient", FhirTest.Patient("Mutual"));
            var size = await SizeAsync(server);
            await siem.WaitForIndexesAsync(size, Patience);

            Assert.Equal(0, siem.HandshakeFailures);
            Assert.All(siem.ClientCertificates, s => Assert.Equal("CN=wardline-export", s));
            Assert.NotEmpty(siem.ClientCertificates);
        }

        // The same SIEM, and Wardline without a client certificate: the handshake is refused, nothing is acknowledged.
        await using (var siem = SiemListener.Start(tls: requiring))
        {
            await using var server = await StartAsync(Tls(siem, name: "no-client-cert"));
            await WaitAsync(() => Task.FromResult(siem.HandshakeFailures >= 2), "two refused handshakes");

            Assert.Empty(siem.Messages);
            Assert.Equal(-1, await CursorAsync("no-client-cert"));
        }
    }

    [Fact]
    public async Task Alert_notifications_by_syslog_go_over_tls_to_the_siem_the_authority_vouches_for_and_not_to_another()
    {
        using var good = _hospital.Issue("siem", server: true, names: ["127.0.0.1"]);
        using var forged = _other.Issue("siem", server: true, names: ["127.0.0.1"]);
        await using var siem = SiemListener.Start(tls: new SslServerAuthenticationOptions { ServerCertificate = good });
        await using var impostor = SiemListener.Start(tls: new SslServerAuthenticationOptions { ServerCertificate = forged });

        foreach (var (listener, delivered) in new[] { (siem, true), (impostor, false) })
        {
            var options = _store.SharedOptions();
            options.Monitoring.Notify.RetrySeconds = 0.2;
            options.Monitoring.Notify.MaxAttempts = 3;
            options.Monitoring.Notify.Syslog = listener.Address;
            options.Monitoring.Notify.SyslogTransport = "tls";
            options.Monitoring.Notify.SyslogTls.CaFile = _hospital.WriteAuthority(_dir);
            await using var server = await Monitoring.Notifications.NotifyTestKit.StartAsync(options);
            await Monitoring.Notifications.NotifyTestKit.WaitForCursorAsync(server.App.Services);

            var id = await Monitoring.Notifications.NotifyTestKit.InsertAlertAsync(server.App.Services, severity: 3);

            var rows = await Monitoring.Notifications.NotifyTestKit.WaitForAsync(server.App.Services, id, r => r.Count == 1 && r[0].Status is "sent" or "failed", Patience);
            var row = Assert.Single(rows);
            if (delivered)
            {
                Assert.Equal("sent", row.Status);
                await WaitAsync(() => Task.FromResult(listener.Messages.Any(m => m.Contains($"[wardline@32473 alert=\"{id}\"]", StringComparison.Ordinal))), "the alert's syslog message");
            }
            else
            {
                Assert.Equal("failed", row.Status);
                Assert.Contains("TLS handshake failed", row.LastError, StringComparison.Ordinal);
                Assert.Empty(listener.Messages);
            }
        }
    }

    [Fact]
    public async Task Each_connections_certificates_are_released_when_it_ends_and_when_its_handshake_fails()
    {
        using var cert = _hospital.Issue("siem", server: true, names: ["127.0.0.1"]);
        using var client = _hospital.Issue("wardline-export", server: false, names: []);
        var (certFile, keyFile) = _hospital.WriteWithKey(client, _dir, "release");
        await using var siem = SiemListener.Start(tls: new SslServerAuthenticationOptions { ServerCertificate = cert });
        var tls = Tls(siem, clientCert: certFile, clientKey: keyFile).Tls;

        // A connection that worked: its authority and client certificate (with its private key) are released with the sink.
        var session = SiemTls.ClientOptions(tls, "127.0.0.1");
        Assert.Equal(2, session.Certificates.Count);
        var port = int.Parse(siem.Address.Split(':')[1], System.Globalization.CultureInfo.InvariantCulture);
        var sink = await TcpExportSink.ConnectAsync("127.0.0.1", port, session, CancellationToken.None);
        Assert.All(session.Certificates, c => Assert.NotEqual(IntPtr.Zero, c.Handle));
        await sink.DisposeAsync();
        Assert.All(session.Certificates, c => Assert.Equal(IntPtr.Zero, c.Handle));

        // A handshake refused (the SIEM's certificate is not for this name): released at once.
        var refused = SiemTls.ClientOptions(new SiemTlsOptions { CaFile = tls.CaFile, ServerName = "elsewhere.hospital.example", ClientCertificateFile = certFile, ClientKeyFile = keyFile }, "127.0.0.1");
        await Assert.ThrowsAnyAsync<System.Security.Authentication.AuthenticationException>(() => TcpExportSink.ConnectAsync("127.0.0.1", port, refused, CancellationToken.None));
        Assert.All(refused.Certificates, c => Assert.Equal(IntPtr.Zero, c.Handle));
    }

    [Fact]
    public void Authority_and_client_files_that_cannot_be_used_are_refused_at_start_naming_the_setting()
    {
        var notPem = Path.Combine(_dir, "not-a-certificate.pem");
        File.WriteAllText(notPem, "this is not a certificate\n");
        using var client = _hospital.Issue("wardline-export", server: false, names: []);
        var (certFile, _) = _hospital.WriteWithKey(client, _dir, "mismatch");
        using var stranger = _other.Issue("stranger", server: false, names: []);
        var (_, otherKey) = _other.WriteWithKey(stranger, _dir, "stranger");

        var caProblem = Refused(new LedgerExportOptions { Name = "siem", Transport = "tls", Address = "127.0.0.1:6514", Tls = new() { CaFile = notPem } });
        var keyProblem = Refused(new LedgerExportOptions
        {
            Name = "siem", Transport = "tls", Address = "127.0.0.1:6514", Tls = new() { ClientCertificateFile = certFile, ClientKeyFile = otherKey },
        });

        Assert.Contains($"Wardline:Ledger:Exports:0:Tls:CaFile {notPem}: holds no PEM certificate", caProblem, StringComparison.Ordinal);
        Assert.Contains($"Wardline:Ledger:Exports:0:Tls:ClientCertificateFile {certFile} with ClientKeyFile {otherKey}: not a PEM certificate (and key)", keyProblem, StringComparison.Ordinal);
        Assert.DoesNotContain("PRIVATE KEY", keyProblem, StringComparison.Ordinal);
    }

    private static string Refused(LedgerExportOptions target)
    {
        var options = new WardlineOptions { DataDirectory = Path.Combine(Path.GetTempPath(), "wl-siem-" + Guid.NewGuid().ToString("N")) };
        options.Ledger.Exports.Add(target);
        var refused = Assert.Throws<OptionsValidationException>(() => WardlineHost.Build(options));
        Assert.False(Directory.Exists(options.DataDirectory));
        return refused.Message;
    }

    private LedgerExportOptions Tls(SiemListener siem, string name = "siem", string? serverName = null, string? clientCert = null, string? clientKey = null) => new()
    {
        Name = name,
        Transport = "tls",
        Address = siem.Address,
        Tls = new() { CaFile = _hospital.WriteAuthority(_dir), ServerName = serverName, ClientCertificateFile = clientCert, ClientKeyFile = clientKey },
    };

    private Task<TestServer> StartAsync(LedgerExportOptions export)
    {
        var options = _store.SharedOptions();
        options.Ledger.Exports.Add(export);
        return TestServer.StartAsync(options);
    }

    private static async Task<long> SizeAsync(TestServer server)
    {
        await using var c = await server.Service<SqlDialect>().OpenAsync(CancellationToken.None);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT COUNT(*) FROM ledger_entries";
        return Convert.ToInt64(await cmd.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }

    private async Task<long?> CursorAsync(string name = "siem")
    {
        await using var dialect = SqlDialect.Sqlite(Path.Combine(_store.Options.DataDirectory!, "wardline.db"));
        return await ExportCursor.PeekAsync(dialect, name, CancellationToken.None) ?? -1;
    }

    private static async Task WaitAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("Timed out waiting for " + what);
            await Task.Delay(100);
        }
    }
}

/// <summary>A certificate authority made for a test: ECDSA P-256, valid from an hour ago for a day.</summary>
internal sealed class TestPki : IDisposable
{
    private readonly ECDsa _key = ECDsa.Create(ECCurve.NamedCurves.nistP256);

    public TestPki(string name)
    {
        var request = new CertificateRequest($"CN={name}", _key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        Authority = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddHours(-1), DateTimeOffset.UtcNow.AddDays(1));
    }

    public X509Certificate2 Authority { get; }

    /// <summary>A leaf certificate for a server (its names: DNS names or IP addresses) or a client.</summary>
    public X509Certificate2 Issue(string subject, bool server, IReadOnlyList<string> names)
    {
        var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={subject}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(server ? "1.3.6.1.5.5.7.3.1" : "1.3.6.1.5.5.7.3.2")], false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(Authority, true, false));
        if (names.Count > 0)
        {
            var san = new SubjectAlternativeNameBuilder();
            foreach (var n in names)
            {
                if (IPAddress.TryParse(n, out var ip)) san.AddIpAddress(ip);
                else san.AddDnsName(n);
            }
            request.CertificateExtensions.Add(san.Build());
        }
        using var issued = request.Create(Authority, DateTimeOffset.UtcNow.AddMinutes(-30), DateTimeOffset.UtcNow.AddHours(12), RandomNumberGenerator.GetBytes(12));
        return issued.CopyWithPrivateKey(key);
    }

    /// <summary>The authority's certificate as a PEM file (what TlsCaFile names).</summary>
    public string WriteAuthority(string dir)
    {
        var path = Path.Combine(dir, Authority.Thumbprint + ".ca.pem");
        File.WriteAllText(path, Authority.ExportCertificatePem());
        return path;
    }

    /// <summary>A certificate and its PKCS#8 key as two PEM files.</summary>
    public (string Cert, string Key) WriteWithKey(X509Certificate2 cert, string dir, string name)
    {
        var certFile = Path.Combine(dir, name + ".pem");
        var keyFile = Path.Combine(dir, name + ".key");
        File.WriteAllText(certFile, cert.ExportCertificatePem());
        File.WriteAllText(keyFile, cert.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem());
        return (certFile, keyFile);
    }

    /// <summary>A chain policy trusting this authority alone (for the SIEM's side of mutual TLS).</summary>
    public X509ChainPolicy Policy()
    {
        var policy = new X509ChainPolicy { TrustMode = X509ChainTrustMode.CustomRootTrust, RevocationMode = X509RevocationMode.NoCheck };
        policy.CustomTrustStore.Add(Authority);
        return policy;
    }

    public void Dispose()
    {
        Authority.Dispose();
        _key.Dispose();
    }
}
