"""Account life in a real browser: more passkeys, names, step-up, removal, backup codes, email recovery and
the WebAuthn Signal API, on Debian's Chromium with its virtual authenticators and a real SMTP server.

The server runs in this process (serve_in_process) so a test can move its clock past the step-up window
instead of waiting five minutes; everything else is as in production: real keys, real mail over SMTP.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from playwright.sync_api import Locator, expect

from tests.browser.conftest import Clock, Server, Tab, screenshot, serve_in_process, sign_out, sign_up
from tests.mailbox import SmtpServer

pytestmark = pytest.mark.browser


STEP_UP_EXPLANATION = (
    "For your security, confirm it's you before this change: your device will ask for one of your passkeys "
    "(fingerprint, face, PIN or security key)."
)
ALREADY_REGISTERED = (
    "This device already has a passkey for your account. To add another, use a different device or security key."
)
LAST_PASSKEY = (
    "This is your only passkey, so it can't be removed yet. First add another passkey, create backup codes "
    "or confirm an email address, so you can still get into your account."
)
INVALID_CODE = "That backup code did not work. Check the username and the code: each code works only once."
REMOVAL_NOT_CONFIRMED = "Not confirmed, so the passkey was kept."
RECOVERED = "You're signed in for now. Create a new passkey so you can sign in next time."
# Said on the account page once a passkey is added there, opening its name field (the test authenticators' AAGUIDs
# name no provider).
PASSKEY_ADDED = "Passkey added. Give it a name you will recognize, such as the device it is on."
UNKNOWN_AT_SIGN_IN = (
    "This passkey is not registered here (it may have been removed). Try another passkey, or create an account."
)
BACKUP_CODE = re.compile(r"^[a-z2-9]{5}-[a-z2-9]{5}$")
LOCKED_REASON = (
    "You signed in with a backup code or an email link, not a passkey: create a passkey first, then you can "
    "change these settings."
)
ONLY_PASSKEY = "This is your only passkey. Without it, you will need one of your backup codes to sign in."
NO_PASSKEY_LEFT = "You have no passkey now"


@pytest.fixture
def server(tmp_path: Path, clock: Clock, smtp: SmtpServer) -> Iterator[Server]:
    """Replaces conftest's subprocess server for this module: same app, a movable clock, mail to `smtp`."""
    with serve_in_process(tmp_path, clock, **smtp.settings) as running:
        yield running


# --- helpers ------------------------------------------------------------------------------------------


def passkeys(tab: Tab) -> Locator:
    return tab.page.locator("#passkeys li.passkey")


def passkey(tab: Tab, credential_id: str) -> Locator:
    return tab.page.locator(f'#passkeys li.passkey[data-credential-id="{credential_id}"]')


def message(tab: Tab) -> Locator:
    return tab.page.locator("#message")


def api(tab: Tab, path: str) -> Any:
    response = tab.context.request.get(tab.server.url + path)
    assert response.ok, response.text()
    return response.json()


def server_passkey_ids(tab: Tab) -> set[str]:
    return {p["id"] for p in api(tab, "/auth/passkeys")["passkeys"]}


def add_passkey_on_page(tab: Tab) -> None:
    count = passkeys(tab).count()
    tab.page.click("#add-passkey")
    expect(passkeys(tab)).to_have_count(count + 1)
    expect(message(tab)).to_have_text(PASSKEY_ADDED)


def remove_on_page(tab: Tab, credential_id: str) -> None:
    item = passkey(tab, credential_id)
    item.locator("button.remove").click()
    item.locator("button.confirm-remove").click()


def lose_the_device(tab: Tab) -> None:
    """The platform authenticator and its passkeys are gone; a new device (authenticator) takes its place."""
    tab.authenticator.remove()
    tab.authenticator = tab.add_authenticator()


