using System.Net;
using System.Text.RegularExpressions;
using Hl7.Fhir.Model;
using Microsoft.Playwright;
using Wardline.Server.Modules.Access.Identity;
using static Microsoft.Playwright.Assertions;
using Account = Wardline.Server.Modules.Access.Identity.Account;
using Task = System.Threading.Tasks.Task;

namespace Wardline.Server.Tests.Console;

/// <summary>The web console in a real browser: sign-in with MFA, the policy explainer, break-glass and its review, headers.</summary>
[Collection(ConsoleCollection.Name)]
public sealed class ConsoleTests(ConsoleFixture fx)
{
    [Fact]
    public async Task A_new_nurse_enrols_an_authenticator_signs_out_and_signs_in_again_with_password_and_code()
    {
        await fx.CreateAccountAsync(Account.New("nina.nurse", "Nina Nurse") with { Roles = ["nurse"], Departments = ["cardiology"] });
        var page = await fx.NewPageAsync();

        var secret = await ConsoleFixture.SignInAndEnrolAsync(page, "nina.nurse", "01-enrol");
        await Expect(page.GetByText("Welcome, Nina Nurse")).ToBeVisibleAsync();
        await Expect(page.Locator(".wl-me")).ToContainTextAsync("used for this sign-in");
        await ConsoleFixture.ShotAsync(page, "02-home");

        await page.GetByRole(AriaRole.Button, new() { Name = "Sign out" }).ClickAsync();
        await Expect(page.Locator(".wl-info")).ToContainTextAsync("You are signed out");
        await page.GotoAsync("/console");
        await Expect(page).ToHaveURLAsync(new Regex("/console/sign-in$"));

        await ConsoleFixture.SubmitPasswordAsync(page, "nina.nurse", ConsoleFixture.Password);
        await Expect(page).ToHaveURLAsync(new Regex("/console/sign-in/code$"));
        await ConsoleFixture.ShotAsync(page, "03-code");
        await page.FillAsync("input[name='Input.Code']", ConsoleFixture.NextCode(secret));
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await Expect(page).ToHaveURLAsync(new Regex("/console$"));
        await Expect(page.GetByText("Welcome, Nina Nurse")).ToBeVisibleAsync();
    }

