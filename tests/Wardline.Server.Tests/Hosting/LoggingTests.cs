using System.Collections.Concurrent;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Wardline.Server.Hosting;
using Wardline.Server.Modules.Access;
using Wardline.Server.Tests.Infrastructure;

namespace Wardline.Server.Tests.Hosting;

/// <summary>Diagnostic logs carry identifiers only: never a patient's name, not even with every category at Trace.</summary>
public sealed class LoggingTests : IDisposable
{
    private readonly string _data = Directory.CreateTempSubdirectory("wardline-logging-").FullName;

    public void Dispose() => Directory.Delete(_data, recursive: true);

    [Fact]
    public async Task Creating_and_searching_a_patient_never_logs_the_patients_name()
    {
        const string family = "Quixotlewaithe";
        const string given = "Zephyrine";
        var captured = new CapturingLoggerProvider();
        var options = new WardlineOptions { DataDirectory = _data };
        options.Urls.Add("http://127.0.0.1:0");
        await using var app = WardlineHost.Build(options, configure: b =>
        {
            b.Logging.AddProvider(captured);
            // As an operator turning diagnostics all the way up would.
            b.Logging.SetMinimumLevel(LogLevel.Trace);
        });
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        var tokens = app.Services.GetRequiredService<AccessTokens>();
        await TestAccounts.SeniorClinicianAsync(app.Services, "log-user");
        var token = await tokens.IssueAsync("log-user", TimeSpan.FromHours(1), CancellationToken.None);
        using var client = new HttpClient { BaseAddress = new Uri(address.TrimEnd('/') + "/fhir/") };
        client.DefaultRequestHeaders.Authorization = new("Bearer", token);

        var id = await client.CreateAsync("Patient", FhirTest.Patient(family, given));
        var byName = await (await client.GetAsync($"Patient?name={given}")).ReadJsonAsync();
        var byFamily = await (await client.GetAsync($"Patient?family={family}&_count=5")).ReadJsonAsync();
        var read = await client.GetAsync($"Patient/{id}");
        await app.StopAsync();

        Assert.Equal(id, (string?)Assert.Single(byName.Resources())["id"]);
        Assert.Equal(id, (string?)Assert.Single(byFamily.Resources())["id"]);
        Assert.True(read.IsSuccessStatusCode);
        // Not vacuous: the server did log, ours and the framework's, at every level.
        Assert.Contains(captured.Entries, e => e.EventId == 1000 && e.Category.StartsWith("Wardline", StringComparison.Ordinal));
        Assert.Contains(captured.Entries, e => e.Level <= LogLevel.Debug);
        var leaks = captured.Entries.Where(e => e.Text.Contains(family, StringComparison.OrdinalIgnoreCase) || e.Text.Contains(given, StringComparison.OrdinalIgnoreCase)).ToList();
        Assert.True(leaks.Count == 0, "The name was logged:\n" + string.Join("\n", leaks.Select(l => $"{l.Level} {l.Category}: {l.Text}")));
    }

    private sealed record Entry(string Category, LogLevel Level, int EventId, string Text);

    /// <summary>Keeps every message with its structured values and exception, as any log sink could.</summary>
    private sealed class CapturingLoggerProvider : ILoggerProvider
    {
        private readonly ConcurrentQueue<Entry> _entries = new();

        public IReadOnlyCollection<Entry> Entries => _entries;

        public ILogger CreateLogger(string categoryName) => new Logger(categoryName, _entries);

        public void Dispose()
        {
        }

        private sealed class Logger(string category, ConcurrentQueue<Entry> entries) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                var values = state is IEnumerable<KeyValuePair<string, object?>> pairs ? string.Join(" ", pairs.Select(p => $"{p.Key}={p.Value}")) : "";
                entries.Enqueue(new Entry(category, logLevel, eventId.Id, $"{formatter(state, exception)} | {values} | {exception}"));
            }
        }
    }
}
