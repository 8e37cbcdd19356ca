"""Every page in each language, in Chromium: chosen by the browser's languages (Accept-Language) and by the
language switcher; `<html lang>`, the server's text and the scripts' sentences all in that language."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from passgate import i18n
from tests.browser.conftest import PLATFORM_AUTHENTICATOR, Clock, Server, serve_in_process

pytestmark = pytest.mark.browser

# Each page a person reaches signed out, and its heading (English, as the catalogs' ids); the emailed link's last.
PAGES = {
    "/oauth2/authorize?client_id=nobody": "This sign-in request cannot be completed",
    "/oauth2/logout?post_logout_redirect_uri=https://evil.example/": "This sign-out request cannot be completed",
    "/oauth2/logout": "You are signed out",
    "/signup": "Create an account",
    "/signin": "Sign in",
    "/recover": "Lost your passkeys?",
    "/email/verify": "Confirm your email address",
    "/recover/email": "Sign in with your email link",
}
NEEDS_LINK = "This page needs the full link from your email. Open the link exactly as it was sent."
REFUSED = "This was not accepted. Check what you entered, then try again."
# What the pages say of a refusal the server explains in its own (English) words.
DESCRIBE_INVALID_REQUEST = """
async () => {
  const { describe } = await import("/static/ui.js");
  const { PasskeyClientError } = await import("/static/passgate.js");
  const error = new PasskeyClientError("server_error", "username is required.", { serverCode: "invalid_request" });
  return describe(error, "signup");
}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the module: each test signs up its own accounts."""
    with serve_in_process(tmp_path_factory.mktemp("languages"), Clock()) as running:
        yield running


def words(language: str, english: str) -> str:
    return i18n.translator(language).gettext(english)


def browser_in(browser: Browser, language: str) -> tuple[BrowserContext, Page]:
    """A browser whose languages are `language` first (its Accept-Language), with a platform authenticator."""
    context = browser.new_context(locale=language)
    context.set_default_timeout(10_000)
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    cdp.send("WebAuthn.addVirtualAuthenticator", {"options": PLATFORM_AUTHENTICATOR})
    return context, page


@pytest.mark.parametrize("language", list(i18n.LANGUAGES))
def test_every_page_speaks_the_browsers_language(browser: Browser, server: Server, language: str) -> None:
    context, page = browser_in(browser, language)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    for path, heading in PAGES.items():
        page.goto(server.url + path)
        expect(page.locator("html")).to_have_attribute("lang", language)
        expect(page.locator("h1")).to_have_text(words(language, heading))
        expect(page.locator("#language-select")).to_have_value(language)
    # A sentence of the scripts (pages.js): the emailed link's page opened without its token.
    expect(page.locator("#message")).to_have_text(words(language, NEEDS_LINK))
    # Never the server's own (English, developer's) explanation: the page's sentence in its language.
    assert page.evaluate(DESCRIBE_INVALID_REQUEST) == words(language, REFUSED)

    # Sign up on the page, then the account page and a sentence account.js says after a change.
    page.goto(server.url + "/signup")
    page.fill("#username", f"reader-{language}")
    page.click("#signup-button")
    page.wait_for_url("**/account")
    expect(page.locator("html")).to_have_attribute("lang", language)
    expect(page.locator("h1")).to_have_text(words(language, "Your account"))
    expect(page.locator(".passkey-facts dt").first).to_have_text(words(language, "Created"))
    page.click(".rename")
    page.fill(".rename-input", "Laptop")
    page.click(".rename-save")
    renamed = i18n.client_messages(language).get("Passkey renamed to “{name}”.", "Passkey renamed to “{name}”.")
    assert isinstance(renamed, str)
    expect(page.locator("#message")).to_have_text(renamed.replace("{name}", "Laptop"))

    # The switcher, from this language to the next one, on the account page.
    codes = list(i18n.LANGUAGES)
    other = codes[(codes.index(language) + 1) % len(codes)]
    page.select_option("#language-select", other)
    page.click("#language-submit")
    expect(page.locator("html")).to_have_attribute("lang", other)
    expect(page.locator("h1")).to_have_text(words(other, "Your account"))
    expect(page.locator("#language-select")).to_have_value(other)
    context.close()
    assert errors == []


def test_the_switcher_changes_the_language_and_it_is_kept(browser: Browser, server: Server) -> None:
    context, page = browser_in(browser, "en")
    page.goto(server.url + "/signin")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.select_option("#language-select", "fr")
    page.click("#language-submit")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.locator("h1")).to_have_text(words("fr", "Sign in"))
    assert page.url.endswith("/signin?lang=fr")

    # The choice outlasts the page and wins over the browser's own languages; the emailed link keeps its token.
    page.goto(server.url + "/recover/email?token=abc")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    page.select_option("#language-select", "ja")
    page.click("#language-submit")
    expect(page.locator("h1")).to_have_text(words("ja", "Sign in with your email link"))
    assert "token=abc" in page.url
    expect(page.locator("#message")).to_have_text("")  # the token came along: nothing to say about it
    page.goto(server.url + "/signup")
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    context.close()


def test_the_switcher_works_without_javascript(browser: Browser, server: Server) -> None:
    context = browser.new_context(locale="de", java_script_enabled=False)
    page = context.new_page()
    page.goto(server.url + "/recover")
    expect(page.locator("h1")).to_have_text(words("de", "Lost your passkeys?"))
    page.select_option("#language-select", "es")
    page.click("#language-submit")
    expect(page.locator("html")).to_have_attribute("lang", "es")
    expect(page.locator("h1")).to_have_text(words("es", "Lost your passkeys?"))
    context.close()
