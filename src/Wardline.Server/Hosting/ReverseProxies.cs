using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.HttpOverrides;
using IPNetwork = System.Net.IPNetwork;

namespace Wardline.Server.Hosting;

/// <summary>
/// The reverse proxies of <see cref="WardlineOptions.TrustedProxies"/>: from a request whose TCP peer is one of them,
/// ASP.NET Core's forwarded-headers middleware takes the client's address from <c>X-Forwarded-For</c> (walking from the
/// right past trusted proxies to the first address that is not one; a malformed entry stops the walk) and the scheme
/// from <c>X-Forwarded-Proto</c>. Every later reader of <c>Connection.RemoteIpAddress</c> (rate limits, the policy's
/// network, the ledger's source) then sees the client. From any other peer the headers are ignored.
/// </summary>
internal static class ReverseProxies
{
    /// <summary>An address (a network of one) or a CIDR network; not one that contains every address.</summary>
    public static bool TryParse(string entry, out IPNetwork network)
    {
        network = default;
        if (entry.Contains('/', StringComparison.Ordinal))
        {
            // IPNetwork drops the bits after the prefix, but "10.0.0.1/8" is a typo, for one address or for 10.0.0.0/8:
            // a network is written by its first address.
            var text = entry[..entry.IndexOf('/', StringComparison.Ordinal)];
            return IPNetwork.TryParse(entry, out network) && network.PrefixLength > 0
                && IPAddress.TryParse(text, out var first) && Plain(text, first) && first.Equals(network.BaseAddress);
        }
        // IPAddress also reads "10.1" as 10.0.0.1: an address must be written whole.
        if (!IPAddress.TryParse(entry, out var address) || !Plain(entry, address)) return false;
        if (address.IsIPv4MappedToIPv6) address = address.MapToIPv4();
        network = new IPNetwork(address, address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128);
        return true;
    }

    /// <summary>
    /// Written the one way that reads the same everywhere: IPv4 as four plain decimal numbers ("010.0.0.5" is octal to .NET,
    /// 8.0.0.5, and "10.1" is 10.0.0.1); IPv6 as any valid text.
    /// </summary>
    private static bool Plain(string text, IPAddress address) =>
        text.Contains(':', StringComparison.Ordinal) ? address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 : address.ToString() == text;

    /// <summary>The middleware's options: only the configured proxies (its default trusts loopback), and no limit on the chain's length.</summary>
    public static ForwardedHeadersOptions Options(IEnumerable<string> entries)
    {
        var options = new ForwardedHeadersOptions
        {
            ForwardedHeaders = ForwardedHeaders.XForwardedFor | ForwardedHeaders.XForwardedProto,
            // The default (1) reads only the rightmost entry, so a chain of two trusted proxies would end at the first
            // proxy. Unlimited is safe here: the walk stops at the first address that is not a trusted proxy.
            ForwardLimit = null,
        };
        options.KnownProxies.Clear();
        options.KnownIPNetworks.Clear();
        foreach (var entry in entries)
        {
            options.KnownIPNetworks.Add(TryParse(entry, out var network) ? network : throw new ArgumentException($"Wardline:TrustedProxies: '{entry}' is not an IP address or a CIDR network."));
        }
        return options;
    }
}
