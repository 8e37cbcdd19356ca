"""What a person new to passkeys meets on the pages, in a real browser at a phone's width (320 px): errors beside
what caused them, names over the limit refused with a word, long names that wrap without widening the page, the
first passkey prompt explained before the click, a new passkey offered a name and shown with where it was made.

One browser, few tests, several checks each: the server runs in this process (serve_in_process).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import Clock, Server, Tab, screenshot, serve_in_process, sign_up

pytestmark = pytest.mark.browser

PHONE = {"width": 320, "height": 568}
LONG = "W" * 64  # the longest name the server accepts, with no place to break it
TOO_LONG = "n" * 70
BEFORE_PROMPT = (
    "Your device will ask you to confirm with your fingerprint, face, PIN or security key. "
    "Your biometrics stay on your device: Passgate never sees them."
)
NAME_IT = "Passkey added. Give it a name you will recognize, such as the device it is on."
NEEDS_JAVASCRIPT = "This page needs JavaScript to use passkeys. Turn it on for this site, then reload the page."
USERNAME_TAKEN = "That username is already taken. Choose another one, or sign in if it is yours."


@pytest.fixture
def server(tmp_path: Path, clock: Clock) -> Iterator[Server]:
    with serve_in_process(tmp_path, clock) as running:
        yield running


def in_view(page: Page, element: Locator) -> bool:
    """Whether all of `element` is inside the viewport, as it is scrolled now."""
    box = element.bounding_box()
    assert box is not None, "the element is not shown"
    return bool(box["y"] >= 0 and box["y"] + box["height"] <= PHONE["height"] and box["x"] + box["width"] <= 320)


def page_width(page: Page) -> int:
    width: int = page.evaluate("document.documentElement.scrollWidth")
    return width


def share_of_row(element: Locator) -> float:
    """How much of its list row's width `element` takes: a name squeezed beside its badge breaks a letter a line."""
    share: float = element.evaluate(
        "e => e.getBoundingClientRect().width / e.closest('li, header').getBoundingClientRect().width"
    )
    return share


def test_errors_sit_beside_their_cause_are_announced_and_dismissible(tab: Tab) -> None:
    tab.page.set_viewport_size(PHONE)
    sign_up(tab, "ada", "Ada")
    tab.context.clear_cookies()
    tab.forget_calls()

    tab.goto("/signup")
    username = tab.page.locator("#username")
    # Over the limit: said under the field, in the page's words, nothing sent (no passkey prompt).
    username.fill(TOO_LONG)
    tab.page.click("#signup-button")
    error = tab.page.locator("#username-error")
    expect(error).to_have_text("This is 70 characters long: use at most 64.")
    expect(error).to_have_attribute("role", "alert")
    expect(username).to_have_attribute("aria-describedby", "username-error")
    expect(username).to_have_attribute("aria-invalid", "true")
    expect(username).to_be_focused()
    assert username.input_value() == TOO_LONG  # refused, not cut
    assert in_view(tab.page, error)
    assert tab.calls("called", method="create") == []
    # Its button closes it and unlinks the field.
    error.get_by_role("button", name="Dismiss").click()
    expect(error).to_have_count(0)
    assert username.get_attribute("aria-describedby") is None
    assert username.get_attribute("aria-invalid") is None
    # Changing the field takes it away too.
    tab.page.click("#signup-button")
    expect(error).to_be_visible()
    username.fill("ada")
    expect(error).to_have_count(0)

    # A refusal from the server: its sentence under the button, in view on the phone, announced, dismissible.
    tab.page.click("#signup-button")
    message = tab.page.locator("#message")
    expect(message).to_have_text(USERNAME_TAKEN)
    expect(message).to_have_attribute("aria-live", "assertive")
    assert in_view(tab.page, message)
    message.get_by_role("button", name="Dismiss").click()
    expect(message).to_have_text("")
    expect(message).to_be_hidden()

    # The display name over the limit on the account page: refused beside the field, the old name kept.
    tab.page.fill("#username", "grace")
    tab.page.click("#signup-button")
    tab.wait_for_path("/account")
    field = tab.page.locator("#display-name-input")
    field.fill(TOO_LONG)
    tab.page.click("#display-name-save")
    expect(tab.page.locator("#display-name-input-error")).to_have_text("This is 70 characters long: use at most 64.")
    expect(field).to_have_attribute("aria-describedby", "display-name-hint display-name-input-error")
    assert tab.session()["user"]["displayName"] == "grace"


