using System.CommandLine;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Spectre.Console;
using Wardline.Server.Modules.Access.Identity;
using Wardline.Server.Modules.Access.OAuth;

namespace Wardline.Cli;

/// <summary>
/// `wardline clients ...`: OAuth clients of Wardline's authorization server. A system (an EHR
/// integration engine) gets client credentials and acts as a service account; an app gets the
/// authorization code grant with PKCE and acts for the signed-in user. Secrets are printed once.
/// </summary>
internal static class ClientsCommand
{
    public static Command Create()
    {
        var command = new Command("clients", "Manage OAuth clients: systems (client credentials) and SMART apps (authorization code + PKCE).");
        command.Subcommands.Add(Add());
        command.Subcommands.Add(List());
        command.Subcommands.Add(Remove());
        return command;
    }

    private static Command Add()
    {
        var store = new StoreArgs();
        var id = new Argument<string>("client-id") { Description = "The client id (letters, digits, . _ -; up to 64)." };
        var grant = new Option<string>("--grant") { Description = "client_credentials (a system) or authorization_code (an app).", Required = true };
        var account = new Option<string?>("--account") { Description = "client_credentials: the service account the client acts as (created without a password if missing)." };
        var redirect = new Option<string[]>("--redirect-uri") { Description = "authorization_code: a redirect URI (repeatable).", AllowMultipleArgumentsPerToken = true };
        var scope = new Option<string[]>("--scope") { Description = "Allowed scopes (repeatable), e.g. system/*.rs, or patient/Observation.rs and launch/patient; Wardline's APIs: wardline/monitor, wardline/backup, wardline/ledger.", AllowMultipleArgumentsPerToken = true, Required = true };
        var role = new Option<string?>("--role") { Description = "client_credentials: the role given to a newly created service account (default integration_engine)." };
        var isPublic = new Option<bool>("--public") { Description = "authorization_code: a public app without a secret (PKCE only)." };
        var display = new Option<string?>("--display") { Description = "A display name." };
        var add = new Command("add", "Register a client. A confidential client's secret is printed once.");
        store.AddTo(add);
        add.Arguments.Add(id);
        foreach (var o in new Option[] { grant, account, redirect, scope, role, isPublic, display }) add.Options.Add(o);
        add.SetAction((parse, ct) => CommandRunner.RunAsync(async () =>
        {
            var clientId = parse.GetValue(id)!;
            if (!OAuthClients.IsValidClientId(clientId)) throw new CliException("A client id is 1-64 letters, digits, '.', '_' and '-', starting with a letter or digit.");
            var g = parse.GetValue(grant);
            var scopes = (parse.GetValue(scope) ?? []).SelectMany(s => s.Split(' ', StringSplitOptions.RemoveEmptyEntries)).Distinct(StringComparer.Ordinal).ToArray();
            var redirects = parse.GetValue(redirect) ?? [];
            var name = parse.GetValue(account);
            var client = new OAuthClient(clientId, parse.GetValue(display) ?? clientId, !parse.GetValue(isPublic), [g!], redirects, scopes, name);
            if (scopes.Length == 0 || scopes.Any(s => !OAuthScopes.IsValid(s))) throw new CliException("Every --scope must be a SMART scope such as system/*.rs or patient/Observation.rs, launch/patient, or one of wardline/monitor, wardline/backup, wardline/ledger.");
            switch (g)
            {
                case OAuthClients.ClientCredentials:
                    if (name is null || !AccountRules.IsValidNewName(name)) throw new CliException("client_credentials needs --account NAME (a valid account name).");
                    if (redirects.Length > 0 || parse.GetValue(isPublic)) throw new CliException("client_credentials takes no --redirect-uri or --public.");
                    if (!OAuthScopes.Allowed(scopes, client, g)) throw new CliException("client_credentials clients take system/ scopes (and wardline/ API scopes) only.");
                    break;
                case OAuthClients.AuthorizationCode:
                    if (name is not null) throw new CliException("An app acts for the signed-in user; --account is for client_credentials.");
                    if (redirects.Length == 0 || redirects.Any(r => !Uri.TryCreate(r, UriKind.Absolute, out var u) || u.Fragment.Length > 0 || (u.Scheme != "https" && !u.IsLoopback)))
                        throw new CliException("authorization_code needs --redirect-uri: absolute https URLs without a fragment (http only on loopback).");
                    if (!OAuthScopes.Allowed(scopes, client, g)) throw new CliException("Apps take patient/ and user/ scopes (and launch/patient and wardline/ API scopes).");
                    break;
                default:
                    throw new CliException("--grant must be client_credentials or authorization_code.");
            }

            await using var sp = await StoreArgs.OpenAsync(store.Resolve(parse), ct);
            if (name is not null)
            {
                var accounts = sp.GetRequiredService<AccountService>();
                // Its tokens count as MFA sign-ins of the account: a person's account (one with a password, or allowed to break the glass)
                // would be handed to whoever holds a shared secret.
                if (await sp.GetRequiredService<AccountStore>().ReadCredentialsAsync(name, ct) is { } existing
                    && (existing.PasswordHash is not null || existing.Account.BreakGlassApproved))
                    throw new CliException($"'{name}' is a person's account (it has a password or may break the glass): a client acts as a service account of its own; give a new --account name.");
                if (await accounts.FindAsync(name, ct) is null)
                {
                    var created = await accounts.CreateAsync(Account.New(name, "Service account of " + clientId) with { Roles = [parse.GetValue(role) ?? "integration_engine"] },
                        null, "cli:" + Environment.UserName, ct);
                    if (created is not AccountResult.Done) throw new CliException($"The service account could not be created: {created}");
                    AnsiConsole.MarkupLine($"service account [green]{Markup.Escape(name)}[/] created");
                }
            }
            var (added, secret) = await sp.GetRequiredService<OAuthClients>().AddAsync(client, ct);
            if (!added) throw new CliException($"There is already a client '{clientId}'.");
            AnsiConsole.MarkupLine($"client [green]{Markup.Escape(clientId)}[/] added ({Markup.Escape(g!)})");
            if (secret is not null)
            {
                AnsiConsole.MarkupLine("client secret (shown only now):");
                Console.WriteLine(secret);
            }
            return 0;
        }));
        return add;
    }

