using System.CommandLine;
using Microsoft.Extensions.DependencyInjection;
using Spectre.Console;
using Wardline.Ledger;
using Wardline.Server.Modules.Ledger;

namespace Wardline.Cli;

internal static class LedgerCommand
{
    public static Command Create()
    {
        var command = new Command("ledger", "Work with the tamper-evident audit ledger.");

        var verifyStore = new StoreArgs();
        var verify = new Command("verify",
            "Recompute the whole ledger and check it against the witness's signed tree heads, its stored hashes and columns, " +
            "and every stored resource version against its write entry. Exit code 1 names what differs.");
        verifyStore.AddTo(verify);
        verify.SetAction((parse, ct) => CommandRunner.RunAsync(async () =>
        {
            var options = verifyStore.Resolve(parse);
            await using var sp = await StoreArgs.OpenAsync(options, ct);
            var report = await sp.GetRequiredService<LedgerVerifier>().VerifyAsync(LedgerVerifier.Depth.Full, ct);
            var witness = sp.GetRequiredService<IWitness>();
            AnsiConsole.MarkupLine($"ledger: {report.Size} entries; {report.HeadsChecked} signed heads in the {Markup.Escape(witness.Describe())}; " +
                $"{report.VersionsChecked} resource versions; {report.Elapsed.TotalSeconds:0.00} s");
            if (report.Problems.Count == 0)
            {
                AnsiConsole.MarkupLine("[green]verified[/]: every entry, head and version agrees");
                return 0;
            }
            foreach (var p in report.Problems) AnsiConsole.MarkupLine($"[red]differs[/]: {Markup.Escape(p)}");
            AnsiConsole.MarkupLine($"[red]{report.Problems.Count} problem(s)[/]{(report.Problems.Count >= 50 ? " (the first 50)" : "")}");
            return 1;
        }));
        command.Subcommands.Add(verify);

        var headStore = new StoreArgs();
        var head = new Command("head", "Sign a tree head of the ledger as it stands now and publish it to the witness.");
        headStore.AddTo(head);
        head.SetAction((parse, ct) => CommandRunner.RunAsync(async () =>
        {
            var options = headStore.Resolve(parse);
            await using var sp = await StoreArgs.OpenAsync(options, ct);
            TreeHead signed;
            try
            {
                signed = (await sp.GetRequiredService<TreeHeads>().PublishAsync(force: true, ct))!;
            }
            catch (LedgerReadOnlyException ex)
            {
                throw new CliException(ex.Message);
            }
            AnsiConsole.MarkupLine($"signed tree head: size [green]{signed.Size}[/], root {Convert.ToHexStringLower(signed.Root)}, key {signed.KeyId}");
            return 0;
        }));
        command.Subcommands.Add(head);
        return command;
    }
}
