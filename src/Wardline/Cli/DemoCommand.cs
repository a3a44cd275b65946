using System.CommandLine;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Spectre.Console;
using Wardline.Demo;
using Wardline.Server.Hosting;
using Wardline.Server.Modules.Access;
using Wardline.Server.Modules.Access.Identity;
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
            var accounts = await EnsureAccountsAsync(sp, parse.GetValue(seed), ct);
            var tokens = sp.GetRequiredService<AccessTokens>();
            var table = new Table().AddColumns("user", "roles", "bearer token (valid 12 h)");
            foreach (var account in accounts)
            {
                table.AddRow(account.Name, string.Join(", ", account.Roles), await tokens.IssueAsync(account.Name, TimeSpan.FromHours(12), ct) ?? "");
            }
            AnsiConsole.Write(table);
            AnsiConsole.MarkupLine($"Every demo account signs in with the password [yellow]{DemoPassword}[/] (demo store only); the first sign-in enrols an authenticator app.");
            AnsiConsole.MarkupLine($"Wardline demo is serving [link]http://127.0.0.1:{p}/fhir[/] (CapabilityStatement: /fhir/metadata).");
            AnsiConsole.MarkupLine($"The console (sign-in, users, policy and its \"Why?\" explainer, break-glass): [link]http://127.0.0.1:{p}/console[/]");
            AnsiConsole.MarkupLine($"Try: curl -H 'Authorization: Bearer <token>' 'http://127.0.0.1:{p}/fhir/Patient?_count=5'");
            AnsiConsole.MarkupLine($"The audit ledger: privacy.officer's token reads [link]http://127.0.0.1:{p}/fhir/AuditEvent?patient=<id>[/] and the console's Disclosures page; " +
                "check it with: wardline ledger verify --data " + Markup.Escape(options.DataDirectory!));
            AnsiConsole.MarkupLine("More tokens: wardline token --data " + Markup.Escape(options.DataDirectory) + " --user <name>. Press Ctrl+C to stop.");
            await app.WaitForShutdownAsync(ct);
            return 0;
        }));
        return command;
    }

    /// <summary>The documented password of every demo account. Only ever set on a demo store.</summary>
    internal const string DemoPassword = "wardline-demo-2026";

    /// <summary>The named demo accounts in the policy's vocabulary, with the display names of their Practitioner resources.</summary>
    private static readonly Account[] DemoAccounts =
    [
        Account.New("cmo.adams", "Dr. Margaret Adams") with { Roles = ["physician", "executive"], Tier = 1, BreakGlassApproved = true },
        Account.New("nurse.cardio", "Carla Moreno") with { Roles = ["nurse"], Departments = ["cardiology"], BreakGlassApproved = true },
        Account.New("dr.onco", "Dr. Oliver Okafor") with { Roles = ["physician"], Departments = ["oncology"], BreakGlassApproved = true },
        Account.New("dr.psych", "Dr. Priya Raman") with { Roles = ["psychiatrist"], Departments = ["psychiatry"], Treats = ["PSY", "ETH"], BreakGlassApproved = true },
        Account.New("clerk.billing", "Ben Clarke") with { Roles = ["billing_clerk"], Departments = ["billing"] },
        Account.New("privacy.officer", "Paula Reyes") with { Roles = ["privacy_officer"] },
        Account.New("admin", "Alex Morgan") with { Roles = ["administrator"] },
    ];

    /// <summary>
    /// Creates the demo accounts (a store reused from before accounts existed holds them as token-only
    /// users: they get their roles and the demo password). MFA is left un-enrolled, so the console's
    /// first sign-in walks through enrolment. Each is linked to its Practitioner: the demo import keeps
    /// the organisation bundle's urn:uuid as the logical id, so the ids follow from the seed.
    /// </summary>
    private static async Task<IReadOnlyList<Account>> EnsureAccountsAsync(IServiceProvider sp, int seed, CancellationToken ct)
    {
        var service = sp.GetRequiredService<AccountService>();
        var store = sp.GetRequiredService<AccountStore>();
        var records = sp.GetRequiredService<RecordStore>();
        var practitioners = PractitionerIds(seed);
        var result = new List<Account>();
        foreach (var name in DemoHospital.NamedUsernames)
        {
            var wanted = DemoAccounts.Single(a => a.Name == name);
            if (practitioners.TryGetValue(name, out var id) && await records.ReadCurrentAsync("Practitioner", id, ct) is not null)
                wanted = wanted with { PractitionerId = id };
            var outcome = await service.CreateAsync(wanted, DemoPassword, "demo", ct);
            if (outcome is AccountResult.AlreadyExists)
            {
                outcome = await service.UpdateAsync(name, a => wanted with { Disabled = a.Disabled, MfaEnrolled = a.MfaEnrolled }, "demo", ct);
                if ((await store.ReadCredentialsAsync(name, ct))?.PasswordHash is null)
                    await service.SetPasswordAsync(name, DemoPassword, "demo", ct);
            }
            result.Add(outcome is AccountResult.Done done ? done.Account : throw new CliException($"The demo account {name} could not be set up: {outcome}"));
        }
        return result;
    }

    private static Dictionary<string, string> PractitionerIds(int seed)
    {
        var ids = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var entry in DemoHospital.Generate(0, seed).First().Entry)
        {
            if (entry.Resource is Hl7.Fhir.Model.Practitioner p && entry.FullUrl?.StartsWith("urn:uuid:", StringComparison.Ordinal) == true
                && p.Identifier.FirstOrDefault(i => i.System == DemoHospital.StaffSystem) is { Value: { } username })
                ids[username] = entry.FullUrl["urn:uuid:".Length..];
        }
        return ids;
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