def stray_credential(user_handle_b64url: str) -> dict[str, Any]:
    """A passkey for the account that the server has never seen, as CDP's WebAuthn.addCredential takes it."""
    key = ec.generate_private_key(ec.SECP256R1())
    pkcs8 = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    handle = base64.urlsafe_b64decode(user_handle_b64url + "=" * (-len(user_handle_b64url) % 4))
    return {
        "credentialId": base64.b64encode(b"stray-" + handle[:10]).decode(),
        "isResidentCredential": True,
        "rpId": "localhost",
        "privateKey": base64.b64encode(pkcs8).decode(),
        "userHandle": base64.b64encode(handle).decode(),
        "signCount": 0,
    }


# --- tests --------------------------------------------------------------------------------------------


def test_a_second_device_adds_a_passkey_and_the_same_device_is_refused(tab: Tab) -> None:
    sign_up(tab, "ada", "Ada Lovelace")
    [first] = tab.authenticator.credential_ids()
    item = passkey(tab, first)
    expect(item).to_contain_text("This device only")
    # The icon loads under the CSP (the registry's data: URI, or the generic one from /static).
    icon = item.locator("img.provider-icon")
    tab.page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=icon.element_handle())

    # One passkey: the page suggests a second; dismissed, it stays away (the server remembers).
    nudge = tab.page.locator("#second-passkey-nudge")
    expect(nudge).to_be_visible()
    tab.page.click("#dismiss-nudge")
    expect(nudge).to_have_count(0)
    tab.page.reload()
    expect(nudge).to_have_count(0)
    expect(passkeys(tab)).to_have_count(1)
    assert api(tab, "/auth/account")["suggestSecondPasskey"] is False

    # A security key beside the platform authenticator: Chromium sends the ceremony to the one not excluded.
    security_key = tab.add_security_key()
    tab.forget_calls()
    add_passkey_on_page(tab)
    [second] = security_key.credential_ids()
    assert tab.authenticator.credential_ids() == [first]
    assert server_passkey_ids(tab) == {first, second}
    expect(passkey(tab, second)).to_contain_text("Security key")
    expect(passkey(tab, second)).to_contain_text("USB")
    # Right after sign-up the session counts as a fresh passkey use: no step-up prompt, just create().
    assert [c["method"] for c in tab.calls("called")] == ["create"]

    # Both devices now hold a passkey for the account (excludeCredentials): refused, and said in words.
    tab.page.click("#add-passkey")
    expect(message(tab)).to_have_text(ALREADY_REGISTERED)
    expect(tab.page.locator("#add-passkey")).to_be_enabled()
    expect(passkeys(tab)).to_have_count(2)
    assert security_key.credential_ids() == [second]
    assert tab.authenticator.credential_ids() == [first]
    assert server_passkey_ids(tab) == {first, second}


def test_renaming_shows_the_nickname_as_text_and_the_display_name_reaches_the_authenticator(tab: Tab) -> None:
    sign_up(tab, "grace", "Grace Hopper")
    [credential_id] = tab.authenticator.credential_ids()
    item = passkey(tab, credential_id)
    default_label = item.locator(".passkey-label").inner_text()

    tab.page.click(f'[id="rename-{credential_id}"]')
    field = item.locator(".rename-input")
    expect(field).to_be_focused()
    field.fill("x" * 80)  # over the server's limit: refused with a word, not cut
    item.locator(".rename-save").click()
    expect(tab.page.locator(f'[id="nickname-{credential_id}-error"]')).to_contain_text("80")
    assert field.input_value() == "x" * 80
    field.fill("<b>Work</b> laptop")
    item.locator(".rename-save").click()
    expect(item.locator(".passkey-label")).to_have_text("<b>Work</b> laptop")
    expect(item.locator("b")).to_have_count(0)
    expect(item.locator(".rename-form")).to_be_hidden()
    [listed] = api(tab, "/auth/passkeys")["passkeys"]
    assert listed["nickname"] == "<b>Work</b> laptop"

    # As the server renders it, too: text, not markup.
    tab.page.reload()
    expect(item.locator(".passkey-label")).to_have_text("<b>Work</b> laptop")
    expect(item.locator("b")).to_have_count(0)
    expect(item.locator(".passkey-provider")).to_have_text(default_label)

    # An empty nickname goes back to the provider's name.
    item.locator("button.rename").click()
    item.locator(".rename-input").fill("")
    item.locator(".rename-save").click()
    expect(item.locator(".passkey-label")).to_have_text(default_label)
    assert api(tab, "/auth/passkeys")["passkeys"][0]["nickname"] is None

    # A new display name: saved, shown, and passed to the authenticator (signalCurrentUserDetails).
    tab.page.fill("#display-name-input", "Rear Admiral Hopper")
    tab.page.click("#display-name-save")
    expect(message(tab)).to_have_text("Display name saved.")
    expect(tab.page.locator("#account-display-name")).to_have_text("(Rear Admiral Hopper)")
    expect(tab.page.locator("#nav-user")).to_have_text("Rear Admiral Hopper")
    assert api(tab, "/auth/session")["user"]["displayName"] == "Rear Admiral Hopper"
    [credential] = tab.authenticator.credentials()
    assert (credential["userName"], credential["userDisplayName"]) == ("grace", "Rear Admiral Hopper")


