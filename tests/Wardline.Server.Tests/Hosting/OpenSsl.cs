using System.Diagnostics;
using System.Text;
using Wardline.Server.Tests.Infrastructure;

namespace Wardline.Server.Tests.Hosting;

/// <summary>
/// The openssl command-line tool (Debian `openssl`), the one client here that can still offer
/// TLS 1.0 and 1.1: "@SECLEVEL=0" lets OpenSSL 3 use the ciphers those protocols need.
/// </summary>
internal static class OpenSsl
{
    private const string LegacyCiphers = "DEFAULT@SECLEVEL=0";

    /// <summary>One handshake offering only the protocol of <paramref name="protocolFlag"/> (e.g. -tls1_1); the exit code and all output.</summary>
    public static async Task<(int ExitCode, string Output)> HandshakeAsync(int port, string protocolFlag)
    {
        var psi = StartInfo("s_client", "-connect", $"127.0.0.1:{port}", "-servername", "localhost", protocolFlag, "-cipher", LegacyCiphers);
        using var process = Process.Start(psi) ?? throw new InvalidOperationException("openssl did not start");
        process.StandardInput.Close(); // no application data: connect, handshake, quit
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await process.WaitForExitAsync(cts.Token);
        return (process.ExitCode, await stdout + await stderr);
    }

    /// <summary>A one-connection TLS server allowing only the protocol of <paramref name="protocolFlag"/>; ready when it prints ACCEPT.</summary>
    public static RunningProcess StartServer(int port, string certificatePem, string keyPem, string protocolFlag) =>
        RunningProcess.Start(StartInfo("s_server", "-accept", $"127.0.0.1:{port}", "-cert", certificatePem, "-key", keyPem,
            protocolFlag, "-cipher", LegacyCiphers, "-naccept", "1"));

    private static ProcessStartInfo StartInfo(params string[] args)
    {
        var psi = new ProcessStartInfo("openssl")
        {
            RedirectStandardInput = true, // s_server quits at end of input, so it is held open
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        return psi;
    }
}
