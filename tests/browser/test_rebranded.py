"""A site that runs Passgate under its own name (`rp_name`): what the pages' scripts say names that site only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from passgate.core.errors import PasskeyError
from tests.browser.conftest import Clock, Server, Tab, serve_in_process

pytestmark = pytest.mark.browser

BRAND = "Acme Shop"
BEFORE_PROMPT = (
    "Your device will ask you to confirm with your fingerprint, face, PIN or security key. "
    f"Your biometrics stay on your device: {BRAND} never sees them."
)
# Every action the pages name when they describe a failure (ui.js describe()).
ACTIONS = ["signup", "signin", "add", "remove", "codes", "email", "recover", "link", "verify", "rename", "profile"]
CLIENT_CODES = ["cancelled", "already_registered", "not_allowed", "unsupported", "network_error", "unknown"]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with serve_in_process(tmp_path, Clock(), rp_name=BRAND) as running:
        yield running


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
