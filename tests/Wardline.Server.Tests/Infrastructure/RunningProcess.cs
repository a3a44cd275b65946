using System.Diagnostics;
using System.Text;
using Wardline.Server.Tests.EndToEnd;

namespace Wardline.Server.Tests.Infrastructure;

/// <summary>A long-running process (wardline serve or demo, openssl s_server) whose output is collected as it comes; killed on dispose.</summary>
public sealed class RunningProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly object _lock = new();

    private readonly string _name;

    private RunningProcess(Process process, string name)
    {
        _process = process;
        _name = name;
    }

    public string Output
    {
        get
        {
            lock (_lock) return _output.ToString();
        }
    }

    public bool HasExited => _process.HasExited;

    /// <summary>Starts `wardline args...`.</summary>
    public static RunningProcess Wardline(IEnumerable<string> args, string? passphrase = null) =>
        Start(WardlineCli.StartInfo(args, passphrase), "wardline");

    public static RunningProcess Start(ProcessStartInfo psi, string? name = null)
    {
        var process = Process.Start(psi) ?? throw new InvalidOperationException($"{psi.FileName} did not start");
        var running = new RunningProcess(process, name ?? Path.GetFileName(psi.FileName));
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
            if (_process.HasExited) throw new InvalidOperationException($"{_name} exited ({_process.ExitCode}) before printing '{text}':\n{Output}");
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"{_name} did not print '{text}' in {timeout}:\n{Output}");
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
            if (_process.HasExited) throw new InvalidOperationException($"{_name} exited ({_process.ExitCode}) before serving {url}:\n{Output}");
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
