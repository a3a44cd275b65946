using System.Net;

namespace Wardline.Server.Hosting;

/// <summary>Server configuration, bound from the <c>Wardline</c> section (config file, environment, command line).</summary>
public sealed class WardlineOptions
{
    public const string Section = "Wardline";

    /// <summary>Folder of the embedded store (SQLite file and, by default, the keyring). Exactly one of this and <see cref="PostgresConnectionString"/>.</summary>
    public string? DataDirectory { get; set; }

    public string? PostgresConnectionString { get; set; }

    /// <summary>The key file. Defaults to keyring.json in <see cref="DataDirectory"/>; required with PostgreSQL, and should live on a different disk or secret mount than the database.</summary>
    public string? KeyringPath { get; set; }

    /// <summary>Largest accepted request body; larger ones get 413.</summary>
    public long MaxRequestBodyBytes { get; set; } = 16 * 1024 * 1024;

    /// <summary>Where to listen. Plain http is accepted only on loopback addresses.</summary>
    public IList<string> Urls { get; } = [];

    /// <summary>PKCS#12 (.pfx) or PEM certificate for https endpoints.</summary>
    public string? CertificatePath { get; set; }

    /// <summary>PEM private key file, when <see cref="CertificatePath"/> is a PEM certificate.</summary>
    public string? CertificateKeyPath { get; set; }

    /// <summary>Password of a PKCS#12 certificate; better given in the environment (Wardline__CertificatePassword).</summary>
    public string? CertificatePassword { get; set; }

    /// <summary>
    /// Reverse proxies (IP addresses or CIDR networks) whose <c>X-Forwarded-For</c> and <c>X-Forwarded-Proto</c> are
    /// believed, when one of them is the TCP peer (<see cref="ReverseProxies"/>). Empty, the default: no forwarded
    /// header is honoured and the caller's address is the TCP peer's.
    /// </summary>
    public IList<string> TrustedProxies { get; } = [];

    public Modules.Access.AccessOptions Access { get; } = new();

    public Modules.Ledger.LedgerOptions Ledger { get; } = new();

    public Modules.Backup.BackupOptions Backup { get; } = new();

    public Modules.Monitoring.MonitoringOptions Monitoring { get; } = new();

    /// <summary>The witness folder: the configured one, else "witness" beside the embedded store (when no <see cref="Modules.Ledger.LedgerOptions.WitnessTarget"/> is set).</summary>
    public string WitnessFolder() =>
        Ledger.WitnessPath ?? (DataDirectory is not null ? Path.Combine(DataDirectory, "witness")
            : throw new InvalidOperationException("Wardline:Ledger:WitnessPath or WitnessTarget is required when the store is PostgreSQL."));

    public string KeyringFile() =>
        KeyringPath ?? (DataDirectory is not null ? Path.Combine(DataDirectory, "keyring.json")
            : throw new InvalidOperationException("Wardline:KeyringPath is required when the store is PostgreSQL."));

    /// <summary>Checks the options; returns the problems found, each naming the setting.</summary>
    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        if ((DataDirectory is null) == (PostgresConnectionString is null))
            problems.Add("Set exactly one of Wardline:DataDirectory (embedded store) and Wardline:PostgresConnectionString.");
        if (PostgresConnectionString is not null && KeyringPath is null)
            problems.Add("Wardline:KeyringPath is required with PostgreSQL: the keyring must live outside the database.");
        if (MaxRequestBodyBytes < 1024)
            problems.Add("Wardline:MaxRequestBodyBytes must be at least 1024.");
        foreach (var url in Urls)
        {
            if (!Uri.TryCreate(url, UriKind.Absolute, out var u) || u.Scheme is not ("http" or "https"))
                problems.Add($"Wardline:Urls: '{url}' is not an http or https URL.");
            else if (u.Scheme == "http" && !IsLoopback(u.Host))
                problems.Add($"Wardline:Urls: plain http is allowed only on loopback (127.0.0.1, [::1], localhost); use https for '{url}'.");
        }
        if (Urls.Any(IsHttps) && CertificatePath is null)
            problems.Add("Wardline:CertificatePath is required for https endpoints in Wardline:Urls.");
        if (CertificatePath is not null && !File.Exists(CertificatePath))
            problems.Add($"Wardline:CertificatePath: the file {CertificatePath} does not exist.");
        if (CertificateKeyPath is not null && CertificatePath is null)
            problems.Add("Wardline:CertificateKeyPath is set but Wardline:CertificatePath (the PEM certificate) is not.");
        if (CertificateKeyPath is not null && !File.Exists(CertificateKeyPath))
            problems.Add($"Wardline:CertificateKeyPath: the file {CertificateKeyPath} does not exist.");
        foreach (var proxy in TrustedProxies)
        {
            if (!ReverseProxies.TryParse(proxy, out _))
                problems.Add($"Wardline:TrustedProxies: '{proxy}' is not an IP address or a CIDR network (other than /0).");
        }
        problems.AddRange(Access.Validate());
        problems.AddRange(Ledger.Validate(PostgresConnectionString is not null));
        problems.AddRange(Backup.Validate());
        problems.AddRange(Monitoring.Validate());
        return problems;
    }

    internal static bool IsHttps(string url) => url.StartsWith("https:", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// Loopback literals only. A host name is not trusted to be loopback by its spelling
    /// ("127.example.org" resolves wherever its owner wants), except "localhost", which Kestrel
    /// itself binds to the loopback interfaces.
    /// </summary>
    private static bool IsLoopback(string host) =>
        host.Equals("localhost", StringComparison.OrdinalIgnoreCase)
        || (IPAddress.TryParse(host.Trim('[', ']'), out var ip) && IPAddress.IsLoopback(ip));
}
