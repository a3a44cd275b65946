using Wardline.Backup;
using Wardline.Server.Modules.Ledger.Export;

namespace Wardline.Server.Modules.Ledger;

/// <summary>The audit ledger's settings, bound from <c>Wardline:Ledger</c>.</summary>
public sealed class LedgerOptions
{
    /// <summary>How often a signed tree head is made while entries arrive (seconds).</summary>
    public int HeadIntervalSeconds { get; set; } = 10;

    /// <summary>
    /// The witness folder the signed heads are published to: outside the database, ideally on another
    /// machine's share or a write-once mount. Defaults to "witness" in the data directory; required with PostgreSQL.
    /// </summary>
    public string? WitnessPath { get; set; }

    /// <summary>
    /// A blob container or bucket as the witness instead of a folder: <c>azure://account/container[/prefix]</c>,
    /// <c>s3://bucket[/prefix]</c> or <c>file:///path</c>, with credentials in <see cref="WitnessStore"/> only (never the backup
    /// target's environment variables: the witness has credentials of its own). Heads are written once and kept for
    /// <see cref="WitnessRetainDays"/> under the target's immutability policy or Object Lock where it has one.
    /// </summary>
    public string? WitnessTarget { get; set; }

    /// <summary>Credentials and endpoint of <see cref="WitnessTarget"/>, in the shape of <c>Wardline:Backup:Store</c>.</summary>
    public BackupTargetSettings WitnessStore { get; set; } = new();

    /// <summary>Days each head and the pinned key are locked on a target with immutability (0: not locked). Default six years.</summary>
    public int WitnessRetainDays { get; set; } = 2190;

    /// <summary>
    /// Whether a patient reading their own accounting of disclosures sees staff names; when false (the
    /// default) each access is shown by the staff member's role and department only.
    /// </summary>
    public bool PatientSeesStaffNames { get; set; }

    /// <summary>SIEMs (or files) the ledger is exported to, each from its own acknowledged cursor (Export/README.md).</summary>
    public IList<LedgerExportOptions> Exports { get; } = [];

    private const string WitnessStoreKey = "Wardline:Ledger:WitnessStore";

    /// <summary>The configured witness: the blob container or bucket when <see cref="WitnessTarget"/> is set, else the folder.</summary>
    internal IWitness OpenWitness(Hosting.WardlineOptions options, TimeProvider time) =>
        WitnessTarget is { } uri ? OpenWitness(uri, time) : new FolderWitness(options.WitnessFolder());

    /// <summary>A blob container or bucket as the witness, with <see cref="WitnessStore"/>'s credentials.</summary>
    /// <exception cref="ArgumentException">The URI, or the credentials it needs, are missing or malformed.</exception>
    internal StoreWitness OpenWitness(string uri, TimeProvider time) =>
        new(BackupTargets.Open(uri, WitnessStore, WitnessStoreKey), WitnessRetainDays, time);

    public IReadOnlyList<string> Validate(bool postgres)
    {
        var problems = new List<string>();
        if (HeadIntervalSeconds is < 1 or > 86_400) problems.Add("Wardline:Ledger:HeadIntervalSeconds must be between 1 and 86400.");
        if (postgres && WitnessPath is null && WitnessTarget is null)
            problems.Add("Wardline:Ledger:WitnessPath (a folder) or WitnessTarget (a blob container or bucket) is required with PostgreSQL: the witness must live outside the database.");
        if (WitnessPath is not null && WitnessTarget is not null)
            problems.Add("Set one of Wardline:Ledger:WitnessPath and WitnessTarget: the ledger has one witness.");
        if (WitnessRetainDays is < 0 or > 36_500) problems.Add("Wardline:Ledger:WitnessRetainDays must be between 0 and 36500.");
        if (WitnessTarget is not null)
        {
            try
            {
                // Opening contacts nothing; it checks the URI and that the credentials it needs are configured.
                BackupTargets.Open(WitnessTarget, WitnessStore, WitnessStoreKey).DisposeAsync().AsTask().GetAwaiter().GetResult();
            }
            catch (ArgumentException ex)
            {
                problems.Add($"Wardline:Ledger:WitnessTarget: {ex.Message}");
            }
        }
        for (var i = 0; i < Exports.Count; i++)
        {
            problems.AddRange(Exports[i].Validate($"Wardline:Ledger:Exports:{i}"));
            if (Exports.Take(i).Any(e => e.Name == Exports[i].Name))
                problems.Add($"Wardline:Ledger:Exports:{i}:Name '{Exports[i].Name}' is used by another export; each target needs its own name (it keys its cursor).");
        }
        return problems;
    }
}

