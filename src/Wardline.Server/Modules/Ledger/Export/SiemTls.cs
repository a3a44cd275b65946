using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Wardline.Server.Modules.Ledger.Export;

/// <summary>
/// TLS to a SIEM (RFC 5425): TLS 1.2 or 1.3, the SIEM's certificate validated (chain and name) against the configured
/// certificate authorities or else the system's roots, and a client certificate for SIEMs that require mutual TLS. The files
/// are read at each connection, so renewed certificates are taken at the next reconnect; they are checked at start.
/// </summary>
internal static class SiemTls
{
    /// <summary>What is wrong with a tls target's files (each message names its setting; never a file's content).</summary>
    public static IEnumerable<string> Validate(SiemTlsOptions target, string at)
    {
        if (target.CaFile is { } ca)
        {
            string? problem = null;
            try
            {
                var authorities = LoadAuthorities(ca);
                if (authorities.Count == 0) problem = "holds no PEM certificate";
                foreach (var c in authorities) c.Dispose();
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or CryptographicException)
            {
                problem = Reason(ex);
            }
            if (problem is not null) yield return $"{at}:CaFile {ca}: {problem}.";
        }
        if (target.ServerName is { } name && (name.Length == 0 || name.Any(char.IsWhiteSpace)))
            yield return $"{at}:ServerName must be a DNS name or an IP address.";
        if ((target.ClientCertificateFile is null) != (target.ClientKeyFile is null))
        {
            yield return $"{at}:ClientCertificateFile and ClientKeyFile go together: set both for mutual TLS, or neither.";
        }
        else if (target.ClientCertificateFile is { } cert)
        {
            string? problem = null;
            try
            {
                using var loaded = LoadClientCertificate(target);
                if (loaded.NotAfter < DateTime.Now) problem = $"the certificate expired on {loaded.NotAfter:yyyy-MM-dd}";
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or CryptographicException or ArgumentException)
            {
                problem = Reason(ex);
            }
            if (problem is not null) yield return $"{at}:ClientCertificateFile {cert} with ClientKeyFile {target.ClientKeyFile}: {problem}.";
        }
    }

    /// <summary>The client's side of the handshake with the SIEM at <paramref name="host"/>, holding the certificates it read: one a connection, disposed with it.</summary>
    public static SiemTlsSession ClientOptions(SiemTlsOptions target, string host)
    {
        var options = new SslClientAuthenticationOptions
        {
            TargetHost = target.ServerName ?? host,
            EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
            // An intranet SIEM's CA seldom publishes a revocation list this server can reach; the chain and name are checked.
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        };
        var owned = new List<X509Certificate2>();
        try
        {
            if (target.CaFile is { } ca)
            {
                var authorities = LoadAuthorities(ca);
                owned.AddRange(authorities);
                var policy = new X509ChainPolicy { TrustMode = X509ChainTrustMode.CustomRootTrust, RevocationMode = X509RevocationMode.NoCheck };
                policy.CustomTrustStore.AddRange(authorities);
                options.CertificateChainPolicy = policy;
            }
            if (target.ClientCertificateFile is not null)
            {
                var client = LoadClientCertificate(target);
                owned.Add(client);
                options.ClientCertificates = [client];
            }
        }
        catch
        {
            foreach (var c in owned) c.Dispose();
            throw;
        }
        return new SiemTlsSession(options, owned);
    }

    private static X509Certificate2Collection LoadAuthorities(string path)
    {
        var certificates = new X509Certificate2Collection();
        certificates.ImportFromPemFile(path);
        return certificates;
    }

    private static X509Certificate2 LoadClientCertificate(SiemTlsOptions target) =>
        X509Certificate2.CreateFromPemFile(target.ClientCertificateFile!, target.ClientKeyFile);

    private static string Reason(Exception ex) => ex switch
    {
        FileNotFoundException or DirectoryNotFoundException => "the file does not exist",
        UnauthorizedAccessException => "the file cannot be read by this account",
        _ => "not a PEM certificate (and key) this server can use",
    };
}

/// <summary>
/// The options of one TLS connection to a SIEM and the certificates read for it (the authorities and the client's, with its
/// private key), which are released when the connection ends rather than left to the finalizer, one set per reconnect.
/// </summary>
internal sealed class SiemTlsSession(SslClientAuthenticationOptions options, IReadOnlyList<X509Certificate2> certificates) : IDisposable
{
    public SslClientAuthenticationOptions Options { get; } = options;

    public IReadOnlyList<X509Certificate2> Certificates { get; } = certificates;

    public void Dispose()
    {
        foreach (var c in Certificates) c.Dispose();
    }
}
