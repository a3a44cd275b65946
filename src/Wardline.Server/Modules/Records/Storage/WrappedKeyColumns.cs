using System.Globalization;
using System.Text;
using Wardline.Server.Modules.Console;

namespace Wardline.Server.Modules.Records.Storage;

/// <summary>
/// A column holding data keys wrapped by the keyring, outside <c>data_keys</c>: <paramref name="Kind"/> names it in
/// reports, <paramref name="IdColumns"/> pick out a row, and <paramref name="Context"/> rebuilds, from those ids, the
/// wrap context its owner used (a re-wrap under another context would leave a key nobody can open).
/// </summary>
internal sealed record WrappedKeyColumn(string Kind, string Table, string KeyColumn, IReadOnlyList<string> IdColumns, Func<object[], byte[]> Context);

/// <summary>Every wrapped key in the store that <c>wardline keys rotate</c> re-wraps besides the records' data keys.</summary>
internal static class WrappedKeyColumns
{
    private static string S(object o) => Convert.ToString(o, CultureInfo.InvariantCulture)!;

    public static readonly IReadOnlyList<WrappedKeyColumn> All =
    [
        // Access/Identity/Totp.cs
        new("MFA secrets", "accounts", "mfa_key", ["name"], ids => RecordKeys.KeyContext("wardline:account-mfa", S(ids[0]))),
        // Access/BreakGlass.cs: one key seals the reason and the review note.
        new("break-glass declarations", "break_glass", "reason_key", ["id"], ids => Encoding.UTF8.GetBytes("break-glass/" + S(ids[0]))),
        // Access/OAuth/TokenKeys.cs
        new("OAuth keys", "oauth_keys", "wrapped_key", ["purpose"], ids => RecordKeys.KeyContext("wardline:oauth-key", S(ids[0]))),
        // Ledger/TreeHeads.cs
        new("ledger signing keys", "ledger_keys", "wrapped_key", ["key_id"], ids => RecordKeys.KeyContext("wardline:ledger-key", S(ids[0]))),
        // Monitoring/AlertStore.cs: bound to the alert, so the row is found by seq and the context built from alert_id.
        new("alert notes", "monitor_alert_events", "note_key", ["seq", "alert_id"], ids => Encoding.UTF8.GetBytes("monitor-alert/" + S(ids[1]))),
    ];

    /// <summary>The console's Data Protection keys: the wrapped key sits inside the XML (Console/KeyringXmlEncryptor.cs).</summary>
    public const string DataProtectionKind = "console keys";

    public static byte[] DataProtectionContext => RecordKeys.KeyContext(KeyringXmlEncryptor.KeyType, KeyringXmlEncryptor.Purpose);
}