def test_removal_needs_a_recent_passkey_and_asks_for_one_with_an_explanation(tab: Tab, clock: Clock) -> None:
    sign_up(tab, "alan", "Alan Turing")
    [first] = tab.authenticator.credential_ids()
    security_key = tab.add_security_key()
    add_passkey_on_page(tab)
    [second] = security_key.credential_ids()

    # Just signed in: the removal goes through without any prompt.
    tab.forget_calls()
    remove_on_page(tab, second)
    expect(passkeys(tab)).to_have_count(1)
    expect(message(tab)).to_contain_text("removed")
    assert tab.webauthn_calls == []
    assert server_passkey_ids(tab) == {first}

    add_passkey_on_page(tab)  # the security key again, still inside the step-up window
    [third] = security_key.credential_ids()

    # Six minutes later (the window is five), the server wants a fresh passkey before a removal.
    clock.advance(minutes=6)
    assert (
        tab.context.request.delete(
            f"{tab.server.url}/auth/passkeys/{third}", headers={"Origin": tab.server.url}
        ).json()["error"]
        == "step_up_required"
    )

    # While the passkey prompt is up (presence off keeps it pending), the page says why it appears.
    tab.authenticator.set_presence(False)
    security_key.set_presence(False)
    tab.forget_calls()
    remove_on_page(tab, third)
    tab.wait_until(lambda: len(tab.calls("called", method="get")) == 1, what="the step-up get()")
    expect(message(tab)).to_have_text(STEP_UP_EXPLANATION)
    tab.page.reload()  # abandons that prompt
    tab.authenticator.set_presence(True)
    security_key.set_presence(True)

    # The person declines the prompt: nothing is removed, and the page says so.
    tab.authenticator.set_user_verified(False)
    security_key.set_user_verified(False)
    tab.forget_calls()
    remove_on_page(tab, third)
    expect(message(tab)).to_have_text(REMOVAL_NOT_CONFIRMED)
    expect(passkeys(tab)).to_have_count(2)
    assert server_passkey_ids(tab) == {first, third}
    tab.authenticator.set_user_verified(True)
    security_key.set_user_verified(True)

    # The person confirms: one modal get() for the account's own passkeys, then the removal succeeds.
    tab.forget_calls()
    passkey(tab, third).locator("button.confirm-remove").click()
    expect(passkeys(tab)).to_have_count(1)
    expect(message(tab)).to_contain_text("removed")
    assert [(c["method"], c["mediation"]) for c in tab.calls("resolved")] == [("get", "optional")]
    assert server_passkey_ids(tab) == {first}
    account = api(tab, "/auth/account")
    assert account["session"]["kind"] == "passkey"

    # The server's record, in words on the page: asked for a fresh passkey (routine, not a failure), then removed.
    events = [(e["type"], e["outcome"], e["reason"]) for e in api(tab, "/auth/events")["events"]]
    assert events[:2] == [("passkey.remove", "success", None), ("step_up", "success", None)]
    assert ("passkey.remove", "failure", "step_up_required") in events
    tab.page.reload()
    activity = tab.page.locator("#activity")
    expect(activity.locator("li").first).to_contain_text("Removed a passkey")
    expect(activity).to_contain_text("Asked you to confirm it was you with a passkey")
    expect(activity.locator("li.failed")).to_have_count(0)

    # Adding a passkey once the window has passed again: first the step-up get(), then the create().
    clock.advance(minutes=6)
    tab.forget_calls()
    add_passkey_on_page(tab)
    assert [(c["method"], c["mediation"]) for c in tab.calls("resolved")] == [
        ("get", "optional"),
        ("create", "optional"),
    ]
    [fourth] = security_key.credential_ids()
    assert server_passkey_ids(tab) == {first, fourth}


