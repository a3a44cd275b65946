using System.CommandLine;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Spectre.Console;
using Wardline.Policy;
using Wardline.Server.Modules.Access;

namespace Wardline.Cli;

internal static class AccessCommand
{
    public static Command Create()
    {
        var command = new Command("access", "Explain access decisions of the policy in force.");
        var store = new StoreArgs();
        var user = new Option<string>("--user") { Description = "The account whose access is explained.", Required = true };
        var patient = new Option<string?>("--patient") { Description = "Patient id: a new resource of --resource in this patient's record, or the patient the resource must belong to." };
        var type = new Option<string>("--resource") { Description = "Resource type, e.g. Observation.", Required = true };
        var id = new Option<string?>("--id") { Description = "Id of a stored resource of that type." };
        var action = new Option<string>("--action") { Description = "read, search, create, update, delete or export.", Required = true };
        var purpose = new Option<string>("--purpose") { Description = "Purpose of use (TREAT, ETREAT, HPAYMT, HRESCH, ...).", DefaultValueFactory = _ => "TREAT" };
        var noMfa = new Option<bool>("--no-mfa") { Description = "Explain as for a sign-in without MFA." };
        var external = new Option<bool>("--external") { Description = "Explain as for a request from outside the hospital network." };
        var json = new Option<bool>("--json") { Description = "Print JSON." };
        var explain = new Command("explain", "Show the decision and the rule chain for a user, a patient or resource, and an action.");
        store.AddTo(explain);
        foreach (var o in new Option[] { user, patient, type, id, action, purpose, noMfa, external, json }) explain.Options.Add(o);
        explain.SetAction((parse, ct) => CommandRunner.RunAsync(async () =>
        {
            if (!Enum.TryParse<PolicyAction>(parse.GetValue(action), ignoreCase: true, out var a) || !Enum.IsDefined(a))
                throw new CliException("--action must be one of read, search, create, update, delete, export.");
            await using var sp = await StoreArgs.OpenAsync(store.Resolve(parse), ct);
            var explainer = sp.GetRequiredService<AccessExplainer>();
            var (result, problem) = await explainer.ExplainAsync(parse.GetValue(user)!, parse.GetValue(type)!, parse.GetValue(id), parse.GetValue(patient), a,
                parse.GetValue(purpose)!.ToUpperInvariant(), !parse.GetValue(noMfa), !parse.GetValue(external), ct, askedBy: "operator", source: "cli");
            if (problem is not null) throw new CliException(problem.Message);
            var e = result!.Explanation;
            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(new
                {
                    user = result.User,
                    action = a.ToString().ToLowerInvariant(),
                    resource = new { kind = result.Resource.Kind, id = result.Resource.Id, departments = result.Resource.Departments, labels = result.Resource.Labels, status = result.Resource.Status, patient = result.Resource.Patient?.Id },
                    decision = e.Decision.Permitted ? "permit" : "deny",
                    rule = e.Decision.RuleId,
                    reason = e.Decision.Reason,
                    trace = e.Trace.Select(t => new { rule = t.RuleId, effect = t.Effect, applied = t.Applied, decided = t.Decided, conditions = t.Conditions.Select(c => c.ToString()) }),
                }));
                return 0;
            }
            AnsiConsole.MarkupLine($"{(e.Decision.Permitted ? "[green]PERMIT[/]" : "[red]DENY[/]")} by rule [bold]{Markup.Escape(e.Decision.RuleId)}[/]: {Markup.Escape(e.Decision.Reason)}");
            AnsiConsole.MarkupLine($"resource: {Markup.Escape(result.Resource.Kind)}{(result.Resource.Id is null ? "" : "/" + Markup.Escape(result.Resource.Id))}; departments: {Markup.Escape(string.Join(", ", result.Resource.Departments))}; labels: {Markup.Escape(string.Join(", ", result.Resource.Labels))}; patient {Markup.Escape(result.Resource.Patient?.Id ?? "-")}");
            var table = new Table().AddColumns("rule", "effect", "applied", "conditions");
            foreach (var t in e.Trace)
            {
                table.AddRow(Markup.Escape(t.RuleId) + (t.Decided ? " [bold]<=[/]" : ""), t.Effect, t.Applied ? "yes" : "no",
                    Markup.Escape(string.Join("; ", t.Conditions.Select(c => c.ToString()))));
            }
            AnsiConsole.Write(table);
            return 0;
        }));
        command.Subcommands.Add(explain);
        return command;
    }
}
