"""The web components on a page of another origin: sign up, list passkeys, sign in, against Passgate by CORS."""

from __future__ import annotations

import contextlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Browser

from tests.browser.conftest import (
    SERVER_START_SECONDS,
    Server,
    Tab,
    open_tab,
)
from tests.services import PassgateProcess, ServerFailed, free_port, passgate_command

pytestmark = pytest.mark.browser

# The shop's page: it loads the components from Passgate, and shows the passkey list once the person is in.
SHOP_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Shop</title>
<style>passgate-sign-in { --passgate-accent: rgb(0, 128, 0); } passgate-sign-in::part(button) { width: 20rem; }</style>
</head>
<body>
<h1>Shop</h1>
<passgate-sign-up id="signup"></passgate-sign-up>
<passgate-sign-in id="signin"></passgate-sign-in>
<main id="account"></main>
<script type="module">
  import { configure } from "{passgate}/static/passgate-elements.js";
  configure({ baseUrl: "{passgate}" });
  window.shopEvents = [];
  for (const type of ["passgate:signed-in", "passgate:passkey-added", "passgate:error"]) {
    document.addEventListener(type, (event) => {
      window.shopEvents.push({ type, user: event.detail.user ?? null, newAccount: event.detail.newAccount ?? null,
                               code: event.detail.error?.code ?? null });
      if (type === "passgate:signed-in") {
        document.getElementById("account").replaceChildren(document.createElement("passgate-passkeys"));
      }
    });
  }
</script>
</body>
</html>
"""


class ShopSite(http.server.ThreadingHTTPServer):
    """Another origin's web server (http://localhost:<its port>), serving the one page that embeds Passgate."""

    def __init__(self, port: int) -> None:
        super().__init__(("127.0.0.1", port), _ShopHandler)
        self.page = ""
        self.scripts: dict[str, bytes] = {}  # its own JavaScript files, by path

    @property
    def origin(self) -> str:
        return f"http://localhost:{self.server_address[1]}"


class _ShopHandler(http.server.BaseHTTPRequestHandler):
    server: ShopSite

    def do_GET(self) -> None:
        if self.path == "/":
            body, media_type = self.server.page.encode(), "text/html; charset=utf-8"
        elif self.path in self.server.scripts:
            body, media_type = self.server.scripts[self.path], "text/javascript"
        else:
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", media_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def shop_and_passgate(tmp_path: Path) -> Iterator[tuple[ShopSite, Server]]:
    """The shop's site, and Passgate allowing the shop's origin for CORS and WebAuthn (rp id localhost)."""
    shop = ShopSite(free_port())
    thread = threading.Thread(target=shop.serve_forever, daemon=True)
    thread.start()
    port = free_port()
    origin = f"http://localhost:{port}"
    command = passgate_command(port, database_url=f"sqlite:///{tmp_path}/passgate.db", origin=origin)
    command += ["--origin", shop.origin]
    process = PassgateProcess(
        port=port, log=tmp_path / "server.log", command=command, environment={"PASSGATE_CORS_ORIGINS": shop.origin}
    )
    try:
        process.start(timeout=SERVER_START_SECONDS)
    except ServerFailed as exc:
        process.stop()
        pytest.fail(str(exc))
    shop.page = SHOP_PAGE.replace("{passgate}", origin)
    try:
        yield shop, Server(url=origin, process=process.process, log=process.log)
    finally:
        process.stop()
        shop.shutdown()
        shop.server_close()


@pytest.fixture
def shop_tab(browser: Browser, tmp_path: Path) -> Iterator[tuple[Tab, ShopSite]]:
    with shop_and_passgate(tmp_path) as (shop, server), open_tab(browser, server) as tab:
        yield tab, shop


def events(tab: Tab) -> list[dict[str, Any]]:
    recorded: list[dict[str, Any]] = tab.page.evaluate("window.shopEvents")
    return recorded


def wait_for_event(tab: Tab, kind: str, count: int = 1) -> dict[str, Any]:
    tab.wait_until(
        lambda: len([e for e in events(tab) if e["type"] == kind]) >= count,
        what=f"{kind} (events so far: {events(tab)}; server log: {tab.server.log.read_text()[-2000:]})",
    )
    return [e for e in events(tab) if e["type"] == kind][count - 1]


def test_a_page_on_another_origin_signs_up_lists_passkeys_and_signs_in(shop_tab: tuple[Tab, ShopSite]) -> None:
    tab, shop = shop_tab
    page = tab.page
    page.goto(shop.origin + "/")
    assert page.locator("#signin button").text_content() == "Sign in with a passkey"

    page.fill("#signup input[name=username]", "ada")
    page.fill("#signup input[name=displayName]", "Ada Lovelace")
    page.click("#signup button")
    signed_up = wait_for_event(tab, "passgate:signed-in")
    assert signed_up["newAccount"] is True
    assert signed_up["user"]["username"] == "ada"
    assert tab.session()["user"]["username"] == "ada"  # the session cookie is Passgate's, set through CORS

    passkeys = page.locator("passgate-passkeys li[data-credential-id]")
    passkeys.first.wait_for()
    assert passkeys.count() == 1
    assert passkeys.first.get_attribute("data-credential-id") == tab.authenticator.credential_ids()[0]

    # The same authenticator cannot hold a second passkey for the account: said in the live region.
    page.click("passgate-passkeys button[part~=add]")
    assert wait_for_event(tab, "passgate:error")["code"] == "already_registered"
    error = page.locator("passgate-passkeys [part=error]")
    assert error.get_attribute("aria-live") == "assertive"
    assert error.text_content() == "This device already has a passkey for this account."

    # A security key beside it can.
    tab.add_security_key()
    page.click("passgate-passkeys button[part~=add]")
    wait_for_event(tab, "passgate:passkey-added")
    page.wait_for_function("document.querySelector('passgate-passkeys').shadowRoot.querySelectorAll('li').length === 2")

    tab.context.clear_cookies()
    page.goto(shop.origin + "/")
    page.click("#signin button")
    signed_in = wait_for_event(tab, "passgate:signed-in")
    assert signed_in["newAccount"] is False
    assert signed_in["user"]["username"] == "ada"
    assert tab.session()["user"]["username"] == "ada"


def test_the_components_take_the_pages_theme(shop_tab: tuple[Tab, ShopSite]) -> None:
    tab, shop = shop_tab
    tab.page.goto(shop.origin + "/")
    button = tab.page.locator("#signin button")
    assert button.evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(0, 128, 0)"
    assert button.evaluate("b => getComputedStyle(b).width") == "320px"


def test_the_hosted_sign_up_page_returns_to_the_embedding_page(shop_tab: tuple[Tab, ShopSite]) -> None:
    tab, shop = shop_tab
    tab.page.goto(tab.server.url + "/signup?" + urlencode({"return_to": shop.origin + "/"}))
    tab.page.fill("#username", "ada")
    tab.page.fill("#display-name", "Ada Lovelace")
    tab.page.click("#signup-button")
    tab.page.wait_for_url(shop.origin + "/")
    assert tab.session()["user"]["username"] == "ada"
