"""Every page and state, audited in a real browser: axe-core (from npm, tests/node) finds no violations in light and
dark mode, at a phone's width (320 px) and a desktop's; no page is wider than its viewport at 320 px with 64-character
unbroken names; and a screenshot of each is written as a test artefact (tests/browser/screenshots).

One browser and one server in this process; each test walks several states and checks every one in the four looks.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pytest
from playwright.sync_api import ViewportSize, expect

from tests.browser.conftest import Clock, Server, Tab, screenshot, serve_in_process, sign_out, sign_up

pytestmark = pytest.mark.browser

AXE = Path(__file__).resolve().parents[1] / "node" / "node_modules" / "axe-core" / "axe.min.js"
# The WCAG 2.1 A and AA rules and axe's best practices.
RULES = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
PHONE: ViewportSize = {"width": 320, "height": 568}
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
LOOKS: list[tuple[Literal["light", "dark"], str, ViewportSize]] = [
    (scheme, name, size) for scheme in ("light", "dark") for name, size in (("320", PHONE), ("1280", DESKTOP))
]
LONG = "W" * 64  # the longest name the server accepts, with no place to break it


# A site that signs in through Passgate and is not first-party: its users see the consent page.
CLIENT = {
    "client_id": "travel",
    "name": "Travel Planner",
    "client_secret": "a-long-random-client-secret-for-the-travel-app",
    "redirect_uris": ["http://localhost:9/callback"],
    "scopes": ["openid", "profile", "email"],
}
CONSENT = (
    "/oauth2/authorize?response_type=code&client_id=travel&redirect_uri=http%3A%2F%2Flocalhost%3A9%2Fcallback"
    "&scope=openid%20profile%20email&state=s&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    "&code_challenge_method=S256"
)


@pytest.fixture
def server(tmp_path: Path, clock: Clock) -> Iterator[Server]:
    with serve_in_process(tmp_path, clock, oidc_clients=(CLIENT,)) as running:
        yield running


def violations(tab: Tab) -> list[dict[str, Any]]:
    """axe-core's violations on the page as it is now (axe is evaluated through the DevTools protocol, which the
    pages' Content-Security-Policy does not apply to)."""
    if not AXE.exists():
        pytest.fail(f"axe-core is missing at {AXE}: run `npm ci` in tests/node (make test does)")
    if not tab.page.evaluate("() => typeof window.axe === 'object'"):
        tab.page.evaluate(AXE.read_text() + "\n;undefined")
    found: list[dict[str, Any]] = tab.page.evaluate(
        "rules => axe.run(document, {runOnly: {type: 'tag', values: rules}, resultTypes: ['violations']})"
        ".then(r => r.violations.map(v => ({id: v.id, help: v.help, nodes: v.nodes.map(n => n.target.join(' '))})))",
        RULES,
    )
    return found


def audit(tab: Tab, name: str) -> None:
    """The page as it is now, in light and dark mode, at 320 px and at a desktop's width: no axe violation, no
    horizontal scrolling at 320 px, and a screenshot of each."""
    problems = []
    for scheme, width, size in LOOKS:
        tab.page.emulate_media(color_scheme=scheme)
        tab.page.set_viewport_size(size)
        tab.page.evaluate("() => new Promise(requestAnimationFrame)")
        look = f"{name} ({scheme}, {width} px)"
        problems += [f"{look}: {v['id']} ({v['help']}) at {', '.join(v['nodes'][:5])}" for v in violations(tab)]
        if size is PHONE:
            wide = tab.page.evaluate("() => document.documentElement.scrollWidth")
            if wide > PHONE["width"]:
                problems.append(f"{look}: the page is {wide} px wide")
        screenshot(tab, f"{name}-{scheme}-{width}")
    tab.page.emulate_media(color_scheme="light")
    tab.page.set_viewport_size(PHONE)
    assert problems == [], "\n".join(problems)


