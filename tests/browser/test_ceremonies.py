"""Passgate's ceremonies in a real browser: Debian's Chromium, its virtual authenticator, a real server.

Nothing is mocked: the pages load /static/pages.js and /static/passgate.js from the server under test,
Chromium's virtual authenticator makes real keys and signatures, and the server verifies them.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Tab, screenshot, sign_out, sign_up

pytestmark = pytest.mark.browser


# The browser code of a widely copied passkey guide (fetch begin, create/get, post complete),
# character for character: Passgate must work with integrators who copy it. Only the helpers it
# leaves to the reader, and `currentUser`, are written here.
SEED_ADD_PASSKEY = r"""
// Call your server to get a registration challenge first
const response = await fetch('/auth/passkey/register/begin', {
  method: 'POST',
  headers: { 'Content-Type': 'application/json' },
  body: JSON.stringify({ userId: currentUser.id }),
});
const options = await response.json();

// The server returns PublicKeyCredentialCreationOptions.
// The browser needs the challenge decoded from base64.
options.challenge = base64urlToBuffer(options.challenge);
options.user.id = base64urlToBuffer(options.user.id);

// Trigger the authenticator
const credential = await navigator.credentials.create({ publicKey: options });

// Send the new credential to your server to store
await fetch('/auth/passkey/register/complete', {
  method: 'POST',
  headers: { 'Content-Type': 'application/json' },
  body: JSON.stringify({
    id: credential.id,
    rawId: bufferToBase64url(credential.rawId),
    response: {
      attestationObject: bufferToBase64url(credential.response.attestationObject),
      clientDataJSON: bufferToBase64url(credential.response.clientDataJSON),
    },
    type: credential.type,
  }),
});
"""

SEED_SIGN_IN = r"""
// Get an authentication challenge from your server
const response = await fetch('/auth/passkey/login/begin', { method: 'POST' });
const options = await response.json();

options.challenge = base64urlToBuffer(options.challenge);
// If you pass allowCredentials, decode each credential ID too
if (options.allowCredentials) {
  options.allowCredentials = options.allowCredentials.map(c => ({
    ...c,
    id: base64urlToBuffer(c.id),
  }));
}

// Prompt the user — browser handles biometric/PIN UI
const assertion = await navigator.credentials.get({ publicKey: options });

// Send the signed assertion to your server for verification
const verifyResponse = await fetch('/auth/passkey/login/complete', {
  method: 'POST',
  headers: { 'Content-Type': 'application/json' },
  body: JSON.stringify({
    id: assertion.id,
    rawId: bufferToBase64url(assertion.rawId),
    response: {
      authenticatorData: bufferToBase64url(assertion.response.authenticatorData),
      clientDataJSON: bufferToBase64url(assertion.response.clientDataJSON),
      signature: bufferToBase64url(assertion.response.signature),
      userHandle: assertion.response.userHandle
        ? bufferToBase64url(assertion.response.userHandle)
        : null,
    },
    type: assertion.type,
  }),
});

