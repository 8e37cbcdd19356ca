"""The sign-in page's `next`: once signed in, the page goes on to that path of this site, and only to one."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.browser.conftest import Tab, sign_out, sign_up

pytestmark = pytest.mark.browser


def sign_in_with_the_button(tab: Tab, path: str) -> None:
    tab.authenticator.set_presence(False)  # the page's autofill request waits
    tab.forget_calls()
    tab.goto(path)
    tab.wait_until(lambda: len(tab.calls("called", mediation="conditional")) == 1, what="the autofill request")
    tab.authenticator.set_presence(True)
    # With presence back, the pending autofill request may sign in first and the page moves on before the
    # click lands: either way the person is signed in on this page, which is what `next` is about.
    try:
        tab.page.click("#signin-button", timeout=5000)
    except PlaywrightTimeoutError:
        assert "/signin" not in tab.page.url or tab.session() is not None


def test_signing_in_goes_on_to_the_next_path(tab: Tab) -> None:
    sign_up(tab, "ada", "Ada Lovelace")
    sign_out(tab)
    sign_in_with_the_button(tab, "/signin?next=" + quote("/.well-known/openid-configuration?from=signin"))
    tab.wait_for_path("/.well-known/openid-configuration?from=signin")
    assert tab.session()["user"]["username"] == "ada"


def test_a_next_to_another_site_ends_on_the_account_page(tab: Tab) -> None:
    sign_up(tab, "ada", "Ada Lovelace")
    sign_out(tab)
    sign_in_with_the_button(tab, "/signin?next=" + quote("//example.com/"))
    tab.wait_for_path("/account")
    assert tab.page.url.startswith(tab.server.url)


def test_signing_up_from_the_sign_in_page_goes_on_to_the_next_path(tab: Tab) -> None:
    tab.goto("/signin?next=" + quote("/.well-known/openid-configuration?from=signup"))
    tab.page.click("#signup-link")
    tab.page.wait_for_url("**/signup?next=**")
    tab.page.fill("#username", "ada")
    tab.page.fill("#display-name", "Ada Lovelace")
    tab.page.click("#signup-button")
    tab.wait_for_path("/.well-known/openid-configuration?from=signup")
    assert tab.session()["user"]["username"] == "ada"
