using MudBlazor;

namespace Wardline.Server.Modules.Console.Components.Layout;

/// <summary>The console's colours; fonts are the system's (the CSP allows no font host).</summary>
internal static class ConsoleTheme
{
    public static MudTheme Theme { get; } = new()
    {
        PaletteLight = new PaletteLight { Primary = "#1d4e89", Secondary = "#00766c", AppbarBackground = "#1d4e89" },
        Typography = new Typography { Default = new DefaultTypography { FontFamily = ["system-ui", "-apple-system", "Segoe UI", "Helvetica", "Arial", "sans-serif"] } },
    };
}
