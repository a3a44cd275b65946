using System.CommandLine;
using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Spectre.Console;
using Wardline.Server.Modules.Records;

namespace Wardline.Cli;

internal static class ImportCommand
{
    public static Command Create()
    {
        var store = new StoreArgs();
        var paths = new Argument<string[]>("paths") { Description = "Files or folders: FHIR Bundles (.json: transaction, batch, collection), single resources, NDJSON (.ndjson).", Arity = ArgumentArity.OneOrMore };
        var command = new Command("import", "Load FHIR data into the store. Each file is all-or-nothing; a bad file is reported and the others still load. Resources repeated across files (same urn:uuid) are stored once.");
        store.AddTo(command);
        command.Arguments.Add(paths);
        command.SetAction((parse, ct) => CommandRunner.RunAsync(async () =>
        {
            var files = Expand(parse.GetValue(paths)!);
            if (files.Count == 0) throw new CliException("No .json or .ndjson files were found at the given paths.");
            await using var sp = await StoreArgs.OpenAsync(store.Resolve(parse), ct);
            var importer = sp.GetRequiredService<RecordImporter>();
            var results = new List<ImportResult>();
            var watch = Stopwatch.StartNew();
            await AnsiConsole.Progress()
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                .StartAsync(async progress =>
                {
                    var task = progress.AddTask($"importing {files.Count} files", maxValue: files.Count);
                    results.AddRange(await importer.ImportFilesAsync(files, _ => task.Increment(1), ct));
                });
            var resources = results.Sum(r => r.Resources);
            foreach (var bad in results.Where(r => !r.Ok))
            {
                AnsiConsole.MarkupLine($"[red]{Markup.Escape(bad.Source)}[/]: {Markup.Escape(string.Join(" | ", bad.Problems.Take(10)))}");
            }
            if (results.Any(r => !r.Ok))
            {
                // Files are named by place and content hash, not by name: exports name files after their patients.
                AnsiConsole.MarkupLine("Files are taken in the order given (a folder's in name order); find one by its hash with [blue]sha256sum FILES | grep HEX[/].");
            }
            var seconds = Math.Max(watch.Elapsed.TotalSeconds, 0.001);
            AnsiConsole.MarkupLine($"{results.Count(r => r.Ok)} of {files.Count} files imported, {resources} resources in {seconds:F1} s ({resources / seconds:F0} resources/s)");
            return results.All(r => r.Ok) ? 0 : 1;
        }));
        return command;
    }

    private static List<string> Expand(IEnumerable<string> paths)
    {
        var files = new List<string>();
        foreach (var p in paths)
        {
            if (Directory.Exists(p))
            {
                files.AddRange(Directory.EnumerateFiles(p, "*", SearchOption.AllDirectories)
                    .Where(f => f.EndsWith(".json", StringComparison.OrdinalIgnoreCase) || f.EndsWith(".ndjson", StringComparison.OrdinalIgnoreCase))
                    .Order(StringComparer.Ordinal));
            }
            else if (File.Exists(p)) files.Add(p);
            else throw new CliException($"{p} does not exist.");
        }
        return files;
    }
}
