using System.Globalization;
using System.Text;
using Wardline.Ledger;

namespace Wardline.Server.Modules.Ledger;

/// <summary>The accounting of disclosures as CSV, the same for the console's download and <c>wardline ledger disclosures --csv</c>.</summary>
internal static class DisclosureCsv
{
    /// <summary>RFC 4180 with a header row; records end with CRLF.</summary>
    public static string Write(IEnumerable<Disclosure> rows)
    {
        var sb = new StringBuilder("index,time,user,roles,application,action,resource,purpose,permitted,rule,reason\r\n");
        foreach (var d in rows)
        {
            string?[] cells =
            [
                d.Index.ToString(CultureInfo.InvariantCulture), LedgerEntry.FormatTime(d.At),
                d.User, string.Join(' ', d.Roles), d.Client, d.Action, d.Resource, d.Purpose, d.Permitted ? "true" : "false", d.Rule, d.Reason,
            ];
            sb.Append(string.Join(',', cells.Select(Field))).Append("\r\n");
        }
        return sb.ToString();
    }

    /// <summary>One field: quoted when it holds a comma, quote or line break; a leading =, +, - or @ is prefixed with ' so a spreadsheet never runs it as a formula.</summary>
    private static string Field(string? value)
    {
        if (string.IsNullOrEmpty(value)) return "";
        if (value[0] is '=' or '+' or '-' or '@' or '\t' or '\r') value = "'" + value;
        return value.AsSpan().IndexOfAny(",\"\r\n") >= 0 ? "\"" + value.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : value;
    }
}
