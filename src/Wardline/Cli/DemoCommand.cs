using System.CommandLine;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Spectre.Console;
using Wardline.Demo;
using Wardline.Server.Hosting;
using Wardline.Server.Modules.Access;
using Wardline.Server.Modules.Records;
using Wardline.Server.Modules.Records.Storage;

namespace Wardline.Cli;

internal static class DemoCommand
{
    public static Command Create()
    {
        var data = new Option<string>("--data") { Description = "Folder of the demo store.", DefaultValueFactory = _ => "wardline-demo" };
        var port = new Option<int>("--port") { Description = "Port on 127.0.0.1.", DefaultValueFactory = _ => 5080 };
        var patients = new Option<int>("--patients") { Description = "How many synthetic patients a new demo store gets.", DefaultValueFactory = _ => 3000 };
        var seed = new Option<int>("--seed") { Description = "Seed of the synthetic hospital.", DefaultValueFactory = _ => 42 };
        var command = new Command("demo", "Create (or reuse) a demo store with a synthetic hospital and serve it on http://127.0.0.1:5080.");
        command.Options.Add(data);
        command.Options.Add(port);
        command.Options.Add(patients);
        command.Options.Add(seed);
        command.SetAction((parse, ct) => CommandRunner.RunAsync(async () =>
        {
            var p = parse.GetValue(port);
            if (p is < 1 or > 65535) throw new CliException("--port must be from 1 to 65535.");
            var n = parse.GetValue(patients);
            if (n is < 1 or > 100_000) throw new CliException("--patients must be from 1 to 100000.");
            var options = new WardlineOptions { DataDirectory = Path.GetFullPath(parse.GetValue(data)!) };
            options.Urls.Add($"http://127.0.0.1:{p}");
            var app = WardlineHost.Build(options);
            await app.StartAsync(ct);
            var sp = app.Services;
            var store = sp.GetRequiredService<RecordStore>();
            if (await store.CountAsync("SELECT COUNT(*) FROM resources", ct) == 0)
            {
                await SeedAsync(sp.GetRequiredService<RecordImporter>(), n, parse.GetValue(seed), ct);
            }
            else
            {
                AnsiConsole.MarkupLine($"reusing the demo store in [blue]{Markup.Escape(options.DataDirectory)}[/]");
            }
            var tokens = sp.GetRequiredService<AccessTokens>();
            var table = new Table().AddColumns("user", "bearer token (valid 12 h)");
            foreach (var user in DemoHospital.NamedUsernames)
            {
                await tokens.AddUserAsync(user, user, ct);
                table.AddRow(user, await tokens.IssueAsync(user, TimeSpan.FromHours(12), ct) ?? "");
            }
            AnsiConsole.Write(table);
            AnsiConsole.MarkupLine($"Wardline demo is serving [link]http://127.0.0.1:{p}/fhir[/] (CapabilityStatement: /fhir/metadata).");
            AnsiConsole.MarkupLine($"Try: curl -H 'Authorization: Bearer <token>' 'http://127.0.0.1:{p}/fhir/Patient?_count=5'");
            AnsiConsole.MarkupLine("More tokens: wardline token --data " + Markup.Escape(options.DataDirectory) + " --user <name>. Press Ctrl+C to stop.");
            await app.WaitForShutdownAsync(ct);
            return 0;
        }));
        return command;
    }

    private static async System.Threading.Tasks.Task SeedAsync(RecordImporter importer, int patients, int seed, CancellationToken ct)
    {
        var bundles = (patients + DemoHospital.PatientsPerBundle - 1) / DemoHospital.PatientsPerBundle + 1;
        var total = 0;
        await AnsiConsole.Progress().StartAsync(async progress =>
        {
            var task = progress.AddTask($"generating a hospital with {patients} patients", maxValue: bundles);
            foreach (var bundle in DemoHospital.Generate(patients, seed))
            {
                var result = await importer.ImportResourceAsync(bundle, "demo", ct);
                if (!result.Ok) throw new CliException("The demo data could not be stored: " + string.Join(" ", result.Problems.Take(5)));
                total += result.Resources;
                task.Increment(1);
            }
        });
        AnsiConsole.MarkupLine($"stored [green]{total}[/] resources");
    }
}