if (verifyResponse.ok) {
  // User is authenticated — redirect or update UI
}
"""

SEED_HELPERS = """
function base64urlToBuffer(text) {
  const base64 = text.replace(/-/g, '+').replace(/_/g, '/');
  const binary = atob(base64.padEnd(Math.ceil(base64.length / 4) * 4, '='));
  return Uint8Array.from(binary, (ch) => ch.charCodeAt(0)).buffer;
}
function bufferToBase64url(buffer) {
  const binary = String.fromCharCode(...new Uint8Array(buffer));
  return btoa(binary).replace(/\\+/g, '-').replace(/\\//g, '_').replace(/=+$/, '');
}
"""

# passgate.js answers with code `cancelled`; pages.js turns it into these sentences.
SIGNUP_CANCELLED = "Passkey creation was cancelled. Nothing was saved."
# The browser says the same for a closed prompt and for "no passkey here for that account".
SIGNIN_CANCELLED = (
    "You are not signed in: the passkey prompt was closed, or this device has no passkey for this account. "
    "Try a passkey on another device, such as your phone, use a backup code, or create an account."
)
BEFORE_PROMPT = (
    "Your device will ask you to confirm with your fingerprint, face, PIN or security key. "
    "Your biometrics stay on your device: Passgate never sees them."
)


def load_signin_with_autofill_pending(tab: Tab) -> None:
    """Open /signin while the person has picked nothing yet: the page's autofill request stays pending."""
    tab.authenticator.set_presence(False)
    tab.forget_calls()
    tab.goto("/signin")
    tab.wait_until(lambda: len(tab.calls("called", mediation="conditional")) == 1, what="the autofill request")
    tab.page.wait_for_timeout(300)
    assert tab.calls("resolved", mediation="conditional") == []
    assert tab.calls("rejected", mediation="conditional") == []
    tab.authenticator.set_presence(True)


def test_sign_up_creates_the_account_and_a_discoverable_passkey(tab: Tab) -> None:
    sign_up(tab, "ada", "Ada Lovelace")

    expect(tab.page.locator("#account-username")).to_have_text("ada")
    expect(tab.page.locator("#passkeys li.passkey")).to_have_count(1)
    assert tab.session()["user"]["username"] == "ada"
    assert tab.session()["user"]["displayName"] == "Ada Lovelace"
    [credential] = tab.authenticator.credentials()
    assert credential["isResidentCredential"] is True
    assert credential["rpId"] == "localhost"
    assert credential["userName"] == "ada"
    assert credential["userDisplayName"] == "Ada Lovelace"
    # The passkey the page lists is the one the authenticator holds.
    listed = tab.page.locator("#passkeys li.passkey").get_attribute("data-credential-id")
    assert [listed] == tab.authenticator.credential_ids()
    # A modal create(), and no other ceremony, was needed.
    assert [(c["method"], c["mediation"]) for c in tab.calls("resolved")] == [("create", "optional")]


def test_sign_out_then_sign_in_with_the_button(tab: Tab) -> None:
    sign_up(tab, "grace", "Grace Hopper")
    sign_out(tab)
    load_signin_with_autofill_pending(tab)

    tab.page.click("#signin-button")
    tab.wait_for_path("/account")

    expect(tab.page.locator("#account-username")).to_have_text("grace")
    assert tab.session()["user"]["username"] == "grace"
    # signIn() aborted the pending autofill request before its modal get() (Chromium refuses a modal
    # request while a conditional one is pending), and the modal one signed in.
    [aborted] = tab.calls("rejected", method="get", mediation="conditional")
    assert aborted["error"] == "PasskeyClientError"  # passgate.js's own abort reason
    assert len(tab.calls("resolved", method="get", mediation="optional")) == 1
    assert tab.calls("resolved", method="get", mediation="conditional") == []


def test_sign_out_then_sign_in_through_autofill(tab: Tab) -> None:
    sign_up(tab, "alan", "Alan Turing")
    sign_out(tab)
    # First: on load the page asks for passkeys in the username field (conditional mediation), and
    # the request waits while the person has not chosen one.
    load_signin_with_autofill_pending(tab)
    expect(tab.page.locator("#username")).to_have_attribute("autocomplete", "username webauthn")
    tab.page.focus("#username")
    tab.page.wait_for_timeout(300)
    assert tab.page.url.endswith("/signin")
    assert tab.calls("resolved") == []
    assert tab.calls("rejected") == []
    assert tab.session_status() == 401

    # Then the person picks the passkey. Chromium's virtual authenticator environment stands in for the
    # autofill dropdown: with a discoverable credential for the rp id and presence simulated, it answers
    # a conditional request by itself as soon as it is made (it needs no focus or click, and CDP has no
    # command to pick an autofill entry; re-enabling presence does not wake a request already waiting).
    # So the page is loaded again with presence on, and its own autofill request must sign in.
    tab.authenticator.set_presence(True)
    tab.forget_calls()
    tab.goto("/signin")
    tab.wait_for_path("/account")

    expect(tab.page.locator("#account-username")).to_have_text("alan")
    assert tab.session()["user"]["username"] == "alan"
    calls = tab.webauthn_calls
    assert [(c["method"], c["mediation"]) for c in tab.calls("resolved")] == [("get", "conditional")], calls
    assert not [c for c in calls if c["mediation"] != "conditional"], "no modal request may be involved"


def test_account_page_lists_passkeys_and_adds_one(tab: Tab) -> None:
    sign_up(tab, "katherine", "Katherine Johnson")
    first = tab.authenticator.credential_ids()[0]
    passkey = tab.page.locator("#passkeys li.passkey")
    expect(passkey).to_have_count(1)
    expect(passkey).to_have_attribute("data-credential-id", first)
    expect(passkey).to_contain_text("This device only")  # the virtual authenticator does not sync
    expect(passkey).to_contain_text("Not used to sign in yet")

    sign_out(tab)
    tab.authenticator.set_presence(True)
    tab.goto("/signin")  # autofill signs in with the one passkey
    tab.wait_for_path("/account")
    expect(passkey).not_to_contain_text("Not used to sign in yet")
    expect(passkey.locator("time")).to_have_count(2)  # created and last used

    # A second device: its passkey is added to the same account.
    tab.authenticator.remove()
    second_device = tab.add_authenticator()
    tab.page.click("#add-passkey")
    expect(passkey).to_have_count(2)
    expect(tab.page.locator("#message")).to_contain_text("Passkey added")
    [second] = second_device.credential_ids()
    listed = {passkey.nth(i).get_attribute("data-credential-id") for i in range(2)}
    assert listed == {first, second}

    # The same device again: the server listed its passkey in excludeCredentials, the authenticator
    # refused, and the page says so instead of failing silently.
    tab.page.click("#add-passkey")
    expect(tab.page.locator("#message")).to_have_text(re.compile("already has a passkey for your account"))
    expect(passkey).to_have_count(2)
    assert second_device.credential_ids() == [second]

    screenshot(tab, "passgate-account")


def test_cancelling_at_sign_up_explains_and_creates_nothing(tab: Tab) -> None:
    tab.goto("/signup")
    screenshot(tab, "passgate-signup")
    # While the browser's prompt is up (presence off keeps create() pending), the page has told the
    # person what their device is about to ask. Leaving the page abandons that attempt.
    tab.authenticator.set_presence(False)
    tab.page.fill("#username", "mallory")
    tab.page.click("#signup-button")
    tab.wait_until(lambda: len(tab.calls("called", method="create")) == 1, what="the create() call")
    expect(tab.page.locator("#before-prompt")).to_have_text(BEFORE_PROMPT)  # beside the button, said before the click
    expect(tab.page.locator("#message")).to_have_text("")
    expect(tab.page.locator("#signup-button")).to_be_disabled()
    tab.page.reload()
    tab.authenticator.set_presence(True)
    tab.forget_calls()

    # A person who dismisses the fingerprint/face/PIN prompt: Chromium's platform authenticator then
    # rejects create() at once with NotAllowedError (removing the authenticator instead only fails
    # when the server's 5-minute timeout runs out, and turning presence off hangs just the same).
    tab.authenticator.set_user_verified(False)
    tab.page.fill("#username", "mallory")
    tab.page.fill("#display-name", "Mallory")
    tab.page.click("#signup-button")

    expect(tab.page.locator("#message")).to_have_text(SIGNUP_CANCELLED)
    expect(tab.page.locator("#signup-button")).to_be_enabled()
    assert tab.calls("rejected", method="create")[0]["error"] == "NotAllowedError"
    assert tab.page.url.endswith("/signup")
    assert tab.authenticator.credentials() == []
    assert tab.session_status() == 401

    # No account "mallory" exists: a username-first sign-in finds no passkey for it...
    tab.authenticator.set_user_verified(True)
    tab.goto("/signin")
    screenshot(tab, "passgate-signin")
    tab.page.fill("#username", "mallory")
    tab.page.click("#signin-button")
    expect(tab.page.locator("#message")).to_have_text(SIGNIN_CANCELLED)
    assert tab.page.url.endswith("/signin")
    assert tab.session_status() == 401

    # ...and the name is still free, so the sign-up can simply be tried again.
    sign_up(tab, "mallory", "Mallory")
    expect(tab.page.locator("#account-username")).to_have_text("mallory")
    expect(tab.page.locator("#passkeys li.passkey")).to_have_count(1)


def test_signing_in_without_a_passkey_here_says_what_may_have_happened_and_the_ways_on(tab: Tab) -> None:
    tab.goto("/signin")
    help = tab.page.locator("#signin-help")
    expect(help).to_be_hidden()

    # No account "wile": the server answers with options like any account's, and this device has no
    # passkey they name, so Chromium rejects get() with NotAllowedError, as when the prompt is closed.
    tab.page.fill("#username", "wile")
    tab.page.click("#signin-button")
    expect(tab.page.locator("#message")).to_have_text(SIGNIN_CANCELLED)
    assert tab.calls("rejected", method="get", mediation="optional")[0]["error"] == "NotAllowedError"
    expect(help).to_be_visible()
    expect(help).to_contain_text("choose your phone, tablet or security key")
    expect(help.locator("#signin-help-recover")).to_have_attribute("href", "/recover")
    expect(help.locator("#signin-help-signup")).to_have_attribute("href", "/signup")
    expect(tab.page.locator("#signin-button")).to_be_enabled()
    assert tab.session_status() == 401
    screenshot(tab, "passgate-signin-no-passkey")

    # Without a username, on a device holding no passkey for this site: the same, and the links lead on.
    tab.page.fill("#username", "")
    tab.forget_calls()
    tab.page.click("#signin-button")
    tab.wait_until(lambda: len(tab.calls("rejected", method="get", mediation="optional")) == 1, what="get()")
    expect(tab.page.locator("#message")).to_have_text(SIGNIN_CANCELLED)
    expect(help).to_be_visible()
    help.locator("#signin-help-recover").click()
    tab.wait_for_path("/recover")


def test_the_seed_code_works_unchanged(tab: Tab) -> None:
    # /signup, not /signin: the seed code does not abort the sign-in page's pending autofill request,
    # and Chromium refuses a modal request while a conditional one is pending.
    tab.goto("/signup")
    created = tab.page.evaluate(
        """async () => {
          const passgate = await import('/static/passgate.js');
          return passgate.register({ username: 'hedy', displayName: 'Hedy Lamarr' });
        }"""
    )
    assert created["verified"] is True
    assert created["user"]["username"] == "hedy"
    assert tab.session()["user"]["id"] == created["user"]["id"]

    # "Add a passkey" with the seed's code, from a second device.
    tab.authenticator.remove()
    second_device = tab.add_authenticator()
    seed_credential_id = tab.page.evaluate(
        "async () => {"
        + SEED_HELPERS
        + "const currentUser = (await (await fetch('/auth/session')).json()).user;"
        + SEED_ADD_PASSKEY
        + "return credential.id; }"
    )
    assert second_device.credential_ids() == [seed_credential_id]
    passkeys = tab.context.request.get(tab.server.url + "/auth/passkeys").json()["passkeys"]
    assert {p["id"] for p in passkeys} == {created["credentialId"], seed_credential_id}

    # Sign out, then sign in with the seed's code and the passkey it added.
    assert tab.page.evaluate("async () => (await fetch('/auth/logout', { method: 'POST' })).status") == 200
    assert tab.session_status() == 401
    result = tab.page.evaluate(
        "async () => {"
        + SEED_HELPERS
        + SEED_SIGN_IN
        + "return { ok: verifyResponse.ok, body: await verifyResponse.json(), id: assertion.id }; }"
    )
    assert result["ok"] is True, result["body"]
    assert result["body"]["user"]["username"] == "hedy"
    assert result["id"] == seed_credential_id
    assert tab.session()["user"]["id"] == created["user"]["id"]


def test_without_the_json_helpers_passgate_js_encodes_itself(tab: Tab) -> None:
    # Older Chrome, Safari and Firefox lack PublicKeyCredential.parse*FromJSON and toJSON; there
    # passgate.js must fall back to its own base64url code. Hide those three from the page.
    tab.context.add_init_script(
        """
        delete PublicKeyCredential.parseCreationOptionsFromJSON;
        delete PublicKeyCredential.parseRequestOptionsFromJSON;
        delete PublicKeyCredential.prototype.toJSON;
        """
    )
    sign_up(tab, "barbara", "Barbara Liskov")
    hidden = tab.page.evaluate(
        """[PublicKeyCredential.parseCreationOptionsFromJSON, PublicKeyCredential.parseRequestOptionsFromJSON,
            PublicKeyCredential.prototype.toJSON].map((helper) => typeof helper)"""
    )
    assert hidden == ["undefined"] * 3
    assert tab.session()["user"]["username"] == "barbara"
    sign_out(tab)
    load_signin_with_autofill_pending(tab)
    tab.page.click("#signin-button")
    tab.wait_for_path("/account")
    expect(tab.page.locator("#account-username")).to_have_text("barbara")
