using System.CommandLine;
using System.Globalization;
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
        var derived = new Option<bool>("--derived")
        {
            Description = "Also derive each present resource's access facts, care relations and search index again from its content and hold the stored rows to them " +
                "(what the policy decides by and what searches find; run it with the server's configuration). Repair with `wardline records rederive`.",
        };
        verifyStore.AddTo(verify);
        verify.Options.Add(derived);
        verify.SetAction((parse, ct) => CommandRunner.RunAsync(async () =>
        {
            var options = verifyStore.Resolve(parse);
            var withDerived = parse.GetValue(derived);
            await using var sp = await StoreArgs.OpenAsync(options, ct);
            var report = await sp.GetRequiredService<LedgerVerifier>().VerifyAsync(LedgerVerifier.Depth.Full, ct, withDerived);
            var witness = sp.GetRequiredService<IWitness>();
            AnsiConsole.MarkupLine($"ledger: {report.Size} entries; {report.HeadsChecked} signed heads in the {Markup.Escape(witness.Describe())}; " +
                $"{report.VersionsChecked} resource versions; {report.Elapsed.TotalSeconds:0.00} s");
            if (report.Problems.Count == 0)
            {
                AnsiConsole.MarkupLine("[green]verified[/]: every entry, head and version agrees" +
                    (withDerived ? ", and every present resource's access facts, care relations and search index" : ""));
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
            catch (Exception ex) when (ex is LedgerReadOnlyException or WitnessUnavailableException)
            {
                throw new CliException(ex.Message);
            }
            AnsiConsole.MarkupLine($"signed tree head: size [green]{signed.Size}[/], root {Convert.ToHexStringLower(signed.Root)}, key {signed.KeyId}");
            return 0;
        }));
        command.Subcommands.Add(head);
        command.Subcommands.Add(ExportCommand());
        command.Subcommands.Add(Disclosures());
        return command;
    }

    /// <summary>
    /// The accounting of disclosures of one patient's record (ONC 170.315(d)(3)), from the ledger; the
    /// report is itself recorded, as read by "operator".
    /// </summary>
    private static Command Disclosures()
    {
        var store = new StoreArgs();
        var patient = new Option<string>("--patient") { Description = "The Patient resource id whose record's disclosures are listed.", Required = true };
        var from = new Option<string?>("--from") { Description = "First day of the period (yyyy-mm-dd, UTC)." };
        var to = new Option<string?>("--to") { Description = "Last day of the period, inclusive (yyyy-mm-dd, UTC)." };
        var csv = new Option<bool>("--csv") { Description = "Print CSV (RFC 4180, with a header row) instead of a table." };
        var command = new Command("disclosures", "List who accessed a patient's record: time, user, roles, application, action, resource, purpose, decision and reason.");
        store.AddTo(command);
        foreach (var o in new Option[] { patient, from, to, csv }) command.Options.Add(o);
        command.SetAction((parse, ct) => CommandRunner.RunAsync(async () =>
        {
            var id = parse.GetValue(patient)!.Trim();
            if (id.StartsWith("Patient/", StringComparison.Ordinal)) id = id["Patient/".Length..];
            if (!Wardline.Server.Modules.Records.Search.FhirIds.IsValid(id))
                throw new CliException("--patient must be a Patient resource id: 1 to 64 letters, digits, '-' or '.'.");
            var first = Day(parse.GetValue(from), "--from");
            var last = Day(parse.GetValue(to), "--to");
            // --to is inclusive, so its day needs a next midnight: the calendar's last day has none.
            if (last == DateOnly.MaxValue) throw new CliException("--to must be a date from 0001-01-01 to 9999-12-30 (leave it out for no end).");
            if (first > last) throw new CliException("--from is after --to.");
            var options = store.Resolve(parse);
            await using var sp = await StoreArgs.OpenAsync(options, ct);
            var start = first is { } f ? new DateTimeOffset(f.ToDateTime(TimeOnly.MinValue), TimeSpan.Zero) : (DateTimeOffset?)null;
            // --to is a whole day: the trail's end is exclusive, so the next midnight, UTC.
            var end = last is { } l ? new DateTimeOffset(l.AddDays(1).ToDateTime(TimeOnly.MinValue), TimeSpan.Zero) : (DateTimeOffset?)null;
            var rows = await sp.GetRequiredService<AuditTrail>().DisclosuresAsync(id, start, end, "operator", "cli", ct);
            if (parse.GetValue(csv))
            {
                Console.Out.Write(DisclosureCsv.Write(rows));
                return 0;
            }
            var table = new Table().AddColumns("time (UTC)", "user", "roles", "application", "action", "resource", "purpose", "permitted", "reason");
            foreach (var d in rows)
            {
                table.AddRow(
                    d.At.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture),
                    Markup.Escape(d.User ?? "(not signed in)"),
                    Markup.Escape(string.Join(", ", d.Roles)),
                    Markup.Escape(d.Client ?? "-"),
                    Markup.Escape(d.Action),
                    Markup.Escape(d.Resource ?? "-"),
                    Markup.Escape(d.Purpose ?? "-"),
                    d.Permitted ? "[green]yes[/]" : "[red]no[/]",
                    Markup.Escape(d.Reason ?? "-"));
            }
            AnsiConsole.Write(table);
            AnsiConsole.MarkupLine($"{rows.Count} entr{(rows.Count == 1 ? "y" : "ies")} for Patient/{Markup.Escape(id)}; this report is recorded in the ledger.");
            return 0;
        }));
        return command;
    }

    private static DateOnly? Day(string? text, string option)
    {
        if (string.IsNullOrWhiteSpace(text)) return null;
        return DateOnly.TryParseExact(text.Trim(), "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var d)
            ? d
            : throw new CliException($"{option} must be a date as yyyy-mm-dd, for example 2026-01-31.");
    }

    /// <summary>`ledger export --jsonl FILE [--from INDEX]`: a one-shot dump in the jsonl export format; the export cursors are not touched.</summary>
    private static Command ExportCommand()
    {
        var store = new StoreArgs();
        var jsonl = new Option<FileInfo>("--jsonl") { Description = "The file to write: one line per entry, {\"idx\":N,\"entry\":<canonical entry JSON>}.", Required = true };
        var from = new Option<long>("--from") { Description = "The first index to export (default 0)." };
        var export = new Command("export", "Write the ledger's entries, from an index on, to a jsonl file (replaced if it exists), and fsync it.");
        store.AddTo(export);
        export.Options.Add(jsonl);
        export.Options.Add(from);
        export.SetAction((parse, ct) => CommandRunner.RunAsync(async () =>
        {
            var file = parse.GetValue(jsonl)!;
            var first = parse.GetValue(from);
            if (first < 0) throw new CliException("--from must be 0 or more.");
            var options = store.Resolve(parse);
            await using var sp = await StoreArgs.OpenAsync(options, ct);
            var dialect = sp.GetRequiredService<Wardline.Server.Modules.Records.Storage.SqlDialect>();
            // The export holds every patient's access history (identifiers, not content): it is recorded before it is written,
            // as every disclosure is, so a ledger that cannot take the entry gets no export either.
            var (size, _) = await sp.GetRequiredService<LedgerIntegrity>().StateAsync(ct);
            await sp.GetRequiredService<LedgerRecorder>().RecordSystemAsync("ledger-exported", "operator", "succeeded",
                $"entries from index {first} (the ledger held {size}) to {file.FullName}", ct);
            long count = 0, last = first - 1;
            await using (var output = new FileStream(file.FullName, FileMode.Create, FileAccess.Write, FileShare.Read, 64 * 1024))
            await using (var c = await dialect.OpenAsync(ct))
            {
                while (true)
                {
                    var batch = await Wardline.Server.Modules.Ledger.Export.ExportCursor.ReadAsync(c, last, 5000, ct);
                    if (batch.Count == 0) break;
                    foreach (var row in batch) await output.WriteAsync(Wardline.Server.Modules.Ledger.Export.SiemFormat.JsonLine(row.Index, row.Bytes), ct);
                    count += batch.Count;
                    last = batch[^1].Index;
                }
                output.Flush(flushToDisk: true);
            }
            AnsiConsole.MarkupLine(count == 0
                ? $"exported [green]0[/] entries (the ledger has none from index {first})"
                : $"exported [green]{count}[/] entries, indexes {first}..{last}, to {Markup.Escape(file.FullName)}");
            return 0;
        }));
        return export;
    }
}