def test_the_last_passkey_is_kept_until_another_way_in_exists(tab: Tab) -> None:
    sign_up(tab, "katherine", "Katherine Johnson")
    [only] = tab.authenticator.credential_ids()
    remove_on_page(tab, only)
    expect(message(tab)).to_have_text(LAST_PASSKEY)
    expect(passkeys(tab)).to_have_count(1)
    assert server_passkey_ids(tab) == {only}
    assert tab.authenticator.credential_ids() == [only]

    # With backup codes as a way back in, the same removal is allowed, and the page says what is left.
    tab.page.click("#generate-codes")
    expect(tab.page.locator("#codes-remaining")).to_have_text("10 unused backup codes left.")
    remove_on_page(tab, only)
    expect(passkeys(tab)).to_have_count(0)
    expect(tab.page.locator("#passkeys li.empty")).to_have_text(
        "You have no passkeys. Add one so you can sign in again."
    )
    assert server_passkey_ids(tab) == set()


def test_removing_the_only_passkey_warns_before_and_urges_a_new_one_after(tab: Tab) -> None:
    sign_up(tab, "mary", "Mary Jackson")
    [first] = tab.authenticator.credential_ids()
    security_key = tab.add_security_key()
    add_passkey_on_page(tab)
    [second] = security_key.credential_ids()
    tab.page.click("#generate-codes")
    expect(tab.page.locator("#codes-remaining")).to_have_text("10 unused backup codes left.")

    # One of two: the usual question.
    item = passkey(tab, second)
    item.locator("button.remove").click()
    expect(item.locator(".remove-question")).to_be_visible()
    expect(item.locator(".only-passkey-warning")).to_be_hidden()
    expect(item.locator("button.confirm-remove")).to_have_text("Remove passkey")
    item.locator("button.confirm-remove").click()
    expect(passkeys(tab)).to_have_count(1)
    expect(tab.page.locator("#no-passkey-banner")).to_be_hidden()

    # The one left (counted when the box opens, not when the page loaded): a warning says what is at stake.
    item = passkey(tab, first)
    item.locator("button.remove").click()
    warning = item.locator(".only-passkey-warning")
    expect(warning).to_be_visible()
    expect(warning).to_contain_text(ONLY_PASSKEY)
    expect(warning).to_contain_text("Create another passkey first")
    expect(item.locator(".remove-question")).to_be_hidden()
    expect(item.locator("button.add-first")).to_be_visible()
    expect(item.locator("button.confirm-remove")).to_have_text("Remove my only passkey")
    screenshot(tab, "passgate-only-passkey")
    item.locator("button.confirm-remove").click()
    expect(passkeys(tab)).to_have_count(0)
    assert server_passkey_ids(tab) == set()

    # Afterwards: an urgent banner, not just a grey line, with a way to create a passkey; and so on reload.
    banner = tab.page.locator("#no-passkey-banner")
    expect(banner).to_be_visible()
    expect(banner).to_have_attribute("role", "alert")
    expect(banner).to_have_class(re.compile(r"\burgent\b"))
    expect(banner).to_contain_text(NO_PASSKEY_LEFT)
    tab.page.reload()
    expect(banner).to_be_visible()
    tab.forget_calls()
    banner.locator("#no-passkey-add").click()
    expect(message(tab)).to_have_text(PASSKEY_ADDED)
    expect(passkeys(tab)).to_have_count(1)
    expect(banner).to_be_hidden()
    assert [c["method"] for c in tab.calls("resolved")] == ["create"]


