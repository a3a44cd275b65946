using Microsoft.Extensions.DependencyInjection;
using Wardline.Server.Hosting;

namespace Wardline.Server.Modules.Monitoring;

/// <summary>The monitoring module's face: its services (<see cref="AddMonitoring"/>) and its API (MapMonitoring).</summary>
internal static class MonitoringModule
{
    /// <summary>The alert store (also for the CLI, which has no web host).</summary>
    public static IServiceCollection AddMonitoring(this IServiceCollection services, WardlineOptions options)
    {
        services.AddSingleton(options.Monitoring);
        services.AddSingleton<AlertStore>();
        services.AddSingleton<DirectoryLoader>();
        services.AddSingleton<MonitorConfigSource>();
        services.AddSingleton<MonitorReplay>();
        services.AddSingleton<MonitorBlocks>();
        if (options.Monitoring.Enabled)
        {
            services.AddSingleton<MonitorService>();
            services.AddHostedService(sp => sp.GetRequiredService<MonitorService>());
        }
        return services;
    }
}
