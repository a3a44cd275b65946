using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Wardline.Server.Tests.Infrastructure;

/// <summary>A real SMTP server for notification tests: Debian's aiosmtpd on 127.0.0.1, printing every message it receives.</summary>
public sealed class SmtpSink : IDisposable
{
    private readonly RunningProcess _process;

    private SmtpSink(RunningProcess process, int port)
    {
        _process = process;
        Port = port;
    }

    public int Port { get; }

    /// <summary>Everything received so far (headers and bodies).</summary>
    public string Output => _process.Output;

    /// <summary>
    /// Starts the sink on <paramref name="port"/>, or on a free port when none is given: a test that has pointed a server at a
    /// port with nothing on it brings the mail server up there ("the mail server was down and is back").
    /// </summary>
    public static async Task<SmtpSink> StartAsync(int? port = null)
    {
        var listen = port ?? FreePort();
        // -u: unbuffered, so a test sees each message as soon as it arrives.
        var process = RunningProcess.Start(new ProcessStartInfo("/usr/bin/python3", ["-u", "-m", "aiosmtpd", "-n", "-l", $"127.0.0.1:{listen}"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        }, "aiosmtpd");
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            try
            {
                using var probe = new TcpClient();
                await probe.ConnectAsync(IPAddress.Loopback, listen);
                return new SmtpSink(process, listen);
            }
            catch (SocketException) when (DateTime.UtcNow < deadline && !process.HasExited)
            {
                await Task.Delay(100);
            }
        }
    }

    public Task WaitForAsync(string text, TimeSpan timeout) => _process.WaitForOutputAsync(text, timeout);

    /// <summary>A port nothing listens on (for "the mail server is down").</summary>
    public static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        var port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    public void Dispose() => _process.Dispose();
}