    private static Command List()
    {
        var store = new StoreArgs();
        var json = new Option<bool>("--json") { Description = "One JSON array (no secrets are ever shown)." };
        var list = new Command("list", "List the registered clients.");
        store.AddTo(list);
        list.Options.Add(json);
        list.SetAction((parse, ct) => CommandRunner.RunAsync(async () =>
        {
            await using var sp = await StoreArgs.OpenAsync(store.Resolve(parse), ct);
            var clients = await sp.GetRequiredService<OAuthClients>().ListAsync(ct);
            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(clients.Select(c => new
                {
                    clientId = c.ClientId, display = c.Display, confidential = c.Confidential, grantTypes = c.GrantTypes,
                    redirectUris = c.RedirectUris, scopes = c.Scopes, account = c.Account,
                })));
                return 0;
            }
            foreach (var c in clients)
            {
                Console.WriteLine($"{c.ClientId}\t{string.Join(',', c.GrantTypes)}\t{(c.Confidential ? "confidential" : "public")}\t{c.Account ?? "-"}\t{string.Join(' ', c.Scopes)}\t{string.Join(' ', c.RedirectUris)}");
            }
            return 0;
        }));
        return list;
    }

    private static Command Remove()
    {
        var store = new StoreArgs();
        var id = new Argument<string>("client-id");
        var remove = new Command("remove", "Remove a client: it gets no new tokens, and the tokens it holds stop working within seconds.");
        store.AddTo(remove);
        remove.Arguments.Add(id);
        remove.SetAction((parse, ct) => CommandRunner.RunAsync(async () =>
        {
            await using var sp = await StoreArgs.OpenAsync(store.Resolve(parse), ct);
            if (!await sp.GetRequiredService<OAuthClients>().RemoveAsync(parse.GetValue(id)!, ct)) throw new CliException($"There is no client '{parse.GetValue(id)}'.");
            AnsiConsole.MarkupLine($"client [green]{Markup.Escape(parse.GetValue(id)!)}[/] removed");
            return 0;
        }));
        return remove;
    }
}
