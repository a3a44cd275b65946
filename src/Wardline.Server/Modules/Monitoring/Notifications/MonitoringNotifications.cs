using System.Globalization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Wardline.Server.Hosting;
using Wardline.Server.Modules.Access.Identity;

namespace Wardline.Server.Modules.Monitoring.Notifications;

/// <summary>
/// Alert notifications: the sender (<see cref="AlertNotifier"/>), the outbox, and <c>/monitor/notifications</c> for privacy
/// and security officers (GET ?status=pending|failed|sent|undelivered&amp;limit=N; POST /{id}/retry). Answers are ProblemDetails on error.
/// </summary>
internal static class MonitoringNotifications
{
    private static readonly string[] Statuses = ["pending", "failed", "sent", "undelivered"];

    /// <summary>Registers the notifier; refuses settings that cannot work together (e-mail without an SMTP server) with the setting named.</summary>
    public static IServiceCollection AddMonitoringNotifications(this IServiceCollection services, WardlineOptions options)
    {
        var problems = options.Monitoring.Notify.Validate().Concat(options.Monitoring.Notify.Validate(options.Access.Notify)).ToList();
        if (problems.Count > 0) throw new OptionsValidationException(WardlineOptions.Section, typeof(WardlineOptions), problems);
        var linkBase = options.Monitoring.Notify.ConsoleUrl ?? options.Access.Issuer ?? options.Urls.FirstOrDefault() ?? "";
        services.AddSingleton(new NotifySettings(options.Monitoring, linkBase.TrimEnd('/')));
        services.AddSingleton<NotificationOutbox>();
        services.AddSingleton<AlertNotifier>();
        services.AddHostedService(sp => sp.GetRequiredService<AlertNotifier>());
        return services;
    }

    public static IEndpointRouteBuilder MapMonitoringNotifications(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/monitor/notifications");
        group.MapGet("", async (HttpContext http, NotificationOutbox outbox, AccountStore accounts) =>
        {
            if (await Allowed(http, accounts) is { } no) return no;
            var status = http.Request.Query["status"].ToString();
            if (status.Length > 0 && !Statuses.Contains(status))
                return Results.Problem(statusCode: 400, title: "Unknown status", detail: "status must be pending, failed, sent or undelivered (pending after a failed attempt, or failed).");
            var limit = 100;
            var limitText = http.Request.Query["limit"].ToString();
            if (limitText.Length > 0 && !(int.TryParse(limitText, NumberStyles.None, CultureInfo.InvariantCulture, out limit) && limit is >= 1 and <= 1000))
                return Results.Problem(statusCode: 400, title: "Bad limit", detail: "limit must be a whole number from 1 to 1000.");
            return Results.Json(status == "undelivered"
                ? [.. (await outbox.UndeliveredAsync(http.RequestAborted)).Take(limit)]
                : await outbox.ListAsync(status.Length > 0 ? status : null, limit, http.RequestAborted));
        });
        group.MapPost("/{id}/retry", async (string id, HttpContext http, NotificationOutbox outbox, AccountStore accounts) =>
        {
            if (await Allowed(http, accounts) is { } no) return no;
            if (!long.TryParse(id, NumberStyles.None, CultureInfo.InvariantCulture, out var n))
                return Results.Problem(statusCode: 400, title: "Bad notification id", detail: "The id must be a number.");
            var (outcome, notification) = await outbox.RetryAsync(n, http.RequestAborted);
            return outcome switch
            {
                RetryOutcome.Reset => Results.Json(notification),
                RetryOutcome.AlreadySent => Results.Problem(statusCode: 409, title: "Already delivered", detail: $"Notification {n} was sent; there is nothing to retry."),
                _ => Results.Problem(statusCode: 404, title: "No such notification", detail: $"There is no notification {n}."),
            };
        });
        return app;
    }

    private static Task<IResult?> Allowed(HttpContext http, AccountStore accounts) =>
        MonitoringEndpoints.Allowed(http, accounts, "see or retry alert notifications");
}
