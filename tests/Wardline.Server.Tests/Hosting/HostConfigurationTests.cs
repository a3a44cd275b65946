using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Configuration.Json;
using Wardline.Server.Hosting;

namespace Wardline.Server.Tests.Hosting;

/// <summary>
/// The host watches no folder for configuration changes: Wardline reads no appsettings.json, and a watch on the
/// content root (the working directory, often the data folder) woke on every database write.
/// </summary>
public sealed class HostConfigurationTests : IDisposable
{
    private readonly string _data = Directory.CreateTempSubdirectory("wardline-hostconfig-").FullName;

    public void Dispose() => Directory.Delete(_data, recursive: true);

    [Fact]
    public async Task No_configuration_file_of_the_host_is_reloaded_on_change()
    {
        var options = new WardlineOptions { DataDirectory = _data };
        options.Urls.Add("http://127.0.0.1:0");
        await using var app = WardlineHost.Build(options);

        var files = ((IConfigurationRoot)app.Configuration).Providers.OfType<FileConfigurationProvider>().ToList();

        // Not vacuous: the slim builder does add its appsettings files (optional, not found here).
        Assert.Contains(files, f => f.Source.Path == "appsettings.json");
        Assert.All(files, f => Assert.False(f.Source.ReloadOnChange, $"{f.Source.Path} is watched for changes"));
    }
}
