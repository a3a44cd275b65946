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

/// <summary>A long-running `wardline` process (serve, demo) whose output is collected as it comes; killed on dispose.</summary>
public sealed class RunningWardline : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly object _lock = new();

    private RunningWardline(Process process)
    {
        _process = process;
    }

    public string Output
    {
        get
        {
            lock (_lock) return _output.ToString();
        }
    }

    public bool HasExited => _process.HasExited;

    public static RunningWardline Start(IEnumerable<string> args, string? passphrase = null)
    {
        var process = Process.Start(WardlineCli.StartInfo(args, passphrase)) ?? throw new InvalidOperationException("dotnet did not start");
        var running = new RunningWardline(process);
        process.OutputDataReceived += (_, e) => running.Append(e.Data);
        process.ErrorDataReceived += (_, e) => running.Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return running;
    }

    /// <summary>Waits until the output contains <paramref name="text"/>; fails if the process exits first or time runs out.</summary>
    public async Task WaitForOutputAsync(string text, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!Output.Contains(text, StringComparison.Ordinal))
        {
            if (_process.HasExited) throw new InvalidOperationException($"wardline exited ({_process.ExitCode}) before printing '{text}':\n{Output}");
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"wardline did not print '{text}' in {timeout}:\n{Output}");
            await Task.Delay(100);
        }
    }

    /// <summary>Waits until the process exits by itself and returns its exit code.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cts.Token);
        _process.WaitForExit();
        return _process.ExitCode;
    }

    /// <summary>Polls GET url until it answers at all (any status); for servers that print nothing when ready.</summary>
    public async Task WaitForHttpAsync(Uri url, TimeSpan timeout)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            if (_process.HasExited) throw new InvalidOperationException($"wardline exited ({_process.ExitCode}) before serving {url}:\n{Output}");
            try
            {
                using var response = await http.GetAsync(url);
                return;
            }
            catch (HttpRequestException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(200);
            }
        }
    }

    private void Append(string? line)
    {
        if (line is null) return;
        lock (_lock) _output.AppendLine(line);
    }

    public void Dispose()
    {
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        _process.WaitForExit();
        _process.Dispose();
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