def test_64_character_names_wrap_without_widening_the_page(tab: Tab) -> None:
    tab.page.set_viewport_size(PHONE)
    sign_up(tab, LONG, LONG)
    [credential_id] = tab.authenticator.credential_ids()
    tab.page.click(f'[id="rename-{credential_id}"]')
    tab.page.fill(f'[id="nickname-{credential_id}"]', LONG)
    tab.page.click(".rename-save")
    label = tab.page.locator(".passkey-label")
    expect(label).to_have_text(LONG)
    # The success message names it; the header, the identity line and the list show it.
    expect(tab.page.locator("#message")).to_contain_text(LONG)
    expect(tab.page.locator("#nav-user")).to_have_text(LONG)
    assert page_width(tab.page) <= PHONE["width"]
    # Broken where the row ends, not a letter a line.
    assert share_of_row(label) >= 0.6
    assert share_of_row(tab.page.locator("#nav-user")) >= 0.6
    screenshot(tab, "first-time-long-names")

    tab.page.reload()
    assert page_width(tab.page) <= PHONE["width"]
    assert share_of_row(tab.page.locator(".passkey-label")) >= 0.6
    for path in ("/signup", "/signin", "/recover"):
        tab.goto(path)
        assert page_width(tab.page) <= PHONE["width"], path


def test_the_first_passkey_prompt_is_explained_before_the_click(tab: Tab) -> None:
    tab.goto("/signup")
    button = tab.page.locator("#signup-button")
    explanation = tab.page.locator("#before-prompt")
    # Before anything is pressed: the explanation is in view beside the button, which it describes.
    expect(explanation).to_have_text(BEFORE_PROMPT)
    expect(explanation).to_be_in_viewport()
    expect(button).to_have_text("Create a passkey")
    expect(button).to_have_accessible_description(BEFORE_PROMPT)
    # The passkey icon on the buttons that ask for one, drawn in the button's text colour.
    assert passkey_icon(button)
    tab.goto("/signin")
    assert passkey_icon(tab.page.locator("#signin-button"))

    sign_up(tab, "ada", "Ada")
    assert passkey_icon(tab.page.locator("#add-passkey"))
    assert not passkey_icon(tab.page.locator("#signout-button"))


def passkey_icon(button: Locator) -> bool:
    icon: bool = button.evaluate("b => getComputedStyle(b, '::before').maskImage.includes('/static/passkey.svg')")
    return icon


def test_a_new_passkey_is_offered_a_name_and_shows_where_it_was_made(tab: Tab) -> None:
    sign_up(tab, "ada", "Ada")
    [first] = tab.authenticator.credential_ids()
    item = tab.page.locator(f'#passkeys li.passkey[data-credential-id="{first}"]')
    # Right after sign-up: the confirmation, and the new passkey's name field open and focused.
    expect(tab.page.locator("#message")).to_have_text(NAME_IT)
    name = item.locator(".rename-input")
    expect(name).to_be_focused()
    name.fill("Work laptop")
    name.press("Enter")
    expect(item.locator(".passkey-label")).to_have_text("Work laptop")
    # Where it was made (this browser's User-Agent at creation), and that this browser signed in with it.
    expect(item.locator(".created-in")).to_have_text("Chrome on Linux")
    expect(item.locator(".used-here")).to_have_text("Signed in here")

    # A second one, from the account page: offered a name too; only the first one signed this browser in.
    security_key = tab.add_security_key()
    tab.authenticator.remove()
    tab.page.click("#add-passkey")
    tab.wait_until(lambda: len(security_key.credentials()) == 1, what="the passkey on the security key")
    [second] = security_key.credential_ids()
    added = tab.page.locator(f'#passkeys li.passkey[data-credential-id="{second}"]')
    expect(added.locator(".rename-input")).to_be_focused()
    expect(tab.page.locator("#message")).to_have_text(NAME_IT)
    expect(added.locator(".created-in")).to_have_text("Chrome on Linux")
    expect(added.locator(".used-here")).to_have_count(0)
    expect(item.locator(".used-here")).to_have_count(1)
    # The offer is made once: a reload leaves the field closed.
    tab.page.reload()
    expect(added.locator(".rename-form")).to_be_hidden()


def test_the_activity_keeps_a_removed_passkeys_name_and_a_routine_step_up_is_no_failure(tab: Tab, clock: Clock) -> None:
    sign_up(tab, "ada", "Ada")
    [first] = tab.authenticator.credential_ids()
    security_key = tab.add_security_key()
    tab.page.click("#add-passkey")
    tab.wait_until(lambda: len(security_key.credentials()) == 1, what="the passkey on the security key")
    [second] = security_key.credential_ids()
    added = tab.page.locator(f'#passkeys li.passkey[data-credential-id="{second}"]')
    added.locator(".rename-input").fill("Blue key")
    added.locator(".rename-input").press("Enter")
    expect(added.locator(".passkey-label")).to_have_text("Blue key")

    # Past the step-up window: removing asks for a passkey first (the server refuses the first try).
    clock.advance(minutes=10)
    added.locator("button.remove").click()
    added.locator(".confirm-remove").click()
    expect(added).to_have_count(0)
    tab.page.reload()
    activity = tab.page.locator("#activity li.event")
    expect(activity.first.locator(".event-text")).to_have_text("Removed a passkey (Blue key)")
    expect(activity.filter(has_text="Asked you to confirm it was you with a passkey")).to_have_count(1)
    expect(tab.page.locator("#activity li.failed")).to_have_count(0)
    assert first in tab.authenticator.credential_ids()


