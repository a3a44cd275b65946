using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Wardline.Server.Tests.Hosting;

/// <summary>
/// A self-signed server certificate for 127.0.0.1 and localhost, written to a temporary folder as
/// a password-protected PKCS#12 file and as PEM certificate + PEM key files.
/// </summary>
public sealed class TestCertificate : IDisposable
{
    private TestCertificate(string folder, X509Certificate2 certificate, string password)
    {
        Folder = folder;
        Certificate = certificate;
        Password = password;
    }

    public string Folder { get; }

    public X509Certificate2 Certificate { get; }

    public string Password { get; }

    public string PfxPath => Path.Combine(Folder, "server.pfx");

    public string PemCertificatePath => Path.Combine(Folder, "server.crt.pem");

    public string PemKeyPath => Path.Combine(Folder, "server.key.pem");

    /// <summary>The SHA-256 thumbprint, the one identity a client here trusts.</summary>
    public string Thumbprint => Certificate.GetCertHashString(HashAlgorithmName.SHA256);

    public static TestCertificate Create()
    {
        var folder = Directory.CreateTempSubdirectory("wardline-tls-").FullName;
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=wardline-test", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        san.AddIpAddress(IPAddress.IPv6Loopback);
        san.AddDnsName("localhost");
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false)); // serverAuth
        var now = DateTimeOffset.UtcNow;
        var certificate = request.CreateSelfSigned(now.AddMinutes(-5), now.AddDays(2));

        var password = "pfx-" + Guid.NewGuid().ToString("N");
        var test = new TestCertificate(folder, certificate, password);
        File.WriteAllBytes(test.PfxPath, certificate.Export(X509ContentType.Pkcs12, password));
        File.WriteAllText(test.PemCertificatePath, certificate.ExportCertificatePem());
        File.WriteAllText(test.PemKeyPath, key.ExportPkcs8PrivateKeyPem());
        return test;
    }

    /// <summary>A handler that accepts exactly this certificate (by SHA-256 thumbprint) and nothing else.</summary>
    public HttpClientHandler TrustingHandler()
    {
        var expected = Thumbprint;
        return new HttpClientHandler
        {
            ServerCertificateCustomValidationCallback = (_, cert, _, _) =>
                cert is not null && cert.GetCertHashString(HashAlgorithmName.SHA256) == expected,
        };
    }

    public void Dispose()
    {
        Certificate.Dispose();
        Directory.Delete(Folder, recursive: true);
    }
}
