using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using OperationOutcome = Hl7.Fhir.Model.OperationOutcome;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.HttpOverrides;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Wardline.Crypto;
using Wardline.Server.Modules.Access;
using Wardline.Server.Modules.Access.Identity;
using Wardline.Server.Modules.Access.OAuth;
using Wardline.Server.Modules.Console;
using Wardline.Server.Modules.Access.Facts;
using Wardline.Server.Modules.Backup;
using Wardline.Server.Modules.Ledger;
using Wardline.Server.Modules.Records;
using Wardline.Server.Modules.Records.Api;
using Wardline.Server.Modules.Records.Storage;
using Wardline.Server.Pipeline;

namespace Wardline.Server.Hosting;

/// <summary>Builds the one Wardline server: FHIR API at /fhir, and (in later issues) the console at /.</summary>
public static class WardlineHost
{
    public static WebApplication Build(WardlineOptions options, string[]? args = null, Action<WebApplicationBuilder>? configure = null)
    {
        var problems = options.Validate();
        if (problems.Count > 0)
        {
            throw new OptionsValidationException(WardlineOptions.Section, typeof(WardlineOptions), problems);
        }
        // A store a restore has not proven (stopped part-way, or its proof failed) is not served. An embedded store's mark
        // is a file, checked before any service is built: building them makes a keyring beside a store that has none, and
        // the next restore into the folder must be able to put the backup's keyring there. A PostgreSQL store's mark is
        // a table, checked by StoreInitializer before anything is migrated.
        if (options.PostgresConnectionString is null && options.DataDirectory is { } data &&
            SqliteFile(data) is var file && RestoreMarker.Find(file) is { } unproven)
        {
            throw new BackupRefusedException(RestoreMarker.Describe(unproven, file));
        }

        // Wardline reads no appsettings.json, so nothing needs the host's reload-on-change: with it, the host watches
        // its content root (the working directory, often the data folder) and every folder below it, and wakes on
        // every write the database makes there (7.9% of the CPU of a full backup, measured 2026-11-29).
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            Args = ["--hostBuilder:reloadConfigOnChange=false", .. args ?? []],
            ApplicationName = "Wardline",
        });
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o => o.SingleLine = true);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        // Wardline's own messages carry identifiers only (see Modules/Records/RecordsLog.cs, Pipeline/PipelineLog.cs).
        builder.Logging.AddFilter("Wardline", LogLevel.Information);
        // ASP.NET Core's request log prints the query string, and a FHIR search's query string holds
        // names, identifiers and birth dates. Added last, this rule outranks any "Logging" configuration
        // of the same category, so no verbosity setting brings those lines back.
        builder.Services.PostConfigure<LoggerFilterOptions>(o =>
            o.Rules.Add(new LoggerFilterRule(null, "Microsoft.AspNetCore.Hosting.Diagnostics", LogLevel.Warning, null)));
        // Data protection serves the console (cookies, anti-forgery), its keys sealed in the store (Modules/Console). Its
        // warnings repeat with every retry of a key; a key it cannot open at all (another keyring's) is an error, and shown.
        builder.Logging.AddFilter("Microsoft.AspNetCore.DataProtection", LogLevel.Error);
        builder.Services.AddSingleton(Options.Create(options));
        builder.Services.AddStores(options);

        // Loaded here, not lazily in Kestrel, so a wrong password or a bad file stops start-up with its own error.
        var certificate = options.CertificatePath is not null ? LoadCertificate(options) : null;
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            // Our own limit answers with an OperationOutcome; Kestrel's is the backstop for non-FHIR routes.
            k.Limits.MaxRequestBodySize = KestrelBodyLimit(options.MaxRequestBodyBytes);
            k.ConfigureHttpsDefaults(h =>
            {
                h.SslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13;
                if (certificate is not null)
                {
                    h.ServerCertificate = certificate;
                }
            });
        });
        // The slim builder leaves out Kestrel's https address support; without this an https:// URL fails at start.
        builder.WebHost.UseKestrelHttpsConfiguration();
        builder.WebHost.UseUrls(options.Urls.Count > 0 ? [.. options.Urls] : ["http://127.0.0.1:5080"]);
        builder.Services.AddHsts(h =>
        {
            h.MaxAge = TimeSpan.FromDays(365);
            h.IncludeSubDomains = true;
            // The defaults exempt localhost, 127.0.0.1 and [::1]. Browsers ignore HSTS from IP literals
            // anyway, and an https endpoint should answer the same whatever name reached it.
            h.ExcludedHosts.Clear();
        });
        // ASP.NET Core's own switch (ForwardedHeaders_Enabled, e.g. ASPNETCORE_FORWARDEDHEADERS_ENABLED=true) would believe
        // every peer's X-Forwarded-For; Wardline:TrustedProxies is the only way a forwarded header is honoured.
        builder.Services.PostConfigure<ForwardedHeadersOptions>(o => o.ForwardedHeaders = ForwardedHeaders.None);
        builder.Services.AddWardlineOAuth(options);
        builder.Services.AddProblemDetails();
        builder.Services.AddWardlineRateLimits(options.Access.RateLimits);
        builder.Services.AddWardlineConsole(builder.Configuration);
        // Here, not in AddStores: the CLI shares AddStores and sends no notifications, and bad settings stop the server.
        Modules.Monitoring.Notifications.MonitoringNotifications.AddMonitoringNotifications(builder.Services, options);
        configure?.Invoke(builder);

        var app = builder.Build();
        // First: everything after it (rate limits, the policy's network, the ledger's source) sees the client, not the proxy.
        if (options.TrustedProxies.Count > 0)
        {
            app.UseForwardedHeaders(ReverseProxies.Options(options.TrustedProxies));
        }
        app.UseExceptionHandler(e => e.Run(WriteUnexpectedErrorAsync));
        app.Use(SecurityHeaders);
        // HSTS is sent only on https requests: those of an https endpoint, or forwarded as https by a trusted proxy.
        if (options.Urls.Any(WardlineOptions.IsHttps) || options.TrustedProxies.Count > 0)
        {
            app.UseHsts();
        }
        app.UseStatusCodePages(WriteStatusCodeAsync);
        // Before authentication: OpenIddict checks client secrets inside it and answers refusals itself (RateLimits.cs).
        app.UseWardlineOAuthRateLimit();
        app.UseAuthentication();
        app.UseWardlineConsole();
        app.UseRateLimiter();
        app.MapGet("/", () => Results.Text(
            "Wardline protected record store. The FHIR API is at /fhir (see /fhir/metadata); every request needs a bearer token. The console is at /console.\n",
            "text/plain; charset=utf-8"));
        app.MapFhir();
        app.MapLedger();
        app.MapBackup();
        Modules.Monitoring.MonitoringEndpoints.MapMonitoring(app);
        Modules.Monitoring.Notifications.MonitoringNotifications.MapMonitoringNotifications(app);
        app.MapAuditViews();
        app.MapWardlineOAuth();
        app.MapWardlineConsole();
        return app;
    }

    /// <summary>
    /// Kestrel's own body limit, a backstop above ours: up to it an oversized body is read and
    /// discarded so the client gets a clean 413; past it the connection is closed.
    /// </summary>
    internal static long KestrelBodyLimit(long limit) => limit + Math.Max(limit, 8 * 1024 * 1024);

    /// <summary>Registers the store, keys and services for one store (also used by the CLI without a web host).</summary>
    public static IServiceCollection AddStores(this IServiceCollection services, WardlineOptions options)
    {
        services.AddSingleton(TimeProvider.System);
        services.AddMemoryCache();
        services.AddSingleton(_ => options.PostgresConnectionString is { } cs
            ? SqlDialect.Postgres(cs)
            : SqlDialect.Sqlite(SqliteFile(EnsureDirectory(options.DataDirectory!))));
        services.AddSingleton<RecordStore>();
        services.AddSingleton(sp =>
        {
            var passphrase = Environment.GetEnvironmentVariable("WARDLINE_KEYRING_PASSPHRASE");
            return new RecordKeys(Keyring.LoadOrCreate(options.KeyringFile(), passphrase), passphrase, sp.GetRequiredService<ILogger<RecordKeys>>());
        });
        services.AddSingleton<RecordService>();
        services.AddSingleton<BundleProcessor>();
        services.AddSingleton<RecordImporter>();
        services.AddWardlineTokens(options);
        services.AddOptions<SignInOptions>().Validate(o => o.Validate().Count == 0, "Sign-in options are out of range.").ValidateOnStart();
        services.AddSingleton<AccountStore>();
        services.AddSingleton<AccountService>();
        services.AddSingleton<MfaSecrets>();
        services.AddSingleton<MfaRequirement>();
        services.AddSingleton<SignInService>();
        services.AddSingleton(options.Access);
        services.AddSingleton<FactsExtractor>();
        services.AddSingleton<FactsResolver>();
        services.AddSingleton<MailSender>();
        services.AddSingleton<BreakGlassNotifier>();
        services.AddSingleton<BreakGlass>();
        services.AddSingleton(sp => ActivatorUtilities.CreateInstance<AccessSubjects>(sp).Subscribed());
        services.AddSingleton<AccessExplainer>();
        services.AddSingleton(sp => new PolicyHolder(options.Access, options.DataDirectory, sp.GetRequiredService<IAccessRecorder>(),
            sp.GetRequiredService<TimeProvider>(), sp.GetRequiredService<ILogger<PolicyHolder>>()));
        services.AddSingleton<GroupCommitter>();
        services.AddSingleton(options.Ledger);
        services.AddSingleton<LedgerAppender>();
        services.AddSingleton<LedgerIntegrity>();
        services.AddSingleton(sp => options.Ledger.OpenWitness(options, sp.GetRequiredService<TimeProvider>()));
        services.AddSingleton<LedgerVerifier>();
        services.AddSingleton<TreeHeads>();
        services.AddSingleton<LedgerProofs>();
        services.AddSingleton<AuditTrail>();
        services.AddSingleton<LedgerRecorder>();
        services.AddSingleton<IAccessRecorder>(sp => sp.GetRequiredService<LedgerRecorder>());
        services.AddSingleton<FhirPipeline>();
        services.AddHostedService<StoreInitializer>();
        // After the store, before anything records: the ledger is checked before it is appended to.
        services.AddHostedService<LedgerService>();
        services.AddHostedService<Modules.Ledger.Export.SiemExporter>();
        services.AddSingleton(options.Backup);
        services.AddSingleton<Modules.Backup.BackupWriter>();
        services.AddSingleton<Modules.Backup.BackupDrills>();
        services.AddSingleton<Modules.Backup.BackupStatus>();
        services.AddSingleton<Modules.Backup.BackupService>();
        services.AddHostedService(sp => sp.GetRequiredService<Modules.Backup.BackupService>());
        Modules.Monitoring.MonitoringModule.AddMonitoring(services, options);
        // After the store: the policy's first load is recorded as a security event.
        services.AddHostedService(sp => sp.GetRequiredService<PolicyHolder>());
        return services;
    }

    /// <summary>The embedded store's database file in a data folder.</summary>
    private static string SqliteFile(string dataDirectory) => Path.Combine(dataDirectory, "wardline.db");

    private static string EnsureDirectory(string dir)
    {
        Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary>
    /// The server certificate: PKCS#12 (with <see cref="WardlineOptions.CertificatePassword"/>), or PEM with
    /// the key in <see cref="WardlineOptions.CertificateKeyPath"/> or in the same file (an encrypted PEM key
    /// takes the password too). Throws <see cref="CryptographicException"/> for a file that is not one of these.
    /// </summary>
    internal static X509Certificate2 LoadCertificate(WardlineOptions o)
    {
        var path = o.CertificatePath!;
        var isPem = File.ReadAllText(path).Contains("-----BEGIN", StringComparison.Ordinal);
        var certificate = (isPem, o.CertificateKeyPath, o.CertificatePassword) switch
        {
            (false, _, var password) => X509CertificateLoader.LoadPkcs12FromFile(path, password),
            (true, var key, null) => X509Certificate2.CreateFromPemFile(path, key),
            (true, var key, var password) => X509Certificate2.CreateFromEncryptedPemFile(path, password, key),
        };
        if (!certificate.HasPrivateKey)
        {
            certificate.Dispose();
            throw new CryptographicException("The certificate has no private key (set Wardline:CertificateKeyPath for a PEM certificate).");
        }
        return certificate;
    }

    private static Task SecurityHeaders(HttpContext http, Func<Task> next)
    {
        var h = http.Response.Headers;
        h.XContentTypeOptions = "nosniff";
        h["Referrer-Policy"] = "no-referrer";
        // The console's pages need their own stylesheets and forms; the API answers only data.
        h.ContentSecurityPolicy = ConsoleModule.IsConsole(http) ? ConsoleModule.ContentSecurityPolicy : "default-src 'none'; frame-ancestors 'none'";
        h.XFrameOptions = "DENY";
        // Patient data must not sit in shared or browser caches.
        h.CacheControl = "no-store";
        return next();
    }

    private static async Task WriteUnexpectedErrorAsync(HttpContext http)
    {
        var error = http.Features.Get<IExceptionHandlerFeature>()?.Error;
        var (status, message) = error switch
        {
            BadHttpRequestException { StatusCode: 413 } => (413, "The body is larger than the limit."),
            BadHttpRequestException b => (b.StatusCode, "The request is malformed."),
            AccessNotRecordedException => (503, "The access could not be recorded, so nothing was disclosed. Try again later."),
            LedgerReadOnlyException readOnly => (503, readOnly.Message + " Nothing was written."),
            StoreWriteException => (503, "The change and its audit record could not be committed, so nothing was written or disclosed. Try again later."),
            _ => (500, "An unexpected error occurred."),
        };
        // Only the correlation id goes back; the exception (which may hold anything) stays in the server log.
        var outcome = FhirResponse.Outcome(OperationOutcome.IssueSeverity.Fatal, status == 500 ? OperationOutcome.IssueType.Exception : OperationOutcome.IssueType.Transient,
            [$"{message} Correlation id: {http.TraceIdentifier}"]);
        http.Response.StatusCode = status;
        http.Response.ContentType = FhirEndpoints.FhirJsonType;
        await http.Response.Body.WriteAsync(FhirJson.Serialize(outcome));
    }

    /// <summary>
    /// A status without a body, in the language of the route it answers: an OperationOutcome under /fhir, ProblemDetails
    /// everywhere else (the admin API: /monitor, /ledger, /backup, /oauth, ...). The console answers its own unknown pages.
    /// </summary>
    private static async Task WriteStatusCodeAsync(StatusCodeContext context)
    {
        var http = context.HttpContext;
        var status = http.Response.StatusCode;
        var path = http.Request.Path;
        if (path.StartsWithSegments("/fhir"))
        {
            var (code, text) = status switch
            {
                404 => (OperationOutcome.IssueType.NotFound, "No such FHIR endpoint."),
                405 => (OperationOutcome.IssueType.NotSupported, "This HTTP method is not supported on this FHIR endpoint."),
                401 => (OperationOutcome.IssueType.Login, "Authentication is required."),
                _ => (OperationOutcome.IssueType.Processing, "The request could not be processed."),
            };
            http.Response.ContentType = FhirEndpoints.FhirJsonType;
            await http.Response.Body.WriteAsync(FhirJson.Serialize(FhirResponse.Outcome(OperationOutcome.IssueSeverity.Error, code, [text])));
            return;
        }
        var title = status switch
        {
            404 => "Not found",
            405 => "Method not allowed",
            401 => "Authentication is required",
            403 => "Forbidden",
            _ => "The request could not be processed",
        };
        await Results.Problem(statusCode: status, title: title).ExecuteAsync(http);
    }
}

