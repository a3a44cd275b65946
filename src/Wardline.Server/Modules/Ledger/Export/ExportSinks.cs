using System.Net.Security;
using System.Net.Sockets;

namespace Wardline.Server.Modules.Ledger.Export;

/// <summary>Where a target's bytes go: a SIEM's TCP listener or a file.</summary>
internal interface IExportSink : IAsyncDisposable
{
    /// <summary>
    /// How long flushed bytes must stand on a connection that is still open before they count as delivered.
    /// A TCP flush only hands bytes to the kernel: a SIEM that closes or resets the connection a moment
    /// later drops what it had not read, so the cursor waits this long and then checks the connection.
    /// </summary>
    TimeSpan Settle { get; }

    ValueTask WriteAsync(ReadOnlyMemory<byte> bytes, CancellationToken ct);

    /// <summary>Pushes the buffered bytes out: onto the wire (TCP) or onto the disk (file, fsync).</summary>
    Task FlushAsync(CancellationToken ct);

    /// <summary>False once the peer closed or reset the connection.</summary>
    bool IsOpen();
}

/// <summary>
/// A TCP connection to a SIEM, plain or TLS (RFC 5425). The SIEM never speaks, so the connection is read all the time only to
/// learn that it ended: a clean close (end of stream) or a reset makes <see cref="IsOpen"/> false. Whatever a SIEM does send (a
/// banner, an acknowledgement, TLS session tickets) is read and ignored.
/// </summary>
internal sealed class TcpExportSink : IExportSink
{
    private readonly TcpClient _client;
    private readonly Stream _transport;
    private readonly BufferedStream _stream;
    private readonly Task _watching;
    private readonly SiemTlsSession? _tls;
    private volatile bool _ended;

    private TcpExportSink(TcpClient client, Stream transport, SiemTlsSession? tls)
    {
        _client = client;
        _transport = transport;
        _tls = tls;
        _stream = new BufferedStream(transport, 64 * 1024);
        _watching = WatchAsync();
    }

    public TimeSpan Settle => TimeSpan.FromMilliseconds(500);

    /// <summary>
    /// Connects, and with <paramref name="tls"/> completes the TLS handshake (the SIEM's certificate validated), within 15 s.
    /// The sink owns <paramref name="tls"/> from here on: disposed with it, or at once if the connection fails.
    /// </summary>
    public static async Task<TcpExportSink> ConnectAsync(string host, int port, SiemTlsSession? tls, CancellationToken ct)
    {
        var client = new TcpClient { NoDelay = true };
        try
        {
            client.Client.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.KeepAlive, true);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(TimeSpan.FromSeconds(15));
            await client.ConnectAsync(host, port, timeout.Token);
            if (tls is null) return new TcpExportSink(client, client.GetStream(), null);
            var ssl = new SslStream(client.GetStream(), leaveInnerStreamOpen: false);
            try
            {
                await ssl.AuthenticateAsClientAsync(tls.Options, timeout.Token);
            }
            catch
            {
                await ssl.DisposeAsync();
                throw;
            }
            return new TcpExportSink(client, ssl, tls);
        }
        catch
        {
            client.Dispose();
            tls?.Dispose();
            throw;
        }
    }

    public ValueTask WriteAsync(ReadOnlyMemory<byte> bytes, CancellationToken ct) => _stream.WriteAsync(bytes, ct);

    public Task FlushAsync(CancellationToken ct) => _stream.FlushAsync(ct);

    public bool IsOpen() => !_ended;

    private async Task WatchAsync()
    {
        var discard = new byte[4096];
        try
        {
            while (await _transport.ReadAsync(discard) > 0)
            {
            }
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or InvalidOperationException or System.Security.Authentication.AuthenticationException)
        {
            // Reset, or closed here.
        }
        _ended = true;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            // A graceful close: what was flushed is still delivered (and a TLS SIEM gets its close_notify), then the SIEM sees the end of the stream.
            // Bounded: a SIEM that stopped reading leaves no room in the socket for the close_notify.
            if (_transport is SslStream ssl && !_ended) await ssl.ShutdownAsync().WaitAsync(TimeSpan.FromSeconds(2));
            if (_client.Connected) _client.Client.Shutdown(SocketShutdown.Send);
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or InvalidOperationException or TimeoutException)
        {
        }
        try
        {
            await _stream.DisposeAsync();
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException or InvalidOperationException)
        {
            // Unflushed bytes were never acknowledged; they are sent again from the cursor (a TLS stream already shut refuses them).
        }
        _client.Dispose();
        await _watching;
        _tls?.Dispose();
    }
}

/// <summary>
/// A file of jsonl lines, appended to. A line cut short by a crash (written but not fsync'd whole) is
/// removed on opening, so the file holds whole lines only; its entries are written again from the cursor.
/// </summary>
internal sealed class FileExportSink : IExportSink
{
    private readonly FileStream _file;

    private FileExportSink(FileStream file) => _file = file;

    public TimeSpan Settle => TimeSpan.Zero;

    public static FileExportSink Open(string path)
    {
        var file = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read, 64 * 1024);
        try
        {
            file.SetLength(WholeLinesLength(file));
            file.Seek(0, SeekOrigin.End);
            return new FileExportSink(file);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>The length up to and including the last newline.</summary>
    private static long WholeLinesLength(FileStream file)
    {
        var end = file.Length;
        var buffer = new byte[4096];
        while (end > 0)
        {
            var start = Math.Max(0, end - buffer.Length);
            file.Seek(start, SeekOrigin.Begin);
            file.ReadExactly(buffer, 0, (int)(end - start));
            var newline = Array.LastIndexOf(buffer, (byte)'\n', (int)(end - start) - 1);
            if (newline >= 0) return start + newline + 1;
            end = start;
        }
        return 0;
    }

    public ValueTask WriteAsync(ReadOnlyMemory<byte> bytes, CancellationToken ct) => _file.WriteAsync(bytes, ct);

    public Task FlushAsync(CancellationToken ct)
    {
        _file.Flush(flushToDisk: true);
        return Task.CompletedTask;
    }

    public bool IsOpen() => true;

    public ValueTask DisposeAsync() => _file.DisposeAsync();
}
