using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Wardline.Crypto;

namespace Wardline.Backup.Format;

/// <summary>
/// A completed backup (docs/formats/backup.md, "Manifest"): the point it restores to (ledger size and root, the
/// newest signed head), and every object a restore needs, from the full backup that starts its chain to this one,
/// each with its SHA-256. A backup exists once its manifest does: it is written last, and only after every object
/// it lists is stored, so a run that fails half-way leaves no backup that looks complete.
/// </summary>
internal sealed record Manifest
{
    /// <summary>Format 1: every object is row blocks. Format 2 adds <c>image</c> objects and <see cref="ImageTables"/>; a writer uses 2 only for a chain that holds an image, so older readers still read the rest.</summary>
    public const int FormatVersion = 2;

    /// <summary>The format a chain is written in: 2 once it holds a database image, else 1.</summary>
    public static int FormatFor(IEnumerable<ManifestObject> objects) => objects.Any(o => o.Kind == ManifestObject.ImageKind) ? 2 : 1;

    [JsonPropertyName("format")] public int Format { get; init; } = FormatVersion;

    /// <summary>Unique id, <c>yyyyMMdd-HHmmssfff-xxxxxxxx</c> (UTC by the server's clock, then random): object names are lower-case.</summary>
    [JsonPropertyName("id")] public required string Id { get; init; }

    [JsonPropertyName("created")] public required DateTimeOffset Created { get; init; }

    /// <summary><c>full</c> or <c>incremental</c>.</summary>
    [JsonPropertyName("kind")] public required string Kind { get; init; }

    /// <summary>Id of the full backup this chain starts at (its own id for a full backup).</summary>
    [JsonPropertyName("chain")] public required string Chain { get; init; }

    /// <summary>The manifest this one follows, or null for a full backup.</summary>
    [JsonPropertyName("parent")] public string? Parent { get; init; }

    /// <summary>Engine (<c>sqlite</c>/<c>postgres</c>) and schema version of the store it was taken from.</summary>
    [JsonPropertyName("engine")] public required string Engine { get; init; }

    [JsonPropertyName("schema")] public required int Schema { get; init; }

    /// <summary>Ledger entries this backup adds: those with index in [<see cref="LedgerFrom"/>, <see cref="LedgerSize"/>).</summary>
    [JsonPropertyName("ledgerFrom")] public required long LedgerFrom { get; init; }

    [JsonPropertyName("ledgerSize")] public required long LedgerSize { get; init; }

    /// <summary>Hex root of the ledger's first <see cref="LedgerSize"/> entries.</summary>
    [JsonPropertyName("ledgerRoot")] public required string LedgerRoot { get; init; }

    /// <summary>The newest signed tree head in the store at the snapshot (its JSON, as the witness holds it), or null.</summary>
    [JsonPropertyName("signedHead")] public string? SignedHead { get; init; }

    /// <summary>KEK ids the segments are encrypted under: the keyring must hold them all.</summary>
    [JsonPropertyName("keks")] public required IReadOnlyList<string> Keks { get; init; }

    /// <summary>Every object of the chain up to this backup, in the order a restore applies them.</summary>
    [JsonPropertyName("objects")] public required IReadOnlyList<ManifestObject> Objects { get; init; }

    /// <summary>
    /// Format 2: the keyed fingerprint of each whole table the chain's database image holds and no later object has
    /// replaced, so the next backup ships a table only when it changed since the image.
    /// </summary>
    [JsonPropertyName("imageTables")] public IReadOnlyDictionary<string, string>? ImageTables { get; init; }

    /// <summary>Plain words about the target's immutability when the backup was taken.</summary>
    [JsonPropertyName("immutability")] public string? Immutability { get; init; }

