using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Wardline.Server.Tests.EndToEnd;

/// <summary>What a finished `wardline` process left: its exit code and its stdout and stderr together.</summary>
public sealed record CliResult(int ExitCode, string Output)
{
    /// <summary>The output with line breaks folded into spaces, for phrases a narrow console may have wrapped.</summary>
    public string Flat => string.Join(' ', Output.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
}

/// <summary>Runs the real `wardline` command (wardline.dll, copied to the test output by the project reference).</summary>
public static class WardlineCli
{
    public static string Dll { get; } = Path.Combine(AppContext.BaseDirectory, "wardline.dll");

    /// <summary>A start info for `dotnet wardline.dll args...`, with the keyring passphrase set only when given.</summary>
    public static ProcessStartInfo StartInfo(IEnumerable<string> args, string? passphrase = null, string? escrowPassphrase = null)
    {
        var psi = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        psi.ArgumentList.Add(Dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment.Remove("WARDLINE_KEYRING_PASSPHRASE");
        if (passphrase is not null) psi.Environment["WARDLINE_KEYRING_PASSPHRASE"] = passphrase;
        psi.Environment.Remove("WARDLINE_ESCROW_PASSPHRASE");
        if (escrowPassphrase is not null) psi.Environment["WARDLINE_ESCROW_PASSPHRASE"] = escrowPassphrase;
        psi.Environment["DOTNET_NOLOGO"] = "1";
        return psi;
    }

    public static async Task<CliResult> RunAsync(IEnumerable<string> args, string? passphrase = null, TimeSpan? timeout = null, string? escrowPassphrase = null)
    {
        using var process = Process.Start(StartInfo(args, passphrase, escrowPassphrase)) ?? throw new InvalidOperationException("dotnet did not start");
        var output = new StringBuilder();
        var lockObj = new object();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (lockObj) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (lockObj) output.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromMinutes(2));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"wardline {string.Join(' ', args)} did not finish in time. Output so far:\n{output}");
        }
        process.WaitForExit(); // drains the redirected streams
        lock (lockObj) return new CliResult(process.ExitCode, output.ToString());
    }
}

public static class FreePort
{
    /// <summary>A loopback port that was free a moment ago (the OS hands out ephemeral ports round-robin, so reuse soon after is unlikely).</summary>
    public static int Next()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
