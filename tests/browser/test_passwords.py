"""The move from passwords in Chromium: an account imported with a password signs in with it, gets a passkey, then
drops the password (`passwords = "migrate"`); with passwords off the sign-in page shows none of it.

This Chromium reports `conditionalCreate` in `PublicKeyCredential.getClientCapabilities()`, but its virtual
authenticator never answers a conditional create (only a password manager that just filled in the password would):
the request stays pending until the page gives up, so these tests see the page's other path, the explanation of
passkeys with "Create a passkey" and "Not now".
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bcrypt
import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from playwright.sync_api import expect

from passgate.core.passwords import needs_rehash, scheme_of
from tests.browser.conftest import Server, Tab, passgate_serve, sign_out

pytestmark = pytest.mark.browser

PASSWORDS = {"ada": "correct horse battery staple", "bob": "Tr0ub4dor&3"}
PASSGATE = str(Path(sys.executable).with_name("passgate"))
MISMATCH = "That username and password don't match."
REMOVED = "Your password is removed. From now on you sign in with your passkeys."


def seed_accounts(tmp_path: Path) -> None:
    """Accounts as the old system exported them, a bcrypt and a Django hash each with no passkey, imported with
    `passgate users import` before the server starts."""
    bcrypt_hash = bcrypt.hashpw(PASSWORDS["ada"].encode(), bcrypt.gensalt(4)).decode()
    django_hash = PBKDF2PasswordHasher().encode(PASSWORDS["bob"], PBKDF2PasswordHasher().salt(), 1000)
    export = tmp_path / "export.jsonl"
    export.write_text(
        json.dumps({"username": "ada", "displayName": "Ada", "externalId": "legacy-0", "password": bcrypt_hash})
        + "\n"
        + json.dumps({"username": "bob", "displayName": "Bob", "externalId": "legacy-1", "password": django_hash})
        + "\n"
    )
    imported = subprocess.run(
        [PASSGATE, "users", "import", str(export), "--database-url", f"sqlite:///{tmp_path}/passgate.db"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert imported.returncode == 0, imported.stderr


def stored_hash(tmp_path: Path, username: str) -> str:
    with sqlite3.connect(tmp_path / "passgate.db") as database:
        row = database.execute(
            "SELECT hash FROM passwords JOIN users ON users.id = passwords.user_id WHERE username = ?", (username,)
        ).fetchone()
    return str(row[0]) if row else ""


@pytest.fixture
def server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Server]:
    """`passgate serve` with `passwords` set to the test's parameter ("migrate" unless it says otherwise)."""
    passwords = getattr(request, "param", "migrate")
    seed_accounts(tmp_path)
    with passgate_serve(tmp_path, config=f'passwords = "{passwords}"\n', log_level="info") as running:
        yield running


def continue_with(tab: Tab, username: str) -> None:
    tab.page.fill("#username", username)
    tab.page.click("#continue-button")


def sign_in_with_password(tab: Tab, username: str, password: str) -> None:
    continue_with(tab, username)
    expect(tab.page.locator("#password")).to_be_visible()
    tab.page.fill("#password", password)
    tab.page.click("#password-button")


def account(tab: Tab) -> dict[str, Any]:
    response = tab.context.request.get(tab.server.url + "/auth/account")
    assert response.status == 200, response.text()
    body: dict[str, Any] = response.json()
    return body


def client_call(tab: Tab, call: str) -> Any:
    """Run `call` with the page's browser client (`client` names the module); its answer, or its error's code."""
    return tab.page.evaluate(
        f"""async () => {{
          const client = await import("/static/passgate.js");
          try {{ return await {call}; }} catch (error) {{ return error.serverCode ?? error.code; }}
        }}"""
    )


