namespace Wardline.Backup.Stores;

/// <summary>
/// The contract's object names: relative, '/'-separated, non-empty segments of [a-z0-9._-], none of them "." or "..",
/// each at most <see cref="MaxSegmentLength"/> characters. The same rule on every target keeps a name that works on one
/// working on all (case-insensitive folders, file name limits, S3 keys, blob names) and keeps a name from ever leaving
/// the target's root.
/// </summary>
internal static class ObjectNames
{
    /// <summary>Longest accepted name; well under the smallest limit of the targets (S3 keys: 1024 bytes).</summary>
    public const int MaxLength = 512;

    /// <summary>
    /// Longest segment: file systems allow 255 bytes per file name, and the folder target's temporary file adds
    /// its marker and a random part (42 characters) to the last segment.
    /// </summary>
    public const int MaxSegmentLength = 200;

    public static void Validate(string name, string paramName = "name")
    {
        ArgumentNullException.ThrowIfNull(name, paramName);
        if (!IsValid(name))
        {
            throw new ArgumentException(
                $"'{Printable(name)}' is not a backup object name: names are relative, '/'-separated segments of a-z, 0-9, '.', '_' and '-', at most {MaxSegmentLength} characters a segment and {MaxLength} in all.",
                paramName);
        }
    }

    public static bool IsValid(string name)
    {
        if (name.Length is 0 or > MaxLength || !HasOnlyNameCharacters(name))
        {
            return false;
        }
        foreach (var segment in name.Split('/'))
        {
            if (segment is "" or "." or ".." || segment.Length > MaxSegmentLength)
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>
    /// A list prefix is the start of a name: empty, or complete segments followed by the start of one
    /// ("segments/", "segments/00012"). Complete segments follow the name rules.
    /// </summary>
    public static void ValidatePrefix(string prefix)
    {
        ArgumentNullException.ThrowIfNull(prefix);
        if (prefix.Length == 0)
        {
            return;
        }
        var lastSlash = prefix.LastIndexOf('/');
        var valid = prefix.Length <= MaxLength && HasOnlyNameCharacters(prefix)
            && (lastSlash < 0 || IsValid(prefix[..lastSlash]));
        if (!valid)
        {
            throw new ArgumentException(
                $"'{Printable(prefix)}' is not a backup object name prefix: it must be the start of a valid name.",
                nameof(prefix));
        }
    }

    private static bool HasOnlyNameCharacters(string s)
    {
        foreach (var c in s)
        {
            if (c is not ((>= 'a' and <= 'z') or (>= '0' and <= '9') or '.' or '_' or '-' or '/'))
            {
                return false;
            }
        }
        return true;
    }

    // A refused name may carry control characters or be huge; the message shows a tame version.
    private static string Printable(string s)
    {
        var shown = s.Length > 80 ? s[..80] + "..." : s;
        return string.Concat(shown.Select(c => char.IsControl(c) ? '?' : c));
    }
}
