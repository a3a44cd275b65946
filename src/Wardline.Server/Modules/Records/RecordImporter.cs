using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using Hl7.Fhir.Model;
using Task = System.Threading.Tasks.Task;
using Microsoft.Extensions.Logging;

namespace Wardline.Server.Modules.Records;

/// <summary>What became of one file or resource. <paramref name="Source"/> names it without its file name (Synthea names files after their patient).</summary>
internal sealed record ImportResult(string Source, int Resources, IReadOnlyList<string> Problems)
{
    public bool Ok => Problems.Count == 0;
}

/// <summary>
/// Loads FHIR Bundles (transaction, batch, collection), single resources and NDJSON files.
/// Each Bundle is one transaction in import mode (see <see cref="BundleProcessor.TransactionAsync"/>);
/// an NDJSON file goes in chunks, and a bad line is reported and skipped.
/// </summary>
internal sealed class RecordImporter(BundleProcessor bundles, ILogger<RecordImporter> logger)
{
    private const string ImportBase = "urn:wardline:import";
    private const int NdjsonChunk = 500;


    public async Task<ImportResult> ImportFileAsync(string path, Action<int>? progress, CancellationToken ct)
    {
        var result = await ImportParsedAsync(path, IsNdjson(path) ? null : await ReadAndParseAsync(path, ct), progress, ct);
        return await NamedAsync(result, path, 1, 1, ct);
    }

    /// <summary>
    /// Imports files in order, parsing JSON files on another core up to two files ahead of the
    /// writer: parsing is a third of the work, and the writer need not wait for it.
    /// </summary>
    public async Task<IReadOnlyList<ImportResult>> ImportFilesAsync(IReadOnlyList<string> paths, Action<ImportResult>? onResult, CancellationToken ct)
    {
        var ahead = Channel.CreateBounded<(string Path, System.Threading.Tasks.Task<Parsed>? Parsed)>(2);
        var producer = Task.Run(async () =>
        {
            try
            {
                foreach (var path in paths)
                {
                    await ahead.Writer.WriteAsync((path, IsNdjson(path) ? null : Task.Run(() => ReadAndParseAsync(path, ct), ct)), ct);
                }
            }
            finally
            {
                ahead.Writer.TryComplete();
            }
        }, ct);
        var results = new List<ImportResult>();
        await foreach (var (path, parsed) in ahead.Reader.ReadAllAsync(ct))
        {
            var result = await NamedAsync(await ImportParsedAsync(path, parsed is null ? null : await parsed, null, ct), path, results.Count + 1, paths.Count, ct);
            results.Add(result);
            onResult?.Invoke(result);
        }
        await producer;
        return results;
    }

    /// <summary>
    /// Names a file's result by its place in the run, and a refused one also by the first 12 hex digits of its content's
    /// SHA-256 (<c>sha256sum FILES | grep HEX</c> finds it), never by its name: Synthea names each file after its patient.
    /// A refused file is logged with the number of its reasons only (they may quote its content).
    /// </summary>
    private async Task<ImportResult> NamedAsync(ImportResult result, string path, int place, int of, CancellationToken ct)
    {
        var name = $"file {place} of {of}";
        if (result.Ok) return result with { Source = name };
        string hash;
        try
        {
            await using var file = File.OpenRead(path);
            hash = "sha256 " + Convert.ToHexStringLower(await SHA256.HashDataAsync(file, ct))[..12];
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            hash = "unreadable";
        }
        result = result with { Source = $"{name} ({hash})" };
        Log.ImportFileRefused(logger, result.Source, result.Problems.Count, result.Resources);
        return result;
    }

    private static bool IsNdjson(string path) => path.EndsWith(".ndjson", StringComparison.OrdinalIgnoreCase);

    /// <summary>A JSON file read and parsed, or why it could not be.</summary>
    private sealed record Parsed(Resource? Resource, IReadOnlyList<string> Problems);

    private static async Task<Parsed> ReadAndParseAsync(string path, CancellationToken ct)
    {
        try
        {
            var parsed = FhirJson.Parse(await File.ReadAllBytesAsync(path, ct));
            return new Parsed(parsed.Resource, parsed.Issues);
        }
        catch (IOException ex)
        {
            return new Parsed(null, [$"cannot read the file: {ex.GetType().Name}"]);
        }
        catch (UnauthorizedAccessException)
        {
            return new Parsed(null, ["cannot read the file: permission denied"]);
        }
    }

