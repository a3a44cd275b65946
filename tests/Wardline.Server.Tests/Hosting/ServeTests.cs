using System.Net;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Wardline.Server.Hosting;
using Wardline.Server.Modules.Access;
using Wardline.Server.Tests.EndToEnd;
using Wardline.Server.Tests.Infrastructure;

namespace Wardline.Server.Tests.Hosting;

/// <summary>`wardline serve` for production: HTTPS with a configured certificate, TLS 1.2+ only, HSTS, plain http only on loopback.</summary>
public sealed class ServeTests : IDisposable
{
    private readonly TestCertificate _cert = TestCertificate.Create();
    private readonly string _data = Directory.CreateTempSubdirectory("wardline-serve-").FullName;

    public void Dispose()
    {
        _cert.Dispose();
        Directory.Delete(_data, recursive: true);
    }

    [Fact]
    public async Task An_https_server_with_a_pfx_certificate_answers_a_signed_in_client_with_hsts()
    {
        var port = FreePort.Next();
        await using var app = await StartAsync(Options(port, o =>
        {
            o.CertificatePath = _cert.PfxPath;
            o.CertificatePassword = _cert.Password;
        }));
        using var client = await SignedInClientAsync(app, port);

        var created = await client.PostAsync("Patient", FhirTest.Json(FhirTest.Patient("Tls")));
        var metadata = await client.GetAsync("metadata");

        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Equal(HttpStatusCode.OK, metadata.StatusCode);
        var hsts = Assert.Single(metadata.Headers.GetValues("Strict-Transport-Security"));
        Assert.Contains("max-age=31536000", hsts, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_https_server_with_a_pem_certificate_and_key_answers_with_hsts()
    {
        var port = FreePort.Next();
        await using var app = await StartAsync(Options(port, o =>
        {
            o.CertificatePath = _cert.PemCertificatePath;
            o.CertificateKeyPath = _cert.PemKeyPath;
        }));
        using var client = await SignedInClientAsync(app, port);

        var response = await client.GetAsync("metadata");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("max-age=31536000", Assert.Single(response.Headers.GetValues("Strict-Transport-Security")), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_client_that_does_not_trust_the_certificate_is_refused_by_its_own_validation()
    {
        var port = FreePort.Next();
        await using var app = await StartAsync(Options(port, o =>
        {
            o.CertificatePath = _cert.PfxPath;
            o.CertificatePassword = _cert.Password;
        }));
        using var untrusting = new HttpClient();

        // The handler-trusting tests above are only meaningful if trust is not given away by default.
        await Assert.ThrowsAsync<HttpRequestException>(() => untrusting.GetAsync($"https://127.0.0.1:{port}/fhir/metadata"));
    }

    [Fact]
    public async Task Tls_1_2_and_tls_1_3_handshakes_succeed()
    {
        var port = FreePort.Next();
        await using var app = await StartAsync(Options(port, o =>
        {
            o.CertificatePath = _cert.PfxPath;
            o.CertificatePassword = _cert.Password;
        }));

        Assert.Equal(SslProtocols.Tls12, await HandshakeAsync(port, SslProtocols.Tls12));
        Assert.Equal(SslProtocols.Tls13, await HandshakeAsync(port, SslProtocols.Tls13));
    }

    // .NET cannot offer TLS 1.0/1.1 on this machine: OpenSSL 3 at its default security level 1 has
    // no cipher it allows for them, so SslStream with SslProtocols.Tls11 fails in the client ("no
    // ciphers available") before anything reaches the server, which would prove nothing. The openssl
    // command-line client at security level 0 does send a real TLS 1.0/1.1 ClientHello; the control
    // test shows it completes such a handshake with a server that allows it.
    [Theory]
    [InlineData("-tls1_1", "TLSv1.1")]
    [InlineData("-tls1", "TLSv1")]
    public async Task The_openssl_client_used_below_really_offers_old_protocols(string flag, string protocol)
    {
        var port = FreePort.Next();
        using var control = OpenSsl.StartServer(port, _cert.PemCertificatePath, _cert.PemKeyPath, flag);
        await control.WaitForOutputAsync("ACCEPT", TimeSpan.FromSeconds(10));

        var (exitCode, output) = await OpenSsl.HandshakeAsync(port, flag);

        Assert.True(exitCode == 0, output);
        Assert.Contains($"Protocol  : {protocol}\n", output, StringComparison.Ordinal);
        Assert.DoesNotContain("Cipher is (NONE)", output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("-tls1_1")]
    [InlineData("-tls1")]
    public async Task Tls_1_1_and_tls_1_0_handshakes_are_refused(string flag)
    {
        var port = FreePort.Next();
        await using var app = await StartAsync(Options(port, o =>
        {
            o.CertificatePath = _cert.PfxPath;
            o.CertificatePassword = _cert.Password;
        }));

        var (exitCode, output) = await OpenSsl.HandshakeAsync(port, flag);

        Assert.NotEqual(0, exitCode);
        Assert.Contains("Cipher is (NONE)", output, StringComparison.Ordinal);
        Assert.DoesNotContain("BEGIN CERTIFICATE", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_same_openssl_client_completes_a_tls_1_2_handshake_with_the_server()
    {
        var port = FreePort.Next();
        await using var app = await StartAsync(Options(port, o =>
        {
            o.CertificatePath = _cert.PfxPath;
            o.CertificatePassword = _cert.Password;
        }));

        var (exitCode, output) = await OpenSsl.HandshakeAsync(port, "-tls1_2");

        Assert.True(exitCode == 0, output);
        Assert.Contains("Protocol  : TLSv1.2\n", output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("http://0.0.0.0:80")]
    [InlineData("http://10.1.2.3:80")]
    [InlineData("http://[2001:db8::1]:80")]
    [InlineData("http://127.example.org:80")]
    public void Plain_http_off_loopback_is_refused_naming_wardline_urls(string url)
    {
        var options = new WardlineOptions { DataDirectory = _data };
        options.Urls.Add(url);

        var problem = Assert.Single(options.Validate());

        Assert.Contains("Wardline:Urls", problem, StringComparison.Ordinal);
        Assert.Contains(url, problem, StringComparison.Ordinal);
        var thrown = Assert.Throws<OptionsValidationException>(() => WardlineHost.Build(options));
        Assert.Contains("Wardline:Urls", thrown.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Https_without_a_certificate_is_refused_naming_wardline_certificate_path()
    {
        var options = new WardlineOptions { DataDirectory = _data };
        options.Urls.Add("https://0.0.0.0:443");

        var problem = Assert.Single(options.Validate());

        Assert.Contains("Wardline:CertificatePath", problem, StringComparison.Ordinal);
    }

    [Fact]
    public void A_certificate_file_that_does_not_exist_is_refused_naming_its_setting()
    {
        var options = new WardlineOptions { DataDirectory = _data, CertificatePath = Path.Combine(_data, "missing.pfx") };
        options.Urls.Add("https://0.0.0.0:443");

        var problem = Assert.Single(options.Validate());

        Assert.Contains("Wardline:CertificatePath", problem, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("http://127.0.0.1:5080")]
    [InlineData("http://[::1]:5080")]
    [InlineData("http://localhost:5080")]
    [InlineData("https://0.0.0.0:443")]
    public void Plain_http_on_loopback_and_https_with_a_certificate_are_accepted(string url)
    {
        var options = new WardlineOptions { DataDirectory = _data, CertificatePath = _cert.PfxPath, CertificatePassword = _cert.Password };
        options.Urls.Add(url);

        Assert.Empty(options.Validate());
    }

    [Fact]
    public async Task Wardline_serve_with_a_config_file_serves_the_fhir_api_over_https()
    {
        var port = FreePort.Next();
        var config = Path.Combine(_cert.Folder, "wardline.json");
        // Relative to the config file, as an operator would write it next to the certificate.
        await File.WriteAllTextAsync(config, JsonSerializer.Serialize(new
        {
            Wardline = new { CertificatePath = Path.GetFileName(_cert.PfxPath), CertificatePassword = _cert.Password },
        }));

        using var server = RunningProcess.Wardline(["serve", "--data", _data, "--urls", $"https://127.0.0.1:{port}", "--config", config]);
        await server.WaitForOutputAsync($"https://127.0.0.1:{port}", TimeSpan.FromSeconds(60));
        using var client = new HttpClient(_cert.TrustingHandler()) { Timeout = TimeSpan.FromSeconds(30) };
        var response = await client.GetAsync($"https://127.0.0.1:{port}/fhir/metadata");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("CapabilityStatement", (string?)(await response.ReadJsonAsync())["resourceType"]);
        Assert.Contains("max-age=31536000", Assert.Single(response.Headers.GetValues("Strict-Transport-Security")), StringComparison.Ordinal);
        Assert.False(server.HasExited);
    }

    [Fact]
    public async Task Wardline_serve_refuses_plain_http_off_loopback_with_a_message_naming_the_setting()
    {
        var result = await WardlineCli.RunAsync(["serve", "--data", _data, "--urls", "http://0.0.0.0:8080"]);

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("Wardline:Urls", result.Flat, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Wardline_serve_with_a_wrong_certificate_password_fails_with_a_clear_error()
    {
        var config = Path.Combine(_cert.Folder, "wrong-password.json");
        await File.WriteAllTextAsync(config, JsonSerializer.Serialize(new
        {
            Wardline = new { CertificatePath = _cert.PfxPath, CertificatePassword = "not-the-password" },
        }));

        var result = await WardlineCli.RunAsync(["serve", "--data", _data, "--urls", $"https://127.0.0.1:{FreePort.Next()}", "--config", config]);

        Assert.Equal(2, result.ExitCode);
        Assert.Contains("Wardline:CertificatePath", result.Flat, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", result.Output, StringComparison.Ordinal);
    }

    private WardlineOptions Options(int port, Action<WardlineOptions> certificate)
    {
        var options = new WardlineOptions { DataDirectory = _data };
        options.Urls.Add($"https://127.0.0.1:{port}");
        certificate(options);
        return options;
    }

    private static async Task<WebApplication> StartAsync(WardlineOptions options)
    {
        var app = WardlineHost.Build(options);
        await app.StartAsync();
        return app;
    }

    private async Task<HttpClient> SignedInClientAsync(WebApplication app, int port)
    {
        var tokens = app.Services.GetRequiredService<AccessTokens>();
        await TestAccounts.SeniorClinicianAsync(app.Services, "tls-user");
        var token = await tokens.IssueAsync("tls-user", TimeSpan.FromHours(1), CancellationToken.None) ?? throw new InvalidOperationException("no token");
        var client = new HttpClient(_cert.TrustingHandler()) { BaseAddress = new Uri($"https://127.0.0.1:{port}/fhir/"), Timeout = TimeSpan.FromSeconds(30) };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client;
    }

    /// <summary>A bare TLS handshake offering only <paramref name="protocols"/>; returns what was negotiated.</summary>
    private async Task<SslProtocols> HandshakeAsync(int port, SslProtocols protocols)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, port);
        await using var tls = new SslStream(tcp.GetStream());
        var expected = _cert.Thumbprint;
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            EnabledSslProtocols = protocols,
            RemoteCertificateValidationCallback = (_, cert, _, _) =>
                cert is not null && cert.GetCertHashString(System.Security.Cryptography.HashAlgorithmName.SHA256) == expected,
        });
        return tls.SslProtocol;
    }
}