def test_backup_codes_are_replaced_only_when_confirmed_and_can_be_downloaded(tab: Tab) -> None:
    sign_up(tab, "ada", "Ada")
    page = tab.page
    page.click("#generate-codes")  # none yet: nothing to confirm
    codes = page.locator("#backup-codes-list li")
    expect(codes).to_have_count(10)
    first_set = codes.all_inner_texts()
    with page.expect_download() as downloading:
        page.click("#download-codes")
    download = downloading.value
    assert download.suggested_filename == "backup-codes.txt"
    assert Path(download.path()).read_text().split() == first_set
    page.click("#codes-saved")
    expect(page.locator("#backup-codes")).to_be_hidden()
    expect(codes).to_have_count(0)
    expect(page.locator("#generate-codes")).to_be_focused()

    # Replacing unused codes asks first; "keep" changes nothing.
    page.click("#generate-codes")
    expect(page.locator("#replace-codes-confirm")).to_be_visible()
    expect(page.locator("#replace-codes")).to_be_focused()
    page.click("#keep-codes")
    expect(page.locator("#replace-codes-confirm")).to_be_hidden()
    expect(page.locator("#backup-codes")).to_be_hidden()
    expect(page.locator("#codes-remaining")).to_have_attribute("data-count", "10")
    page.click("#generate-codes")
    page.click("#replace-codes")
    expect(codes).to_have_count(10)
    assert set(codes.all_inner_texts()).isdisjoint(first_set)


def test_focus_follows_the_keyboard_and_pages_without_javascript_say_so(tab: Tab, server: Server) -> None:
    sign_up(tab, "ada", "Ada")
    page = tab.page
    [credential_id] = tab.authenticator.credential_ids()
    item = page.locator(f'#passkeys li.passkey[data-credential-id="{credential_id}"]')
    rename = item.locator("button.rename")
    form = item.locator(".rename-form")
    # Escape closes the name field (open after sign-up) and gives focus back to its button.
    expect(form.locator(".rename-input")).to_be_focused()
    page.keyboard.press("Escape")
    expect(form).to_be_hidden()
    expect(rename).to_be_focused()
    # Saving with the keyboard: back on the button too.
    page.keyboard.press("Enter")
    expect(form.locator(".rename-input")).to_be_focused()
    page.keyboard.type("Laptop")
    page.keyboard.press("Enter")
    expect(item.locator(".passkey-label")).to_have_text("Laptop")
    expect(rename).to_be_focused()
    # The removal question: Escape keeps the passkey, focus on "Remove".
    item.locator("button.remove").focus()
    page.keyboard.press("Enter")
    expect(item.locator(".confirm-remove")).to_be_focused()
    page.keyboard.press("Escape")
    expect(item.locator(".remove-confirm")).to_be_hidden()
    expect(item.locator("button.remove")).to_be_focused()

    # Without JavaScript, each page says why its form does nothing.
    context = tab.context.browser.new_context(java_script_enabled=False)
    try:
        quiet = context.new_page()
        for path in ("/signup", "/signin", "/recover"):
            quiet.goto(server.url + path)
            expect(quiet.locator(".noscript")).to_have_text(NEEDS_JAVASCRIPT)
    finally:
        context.close()
    expect(page.locator(".noscript")).to_be_hidden()  # with JavaScript, nothing shown


def test_after_a_recovery_sign_in_the_lost_devices_passkeys_can_go(tab: Tab) -> None:
    sign_up(tab, "ada", "Ada")
    page = tab.page
    [lost] = tab.authenticator.credential_ids()
    page.click("#generate-codes")
    code = page.locator("#backup-codes-list li").first.inner_text()
    page.click("#codes-saved")
    # The device is lost: another browser signs in with a backup code and creates a passkey on a security key.
    tab.context.clear_cookies()
    tab.authenticator.remove()
    security_key = tab.add_security_key()
    tab.goto("/recover")
    page.fill("#recover-username", "ada")
    page.fill("#recover-code", code)
    page.click("#recover-code-button")
    tab.wait_for_path("/account")
    expect(page.locator("#lost-devices-offer")).to_be_hidden()  # not before there is a new passkey
    page.click("#add-passkey")
    offer = page.locator("#lost-devices-offer")
    expect(offer).to_be_visible()
    page.click("#remove-lost")
    expect(page.locator("#message")).to_have_text("1 passkey removed.")
    expect(offer).to_be_hidden()
    [kept] = security_key.credential_ids()
    expect(page.locator("#passkeys li.passkey")).to_have_count(1)
    expect(page.locator(f'#passkeys li.passkey[data-credential-id="{lost}"]')).to_have_count(0)
    page.reload()
    expect(page.locator(f'#passkeys li.passkey[data-credential-id="{kept}"]')).to_have_count(1)
    expect(offer).to_be_hidden()  # offered once
