using System.Globalization;
using Wardline.Server.Modules.Access;
using Wardline.Server.Modules.Access.Identity;
using Wardline.Server.Modules.Access.OAuth;
using Wardline.Server.Modules.Console;
using Wardline.Server.Modules.Ledger;
using Wardline.Server.Modules.Monitoring;

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

    /// <summary>Each owner's own wrap context, so a re-wrap cannot drift from how the key was made.</summary>
    public static readonly IReadOnlyList<WrappedKeyColumn> All =
    [
        new("MFA secrets", "accounts", "mfa_key", ["name"], ids => MfaSecrets.WrapContext(S(ids[0]))),
        // One key seals the declaration's reason and its review note.
        new("break-glass declarations", "break_glass", "reason_key", ["id"], ids => BreakGlass.WrapContext(S(ids[0]))),
        new("OAuth keys", "oauth_keys", "wrapped_key", ["purpose"], ids => TokenKeys.WrapContext(S(ids[0]))),
        new("ledger signing keys", "ledger_keys", "wrapped_key", ["key_id"], ids => TreeHeads.WrapContext(S(ids[0]))),
        // Bound to the alert: the row is found by seq and the context built from alert_id.
        new("alert notes", "monitor_alert_events", "note_key", ["seq", "alert_id"],
            ids => AlertStore.KeyContext(Convert.ToInt64(ids[1], CultureInfo.InvariantCulture))),
    ];

    /// <summary>The console's Data Protection keys: the wrapped key sits inside the XML (Console/KeyringXmlEncryptor.cs).</summary>
    public const string DataProtectionKind = "console keys";

    public static byte[] DataProtectionContext => KeyringXmlEncryptor.WrapContext;
}
