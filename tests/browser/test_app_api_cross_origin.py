"""The app passkey API from a page of the app's own origin, in Chromium: the browser client, configured with the app's
id, adds a passkey to one of the app's users and signs them in against Passgate on another origin (CORS without
credentials, the ceremony in the Passgate-Ceremony header), and the app's server verifies the sign-in token."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser

from tests.browser.conftest import Server, Tab, open_tab, passgate_serve
from tests.browser.test_embedding import ShopSite
from tests.services import free_port

pytestmark = pytest.mark.browser

APP_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Shop</title></head>
<body><h1>Shop</h1>
<script type="module">
  import { configure, registerForApp, signInToApp } from "{passgate}/static/passgate.js";
  configure({ baseUrl: "{passgate}", appId: "shop" });
  window.shop = {
    register: (registrationToken) => registerForApp({ registrationToken }),
    signIn: (userId) => signInToApp(userId ? { userId } : {}),
  };
  window.shopReady = true;
</script>
</body></html>
"""


@pytest.fixture
def app_tab(browser: Browser, tmp_path: Path) -> Iterator[tuple[Tab, ShopSite, str]]:
    """The app's site, Passgate with the app in its configuration file, an API key for it, and a tab."""
    shop = ShopSite(free_port())
    threading.Thread(target=shop.serve_forever, daemon=True).start()
    config = f'[[apps]]\napp_id = "shop"\nname = "Shop"\norigins = ["{shop.origin}"]\n'
    try:
        with passgate_serve(tmp_path, config=config) as server:
            shop.page = APP_PAGE.replace("{passgate}", server.url)
            command = [sys.executable, "-m", "passgate", "apps", "keys", "add", "shop"]
            command += [
                "--config",
                str(tmp_path / "passgate.toml"),
                "--database-url",
                f"sqlite:///{tmp_path}/passgate.db",
            ]
            added = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
            assert added.returncode == 0, added.stderr
            [api_key] = [line.split(": ", 1)[1] for line in added.stdout.splitlines() if line.startswith("api_key: ")]
            with open_tab(browser, server) as tab:
                yield tab, shop, api_key
    finally:
        shop.shutdown()
        shop.server_close()


def app_server_call(server: Server, api_key: str, path: str, body: dict[str, Any]) -> httpx.Response:
    """What the app's own server does: a call with its API key."""
    return httpx.post(server.url + path, json=body, headers={"Authorization": f"Bearer {api_key}"}, timeout=10)


def test_a_page_of_the_app_adds_a_passkey_and_signs_in_through_the_browser_client(
    app_tab: tuple[Tab, ShopSite, str],
) -> None:
    tab, shop, api_key = app_tab
    tab.page.goto(shop.origin + "/")
    tab.page.wait_for_function("window.shopReady === true")

    issued = app_server_call(tab.server, api_key, "/api/v1/registrations", {"userId": "u-7", "username": "ada@shop"})
    assert issued.status_code == 200, issued.text
    added = tab.page.evaluate("token => window.shop.register(token)", issued.json()["registrationToken"])
    assert added["verified"] is True
    assert added["credentialId"] == tab.authenticator.credential_ids()[0]

    signed_in = tab.page.evaluate("() => window.shop.signIn()")  # discoverable: any of the app's passkeys
    verified = app_server_call(tab.server, api_key, "/api/v1/signins/verify", {"token": signed_in["token"]})
    assert verified.status_code == 200, verified.text
    assert verified.json()["userId"] == "u-7" and verified.json()["origin"] == shop.origin
    again = app_server_call(tab.server, api_key, "/api/v1/signins/verify", {"token": signed_in["token"]})
    assert again.status_code == 410 and again.json()["error"] == "token_used"

    by_user = tab.page.evaluate("() => window.shop.signIn('u-7')")
    assert (
        app_server_call(tab.server, api_key, "/api/v1/signins/verify", {"token": by_user["token"]}).json()["userId"]
        == "u-7"
    )
    # No cookie of Passgate's was ever set or sent: the app API keeps none.
    assert [c for c in tab.context.cookies() if c["domain"] == "localhost" and c["name"].startswith("passgate")] == []
