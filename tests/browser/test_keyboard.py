"""The account's life with the keyboard alone, in Chromium with its virtual authenticators: sign up, add a second
passkey, rename, remove and sign out, pressing only Tab, Shift+Tab, Enter, Space and Escape and typing after the
first page is opened (never a click), with focus checked after each save, cancel and removal.

The server runs in this process (serve_in_process) so the test can move its clock past the step-up window: the
removal then asks for a passkey, and that passkey's "last used" changes on the page without a reload.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import Clock, Server, Tab, serve_in_process

pytestmark = pytest.mark.browser

# The most key presses a walk to one control may take (the account page has a few dozen stops).
MOST_PRESSES = 80

IS_FOCUSED = "element => element === document.activeElement"
# Whether the focused element comes after `element` in the page: then Shift+Tab walks back to it.
FOCUS_IS_AFTER = (
    "element => document.activeElement !== null && document.activeElement !== document.body"
    " && Boolean(element.compareDocumentPosition(document.activeElement) & Node.DOCUMENT_POSITION_FOLLOWING)"
)


@pytest.fixture
def server(tmp_path: Path, clock: Clock) -> Iterator[Server]:
    with serve_in_process(tmp_path, clock) as running:
        yield running


def tab_to(page: Page, target: Locator) -> int:
    """Press Tab (or Shift+Tab, when focus is past `target`) until `target` has the focus; the presses it took."""
    for presses in range(MOST_PRESSES):
        if target.evaluate(IS_FOCUSED):
            return presses
        page.keyboard.press("Shift+Tab" if target.evaluate(FOCUS_IS_AFTER) else "Tab")
    pytest.fail(f"{target} not reached with {MOST_PRESSES} presses of Tab")


def item_of(tab: Tab, credential_id: str) -> Locator:
    return tab.page.locator(f'#passkeys li.passkey[data-credential-id="{credential_id}"]')


def test_sign_up_add_rename_remove_and_sign_out_with_the_keyboard_alone(tab: Tab, clock: Clock) -> None:
    page = tab.page
    tab.goto("/signup")
    # The skip link is the first stop of the page, and leads to its content.
    expect(page.locator("#username")).to_be_focused()  # autofocus
    tab_to(page, page.locator(".skip-link"))
    page.keyboard.press("Enter")
    expect(page.locator("#main")).to_be_focused()

    # Sign up: the name fields, then Enter submits the form.
    tab_to(page, page.locator("#username"))
    page.keyboard.type("ada")
    page.keyboard.press("Tab")
    expect(page.locator("#display-name")).to_be_focused()
    page.keyboard.type("Ada Lovelace")
    page.keyboard.press("Enter")
    tab.wait_for_path("/account")
    expect(page.locator("#nav-user")).to_have_attribute("aria-current", "page")
    [laptop] = tab.authenticator.credential_ids()
    first = item_of(tab, laptop)

    # The new passkey's name field is open and has the focus; Escape closes it, focus back on its Rename button.
    expect(first.locator(".rename-input")).to_be_focused()
    page.keyboard.type("Something else")
    page.keyboard.press("Escape")
    expect(first.locator(".rename-form")).to_be_hidden()
    expect(first.locator("button.rename")).to_be_focused()
    expect(first.locator(".passkey-label")).not_to_have_text("Something else")
    # From here on the page must not reload: a mark set now would be gone with a new page.
    page.evaluate("window.keyboardWalk = true")

    # Enter on Rename opens the field again (its text selected), Enter saves; focus back on Rename.
    page.keyboard.press("Enter")
    expect(first.locator(".rename-input")).to_be_focused()
    page.keyboard.type("Laptop")
    page.keyboard.press("Enter")
    expect(first.locator(".passkey-label")).to_have_text("Laptop")
    expect(first.locator(".rename-form")).to_be_hidden()
    expect(first.locator("button.rename")).to_be_focused()
    activity = page.locator("#activity")
    expect(activity.locator("li").first).to_contain_text("Renamed a passkey (Laptop)")
    assert page.evaluate("window.keyboardWalk") is True

    # The second-passkey nudge's button adds a passkey on a security key (the page then opens, anew, on it).
    security_key = tab.add_security_key()
    nudge_add = page.locator("#nudge-add")
    expect(nudge_add).to_have_text("Add a passkey")
    tab_to(page, nudge_add)
    page.keyboard.press("Space")
    expect(page.locator("#passkeys li.passkey")).to_have_count(2)
    [key] = security_key.credential_ids()
    second = item_of(tab, key)
    expect(second.locator(".last-used")).to_have_text("Not used to sign in yet")
    expect(second.locator(".rename-input")).to_be_focused()
    page.keyboard.type("Blue key")
    page.keyboard.press("Enter")
    expect(second.locator(".passkey-label")).to_have_text("Blue key")
    expect(second.locator("button.rename")).to_be_focused()
    page.evaluate("window.keyboardWalk = true")

    # The laptop is lost; six minutes on (the step-up window is five) its removal asks for the security key.
    tab.authenticator.remove()
    clock.advance(minutes=6)
    remove = first.locator("button.remove")
    tab_to(page, remove)
    page.keyboard.press("Enter")
    confirm = first.locator("button.confirm-remove")
    expect(confirm).to_be_focused()
    # Escape keeps the passkey, focus back on Remove.
    page.keyboard.press("Escape")
    expect(first.locator(".remove-confirm")).to_be_hidden()
    expect(remove).to_be_focused()
    page.keyboard.press("Space")
    expect(confirm).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#passkeys li.passkey")).to_have_count(1)
    expect(page.locator("#message")).to_have_text("Passkey “Laptop” removed.")
    # Focus would go with the removed row: it is on the list's heading.
    expect(page.locator("#passkeys-title")).to_be_focused()
    # Without a reload: the removal (with the removed passkey's name) is in the activity, and the security key
    # that confirmed it was used just now.
    expect(activity.locator("li").first).to_contain_text("Removed a passkey (Laptop)")
    expect(activity).to_contain_text("Confirmed it was you with a passkey (Blue key)")
    expect(second.locator(".last-used time")).to_have_count(1)
    assert page.evaluate("window.keyboardWalk") is True

    # Sign out from the header, by keyboard (presence off: /signin's autofill request then stays pending).
    security_key.set_presence(False)
    signout = page.locator("header #signout-button")
    expect(signout).to_have_text("Sign out")
    tab_to(page, signout)
    page.keyboard.press("Enter")
    tab.wait_for_path("/signin")
    assert tab.session_status() == 401
    expect(page.locator("#signout-button")).to_have_count(0)
