using System.CommandLine;
using Microsoft.Extensions.DependencyInjection;
using Spectre.Console;
using Wardline.Crypto;
using Wardline.Server.Modules.Ledger;
using Wardline.Server.Modules.Records;
using Wardline.Server.Modules.Records.Storage;

namespace Wardline.Cli;

internal static class KeysCommand
{
    /// <summary>Longer than the interval at which a running server checks the key file for changes (1 s).</summary>
    private static readonly TimeSpan ServerReloadGrace = TimeSpan.FromSeconds(2.5);

    public static Command Create()
    {
        var command = new Command("keys", "Manage the keyring (key-encryption keys kept outside the database).");
        var store = new StoreArgs();
        var rotate = new Command("rotate", "Add a new key-encryption key and re-wrap every data key under it (records, MFA secrets, break-glass reasons, OAuth and ledger keys, alert notes, console keys). Safe while the server runs: it picks up the new key within a second.");
        store.AddTo(rotate);
        rotate.SetAction((parse, ct) => CommandRunner.RunAsync(async () =>
        {
            var options = store.Resolve(parse);
            var passphrase = Environment.GetEnvironmentVariable("WARDLINE_KEYRING_PASSPHRASE");
            var path = options.KeyringFile();
            if (!File.Exists(path)) throw new CliException($"There is no keyring at {path}.");
            var rotated = Keyring.Load(path, passphrase).Rotate(passphrase);
            AnsiConsole.MarkupLine($"new key-encryption key [green]{rotated.ActiveKekId}[/] is active");

            await using var sp = await StoreArgs.OpenAsync(options, ct);
            var store2 = sp.GetRequiredService<RecordStore>();
            var keys = sp.GetRequiredService<RecordKeys>();
            keys.Reload();
            var cipher = keys.Cipher;
            var total = await store2.CountAsync("SELECT COUNT(*) FROM data_keys", ct);
            // A running server notices the new key file within a second (RecordKeys). Until it has, it cannot
            // unwrap a data key re-wrapped under the new key, so give it that second (and a margin) first.
            await Task.Delay(ServerReloadGrace, ct);
            long done = 0;
            await AnsiConsole.Progress().StartAsync(async progress =>
            {
                var task = progress.AddTask("re-wrapping data keys", maxValue: Math.Max(1, total));
                // Keep going until a pass finds nothing, then wait past the server's reload interval and look once more:
                // a server that had not yet reloaded may have wrapped a new data key with the old key meanwhile.
                for (var quietPasses = 0; quietPasses < 2;)
                {
                    var n = await store2.RewrapBatchAsync(rotated.ActiveKekId, (t, i, w) => cipher.Rewrap(w, RecordKeys.KeyContext(t, i)), 1000, ct);
                    done += n;
                    task.Value = Math.Min(done, total);
                    if (n == 0)
                    {
                        quietPasses++;
                        if (quietPasses < 2) await Task.Delay(ServerReloadGrace, ct);
                    }
                    else quietPasses = 0;
                }
                task.Value = task.MaxValue;
            });
            // The other keys the keyring wraps (MFA secrets, break-glass reasons, OAuth and ledger keys, alert notes,
            // console keys): by now the server has reloaded, so a key it wraps from here on is under the new key.
            // Each pass skips keys already re-wrapped; one that lost to a concurrent write is picked up by the next.
            var counts = new List<(string Kind, long Count)> { ("data keys", done) };
            byte[] Rewrap(byte[] wrapped, byte[] context) => cipher.Rewrap(wrapped, context);
            foreach (var column in WrappedKeyColumns.All)
            {
                long n = 0;
                for (var pass = 0; pass < 5; pass++)
                {
                    var k = await store2.RewrapColumnAsync(column, rotated.ActiveKekId, w => cipher.WrappingKekId(w), Rewrap, 500, ct);
                    n += k;
                    if (k == 0) break;
                }
                counts.Add((column.Kind, n));
            }
            long console = 0;
            for (var pass = 0; pass < 5; pass++)
            {
                var k = await store2.RewrapDataProtectionKeysAsync(rotated.ActiveKekId, w => cipher.WrappingKekId(w), Rewrap, ct);
                console += k;
                if (k == 0) break;
            }
            counts.Add((WrappedKeyColumns.DataProtectionKind, console));
            var summary = string.Join(", ", counts.Select(c => $"{c.Count} {c.Kind}"));
            await sp.GetRequiredService<LedgerRecorder>().RecordSystemAsync("key-rotated", "operator", "succeeded",
                $"key-encryption key {rotated.ActiveKekId} active; re-wrapped {summary}", ct);
            AnsiConsole.MarkupLine($"re-wrapped [green]{done}[/] data keys; older keys stay in the keyring, marked retired");
            foreach (var (kind, count) in counts.Skip(1)) AnsiConsole.MarkupLine($"re-wrapped [green]{count}[/] {Markup.Escape(kind)}");
            return 0;
        }));
        command.Subcommands.Add(rotate);

        var escrowStore = new StoreArgs();
        var output = new Option<FileInfo>("--out") { Description = "Where to write the escrow copy (must not exist yet).", Required = true };
        var escrow = new Command("escrow",
            "Write a copy of the keyring protected by a separate escrow passphrase (from WARDLINE_ESCROW_PASSPHRASE), for the institution's key safe. " +
            "Without the keyring nobody can read the data; restore it with the escrow passphrase.");
        escrowStore.AddTo(escrow);
        escrow.Options.Add(output);
        escrow.SetAction((parse, ct) => CommandRunner.RunAsync(() =>
        {
            var options = escrowStore.Resolve(parse);
            var escrowPassphrase = Environment.GetEnvironmentVariable("WARDLINE_ESCROW_PASSPHRASE");
            if (string.IsNullOrEmpty(escrowPassphrase) || escrowPassphrase.Length < 16)
                throw new CliException("Set WARDLINE_ESCROW_PASSPHRASE to the escrow passphrase (at least 16 characters); it is read from the environment so that it never appears in a command line or shell history.");
            var path = options.KeyringFile();
            if (!File.Exists(path)) throw new CliException($"There is no keyring at {path}.");
            var keyring = Keyring.Load(path, Environment.GetEnvironmentVariable("WARDLINE_KEYRING_PASSPHRASE"));
            keyring.ExportEscrow(parse.GetValue(output)!.FullName, escrowPassphrase);
            AnsiConsole.MarkupLine($"escrow copy of [green]{keyring.KekIds.Count}[/] key-encryption keys written to {Markup.Escape(parse.GetValue(output)!.FullName)}");
            return Task.FromResult(0);
        }));
        command.Subcommands.Add(escrow);
        return command;
    }
}
