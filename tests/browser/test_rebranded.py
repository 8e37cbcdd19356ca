"""A site that runs Passgate under its own name (`rp_name`): what the pages' scripts say names that site only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from passgate.core.errors import PasskeyError
from tests.browser.conftest import Clock, Server, Tab, open_tab, serve_in_process

pytestmark = pytest.mark.browser

BRAND = "Acme Shop"
BEFORE_PROMPT = (
    "Your device will ask you to confirm with your fingerprint, face, PIN or security key. "
    f"Your biometrics stay on your device: {BRAND} never sees them."
)
# Every action the pages name when they describe a failure (ui.js describe()).
ACTIONS = ["signup", "signin", "add", "remove", "codes", "email", "recover", "link", "verify", "rename", "profile"]
CLIENT_CODES = ["cancelled", "already_registered", "not_allowed", "unsupported", "network_error", "unknown"]


# A site in its own colours and logo, with the "powered by" line turned off.
LOOK = {
    "rp_name": BRAND,
    "brand_color": "#aa3300",
    "brand_text_color": "#ffffff",
    "brand_background": "#fdf6ee",
    "brand_logo_url": "/static/passkey.svg",
    "powered_by": False,
}
BRAND_RGB = "rgb(170, 51, 0)"
BACKGROUND_RGB = "rgb(253, 246, 238)"

# Every piece of text in the page a person could see or hear: text nodes (hidden ones too: a script may show
# them), the title, and the attributes browsers show or read out. Scripts' and styles' code is not text.
PAGE_WORDS = """
() => {
  const words = [document.title];
  const walker = document.createTreeWalker(document.documentElement, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const parent = walker.currentNode.parentElement;
    if (parent && !["SCRIPT", "STYLE"].includes(parent.tagName)) words.push(walker.currentNode.textContent);
  }
  for (const element of document.querySelectorAll("*")) {
    for (const name of ["alt", "title", "aria-label", "placeholder", "value", "label", "content"]) {
      if (element.hasAttribute(name)) words.push(element.getAttribute(name));
    }
  }
  const messages = document.getElementById("passgate-messages");
  if (messages) words.push(...Object.values(JSON.parse(messages.textContent)).flat());
  return words.join(" ");
}
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with serve_in_process(tmp_path, Clock(), rp_name=BRAND) as running:
        yield running


@pytest.fixture
def branded(browser: Browser, tmp_path: Path) -> Iterator[Tab]:
    with serve_in_process(tmp_path, Clock(), **LOOK) as running, open_tab(browser, running) as opened:
        yield opened


def button_colours(tab: Tab, selector: str) -> tuple[str, str]:
    colours: list[str] = tab.page.eval_on_selector(
        selector, "(e) => [getComputedStyle(e).backgroundColor, getComputedStyle(e).color]"
    )
    return colours[0], colours[1]


def test_a_rebranded_site_shows_its_name_colours_and_logo_and_never_passgate(branded: Tab) -> None:
    tab = branded
    pages = {}
    for path in ("/signin", "/signup", "/recover", "/signin?lang=de", "/signup?lang=ja"):
        tab.goto(path)
        pages[path] = tab.page.evaluate(PAGE_WORDS)
        expect(tab.page.locator(".site-header .brand")).to_have_text(BRAND)
        logo_width = tab.page.eval_on_selector(".brand-logo", "(img) => img.complete && img.naturalWidth")
        assert logo_width, f"the logo did not load on {path}"  # allowed by the CSP, and there
    tab.goto("/signup")
    assert button_colours(tab, "#signup-button") == (BRAND_RGB, "rgb(255, 255, 255)")
    assert tab.page.evaluate("getComputedStyle(document.body).backgroundColor") == BACKGROUND_RGB
    tab.page.emulate_media(color_scheme="dark")  # no dark variant configured: the same colour in dark mode
    assert button_colours(tab, "#signup-button") == (BRAND_RGB, "rgb(255, 255, 255)")
    tab.page.emulate_media(color_scheme="light")

    tab.page.fill("#username", "wile")
    tab.page.click("#signup-button")
    tab.wait_for_path("/account")
    expect(tab.page.locator("#nav-user")).to_be_visible()
    pages["/account"] = tab.page.evaluate(PAGE_WORDS)
    tab.goto("/account?lang=fr")
    pages["/account?lang=fr"] = tab.page.evaluate(PAGE_WORDS)
    for path, words in pages.items():
        assert BRAND in words, path
        assert "passgate" not in words.lower(), path