def test_a_recovery_session_locks_the_changes_that_need_a_passkey_until_one_is_added(tab: Tab) -> None:
    sign_up(tab, "dorothy", "Dorothy Vaughan")
    [lost] = tab.authenticator.credential_ids()
    tab.page.click("#generate-codes")
    code = tab.page.locator("#backup-codes-list li").first.text_content()
    sign_out(tab)
    lose_the_device(tab)
    tab.goto("/recover")
    tab.page.fill("#recover-username", "dorothy")
    tab.page.fill("#recover-code", code or "")
    tab.page.click("#recover-code-button")
    tab.wait_for_path("/account")
    assert api(tab, "/auth/account")["session"]["kind"] == "recovery"

    # Each change that would ask for the lost passkey is disabled, with the reason beside it.
    locked = [
        tab.page.locator("#generate-codes"),
        tab.page.locator("#email-save"),
        passkey(tab, lost).locator(".remove"),
    ]
    for control in locked:
        expect(control).to_be_disabled()
    for reason in ("#passkeys-locked", "#codes-locked", "#email-locked"):
        expect(tab.page.locator(reason)).to_be_visible()
        expect(tab.page.locator(reason)).to_have_text(LOCKED_REASON)
    expect(tab.page.locator("#generate-codes")).to_have_attribute("aria-describedby", "codes-locked")
    tab.forget_calls()
    tab.page.locator("#generate-codes").click(force=True)  # a click on a disabled button does nothing
    expect(tab.page.locator("#backup-codes")).to_be_hidden()
    assert tab.webauthn_calls == []
    screenshot(tab, "passgate-recovery-locked")

    # "create a passkey" leads to the button that does it, and highlights it.
    tab.page.locator("#email-locked a.create-passkey-link").click()
    add = tab.page.locator("#add-passkey")
    expect(add).to_be_focused()
    expect(add).to_have_class(re.compile(r"\bhighlighted\b"))

    add.click()
    expect(message(tab)).to_have_text(PASSKEY_ADDED)
    assert api(tab, "/auth/account")["session"]["kind"] == "passkey"
    for control in locked:
        expect(control).to_be_enabled()
    for reason in ("#passkeys-locked", "#codes-locked", "#email-locked"):
        expect(tab.page.locator(reason)).to_have_count(0)
    tab.page.click("#generate-codes")
    tab.page.click("#replace-codes")  # the 9 left are replaced only once confirmed
    expect(tab.page.locator("#codes-remaining")).to_have_text("10 unused backup codes left.")
    assert tab.calls("called", method="get") == []  # the new passkey was the step-up