def test_from_a_password_to_a_passkey_then_without_the_password(tab: Tab, tmp_path: Path) -> None:
    page = tab.page
    tab.goto("/signin")
    assert page.evaluate("PublicKeyCredential.getClientCapabilities().then((c) => c.conditionalCreate)") is True
    expect(page.locator("#password")).to_be_hidden()
    continue_with(tab, "ada")
    expect(page.locator("#password")).to_be_visible()
    expect(page.locator("#password")).to_have_attribute("autocomplete", "current-password")
    expect(page.locator("#signin-button")).to_have_text("Sign in with a passkey")  # still on offer

    page.fill("#password", "correct horse battery stable")
    page.click("#password-button")
    expect(page.locator("#message")).to_have_text(MISMATCH)
    assert tab.session_status() == 401

    assert scheme_of(stored_hash(tmp_path, "ada")) == "bcrypt"
    page.fill("#password", PASSWORDS["ada"])
    page.click("#password-button")
    # The browser was asked for a passkey without a prompt, made none, and the page explains passkeys instead.
    expect(page.locator("#upgrade-step")).to_be_visible()
    expect(page.locator("#upgrade-step")).to_contain_text("nothing to remember")
    expect(page.locator("#signin-form")).to_be_hidden()
    assert len(tab.calls("called", method="create", mediation="conditional")) == 1
    tab.wait_until(lambda: len(tab.calls("rejected", method="create")) == 1, what="the page giving up on it")
    assert tab.authenticator.credentials() == []
    assert tab.session()["user"]["username"] == "ada"
    moved = stored_hash(tmp_path, "ada")  # the first sign-in moved the old system's bcrypt hash to argon2id
    assert scheme_of(moved) == "argon2id" and not needs_rehash(moved)

    page.click("#upgrade-create")
    tab.wait_for_path("/account")
    expect(page.locator("#message")).to_have_text(
        "Passkey added. Give it a name you will recognize, such as the device it is on."
    )
    expect(page.locator("#passkeys li.passkey")).to_have_count(1)
    [credential_id] = tab.authenticator.credential_ids()
    with sqlite3.connect(tmp_path / "passgate.db") as database:
        assert database.execute("SELECT created_by FROM credentials").fetchall() == [("registration",)]
    # Still the password session: the page explains the move, and offers to drop the password now.
    expect(page.locator("#password-banner")).to_be_visible()
    expect(page.locator("#password-needs-passkey")).to_be_hidden()
    assert account(tab)["hasPassword"] is True

    tab.forget_calls()
    page.click("#remove-password")
    expect(page.locator("#message")).to_have_text(
        "Your password is removed. From now on you sign in with your passkeys."
    )
    expect(page.locator("#password-section")).to_have_count(0)
    expect(page.locator("#password-banner")).to_have_count(0)
    assert len(tab.calls("resolved", method="get", mediation="optional")) == 1  # the passkey confirmation
    assert account(tab)["hasPassword"] is False

    sign_out(tab)
    assert client_call(tab, f"client.signInWithPassword('ada', '{PASSWORDS['ada']}')") == "password_incorrect"
    assert client_call(tab, "client.passwordAvailable('ada')") is False
    tab.authenticator.set_presence(True)
    tab.forget_calls()
    # No password any more: Continue goes on to the account's passkey.
    continue_with(tab, "ada")
    tab.wait_for_path("/account")
    expect(page.locator("#password")).to_have_count(0)
    assert tab.session()["user"]["username"] == "ada"
    assert len(tab.calls("resolved", method="get", mediation="optional")) == 1
    assert tab.authenticator.credential_ids() == [credential_id]
    # Outside a fresh password session the server refuses the upgrade, and upgrade() says so instead of throwing.
    refused = client_call(tab, "client.upgrade().then((r) => [r.created, r.reason, r.error.serverCode])")
    assert refused == [False, "server_error", "upgrade_not_allowed"]


def test_not_now_is_remembered_in_this_browser(tab: Tab) -> None:
    page = tab.page
    tab.goto("/signin")
    # A username no account has is asked for a password too, which fails like a wrong one, until the limit.
    sign_in_with_password(tab, "nobody", "guess-0")
    expect(page.locator("#message")).to_have_text(MISMATCH)
    for attempt in range(1, 6):
        page.fill("#password", f"guess-{attempt}")
        page.click("#password-button")
        expect(page.locator("#password-button")).to_be_enabled()
    expect(page.locator("#message")).to_have_text("Too many attempts. Please wait a few minutes, then try again.")

    sign_in_with_password(tab, "bob", PASSWORDS["bob"])
    expect(page.locator("#upgrade-step")).to_be_visible()
    page.click("#upgrade-later")
    tab.wait_for_path("/account")
    # The account page offers the passkey without asking for one by itself.
    expect(page.locator("#password-banner")).to_be_visible()
    expect(page.locator("#password-banner-add")).to_have_text("Create a passkey")
    expect(page.locator("#password-needs-passkey")).to_be_visible()
    expect(page.locator("#remove-password")).to_be_hidden()
    assert tab.calls("called", method="create", mediation="optional") == []

    sign_out(tab)
    tab.forget_calls()
    sign_in_with_password(tab, "bob", PASSWORDS["bob"])
    # Straight on: nothing waits for a click. The browser was still asked, without a prompt.
    tab.wait_for_path("/account")
    assert len(tab.calls("called", method="create", mediation="conditional")) == 1
    assert tab.calls("called", method="create", mediation="optional") == []
    assert tab.authenticator.credentials() == []


@pytest.mark.parametrize("server", ["off"], indirect=True)
def test_with_passwords_off_the_sign_in_page_asks_for_no_password(tab: Tab) -> None:
    page = tab.page
    tab.goto("/signin")
    page.fill("#username", "ada")
    expect(page.locator("#signin-button")).to_have_text("Sign in with a passkey")
    for absent in ("#password", "#continue-button", "#upgrade-step"):
        expect(page.locator(absent)).to_have_count(0)
    assert page.locator("input[type=password]").count() == 0
    assert client_call(tab, "client.passwordAvailable('ada')") == "passwords_off"