def test_a_missing_page_is_shown_in_the_sites_look(branded: Tab) -> None:
    tab = branded
    response = tab.page.goto(tab.server.url + "/no/such/page")
    assert response is not None and response.status == 404
    expect(tab.page.locator("h1")).to_have_text("Page not found")
    expect(tab.page.locator(".site-header .brand")).to_have_text(BRAND)
    assert tab.page.title() == f"Page not found · {BRAND}"
    link_colour = tab.page.eval_on_selector("#error-home", "(a) => getComputedStyle(a).color")
    assert link_colour == BRAND_RGB
    assert tab.page.evaluate("getComputedStyle(document.body).backgroundColor") == BACKGROUND_RGB
    assert "passgate" not in tab.page.evaluate(PAGE_WORDS).lower()
    tab.page.click("#error-home")  # the way out leads to the site's start (sign-in, for a stranger)
    tab.wait_for_path("/signin")


def server_errors() -> list[dict[str, str]]:
    """Every refusal the server can answer with: its code and its own message."""
    found: list[dict[str, str]] = []
    pending: list[type[PasskeyError]] = [PasskeyError]
    while pending:
        error = pending.pop()
        pending += error.__subclasses__()
        found.append({"code": error.code, "message": error.default_message})
    return found


# In the page: every sentence describe() can say, for every action and failure, with the client's own
# messages (what passgate.js throws when no answer comes from the server itself) as well.
EVERY_SENTENCE = """
async ({ actions, clientCodes, serverErrors }) => {
  const { describe, beforePrompt } = await import("/static/ui.js");
  const { PasskeyClientError } = await import("/static/passgate.js");
  const failures = [
    ...clientCodes.map((code) => new PasskeyClientError(code, "The server could not be reached.")),
    ...serverErrors.map(({ code, message }) =>
      new PasskeyClientError("server_error", message, { serverCode: code, status: 400 })),
    new PasskeyClientError("server_error", "The server answered 502.", { status: 502 }),
    new PasskeyClientError("server_error", "The browser could not read the server's passkey options."),
  ];
  const sentences = { beforePrompt: beforePrompt() };
  for (const action of actions) {
    for (const failure of failures) {
      sentences[`${action} ${failure.code} ${failure.serverCode}`] = describe(failure, action);
    }
  }
  return sentences;
}
"""


def test_the_scripts_name_the_site_not_the_product(tab: Tab) -> None:
    tab.goto("/signup")
    sentences: dict[str, Any] = tab.page.evaluate(
        EVERY_SENTENCE, {"actions": ACTIONS, "clientCodes": CLIENT_CODES, "serverErrors": server_errors()}
    )
    leaks = {key: text for key, text in sentences.items() if "passgate" in text.lower()}
    assert leaks == {}
    assert sentences["beforePrompt"] == BEFORE_PROMPT
    assert sentences["signin server_error origin_not_allowed"] == (
        f"This page's address is not allowed to sign in to {BRAND}."
    )
    assert sentences["signin network_error null"] == f"Could not reach {BRAND}. Check your connection and try again."

    # As the person sees them: before the browser's prompt (presence off keeps create() pending)...
    tab.authenticator.set_presence(False)
    tab.page.fill("#username", "wile")
    tab.page.click("#signup-button")
    tab.wait_until(lambda: len(tab.calls("called", method="create")) == 1, what="the create() call")
    expect(tab.page.locator("#before-prompt")).to_have_text(BEFORE_PROMPT)  # beside the button, said before the click
    expect(tab.page.locator("#message")).to_have_text("")
    tab.page.reload()

    # ...and when the site cannot be reached (the browser is offline).
    tab.context.set_offline(True)
    tab.page.fill("#username", "wile")
    tab.page.click("#signup-button")
    expect(tab.page.locator("#message")).to_have_text(f"Could not reach {BRAND}. Check your connection and try again.")
    tab.context.set_offline(False)
