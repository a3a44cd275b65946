using System.Net.Http.Headers;
using Hl7.Fhir.Model;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Wardline.Server.Hosting;
using Wardline.Server.Pipeline;

namespace Wardline.Server.Modules.Records.Api;

/// <summary>
/// The FHIR REST surface at /fhir. Every handler that touches records goes through
/// <see cref="FhirPipeline.RunAsync"/>; the only other route is the public CapabilityStatement.
/// </summary>
internal static class FhirEndpoints
{
    public const string FhirJsonType = "application/fhir+json; charset=utf-8";

    public static IEndpointRouteBuilder MapFhir(this IEndpointRouteBuilder app)
    {
        var fhir = app.MapGroup("/fhir");

        fhir.MapGet("/metadata", (HttpContext http) =>
        {
            if (NotAcceptable(http.Request) is { } refused) return new FhirResult(refused);
            return new FhirResult(new FhirResponse(200, Capabilities(BaseUrl(http))));
        });

        fhir.MapGet("/{type}", (HttpContext http, FhirPipeline p, string type) =>
            Run(http, p, new(FhirAction.Search, type, null), (x, ct) => x.Records.SearchAsync(type, Query(http.Request.Query), Lenient(http), BaseUrl(http), x.Access, ct)));

        fhir.MapPost("/{type}/_search", async (HttpContext http, FhirPipeline p, string type) =>
        {
            // Only a urlencoded form: a multipart one (files, a boundary to find) is no way to send search parameters.
            if (!http.Request.HasFormContentType || !MediaTypeHeaderValue.TryParse(http.Request.ContentType, out var media)
                || !string.Equals(media.MediaType, "application/x-www-form-urlencoded", StringComparison.OrdinalIgnoreCase))
                return new FhirResult(FhirResponse.Error(415, OperationOutcome.IssueType.NotSupported, "POST _search takes application/x-www-form-urlencoded parameters."));
            IFormCollection form;
            try
            {
                form = await http.Request.ReadFormAsync(http.RequestAborted);
            }
            catch (InvalidDataException)
            {
                // The form reader's limits: 1,024 parameters, 2 KB a name, 4 MB a value.
                return new FhirResult(FhirResponse.BadRequest("The _search form could not be read: it is malformed or over the limits (at most 1024 parameters, a name of at most 2 KB, a value of at most 4 MB)."));
            }
            var query = Query(http.Request.Query).Concat(form.SelectMany(f => f.Value.Select(v => new KeyValuePair<string, string>(f.Key, v ?? "")))).ToList();
            return await Run(http, p, new(FhirAction.Search, type, null), (x, ct) => x.Records.SearchAsync(type, query, Lenient(http), BaseUrl(http), x.Access, ct));
        });

        fhir.MapGet("/{type}/_history", (HttpContext http, FhirPipeline p, string type) =>
            Run(http, p, new(FhirAction.History, type, null), (x, ct) => x.Records.HistoryAsync(type, null, Query(http.Request.Query), BaseUrl(http), x.Access, ct)));

        fhir.MapGet("/{type}/{id}", (HttpContext http, FhirPipeline p, string type, string id) =>
            Run(http, p, new(FhirAction.Read, type, id), (x, ct) => x.Records.ReadAsync(type, id, x.Access, ct)));

        fhir.MapGet("/{type}/{id}/_history", (HttpContext http, FhirPipeline p, string type, string id) =>
            Run(http, p, new(FhirAction.History, type, id), (x, ct) => x.Records.HistoryAsync(type, id, Query(http.Request.Query), BaseUrl(http), x.Access, ct)));

        fhir.MapGet("/{type}/{id}/_history/{vid}", (HttpContext http, FhirPipeline p, string type, string id, string vid) =>
            Run(http, p, new(FhirAction.VRead, type, id), (x, ct) => x.Records.VReadAsync(type, id, vid, x.Access, ct)));

        fhir.MapPost("/{type}", async (HttpContext http, FhirPipeline p, string type) =>
        {
            var (body, error) = await ReadBodyAsync(http);
            if (error is not null) return new FhirResult(error);
            var ifNoneExist = http.Request.Headers["If-None-Exist"].ToString();
            return await Run(http, p, new(FhirAction.Create, type, null),
                (x, ct) => x.Records.CreateAsync(type, body!, ifNoneExist.Length == 0 ? null : ifNoneExist, BaseUrl(http), x.Access, ct));
        });

        fhir.MapPut("/{type}/{id}", async (HttpContext http, FhirPipeline p, string type, string id) =>
        {
            var (body, error) = await ReadBodyAsync(http);
            if (error is not null) return new FhirResult(error);
            var ifMatch = http.Request.Headers.IfMatch.ToString();
            return await Run(http, p, new(FhirAction.Update, type, id),
                (x, ct) => x.Records.UpdateAsync(type, id, body!, ifMatch.Length == 0 ? null : ifMatch, BaseUrl(http), x.Access, ct));
        });

        fhir.MapDelete("/{type}/{id}", (HttpContext http, FhirPipeline p, string type, string id) =>
            Run(http, p, new(FhirAction.Delete, type, id), (x, ct) => x.Records.DeleteAsync(type, id, x.Access, ct)));

        fhir.MapPost("/", async (HttpContext http, FhirPipeline p) =>
        {
            var (body, error) = await ReadBodyAsync(http);
            if (error is not null) return new FhirResult(error);
            // AuditEvent and Provenance are read-only views of the ledger (Modules/Ledger/AuditEndpoints.cs), never stored.
            if (Ledger.AuditEndpoints.WrittenView(body!) is { } view) return new FhirResult(Ledger.AuditEndpoints.ReadOnly(view));
            return await Run(http, p, new(FhirAction.Bundle, "Bundle", null), (x, ct) => x.Bundles.ProcessAsync(body!, BaseUrl(http), x.Access, ct));
        });

        return app;
    }

