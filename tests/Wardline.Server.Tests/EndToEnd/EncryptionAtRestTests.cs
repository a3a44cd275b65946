using System.Buffers;
using System.Diagnostics;
using System.Text;
using Npgsql;
using Wardline.Server.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Wardline.Server.Tests.EndToEnd;

/// <summary>
/// A stolen database file or dump reveals no patient name, identifier, birth date, telecom,
/// address or diagnosis: after importing the Synthea samples, the raw bytes are searched for each
/// such value taken from the sample JSON, in UTF-8 and UTF-16LE.
/// </summary>
public abstract class EncryptionAtRestTests(SyntheaStoreFixture fixture, ITestOutputHelper output)
{
    /// <summary>
    /// Values shorter than this many UTF-8 bytes ("Ali", "Toy", "Kris") occur by chance in tens of
    /// megabytes of ciphertext, so they are searched for as a JSON string ("\"Toy\""), the way a
    /// leaked body would hold them. Their UTF-16LE form is long enough to search for bare.
    /// </summary>
    private const int MinBareUtf8Length = 5;

    /// <summary>The raw bytes an attacker who stole the storage would hold, by a name for messages.</summary>
    private protected abstract Task<IReadOnlyList<(string Name, byte[] Bytes)>> StolenBytesAsync();

    [Fact]
    public async Task Stolen_storage_reveals_no_patient_names_identifiers_birth_dates_contacts_or_diagnoses()
    {
        Assert.All(fixture.Results, r => Assert.True(r.Ok, $"{r.Source} did not import"));
        var secrets = SyntheaSamples.SecretValues;
        var needles = new List<(string Category, string Encoding, byte[] Bytes)>();
        foreach (var (value, category) in secrets)
        {
            var utf8 = Encoding.UTF8.GetBytes(value);
            needles.Add((category, "UTF-8", utf8.Length >= MinBareUtf8Length ? utf8 : Encoding.UTF8.GetBytes($"\"{value}\"")));
            needles.Add((category, "UTF-16LE", Encoding.Unicode.GetBytes(value)));
        }

        var stolen = await StolenBytesAsync();
        var knownId = Encoding.UTF8.GetBytes(FirstPatientId());
        var found = new List<string>();
        foreach (var (name, bytes) in stolen)
        {
            foreach (var hit in FindAll(bytes, needles.Select(n => n.Bytes).ToList()))
            {
                // Category and encoding only: the value itself is patient data and is never printed.
                found.Add($"a {needles[hit].Category} value ({needles[hit].Encoding}) in {name}");
            }
        }

        output.WriteLine($"{fixture.Kind}: searched {stolen.Sum(s => s.Bytes.Length):N0} bytes ({string.Join(", ", stolen.Select(s => s.Name))}) " +
            $"for {secrets.Count} distinct values ({string.Join(", ", secrets.GroupBy(s => s.Value).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => $"{g.Count()} {g.Key}"))}) " +
            $"in UTF-8 and UTF-16LE: {found.Count} found");
        // The search itself works: resource ids are stored in the clear (they are keys, not patient data).
        Assert.Contains(stolen, s => s.Bytes.AsSpan().IndexOf(knownId) >= 0);
        Assert.True(secrets.Count > 300, "the samples should yield a few hundred values to look for");
        Assert.Empty(found);
        Assert.DoesNotContain(stolen, s => s.Bytes.AsSpan().IndexOf("\"resourceType\""u8) >= 0);
    }

    private static string FirstPatientId()
    {
        using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllBytes(SyntheaSamples.Files[0]));
        return doc.RootElement.GetProperty("entry").EnumerateArray()
            .Select(e => e.GetProperty("resource"))
            .First(r => r.GetProperty("resourceType").GetString() == "Patient")
            .GetProperty("id").GetString()!;
    }

    /// <summary>Indexes of the needles that occur in the haystack, in one vectorised pass (bytes mapped 1:1 to chars).</summary>
    private static HashSet<int> FindAll(byte[] haystack, IReadOnlyList<byte[]> needles)
    {
        var text = Encoding.Latin1.GetString(haystack);
        var patterns = needles.Select(n => Encoding.Latin1.GetString(n)).ToArray();
        var search = SearchValues.Create(patterns, StringComparison.Ordinal);
        var hits = new HashSet<int>();
        var span = text.AsSpan();
        var offset = 0;
        while (offset < span.Length)
        {
            var i = span[offset..].IndexOfAny(search);
            if (i < 0) break;
            var at = span[(offset + i)..];
            for (var n = 0; n < patterns.Length; n++)
            {
                if (at.StartsWith(patterns[n], StringComparison.Ordinal)) hits.Add(n);
            }
            offset += i + 1;
        }
        return hits;
    }

    private protected static byte[] ReadShared(string path)
    {
        // The store still has the file open: read it without asking for exclusive access.
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }
}

[Collection(SqliteSyntheaCollection.Name)]
public sealed class EncryptionAtRestOnSqlite(SqliteSyntheaStoreFixture fixture, ITestOutputHelper output) : EncryptionAtRestTests(fixture, output)
{
    private protected override Task<IReadOnlyList<(string Name, byte[] Bytes)>> StolenBytesAsync()
    {
        // The database file and its write-ahead log (which holds the most recent pages); the keyring is not part of a stolen database.
        var folder = fixture.Store.Options.DataDirectory!;
        var files = Directory.EnumerateFiles(folder, "wardline.db*").Order(StringComparer.Ordinal).ToList();
        Assert.Contains(files, f => f.EndsWith("wardline.db", StringComparison.Ordinal));
        Assert.Contains(files, f => f.EndsWith("wardline.db-wal", StringComparison.Ordinal));
        IReadOnlyList<(string, byte[])> stolen = [.. files.Select(f => (Path.GetFileName(f), ReadShared(f)))];
        return Task.FromResult(stolen);
    }
}

[Collection(PostgresSyntheaCollection.Name)]
public sealed class EncryptionAtRestOnPostgres(PostgresSyntheaStoreFixture fixture, ITestOutputHelper output) : EncryptionAtRestTests(fixture, output)
{
    private protected override async Task<IReadOnlyList<(string Name, byte[] Bytes)>> StolenBytesAsync()
    {
        var bin = Environment.GetEnvironmentVariable("WARDLINE_PG_BIN")
            ?? throw new InvalidOperationException("WARDLINE_PG_BIN is not set: run the tests with ./test.sh (scripts/services.sh exports it).");
        var admin = new NpgsqlConnectionStringBuilder(TestStore.AdminConnectionString());
        var database = new NpgsqlConnectionStringBuilder(fixture.Store.PostgresConnectionString).Database!;
        var psi = new ProcessStartInfo(Path.Combine(bin, "pg_dump"))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { "-h", "127.0.0.1", "-p", admin.Port.ToString(), "-U", admin.Username ?? "postgres", "--no-password", database }) psi.ArgumentList.Add(a);
        if (admin.Password is { } password) psi.Environment["PGPASSWORD"] = password;
        using var process = Process.Start(psi)!;
        using var dump = new MemoryStream();
        var errors = process.StandardError.ReadToEndAsync();
        await process.StandardOutput.BaseStream.CopyToAsync(dump);
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 0, $"pg_dump failed: {await errors}");
        Assert.True(dump.Length > 1_000_000, "the dump should hold the imported store");
        return [("pg_dump " + database, dump.ToArray())];
    }
}
