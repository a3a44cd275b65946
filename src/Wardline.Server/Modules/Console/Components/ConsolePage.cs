using Microsoft.AspNetCore.Components;
using Microsoft.AspNetCore.Http;
using Wardline.Server.Modules.Access.Identity;

namespace Wardline.Server.Modules.Console.Components;

/// <summary>
/// A page behind sign-in. Before anything renders or any form is handled, the signed-in account is
/// read again (so a disabled account or a removed role takes effect at once) and checked against
/// <see cref="RequiredRoles"/>; without a session the browser goes to the sign-in page, and without
/// the role the page says so with 403. Form handlers call <see cref="Allowed"/> again before acting.
/// </summary>
public abstract class ConsolePage : ComponentBase
{
    [CascadingParameter]
    public HttpContext HttpContext { get; set; } = default!;

    [Inject]
    private AccountService Accounts { get; set; } = default!;

    [Inject]
    private protected NavigationManager Navigation { get; set; } = default!;

    [Inject]
    private protected TimeProvider Time { get; set; } = default!;

    /// <summary>The signed-in account; null only while redirecting.</summary>
    private protected Account? Me { get; private set; }

    /// <summary>The page may be used: signed in, active, and holding one of <see cref="RequiredRoles"/> (if any).</summary>
    private protected bool Permitted { get; private set; }

    /// <summary>Roles of which the account needs one; empty: any signed-in account.</summary>
    private protected virtual IReadOnlyList<string> RequiredRoles => [];

    private protected CancellationToken Aborted => HttpContext.RequestAborted;

    /// <summary>The client address, as sign-in throttling and security events key it.</summary>
    private protected string? Source => HttpContext.Connection.RemoteIpAddress?.ToString();

    protected override async Task OnInitializedAsync()
    {
        var name = HttpContext.User.Identity?.IsAuthenticated == true ? HttpContext.User.Identity.Name : null;
        var account = name is null ? null : await Accounts.FindAsync(name, Aborted);
        if (account is null || !account.IsActive(Time.GetUtcNow()))
        {
            Navigation.NavigateTo(ConsoleAuth.SignInPath, forceLoad: true);
            return;
        }
        Me = account;
        Permitted = HasRole(RequiredRoles);
        if (!Permitted)
        {
            HttpContext.Response.StatusCode = StatusCodes.Status403Forbidden;
            return;
        }
        await OnPermittedAsync();
    }

    /// <summary>Loads the page's data once the account is known to be allowed.</summary>
    private protected virtual Task OnPermittedAsync() => Task.CompletedTask;

    private protected bool HasRole(IReadOnlyList<string> roles) =>
        Me is not null && (roles.Count == 0 || Me.Roles.Any(r => roles.Contains(r, StringComparer.Ordinal)));

    /// <summary>For form handlers: the account may act on this page (checked server-side on every post).</summary>
    private protected bool Allowed() => Me is not null && Permitted && HasRole(RequiredRoles);
}
