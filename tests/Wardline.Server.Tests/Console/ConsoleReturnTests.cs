namespace Wardline.Server.Tests.Console;

public sealed class ConsoleReturnTests
{
    [Theory]
    [InlineData("/console")]
    [InlineData("/console/users")]
    [InlineData("/console/authorize?client_id=app&redirect_uri=https://app.example/cb&state=x%2Fy")]
    public void A_console_path_is_a_place_to_continue_to(string url) =>
        Assert.Equal(url, Wardline.Server.Modules.Console.ConsoleAuth.SafeReturn(url));

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("https://evil.example/console/users")]
    [InlineData("//evil.example/console")]
    [InlineData("/consoles")]
    [InlineData("/console//evil.example")]
    [InlineData("/console/../fhir/Patient")]
    [InlineData("/console\\..\\evil")]
    [InlineData("/console/users\r\nSet-Cookie: x=1")]
    [InlineData("/console/sign-in?returnUrl=/console")]
    [InlineData("/fhir/Patient")]
    public void Anything_else_is_not(string? url) =>
        Assert.Null(Wardline.Server.Modules.Console.ConsoleAuth.SafeReturn(url));
}
