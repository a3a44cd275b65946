namespace Wardline.Ledger.Tests;

internal static class Hex
{
    public static byte[] Bytes(string hex) => Convert.FromHexString(hex);

    public static string Of(byte[] bytes) => Convert.ToHexStringLower(bytes);

    public static List<string> Of(IEnumerable<byte[]> hashes) => [.. hashes.Select(Of)];
}
