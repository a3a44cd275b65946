using System.Xml.Linq;
using Microsoft.AspNetCore.DataProtection.Repositories;
using Microsoft.Extensions.Logging;
using Wardline.Server.Modules.Records.Storage;

namespace Wardline.Server.Modules.Console;

/// <summary>
/// The console's Data Protection key ring (the keys of its session cookies and anti-forgery tokens), kept in the
/// store's <c>dataprotection_keys</c> table, so every server sharing the store and keyring reads one key ring: a
/// session outlives a restart and any server accepts it. Each row is a key's XML as Data Protection wrote it, its
/// secret already sealed under the keyring by <see cref="KeyringXmlEncryptor"/>; this class only stores and lists.
/// Data Protection calls it rarely (at start, when it makes a key, and once a day) and synchronously.
/// </summary>
internal sealed class ConsoleKeyRepository(SqlDialect dialect, RecordStore store, GroupCommitter committer, TimeProvider time, ILogger<ConsoleKeyRepository> logger) : IXmlRepository
{
    private volatile bool _schemaReady;

    public IReadOnlyCollection<XElement> GetAllElements() => Task.Run(() => GetAllElementsAsync(CancellationToken.None)).GetAwaiter().GetResult();

    public void StoreElement(XElement element, string friendlyName) => Task.Run(() => StoreElementAsync(element, friendlyName, CancellationToken.None)).GetAwaiter().GetResult();

    public async Task<IReadOnlyCollection<XElement>> GetAllElementsAsync(CancellationToken ct)
    {
        await EnsureSchemaAsync(ct);
        var elements = new List<XElement>();
        await using var c = await dialect.OpenAsync(ct);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT xml FROM dataprotection_keys ORDER BY created, name";
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            elements.Add(XElement.Parse(r.GetString(0)));
        }
        return elements;
    }

    public async Task StoreElementAsync(XElement element, string? friendlyName, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(element);
        await EnsureSchemaAsync(ct);
        var xml = element.ToString(SaveOptions.DisableFormatting);
        var name = string.IsNullOrEmpty(friendlyName) ? Guid.NewGuid().ToString("N") : friendlyName;
        // Names are "key-{guid}" or "revocation-{time}": a clash is next to impossible, but the element must not be lost.
        if (await InsertAsync(name, xml, ct) == 0 && await InsertAsync(name + "-" + Guid.NewGuid().ToString("N"), xml, ct) == 0)
        {
            throw new InvalidOperationException("The console key could not be stored.");
        }
        ConsoleKeysLog.KeyStored(logger, name);
    }

    private Task<int> InsertAsync(string name, string xml, CancellationToken ct) => committer.RunAsync(async (c, tx, token) =>
    {
        await using var cmd = c.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = "INSERT INTO dataprotection_keys (name, xml, created) VALUES (@n, @x, @c) ON CONFLICT (name) DO NOTHING";
        RecordStore.Add(cmd, "@n", name);
        RecordStore.Add(cmd, "@x", xml);
        RecordStore.Add(cmd, "@c", time.GetUtcNow().ToUnixTimeMilliseconds());
        return await cmd.ExecuteNonQueryAsync(token);
    }).WaitAsync(ct);

    /// <summary>The server migrates at start, before Data Protection loads its keys; a host built otherwise may ask first.</summary>
    private async Task EnsureSchemaAsync(CancellationToken ct)
    {
        if (_schemaReady) return;
        await store.MigrateAsync(ct);
        _schemaReady = true;
    }
}

/// <summary>Diagnostic log of the console's key ring: element names (a key's id), never key material.</summary>
internal static partial class ConsoleKeysLog
{
    [LoggerMessage(EventId = 7001, Level = LogLevel.Information, Message = "Console key ring: {Name} stored (a key's secret sealed under the keyring)")]
    public static partial void KeyStored(ILogger logger, string name);
}