/// <summary>
/// One export target of the ledger: "syslog-cef" sends RFC 5424 syslog messages with a CEF payload over
/// TCP (RFC 6587 octet counting); "jsonl" writes one line per entry (its index and canonical JSON) to a
/// TCP peer or a file. Delivery is at least once: the cursor advances only after a batch was flushed.
/// </summary>
public sealed class LedgerExportOptions
{
    /// <summary>The target's name, [a-z0-9-], 1 to 64 characters: the key of its cursor in ledger_export_cursors.</summary>
    public string? Name { get; set; }

    /// <summary>"syslog-cef" or "jsonl".</summary>
    public string Format { get; set; } = "syslog-cef";

    /// <summary>
    /// "tcp" (with <see cref="Address"/>), "tls" (the same over TLS 1.2 or 1.3, RFC 5425: the SIEM's certificate is
    /// validated, as <see cref="Tls"/> says) or "file" (with <see cref="Path"/>, jsonl only).
    /// </summary>
    public string Transport { get; set; } = "tcp";

    /// <summary>host:port of the SIEM's TCP or TLS listener ([::1]:6514 for an IPv6 literal).</summary>
    public string? Address { get; set; }

    /// <summary>With the tls transport: whom the SIEM's certificate must chain to and name, and the certificate Wardline presents.</summary>
    public SiemTlsOptions Tls { get; set; } = new();

    /// <summary>The file the jsonl lines are appended to; its folder must exist.</summary>
    public string? Path { get; set; }

    /// <summary>Entries read, sent and acknowledged together.</summary>
    public int BatchSize { get; set; } = 500;

    public IReadOnlyList<string> Validate(string at)
    {
        var problems = new List<string>();
        if (Name is null || Name.Length is 0 or > 64 || !Name.All(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '-'))
            problems.Add($"{at}:Name must be 1 to 64 characters of a-z, 0-9 and '-'.");
        if (Format is not ("syslog-cef" or "jsonl"))
            problems.Add($"{at}:Format must be 'syslog-cef' or 'jsonl', not '{Format}'.");
        if (Transport is "tcp" or "tls")
        {
            if (!TryParseAddress(Address, out _, out _))
                problems.Add($"{at}:Address must be host:port (port 1-65535) for the {Transport} transport.");
        }
        else if (Transport == "file")
        {
            if (Format != "jsonl") problems.Add($"{at}:Transport 'file' takes the jsonl format; syslog-cef is sent over tcp or tls.");
            if (string.IsNullOrWhiteSpace(Path))
                problems.Add($"{at}:Path is required for the file transport.");
            else if (System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(Path)) is { } dir && !Directory.Exists(dir))
                problems.Add($"{at}:Path: the folder {dir} does not exist.");
        }
        else
        {
            problems.Add($"{at}:Transport must be 'tcp', 'tls' or 'file', not '{Transport}'.");
        }
        if (Transport == "tls")
            problems.AddRange(SiemTls.Validate(Tls, at + ":Tls"));
        else if (!Tls.IsEmpty)
            problems.Add($"{at}:Tls settings apply to the tls transport only: set Transport to 'tls', or remove them.");
        if (BatchSize is < 1 or > 10_000) problems.Add($"{at}:BatchSize must be between 1 and 10000.");
        return problems;
    }

    /// <summary>"host:port" or "[v6]:port" into its parts.</summary>
    internal static bool TryParseAddress(string? address, out string host, out int port)
    {
        host = "";
        port = 0;
        var colon = address?.LastIndexOf(':') ?? -1;
        if (address is null || colon <= 0) return false;
        host = address[..colon].Trim('[', ']');
        return host.Length > 0 && !host.Any(char.IsWhiteSpace)
            && int.TryParse(address.AsSpan(colon + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out port)
            && port is >= 1 and <= 65_535;
    }
}

/// <summary>
/// TLS to a SIEM (RFC 5425), for a ledger export (<c>Wardline:Ledger:Exports:N:Tls</c>) or alert notifications by syslog
/// (<c>Wardline:Monitoring:Notify:SyslogTls</c>).
/// </summary>
public sealed class SiemTlsOptions
{
    /// <summary>A PEM file of the certificate authorities the SIEM's certificate must chain to (the hospital's own CA); without it, the system's trusted roots.</summary>
    public string? CaFile { get; set; }

    /// <summary>The name the SIEM's certificate must carry (DNS name or IP address), when it is not the host of the address.</summary>
    public string? ServerName { get; set; }

    /// <summary>A PEM certificate Wardline presents to a SIEM that requires mutual TLS (RFC 5425 section 5.1), with <see cref="ClientKeyFile"/>.</summary>
    public string? ClientCertificateFile { get; set; }

    /// <summary>The PEM private key (PKCS#8, unencrypted; readable by the service account only) of <see cref="ClientCertificateFile"/>.</summary>
    public string? ClientKeyFile { get; set; }

    internal bool IsEmpty => CaFile is null && ServerName is null && ClientCertificateFile is null && ClientKeyFile is null;
}