def test_the_signed_out_pages(tab: Tab) -> None:
    pages = (
        ("/signin", "signin"),
        ("/signup", "signup"),
        ("/recover", "recover"),
        ("/recover/email", "email-link"),
        ("/email/verify", "verify-email"),
        ("/oauth2/authorize", "authorize-error"),
        ("/oauth2/logout", "logout"),
        ("/nowhere", "404"),
    )
    for path, name in pages:
        tab.goto(path)
        audit(tab, name)
    # A field's error shown beside it (the server's refusal under the button is in the recovery test: it needs an
    # account).
    tab.goto("/signup")
    tab.page.fill("#username", "n" * 70)
    tab.page.click("#signup-button")
    expect(tab.page.locator("#username-error")).to_be_visible()
    audit(tab, "signup-field-error")


def test_the_account_page_in_its_states(tab: Tab) -> None:
    tab.page.set_viewport_size(PHONE)
    sign_up(tab, LONG, LONG)
    audit(tab, "account-new")  # the first passkey just made, with the offer to name it
    [credential_id] = tab.authenticator.credential_ids()
    tab.page.click(f'[id="rename-{credential_id}"]')
    audit(tab, "account-rename-open")
    tab.page.fill(f'[id="nickname-{credential_id}"]', LONG)
    tab.page.click(".rename-save")
    expect(tab.page.locator(".passkey-label")).to_have_text(LONG)
    tab.add_security_key()
    tab.page.click("#add-passkey")
    expect(tab.page.locator("#passkeys > li")).to_have_count(2)
    audit(tab, "account-two-passkeys")
    tab.page.click("#generate-codes")
    expect(tab.page.locator("#backup-codes-list li")).to_have_count(10)
    audit(tab, "account-backup-codes")
    tab.page.click("#codes-saved")
    tab.page.click("#generate-codes")
    expect(tab.page.locator("#replace-codes-confirm")).to_be_visible()
    audit(tab, "account-replace-codes")
    tab.goto("/account?activity=more")
    audit(tab, "account-activity-more")
    tab.goto("/email/verify")  # signed in: the page names the account, in the header too
    audit(tab, "verify-email-signed-in")
    tab.page.goto(tab.server.url + CONSENT)
    expect(tab.page.locator("#consent-allow")).to_be_visible()
    audit(tab, "consent")
    tab.goto("/oauth2/logout")  # signed in: asked before signing out
    audit(tab, "logout-confirm")


def test_a_recovery_session_and_the_account_without_passkeys(tab: Tab) -> None:
    tab.page.set_viewport_size(PHONE)
    sign_up(tab, "dorothy", LONG)
    tab.page.click("#generate-codes")
    expect(tab.page.locator("#backup-codes-list li")).to_have_count(10)
    codes = tab.page.locator("#backup-codes-list li").all_text_contents()
    sign_out(tab)
    tab.goto("/signup")  # the server refuses a taken username, under the button
    tab.page.fill("#username", "dorothy")
    tab.page.click("#signup-button")
    expect(tab.page.locator("#message")).to_contain_text("That username is already taken.")
    audit(tab, "signup-server-message")
    tab.authenticator.remove()  # the device is lost; a new one takes its place
    tab.authenticator = tab.add_authenticator()
    tab.goto("/recover")
    tab.page.fill("#recover-username", "dorothy")
    tab.page.fill("#recover-code", codes[0])
    tab.page.click("#recover-code-button")
    tab.wait_for_path("/account")
    expect(tab.page.locator("#recovery-banner")).to_be_visible()
    audit(tab, "account-recovery")  # the changes that need a passkey locked, each with its reason
    tab.page.click("#add-passkey")
    expect(tab.page.locator("#lost-devices-offer")).to_be_visible()
    audit(tab, "account-lost-devices-offer")
    tab.page.click("#remove-lost")
    expect(tab.page.locator("#passkeys > li")).to_have_count(1)
    [new] = tab.authenticator.credential_ids()
    item = tab.page.locator(f'#passkeys li.passkey[data-credential-id="{new}"]')
    item.locator("button.remove").click()
    item.locator("button.confirm-remove").click()
    expect(tab.page.locator("#no-passkey-banner")).to_be_visible()
    audit(tab, "account-no-passkey")
