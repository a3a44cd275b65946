using System.CommandLine;
using Microsoft.Extensions.Hosting;
using Wardline.Server.Hosting;

namespace Wardline.Cli;

internal static class ServeCommand
{
    public static Command Create()
    {
        var store = new StoreArgs();
        var urls = new Option<string[]>("--urls") { Description = "Addresses to listen on, e.g. https://0.0.0.0:443 (plain http only on loopback). Default: Wardline:Urls from the config, else http://127.0.0.1:5080.", AllowMultipleArgumentsPerToken = true };
        var command = new Command("serve", "Run the Wardline server (FHIR API at /fhir) for production, configured by --config (HTTPS with a certificate, TLS 1.2+, HSTS).");
        store.AddTo(command);
        command.Options.Add(urls);
        command.SetAction((parse, ct) => CommandRunner.RunAsync(async () =>
        {
            var options = store.Resolve(parse);
            if (parse.GetValue(urls) is { Length: > 0 } given)
            {
                options.Urls.Clear();
                foreach (var u in given) options.Urls.Add(u);
            }
            var problems = options.Validate();
            if (problems.Count > 0) throw new CliException(string.Join(Environment.NewLine, problems));
            var app = WardlineHost.Build(options);
            await app.StartAsync(ct);
            await app.WaitForShutdownAsync(ct);
            return 0;
        }));
        return command;
    }
}