    // The statement only changes with the base URL (the Host header), so one is kept: the last one
    // built. A single entry, not a map, because the Host header is the client's to choose.
    // A reference, so that readers see either the old pair or the new one, never a mix.
    private static volatile CachedCapabilities? _capabilities;

    private sealed record CachedCapabilities(string BaseUrl, byte[] Json);

    private static byte[] Capabilities(string baseUrl)
    {
        if (_capabilities is { } cached && cached.BaseUrl == baseUrl) return cached.Json;
        var json = CapabilityStatementBuilder.Build(baseUrl, typeof(FhirEndpoints).Assembly.GetName().Version?.ToString() ?? "0");
        _capabilities = new CachedCapabilities(baseUrl, json);
        return json;
    }

    private static async Task<FhirResult> Run(HttpContext http, FhirPipeline pipeline, FhirInteraction interaction, Func<FhirExecution, CancellationToken, Task<FhirResponse>> execute)
    {
        if (NotAcceptable(http.Request) is { } refused) return new FhirResult(refused);
        return new FhirResult(await pipeline.RunAsync(http, interaction, execute));
    }

    private static FhirResponse? NotAcceptable(HttpRequest request)
    {
        var accept = request.Headers.Accept.ToString();
        if (accept.Length == 0 || accept.Contains("json", StringComparison.OrdinalIgnoreCase) || accept.Contains("*/*", StringComparison.Ordinal) || accept.Contains("application/*", StringComparison.Ordinal))
            return null;
        return FhirResponse.Error(406, OperationOutcome.IssueType.NotSupported, "Only application/fhir+json is offered.");
    }

    private static async Task<(byte[]? Body, FhirResponse? Error)> ReadBodyAsync(HttpContext http)
    {
        var limit = http.RequestServices.GetRequiredService<IOptions<WardlineOptions>>().Value.MaxRequestBodyBytes;
        var contentType = http.Request.ContentType;
        if (contentType is null || !MediaTypeHeaderValue.TryParse(contentType, out var media) ||
            media.MediaType is not ("application/fhir+json" or "application/json"))
        {
            return (null, FhirResponse.Error(415, OperationOutcome.IssueType.NotSupported, "The body must be FHIR JSON (Content-Type: application/fhir+json)."));
        }
        if (http.Request.ContentLength > limit)
        {
            return (null, await RefuseTooLargeAsync(http, limit));
        }
        using var buffer = new MemoryStream();
        var chunk = new byte[81920];
        int read;
        try
        {
            while ((read = await http.Request.Body.ReadAsync(chunk, http.RequestAborted)) > 0)
            {
                if (buffer.Length + read > limit)
                {
                    return (null, await RefuseTooLargeAsync(http, limit));
                }
                buffer.Write(chunk, 0, read);
            }
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            // Kestrel's backstop limit tripped inside a chunked body: the same answer as ours.
            http.Response.Headers.Connection = "close";
            return (null, TooLarge(limit));
        }
        return (buffer.ToArray(), null);
    }

    /// <summary>
    /// Reads and discards the rest of an oversized body (up to Kestrel's backstop), so that a client
    /// still sending gets the 413 instead of a reset connection; beyond that, the connection closes.
    /// </summary>
    private static async Task<FhirResponse> RefuseTooLargeAsync(HttpContext http, long limit)
    {
        var drainable = WardlineHost.KestrelBodyLimit(limit);
        if (http.Request.ContentLength is { } length && length > drainable)
        {
            http.Response.Headers.Connection = "close";
            return TooLarge(limit);
        }
        try
        {
            var sink = new byte[81920];
            while (await http.Request.Body.ReadAsync(sink, http.RequestAborted) > 0)
            {
            }
        }
        catch (BadHttpRequestException)
        {
            http.Response.Headers.Connection = "close";
        }
        return TooLarge(limit);
    }

    internal static FhirResponse TooLarge(long limit) =>
        FhirResponse.Error(413, OperationOutcome.IssueType.TooCostly, $"The body is larger than the limit of {limit} bytes.");

    private static bool Lenient(HttpContext http) =>
        http.Request.Headers["Prefer"].Any(v => v is not null && v.Contains("handling=lenient", StringComparison.OrdinalIgnoreCase));

    private static List<KeyValuePair<string, string>> Query(IQueryCollection query) =>
        query.SelectMany(q => q.Value.Select(v => new KeyValuePair<string, string>(q.Key, v ?? ""))).ToList();

    internal static string BaseUrl(HttpContext http) => $"{http.Request.Scheme}://{http.Request.Host}/fhir";
}

/// <summary>Writes a <see cref="FhirResponse"/>: status, FHIR JSON and the version headers.</summary>
internal sealed class FhirResult(FhirResponse response) : IResult
{
    public async System.Threading.Tasks.Task ExecuteAsync(HttpContext http)
    {
        http.Response.StatusCode = response.Status;
        if (response.ETag is not null) http.Response.Headers.ETag = response.ETag;
        if (response.LastModified is { } lm) http.Response.Headers.LastModified = lm.ToString("R", System.Globalization.CultureInfo.InvariantCulture);
        if (response.Location is not null) http.Response.Headers.Location = response.Location;
        if (response.Receipt is not null) http.Response.Headers[FhirResponse.ReceiptHeader] = response.Receipt.ToString();
        if (response.Status == 401) http.Response.Headers.WWWAuthenticate = "Bearer";
        if (response.Json is null) return;
        http.Response.ContentType = FhirEndpoints.FhirJsonType;
        http.Response.ContentLength = response.Json.Length;
        await http.Response.Body.WriteAsync(response.Json, http.RequestAborted);
    }
}