    /// <summary>Stores a parsed JSON file, or streams an NDJSON file when <paramref name="parsed"/> is null.</summary>
    private async Task<ImportResult> ImportParsedAsync(string path, Parsed? parsed, Action<int>? progress, CancellationToken ct)
    {
        const string name = "file"; // its place in the run, by NamedAsync
        if (parsed is null)
        {
            try
            {
                return await ImportNdjsonAsync(path, name, progress, ct);
            }
            catch (IOException ex)
            {
                return new ImportResult(name, 0, [$"cannot read the file: {ex.GetType().Name}"]);
            }
            catch (UnauthorizedAccessException)
            {
                return new ImportResult(name, 0, ["cannot read the file: permission denied"]);
            }
        }
        if (parsed.Resource is null)
        {
            return new ImportResult(name, 0, parsed.Problems);
        }
        var result = await ImportResourceAsync(parsed.Resource, name, ct);
        progress?.Invoke(result.Resources);
        return result;
    }

    public async Task<ImportResult> ImportResourceAsync(Resource resource, string source, CancellationToken ct)
    {
        Bundle bundle;
        if (resource is Bundle b)
        {
            if (b.Type == Bundle.BundleType.Batch)
            {
                b.Type = Bundle.BundleType.Transaction; // Import is all-or-nothing per file; a batch file is no exception.
            }
            else if (b.Type is not (Bundle.BundleType.Transaction or Bundle.BundleType.Collection))
            {
                return new ImportResult(source, 0, [$"a {b.Type} Bundle cannot be imported (transaction, batch and collection can)."]);
            }
            bundle = b;
        }
        else
        {
            bundle = new Bundle { Type = Bundle.BundleType.Collection, Entry = [new Bundle.EntryComponent { Resource = resource }] };
        }
        var count = bundle.Entry.Count(e => e.Resource is not null);
        var response = await bundles.TransactionAsync(bundle, ImportBase, Access.AccessScope.Operator, importMode: true, ct);
        if (response.Status == 409) Log.ImportTransactionConflict(logger);
        return response.IsSuccess ? new ImportResult(source, count, []) : new ImportResult(source, 0, Diagnostics(response));
    }

    private async Task<ImportResult> ImportNdjsonAsync(string path, string name, Action<int>? progress, CancellationToken ct)
    {
        var problems = new List<string>();
        var imported = 0;
        var chunk = new List<(int Line, Resource Resource)>();
        var lineNo = 0;
        using var reader = new StreamReader(path, Encoding.UTF8);
        while (await reader.ReadLineAsync(ct) is { } line)
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            var parsed = FhirJson.Parse(Encoding.UTF8.GetBytes(line));
            if (parsed.Resource is null)
            {
                problems.AddRange(parsed.Issues.Select(i => $"line {lineNo}: {i}"));
                continue;
            }
            chunk.Add((lineNo, parsed.Resource));
            if (chunk.Count == NdjsonChunk)
            {
                imported += await FlushAsync(chunk, problems, ct);
                progress?.Invoke(chunk.Count);
                chunk.Clear();
            }
        }
        imported += await FlushAsync(chunk, problems, ct);
        progress?.Invoke(chunk.Count);
        return new ImportResult(name, imported, problems);
    }

    private async Task<int> FlushAsync(List<(int Line, Resource Resource)> chunk, List<string> problems, CancellationToken ct)
    {
        if (chunk.Count == 0) return 0;
        var bundle = new Bundle { Type = Bundle.BundleType.Collection, Entry = [.. chunk.Select(c => new Bundle.EntryComponent { Resource = c.Resource })] };
        var response = await bundles.TransactionAsync(bundle, ImportBase, Access.AccessScope.Operator, importMode: true, ct);
        if (response.IsSuccess) return chunk.Count;
        if (chunk.Count == 1)
        {
            // The line is the whole transaction, so "entry[0]: " says nothing the line number does not.
            problems.Add($"line {chunk[0].Line}: {string.Join(" ", Diagnostics(response).Select(d => d.StartsWith("entry[0]: ", StringComparison.Ordinal) ? d[10..] : d))}");
            return 0;
        }
        // One bad line must not cost its neighbours: find it by storing the lines one by one. This is
        // the slow path, taken only by a chunk that failed, and each line is still all-or-nothing.
        var imported = 0;
        foreach (var line in chunk)
        {
            imported += await FlushAsync([line], problems, ct);
        }
        return imported;
    }

    /// <summary>The diagnostics of an OperationOutcome response, for the import report.</summary>
    internal static List<string> Diagnostics(FhirResponse response)
    {
        var list = new List<string>();
        if (response.Json is null) return [$"HTTP {response.Status}"];
        using var doc = JsonDocument.Parse(response.Json);
        if (doc.RootElement.TryGetProperty("issue", out var issues))
        {
            foreach (var issue in issues.EnumerateArray())
            {
                if (issue.TryGetProperty("diagnostics", out var d) && d.GetString() is { } text) list.Add(text);
            }
        }
        return list.Count > 0 ? list : [$"HTTP {response.Status}"];
    }
}