    [Fact]
    public async Task A_wrong_password_and_an_unknown_name_get_the_same_generic_error()
    {
        await fx.CreateAccountAsync(Account.New("walt.wrong", "Walt Wrong") with { Roles = ["nurse"] });
        var page = await fx.NewPageAsync();

        await ConsoleFixture.SubmitPasswordAsync(page, "walt.wrong", "not the password at all");
        await Expect(page.Locator(".wl-error")).ToHaveTextAsync(SignInMessagesText.Wrong);
        await ConsoleFixture.ShotAsync(page, "04-wrong-password");
        await ConsoleFixture.SubmitPasswordAsync(page, "nobody.here", "not the password at all");
        await Expect(page.Locator(".wl-error")).ToHaveTextAsync(SignInMessagesText.Wrong);
        Assert.EndsWith("/console/sign-in", page.Url, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Repeated_failures_are_slowed_down_with_a_message_that_says_nothing_about_the_account()
    {
        await fx.CreateAccountAsync(Account.New("tess.throttle", "Tess Throttle") with { Roles = ["nurse"] });
        var page = await fx.NewPageAsync();

        for (var i = 0; i < 5; i++)
        {
            await ConsoleFixture.SubmitPasswordAsync(page, "tess.throttle", "wrong password number " + i);
            await Expect(page.Locator(".wl-error")).ToHaveTextAsync(SignInMessagesText.Wrong);
        }
        // The back-off starts at one second and doubles, so one of the next few tries comes too early.
        var text = "";
        for (var i = 0; i < 6 && !text.Contains("Too many", StringComparison.Ordinal); i++)
        {
            await ConsoleFixture.SubmitPasswordAsync(page, "tess.throttle", "still the wrong password " + i);
            text = await page.Locator(".wl-error").InnerTextAsync();
        }

        Assert.Contains("Too many failed attempts from this computer", text, StringComparison.Ordinal);
        Assert.DoesNotContain("tess", text, StringComparison.OrdinalIgnoreCase);
        Assert.EndsWith("/console/sign-in", page.Url, StringComparison.Ordinal);
        await ConsoleFixture.ShotAsync(page, "04b-throttled");
    }

    [Fact]
    public async Task After_sign_in_the_browser_continues_to_a_console_path_it_came_from_but_never_to_another_site()
    {
        await fx.CreateAccountAsync(Account.New("rita.return", "Rita Return") with { Roles = ["administrator"] });
        await fx.CreateAccountAsync(Account.New("evan.evil", "Evan Evil") with { Roles = ["nurse"] });

        var page = await fx.NewPageAsync();
        await ConsoleFixture.SignInAndEnrolAsync(page, "rita.return", signInPath: "/console/sign-in?returnUrl=%2Fconsole%2Fusers", landing: "/console/users$");
        await Expect(page.Locator(".wl-users")).ToContainTextAsync("rita.return");

        var other = await fx.NewPageAsync();
        await ConsoleFixture.SignInAndEnrolAsync(other, "evan.evil", signInPath: "/console/sign-in?returnUrl=https%3A%2F%2Fexample.org%2F");
        Assert.StartsWith(fx.Origin + "/console", other.Url, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_explainer_shows_a_permit_and_a_deny_with_their_rules_for_two_users_on_one_observation()
    {
        await fx.ImportAsync(new Patient { Id = "expl-patient", Name = [new HumanName { Family = "Example", Given = ["Pat"] }] });
        await fx.ImportAsync(new Observation
        {
            Id = "expl-obs",
            Status = ObservationStatus.Final,
            Code = new CodeableConcept("http://loinc.org", "8867-4"),
            Subject = new ResourceReference("Patient/expl-patient"),
        });
        await fx.CreateAccountAsync(Account.New("dr.senior", "Dr Senior") with { Roles = ["physician"], Tier = 1, Departments = ["cardiology"] });
        await fx.CreateAccountAsync(Account.New("bill.clerk", "Bill Clerk") with { Roles = ["billing_clerk"] });
        await fx.CreateAccountAsync(Account.New("ian.explains", "Ian Explains") with { Roles = ["privacy_officer"] });
        var page = await fx.NewPageAsync();
        await ConsoleFixture.SignInAndEnrolAsync(page, "ian.explains");

        await page.GotoAsync("/console/policy");
        await Expect(page.Locator(".wl-rules")).ToContainTextAsync("tier1-full-access");
        await ExplainAsync(page, "dr.senior");
        await Expect(page.Locator(".wl-decision")).ToHaveTextAsync("permit");
        await Expect(page.Locator(".wl-deciding-rule")).ToHaveTextAsync("tier1-full-access");
        await Expect(page.Locator(".wl-trace")).ToContainTextAsync("decided");
        await ConsoleFixture.ShotAsync(page, "05-explain-permit");

        await ExplainAsync(page, "bill.clerk");
        await Expect(page.Locator(".wl-decision")).ToHaveTextAsync("deny");
        var rule = (await page.Locator(".wl-deciding-rule").InnerTextAsync()).Trim();
        Assert.Matches("^[a-z0-9-]+$", rule);
        Assert.NotEqual("tier1-full-access", rule);
        await ConsoleFixture.ShotAsync(page, "06-explain-deny");

        static async Task ExplainAsync(IPage page, string user)
        {
            await page.SelectOptionAsync("select[name='Ask.User']", user);
            await page.FillAsync("input[name='Ask.Resource']", "Observation/expl-obs");
            await page.SelectOptionAsync("select[name='Ask.Action']", "Read");
            await page.SelectOptionAsync("select[name='Ask.Purpose']", "TREAT");
            await page.GetByRole(AriaRole.Button, new() { Name = "Why?" }).ClickAsync();
            await Expect(page.Locator(".wl-explained")).ToContainTextAsync(user + " ·");
        }
    }

    [Theory]
    [InlineData("administrator")]
    [InlineData("security_officer")]
    public async Task Administrators_and_security_officers_read_the_rules_but_get_no_explainer(string role)
    {
        // An explanation shows the record's labels (HIV, psychiatry) and its patient's flags in the conditions it lists.
        var name = "no.explain." + role.Replace('_', '.');
        await fx.CreateAccountAsync(Account.New(name, "No Explainer") with { Roles = [role] });
        var page = await fx.NewPageAsync();
        await ConsoleFixture.SignInAndEnrolAsync(page, name);

        await page.GotoAsync("/console/policy");

        await Expect(page.Locator(".wl-rules")).ToContainTextAsync("tier1-full-access");
        await Expect(page.Locator(".wl-explainer-note")).ToBeVisibleAsync();
        await Expect(page.Locator("form.wl-explain")).ToHaveCountAsync(0);
        await Expect(page.GetByRole(AriaRole.Button, new() { Name = "Why?" })).ToHaveCountAsync(0);
    }

    [Fact]
    public async Task A_break_glass_declaration_waits_in_the_review_queue_until_a_privacy_officer_closes_it()
    {
        await fx.ImportAsync(new Patient { Id = "bg-patient", Name = [new HumanName { Family = "Emergency", Given = ["Eve"] }] });
        await fx.CreateAccountAsync(Account.New("dr.glass", "Dr Glass") with { Roles = ["physician"], Departments = ["oncology"], BreakGlassApproved = true });
        await fx.CreateAccountAsync(Account.New("pia.privacy", "Pia Privacy") with { Roles = ["privacy_officer"] });

        var doctor = await fx.NewPageAsync();
        var secret = await ConsoleFixture.SignInAndEnrolAsync(doctor, "dr.glass");
        await doctor.GotoAsync("/console/break-glass/review");
        await Expect(doctor.Locator(".wl-forbidden")).ToBeVisibleAsync();

        await doctor.GotoAsync("/console/break-glass");
        await doctor.FillAsync("input[name='Declare.Patient']", "bg-patient");
        await doctor.FillAsync("textarea[name='Declare.Reason']", "Unconscious in the emergency department, allergies unknown");
        await doctor.FillAsync("input[name='Declare.Password']", ConsoleFixture.Password);
        await doctor.FillAsync("input[name='Declare.Code']", ConsoleFixture.NextCode(secret));
        await doctor.GetByRole(AriaRole.Button, new() { Name = "Declare emergency access" }).ClickAsync();
        await Expect(doctor.Locator(".wl-notice")).ToContainTextAsync("Declared for Patient/bg-patient");
        await ConsoleFixture.ShotAsync(doctor, "07-break-glass-declared");

        var officer = await fx.NewPageAsync();
        await ConsoleFixture.SignInAndEnrolAsync(officer, "pia.privacy");
        await officer.GotoAsync("/console/break-glass/review");
        var row = officer.Locator(".wl-queue tr", new() { HasText = "dr.glass" });
        await Expect(row).ToContainTextAsync("Patient/bg-patient");
        await Expect(row).ToContainTextAsync("allergies unknown");
        await ConsoleFixture.ShotAsync(officer, "08-review-queue");
        await row.GetByRole(AriaRole.Link, new() { Name = "Review" }).ClickAsync();
        await officer.SelectOptionAsync("select[name='Close.Outcome']", "justified");
        await officer.FillAsync("textarea[name='Close.Note']", "Confirmed with the ED charge nurse.");
        await officer.GetByRole(AriaRole.Button, new() { Name = "Close review" }).ClickAsync();
        await Expect(officer.Locator(".wl-notice")).ToHaveTextAsync("Review closed.");
        await Expect(officer.Locator(".wl-queue tr", new() { HasText = "dr.glass" })).ToHaveCountAsync(0);
        await ConsoleFixture.ShotAsync(officer, "09-review-closed");
    }

    [Fact]
    public async Task A_privacy_officer_who_declared_BreakGlass_is_told_another_reviewer_must_close_its_review_and_it_stays_open()
    {
        await fx.ImportAsync(new Patient { Id = "bg-own-patient", Name = [new HumanName { Family = "Selfreview", Given = ["Sid"] }] });
        await fx.CreateAccountAsync(Account.New("dr.both", "Dr Both") with { Roles = ["physician", "privacy_officer"], Departments = ["oncology"], BreakGlassApproved = true });

        var page = await fx.NewPageAsync();
        var secret = await ConsoleFixture.SignInAndEnrolAsync(page, "dr.both");
        await page.GotoAsync("/console/break-glass");
        await page.FillAsync("input[name='Declare.Patient']", "bg-own-patient");
        await page.FillAsync("textarea[name='Declare.Reason']", "Collapsed at the front desk, medication unknown");
        await page.FillAsync("input[name='Declare.Password']", ConsoleFixture.Password);
        await page.FillAsync("input[name='Declare.Code']", ConsoleFixture.NextCode(secret));
        await page.GetByRole(AriaRole.Button, new() { Name = "Declare emergency access" }).ClickAsync();
        await Expect(page.Locator(".wl-notice")).ToContainTextAsync("Declared for Patient/bg-own-patient");

        await page.GotoAsync("/console/break-glass/review");
        var row = page.Locator(".wl-queue tr", new() { HasText = "dr.both" });
        await row.GetByRole(AriaRole.Link, new() { Name = "Review" }).ClickAsync();
        await page.SelectOptionAsync("select[name='Close.Outcome']", "justified");
        await page.FillAsync("textarea[name='Close.Note']", "It was me and it was justified.");
        await page.GetByRole(AriaRole.Button, new() { Name = "Close review" }).ClickAsync();

        await Expect(page.Locator(".wl-error")).ToHaveTextAsync(Wardline.Server.Modules.Access.BreakGlass.OwnDeclarationProblem);
        await Expect(page.Locator(".wl-queue tr", new() { HasText = "dr.both" })).ToHaveCountAsync(1);
        await ConsoleFixture.ShotAsync(page, "09b-own-review-refused");
    }

    [Fact]
    public async Task Only_administrators_manage_users_and_an_added_user_can_be_disabled()
    {
        await fx.CreateAccountAsync(Account.New("root.admin", "Root Admin") with { Roles = ["administrator"] });
        await fx.CreateAccountAsync(Account.New("nico.nurse", "Nico Nurse") with { Roles = ["nurse"] });
        var nurse = await fx.NewPageAsync();
        await ConsoleFixture.SignInAndEnrolAsync(nurse, "nico.nurse");
        var refused = await nurse.GotoAsync("/console/users");
        Assert.Equal(403, refused!.Status);
        await Expect(nurse.Locator(".wl-forbidden")).ToBeVisibleAsync();

        var admin = await fx.NewPageAsync();
        await ConsoleFixture.SignInAndEnrolAsync(admin, "root.admin");
        await admin.GotoAsync("/console/users");
        await admin.FillAsync("input[name='NewUser.Name']", "lab.lee");
        await admin.FillAsync("input[name='NewUser.Display']", "Lee Lab");
        await admin.FillAsync("input[name='NewUser.Roles']", "lab_tech");
        await admin.FillAsync("input[name='NewUser.Departments']", "pathology");
        await admin.FillAsync("input[name='NewUser.Password']", "a long enough pass phrase 7");
        await admin.GetByRole(AriaRole.Button, new() { Name = "Add user" }).ClickAsync();
        await Expect(admin.Locator(".wl-notice")).ToHaveTextAsync("Added lab.lee.");
        var row = admin.Locator("tr[data-user='lab.lee']");
        await Expect(row).ToContainTextAsync("lab_tech");
        await row.GetByRole(AriaRole.Button, new() { Name = "Disable" }).ClickAsync();
        await Expect(admin.Locator(".wl-notice")).ToHaveTextAsync("Disabled lab.lee.");
        await Expect(admin.Locator("tr[data-user='lab.lee']")).ToContainTextAsync("disabled");
        await ConsoleFixture.ShotAsync(admin, "10-users");
        Assert.True((await fx.Server.Service<AccountService>().FindAsync("lab.lee", CancellationToken.None))!.Disabled);

        // Disabling ends a session at its next request, not when its cookie runs out.
        await fx.Server.Service<AccountService>().DisableAsync("nico.nurse", "test", CancellationToken.None);
        await nurse.GotoAsync("/console");
        await Expect(nurse).ToHaveURLAsync(new Regex("/console/sign-in$"));
        Assert.DoesNotContain(await nurse.Context.CookiesAsync(), c => c.Name == "wardline-console");
    }

    [Fact]
    public async Task Console_responses_carry_a_strict_policy_and_the_session_cookie_is_http_only_and_same_site_strict()
    {
        using var http = new HttpClient { BaseAddress = new Uri(fx.Origin) };
        var response = await http.GetAsync("/console/sign-in");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var csp = string.Join(";", response.Headers.GetValues("Content-Security-Policy"));
        Assert.Contains("frame-ancestors 'none'", csp, StringComparison.Ordinal);
        Assert.Contains("default-src 'self'", csp, StringComparison.Ordinal);
        Assert.Contains("object-src 'none'", csp, StringComparison.Ordinal);
        Assert.Contains("form-action 'self'", csp, StringComparison.Ordinal);
        Assert.DoesNotContain("unsafe-eval", csp, StringComparison.Ordinal);
        Assert.DoesNotContain("script-src 'self' 'unsafe-inline'", csp, StringComparison.Ordinal);
        Assert.Equal("nosniff", response.Headers.GetValues("X-Content-Type-Options").Single());
        Assert.Equal("no-referrer", response.Headers.GetValues("Referrer-Policy").Single());
        Assert.Equal("DENY", response.Headers.GetValues("X-Frame-Options").Single());

        // The FHIR API keeps its own policy and its bearer tokens; a console cookie is no way in.
        var fhir = await http.GetAsync("/fhir/Patient");
        Assert.Equal(HttpStatusCode.Unauthorized, fhir.StatusCode);
        Assert.Equal("default-src 'none'; frame-ancestors 'none'", string.Join(";", fhir.Headers.GetValues("Content-Security-Policy")));

        await fx.CreateAccountAsync(Account.New("cookie.check", "Cookie Check") with { Roles = ["nurse"] });
        var page = await fx.NewPageAsync();
        await ConsoleFixture.SignInAndEnrolAsync(page, "cookie.check");
        var cookies = await page.Context.CookiesAsync();
        var session = Assert.Single(cookies, c => c.Name == "wardline-console");
        Assert.True(session.HttpOnly);
        Assert.Equal(SameSiteAttribute.Strict, session.SameSite);
        Assert.Equal("/console", session.Path);
        Assert.Equal(-1, session.Expires); // a browser-session cookie; the ticket inside expires after the idle time-out
        var antiforgery = Assert.Single(cookies, c => c.Name == "wardline-console-af");
        Assert.True(antiforgery.HttpOnly);
        Assert.Equal(SameSiteAttribute.Strict, antiforgery.SameSite);
        Assert.DoesNotContain(cookies, c => c.Name == "wardline-console-step");
    }

    [Fact]
    public async Task An_unknown_console_path_is_a_console_page_with_404()
    {
        using var http = new HttpClient { BaseAddress = new Uri(fx.Origin) };

        var response = await http.GetAsync("/console/no-such-page");

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("text/html", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains("There is no such page", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Contains("frame-ancestors 'none'", string.Join(";", response.Headers.GetValues("Content-Security-Policy")), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/console/assets/mudblazor.min.css")).StatusCode);
    }

    [Fact]
    public async Task A_post_without_an_antiforgery_token_is_refused()
    {
        await fx.CreateAccountAsync(Account.New("forged.post", "Forged Post") with { Roles = ["nurse"] });
        using var http = new HttpClient { BaseAddress = new Uri(fx.Origin) };
        var signIn = await http.PostAsync("/console/sign-in", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["_handler"] = "sign-in",
            ["Input.UserName"] = "forged.post",
            ["Input.Password"] = ConsoleFixture.Password,
        }));
        Assert.Equal(HttpStatusCode.BadRequest, signIn.StatusCode);
        Assert.DoesNotContain(signIn.Headers, h => h.Key == "Set-Cookie" && h.Value.Any(v => v.StartsWith("wardline-console=", StringComparison.Ordinal)));

        var signOut = await http.PostAsync("/console/sign-out", new FormUrlEncodedContent([]));
        Assert.Equal(HttpStatusCode.BadRequest, signOut.StatusCode);
    }
}

/// <summary>The generic refusal as the page shows it.</summary>
internal static class SignInMessagesText
{
    public const string Wrong = Wardline.Server.Modules.Console.Components.SignInMessages.Wrong;
}
