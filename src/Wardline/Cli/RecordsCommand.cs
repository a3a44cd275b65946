using System.CommandLine;
using Microsoft.Extensions.DependencyInjection;
using Spectre.Console;
using Wardline.Server.Modules.Ledger;
using Wardline.Server.Modules.Records;

namespace Wardline.Cli;

/// <summary><c>wardline records rederive</c>: what is derived from the stored records, derived again.</summary>
internal static class RecordsCommand
{
    public static Command Create()
    {
        var command = new Command("records", "Work with the stored records.");
        var store = new StoreArgs();
        var rederive = new Command("rederive",
            "Derive every present resource's search index, access facts and care relations again from its stored content: after an upgrade " +
            "that changed what is derived, or to repair what `wardline ledger verify --derived` names. Versions are not touched; the run is recorded in the ledger. " +
            "It may run beside the server: a record written while it runs keeps what that write derived.");
        store.AddTo(rederive);
        rederive.SetAction((parse, ct) => CommandRunner.RunAsync(async () =>
        {
            var options = store.Resolve(parse);
            await using var sp = await StoreArgs.OpenAsync(options, ct);
            var done = await sp.GetRequiredService<RecordService>().RederiveAllAsync(ct);
            var total = done.Sum(d => d.Count);
            await sp.GetRequiredService<LedgerRecorder>().RecordSystemAsync("records-rederived", "operator", "succeeded",
                $"search index, access facts and care relations derived again for {total} resources", ct);
            foreach (var (type, count) in done) AnsiConsole.MarkupLine($"{Markup.Escape(type)}: {count}");
            AnsiConsole.MarkupLine($"[green]derived again[/]: {total} resources");
            return 0;
        }));
        command.Subcommands.Add(rederive);
        return command;
    }
}