def test_backup_codes_get_back_in_and_lead_to_a_new_passkey(tab: Tab) -> None:
    sign_up(tab, "hedy", "Hedy Lamarr")
    remaining = tab.page.locator("#codes-remaining")
    expect(remaining).to_have_text("You have no backup codes.")
    tab.page.click("#generate-codes")
    expect(tab.page.locator("#backup-codes")).to_be_visible()
    expect(tab.page.locator("#backup-codes")).to_contain_text("shown only this once")
    codes = tab.page.locator("#backup-codes-list li").all_text_contents()
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(BACKUP_CODE.match(code) for code in codes), codes
    expect(remaining).to_have_text("10 unused backup codes left.")
    screenshot(tab, "passgate-backup-codes")
    # Shown once: a reload does not show them again.
    tab.page.reload()
    expect(tab.page.locator("#backup-codes")).to_be_hidden()
    expect(tab.page.locator("#backup-codes-list li")).to_have_count(0)

    sign_out(tab)
    lose_the_device(tab)
    tab.page.click("#lost-passkeys")
    tab.wait_for_path("/recover")
    tab.page.fill("#recover-username", "hedy")
    tab.page.fill("#recover-code", codes[0].upper())  # typed from paper: case does not matter
    tab.page.click("#recover-code-button")
    tab.wait_for_path("/account")

    # A recovery session: the page asks for a new passkey before anything else.
    banner = tab.page.locator("#recovery-banner")
    expect(banner).to_be_visible()
    expect(message(tab)).to_have_text(RECOVERED)
    expect(tab.page.locator("#second-passkey-nudge")).to_have_count(0)
    assert api(tab, "/auth/account")["session"]["kind"] == "recovery"
    screenshot(tab, "passgate-recovery")

    tab.forget_calls()
    banner.locator("#add-passkey").click()
    expect(message(tab)).to_have_text(PASSKEY_ADDED)
    expect(banner).to_have_count(0)
    assert [c["method"] for c in tab.calls("called")] == ["create"]  # no step-up in a recovery session
    [new] = tab.authenticator.credential_ids()
    assert new in server_passkey_ids(tab)
    account = api(tab, "/auth/account")
    assert account["session"]["kind"] == "passkey"
    assert account["backupCodesRemaining"] == 9
    expect(remaining).to_have_text("9 unused backup codes left.")

    # The code that was used no longer works; an unused one still does.
    sign_out(tab)
    tab.goto("/recover")
    tab.page.fill("#recover-username", "hedy")
    tab.page.fill("#recover-code", codes[0])
    tab.page.click("#recover-code-button")
    expect(message(tab)).to_have_text(INVALID_CODE)
    expect(tab.page.locator("#recover-code-button")).to_be_enabled()
    assert tab.session_status() == 401
    tab.page.fill("#recover-code", codes[1])
    tab.page.click("#recover-code-button")
    tab.wait_for_path("/account")
    expect(tab.page.locator("#recovery-banner")).to_be_visible()


def test_a_confirmed_email_address_gets_a_sign_in_link_that_leads_to_a_new_passkey(tab: Tab, smtp: SmtpServer) -> None:
    address = "katherine@example.test"
    sign_up(tab, "katherine", "Katherine Johnson")
    status = tab.page.locator("#email-status")
    expect(status).to_have_attribute("data-state", "none")
    tab.page.fill("#email-input", address)
    tab.page.click("#email-save")
    expect(status).to_have_attribute("data-state", "unverified")
    expect(status).to_contain_text(address)

    link = smtp.mailbox.last_link(address, "/email/verify")
    assert link.startswith(tab.server.url + "/email/verify?token=")
    tab.page.goto(link)
    expect(tab.page.locator("#confirm-email-button")).to_be_visible()
    assert api(tab, "/auth/account")["emailVerified"] is False  # opening the link (GET) changes nothing
    tab.page.click("#confirm-email-button")
    expect(message(tab)).to_have_text(f"Your email address {address} is confirmed.")
    assert api(tab, "/auth/account")["emailVerified"] is True
    tab.goto("/account")
    expect(status).to_have_attribute("data-state", "verified")

    sign_out(tab)
    lose_the_device(tab)
    tab.goto("/recover")
    tab.page.fill("#recover-email", address)
    tab.page.click("#recover-email-button")
    expect(message(tab)).to_contain_text(f"If {address} is the confirmed address of an account")
    smtp.mailbox.wait_for(address, count=2)
    link = smtp.mailbox.last_link(address, "/recover/email")
    assert link.startswith(tab.server.url + "/recover/email?token=")

    tab.page.goto(link)
    expect(tab.page.locator("#use-link-button")).to_be_visible()
    assert tab.session_status() == 401  # opening the link (GET) signs nobody in
    tab.page.click("#use-link-button")
    tab.wait_for_path("/account")
    expect(tab.page.locator("#recovery-banner")).to_be_visible()
    assert api(tab, "/auth/account")["session"]["kind"] == "recovery"

    add_passkey_on_page(tab)
    expect(tab.page.locator("#recovery-banner")).to_have_count(0)
    [new] = tab.authenticator.credential_ids()
    assert new in server_passkey_ids(tab)
    assert api(tab, "/auth/account")["session"]["kind"] == "passkey"


