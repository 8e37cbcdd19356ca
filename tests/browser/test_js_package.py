"""The browser client as an npm package (clients/js): the same code as /static, declarations that type-check,
what npm packs, and the package's module working from the page's own origin (as a bundled copy does)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.browser.test_embedding import ShopSite, Tab, events, shop_tab, wait_for_event

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "clients" / "js"
STATIC = ROOT / "src" / "passgate" / "web" / "static"
MODULES = ("passgate.js", "passgate-elements.js")
__all__ = ["shop_tab"]  # the fixture, shared with the embedding tests


@pytest.mark.parametrize("module", MODULES)
def test_the_package_holds_the_same_code_as_the_server_serves(module: str) -> None:
    assert (PACKAGE / module).read_bytes() == (STATIC / module).read_bytes(), (
        f"clients/js/{module} differs from src/passgate/web/static/{module}: run `npm run sync` in clients/js"
    )


def test_the_type_declarations_check_against_a_page_using_them() -> None:
    tsc = PACKAGE / "node_modules" / ".bin" / "tsc"
    assert tsc.exists(), "clients/js has no node_modules: run `make install`"
    result = subprocess.run([str(tsc), "--noEmit", "-p", str(PACKAGE)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_npm_packs_the_modules_and_their_declarations() -> None:
    result = subprocess.run(
        ["npm", "pack", "--dry-run", "--json", "--ignore-scripts"],
        cwd=PACKAGE,
        capture_output=True,
        text=True,
        check=True,
    )
    packed = {entry["path"] for entry in json.loads(result.stdout)[0]["files"]}
    assert packed == {"package.json", *MODULES, "passgate.d.ts", "passgate-elements.d.ts"}
    manifest = json.loads((PACKAGE / "package.json").read_text())
    assert manifest["exports"]["."]["default"] == "./passgate.js"
    assert manifest["exports"]["./elements"]["default"] == "./passgate-elements.js"


# The shop bundles the package: its modules are the shop's own files, so they must be told where Passgate is.
BUNDLED_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Shop</title></head>
<body>
<passgate-sign-up id="signup"></passgate-sign-up>
<script type="module">
  import { configure, PasskeyClientError, signOut } from "/assets/passgate.js";
  import { setTexts } from "/assets/passgate-elements.js";
  window.shopEvents = [];
  document.addEventListener("passgate:signed-in", (event) =>
    window.shopEvents.push({ type: "passgate:signed-in", user: event.detail.user }));
  setTexts({ signUp: "Konto erstellen" });
  window.unconfigured = await signOut().then(() => "answered", (error) => error.serverCode ?? error.code);
  configure({ baseUrl: "http://localhost:1" });
  window.unreachable = await signOut().then(() => "answered", (error) => error.code);
  configure({ baseUrl: "{passgate}" });
  window.ready = true;
</script>
</body></html>
"""


def test_the_packaged_module_served_by_the_page_itself_reaches_passgate_once_configured(
    shop_tab: tuple[Tab, ShopSite],
) -> None:
    tab, shop = shop_tab
    shop.page = BUNDLED_PAGE.replace("{passgate}", tab.server.url)
    shop.scripts = {f"/assets/{module}": (PACKAGE / module).read_bytes() for module in MODULES}
    page = tab.page
    page.goto(shop.origin + "/")
    page.wait_for_function("window.ready === true")
    # Unconfigured, the client talks to the page's own origin (the shop answers 404 there); a Passgate that
    # cannot be reached is a network_error.
    assert page.evaluate("window.unconfigured") == "server_error"
    assert page.evaluate("window.unreachable") == "network_error"
    button = page.locator("#signup button")
    assert button.text_content() == "Konto erstellen"
    page.fill("#signup input[name=username]", "ada")
    button.click()
    assert wait_for_event(tab, "passgate:signed-in")["user"]["displayName"] == "ada"
    assert len(events(tab)) == 1
    assert tab.session()["user"]["username"] == "ada"
