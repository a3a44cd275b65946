using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Wardline.Server.Modules.Access;
using Wardline.Server.Modules.Access.Identity;
using Wardline.Server.Modules.Console.Components;

namespace Wardline.Server.Modules.Backup;

/// <summary>
/// <c>/backup</c>: status and history (GET /backup/status), drills (GET /backup/drills), and on-demand runs
/// (POST /backup/run, POST /backup/drill). For administrators and security officers (a narrowed token also needs
/// <c>wardline/backup</c>: <see cref="ApiScopes"/>); answers are ProblemDetails on error.
/// </summary>
internal static class BackupEndpoints
{
    public static IEndpointRouteBuilder MapBackup(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/backup");
        group.MapGet("/status", async (HttpContext http, BackupStatus status, AccountStore accounts) =>
            await Allowed(http, accounts) ?? Results.Json(await status.ReadAsync(20, http.RequestAborted)));
        group.MapGet("/drills", async (HttpContext http, BackupStatus status, AccountStore accounts) =>
            await Allowed(http, accounts) ?? Results.Json(await status.DrillsAsync(100, http.RequestAborted)));
        group.MapPost("/run", async (HttpContext http, BackupService service, AccountStore accounts) =>
        {
            if (await Allowed(http, accounts) is { } no) return no;
            var full = http.Request.Query["full"] == "true";
            try
            {
                var result = await service.BackupNowAsync(full, "api:" + http.User.Identity!.Name, http.RequestAborted);
                return result.Status == "failed"
                    ? Results.Problem(statusCode: 502, title: "The backup failed", detail: result.Error)
                    : Results.Json(new { result.RunId, result.Status, result.Kind, result.Target, ledgerSize = result.Manifest?.LedgerSize, result.Stored, result.Reused, result.StoredBytes, seconds = result.Elapsed.TotalSeconds, result.FullBecause });
            }
            catch (BackupRefusedException ex)
            {
                return Results.Problem(statusCode: 409, title: "No backup was taken", detail: ex.Message);
            }
        });
        group.MapPost("/drill", async (HttpContext http, BackupService service, AccountStore accounts) =>
        {
            if (await Allowed(http, accounts) is { } no) return no;
            try
            {
                return Results.Json(await service.DrillNowAsync("api:" + http.User.Identity!.Name, http.RequestAborted));
            }
            catch (BackupRefusedException ex)
            {
                return Results.Problem(statusCode: 409, title: "No drill was run", detail: ex.Message);
            }
        });
        return app;
    }

    private static Task<IResult?> Allowed(HttpContext http, AccountStore accounts) =>
        ApiScopes.RefusalAsync(http, accounts, ConsoleRoles.BackupOperators, ApiScopes.Backup, "Only an administrator or a security officer may see or run backups.");
}