def test_the_signal_api_keeps_the_authenticators_in_step_with_the_server(tab: Tab) -> None:
    sign_up(tab, "barbara", "Barbara Liskov")
    [first] = tab.authenticator.credential_ids()
    security_key = tab.add_security_key()
    add_passkey_on_page(tab)
    [second] = security_key.credential_ids()

    # Removed on the account page: the security key forgets it (signalAllAcceptedCredentials).
    remove_on_page(tab, second)
    expect(passkeys(tab)).to_have_count(1)
    assert security_key.credential_ids() == []
    assert tab.authenticator.credential_ids() == [first]

    # Removed while this browser was away (here: straight through the API, no page involved): the security
    # key still holds it until the account page loads and says which passkeys the server still accepts.
    add_passkey_on_page(tab)
    [third] = security_key.credential_ids()
    removed = tab.context.request.delete(f"{tab.server.url}/auth/passkeys/{third}", headers={"Origin": tab.server.url})
    assert removed.ok, removed.text()
    assert security_key.credential_ids() == [third]
    tab.page.reload()
    tab.wait_until(lambda: security_key.credential_ids() == [], what="the security key to forget the passkey")
    assert tab.authenticator.credential_ids() == [first]

    # A passkey the server never knew, offered at sign-in: refused as unknown, and the page tells the
    # authenticator (signalUnknownCredential), which deletes it.
    user_id = api(tab, "/auth/passkeys/signal")["userId"]
    security_key.remove()  # an empty security key would answer /signin's autofill request with "nothing here"
    sign_out(tab)
    # Leave /signin first: its pending autofill request would otherwise take the stray passkey as soon as
    # presence comes back, before the page below is loaded.
    tab.goto("/signup")
    # A device holds one discoverable passkey per account: the stray replaces the real one.
    tab.cdp.send("WebAuthn.clearCredentials", {"authenticatorId": tab.authenticator.authenticator_id})
    stray = stray_credential(user_id)
    tab.cdp.send("WebAuthn.addCredential", {"authenticatorId": tab.authenticator.authenticator_id, "credential": stray})
    tab.authenticator.set_presence(True)
    tab.goto("/signin")  # its autofill request picks the one passkey at once
    expect(message(tab)).to_have_text(UNKNOWN_AT_SIGN_IN)
    tab.wait_until(lambda: tab.authenticator.credential_ids() == [], what="the unknown passkey to go")
    assert tab.session_status() == 401


def test_account_page_screenshot_with_two_passkeys_codes_and_email(tab: Tab, smtp: SmtpServer) -> None:
    """The page as a person sees it once everything is set up (checked by eye: /tmp/passgate-account-full.png)."""
    sign_up(tab, "ada", "Ada Lovelace")
    add_on = tab.add_security_key()
    add_passkey_on_page(tab)
    [key] = add_on.credential_ids()
    item = passkey(tab, key)
    item.locator("button.rename").click()
    item.locator(".rename-input").fill("Blue YubiKey")
    item.locator(".rename-save").click()
    expect(item.locator(".passkey-label")).to_have_text("Blue YubiKey")
    tab.page.fill("#email-input", "ada@example.test")
    tab.page.click("#email-save")
    tab.page.goto(smtp.mailbox.last_link("ada@example.test", "/email/verify"))
    tab.page.click("#confirm-email-button")
    expect(message(tab)).to_contain_text("is confirmed")
    tab.goto("/account")
    tab.page.click("#generate-codes")
    expect(tab.page.locator("#backup-codes-list li")).to_have_count(10)
    expect(tab.page.locator("#email-status")).to_have_attribute("data-state", "verified")
    # Sign-up, add, rename, email x2, and the backup codes: the activity is read again after each change.
    expect(tab.page.locator("#activity li")).to_have_count(6)
    expect(tab.page.locator("#activity li").first).to_contain_text("Created new backup codes")
    screenshot(tab, "passgate-account-full")