    /// <summary>
    /// 0 until a store is rolled back to an older backup and backed up again: that full backup starts epoch + 1, whose
    /// manifests sort after every earlier epoch's, so the restored history is the newest even with a smaller ledger.
    /// </summary>
    [JsonPropertyName("epoch")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)]
    public int Epoch { get; init; }

    /// <summary>The object name: sorting names sorts backups by epoch, then ledger size, then time, whatever the clocks say.</summary>
    [JsonIgnore] public string Name => NameFor(LedgerSize, Id, Epoch);

    public static string NameFor(long ledgerSize, string id, int epoch = 0) =>
        epoch == 0
            ? $"manifests/{ledgerSize.ToString("D16", CultureInfo.InvariantCulture)}-{id}.json"
            : $"manifests/e{epoch.ToString("D4", CultureInfo.InvariantCulture)}-{ledgerSize.ToString("D16", CultureInfo.InvariantCulture)}-{id}.json";

    public static string NewId(DateTimeOffset now) =>
        now.UtcDateTime.ToString("yyyyMMdd'-'HHmmssfff", CultureInfo.InvariantCulture) + "-" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4));

    private static readonly JsonSerializerOptions Json = new() { DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };

    private static ReadOnlySpan<byte> TagPrefix => "\nhmac-sha256 "u8;

    /// <summary>The manifest's bytes: its JSON body, then a line with its tag under the keyring's <c>backup.manifest</c> key.</summary>
    public byte[] Seal(ContentAuthenticator authenticator)
    {
        var body = JsonSerializer.SerializeToUtf8Bytes(this, Json);
        var tag = Encoding.ASCII.GetBytes(Convert.ToHexStringLower(authenticator.Tag(body)) + "\n");
        return [.. body, .. TagPrefix, .. tag];
    }

    /// <summary>Reads manifest bytes, refusing any whose tag is not this keyring's (altered, or made with another keyring).</summary>
    public static Manifest Open(ContentAuthenticator authenticator, string name, ReadOnlySpan<byte> bytes)
    {
        var at = bytes.LastIndexOf(TagPrefix);
        if (at < 0) throw new BackupFormatException($"manifest {name} has no tag: it is not a Wardline manifest, or it was truncated");
        var body = bytes[..at];
        var tagHex = Encoding.ASCII.GetString(bytes[(at + TagPrefix.Length)..]).TrimEnd('\n');
        byte[] tag;
        try
        {
            tag = Convert.FromHexString(tagHex);
        }
        catch (FormatException)
        {
            throw new BackupFormatException($"manifest {name} has a malformed tag");
        }
        if (!authenticator.Verify(body, tag))
            throw new BackupFormatException($"manifest {name} is not signed by this keyring: it was altered, or made with another keyring");
        Manifest? manifest;
        try
        {
            manifest = JsonSerializer.Deserialize<Manifest>(body, Json);
        }
        catch (JsonException ex)
        {
            throw new BackupFormatException($"manifest {name} is signed but malformed: {ex.Message}");
        }
        if (manifest is null) throw new BackupFormatException($"manifest {name} is empty");
        if (manifest.Format is < 1 or > FormatVersion) throw new BackupFormatException($"manifest {name} is format {manifest.Format}; this Wardline reads formats 1 to {FormatVersion}");
        if (manifest.Format < FormatFor(manifest.Objects)) throw new BackupFormatException($"manifest {name} is format {manifest.Format} but lists database image objects, which need format 2");
        if (manifest.Name != name) throw new BackupFormatException($"manifest {name} says it is {manifest.Name}: it was renamed");
        return manifest;
    }
}

/// <summary>One stored object of a backup.</summary>
internal sealed record ManifestObject
{
    /// <summary>The kind of a piece of a SQLite database file (format 2): its payload is raw bytes of the file, not row blocks.</summary>
    public const string ImageKind = "image";

    [JsonPropertyName("name")] public required string Name { get; init; }

    [JsonPropertyName("sha256")] public required string Sha256 { get; init; }

    [JsonPropertyName("bytes")] public required long Bytes { get; init; }

    /// <summary><c>ledger</c> (entries, subtree hashes, heads and the versions they record), <c>resources</c> (current state of the resources those entries wrote), <c>table</c> (a whole small table), or <c>image</c> (bytes of a full backup's SQLite database file).</summary>
    [JsonPropertyName("kind")] public required string Kind { get; init; }

    /// <summary>For <c>table</c>: which table.</summary>
    [JsonPropertyName("table")] public string? Table { get; init; }

    /// <summary>For <c>ledger</c>/<c>resources</c>: the entries covered, [from, to); for <c>image</c>: the byte range of the database file.</summary>
    [JsonPropertyName("from")] public long? From { get; init; }

    [JsonPropertyName("to")] public long? To { get; init; }

    [JsonPropertyName("rows")] public long Rows { get; init; }

    /// <summary>Keyed fingerprint of the plaintext (hex), so an unchanged table is recognised and not shipped again; empty for <c>image</c>.</summary>
    [JsonPropertyName("fingerprint")] public required string Fingerprint { get; init; }
}