/// <summary>Applies schema migrations before the server takes requests.</summary>
internal sealed class StoreInitializer(RecordStore store, RecordKeys keys, RecordService records, SqlDialect dialect, ILogger<StoreInitializer> logger) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        // A store a restore has not proven is not served (an embedded store's mark was checked before the services were built;
        // here, a PostgreSQL store's, before anything is migrated: its keyring is the configured file, opened when these
        // services were built, and created there only when that file is missing).
        if (await RestoreMarker.FindAsync(dialect, cancellationToken) is { } pending)
            throw new BackupRefusedException(RestoreMarker.Describe(pending, dialect));
        var kekId = keys.ActiveKekId; // Loads (or creates) the keyring now, so a bad passphrase stops start-up.
        var applied = await store.MigrateAsync(cancellationToken);
        // Resources stored before access facts existed get theirs now, before any request is served:
        // without facts the policy would see a resource with no department, patient or labels.
        var backfilled = await records.BackfillFactsAsync(cancellationToken);
        if (backfilled > 0) Modules.Records.Log.FactsBackfilled(logger, backfilled);
        // Resources stored before a search parameter of their type existed are re-indexed, also before any request:
        // a search on the new parameter would otherwise miss them.
        foreach (var (type, count) in await records.ReindexPendingAsync(cancellationToken)) Modules.Records.Log.Reindexed(logger, type, count);
        // MigrateAsync refuses a schema newer than ours, so the store is now exactly at the latest version.
        var where = dialect.Describe();
        Modules.Records.Log.ServerStarted(logger, where, Migrations.Latest, applied, kekId);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
