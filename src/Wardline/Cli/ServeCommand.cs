using System.CommandLine;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Spectre.Console;
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
            WebApplication app;
            try
            {
                app = WardlineHost.Build(options);
            }
            catch (CryptographicException ex)
            {
                throw new CliException($"Wardline:CertificatePath {options.CertificatePath} could not be loaded: {ex.Message}");
            }
            await app.StartAsync(ct);
            var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
            foreach (var address in addresses)
            {
                AnsiConsole.MarkupLineInterpolated($"Wardline is serving on {address} (FHIR API at {address.TrimEnd('/')}/fhir).");
            }
            await app.WaitForShutdownAsync(ct);
            return 0;
        }));
        return command;
    }
}
