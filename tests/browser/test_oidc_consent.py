"""Consent in Chromium against a real `passgate serve`: a client that is not first-party gets the consent page,
Allow sends the code to its loopback redirect URI, and the account page's Connected apps lists the app until
Disconnect withdraws the consent."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session

from tests.browser.conftest import Loopback, Server, Tab, loopback, passgate_serve, sign_up

pytestmark = pytest.mark.browser

CLIENT_ID = "travel"
SECRET = "a-long-random-client-secret-for-the-travel-app"


@pytest.fixture
def callback() -> Iterator[Loopback]:
    with loopback() as receiver:
        yield receiver


@pytest.fixture
def server(tmp_path: Path, callback: Loopback) -> Iterator[Server]:
    """`passgate serve` with a client that is not first-party in its configuration file."""
    config = (
        "[[oidc.clients]]\n"
        f'client_id = "{CLIENT_ID}"\n'
        'name = "Travel Planner"\n'
        f'client_secret = "{SECRET}"\n'
        f'redirect_uris = ["{callback.uri}"]\n'
        'scopes = ["openid", "profile", "email", "offline_access"]\n'
    )
    with passgate_serve(tmp_path, config=config) as running:
        yield running


def test_consent_page_allow_then_disconnect_on_the_account_page(tab: Tab, callback: Loopback) -> None:
    sign_up(tab, "ada", "Ada Lovelace")
    with OAuth2Session(
        CLIENT_ID,
        SECRET,
        scope="openid profile offline_access",
        redirect_uri=callback.uri,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
    ) as rp:
        verifier = generate_token(48)
        url, state = rp.create_authorization_url(f"{tab.server.url}/oauth2/authorize", code_verifier=verifier)
        tab.page.goto(url)
        tab.page.wait_for_selector("#consent-allow")
        assert "Allow Travel Planner to use your" in (tab.page.text_content("h1") or "")
        assert tab.page.locator("#consent-scopes li").all_text_contents() == [
            "Know who you are on Passgate",
            "Your username and name",
            "Stay connected when you are not using it",
        ]
        assert callback.received.empty()  # nothing before the person answers
        tab.page.click("#consent-allow")
        try:
            redirected_to = callback.received.get(timeout=10)
        except queue.Empty:
            pytest.fail(f"the redirect URI was not reached; the page is at {tab.page.url}")
        answer = {name: values[0] for name, values in parse_qs(urlsplit(redirected_to).query).items()}
        assert answer["state"] == state and answer["code"]
        token = rp.fetch_token(
            f"{tab.server.url}/oauth2/token", authorization_response=redirected_to, state=state, code_verifier=verifier
        )
    assert token["refresh_token"] and token["scope"] == "openid profile offline_access"

    tab.goto("/account")
    app = tab.page.locator("#connected-apps li.connected-app")
    assert app.count() == 1
    assert app.locator(".connected-app-name").text_content() == "Travel Planner"
    assert "Stay connected when you are not using it" in app.locator(".connected-app-scopes").all_text_contents()[0]
    app.locator(".disconnect").click()
    tab.page.wait_for_selector("#connected-apps li.connected-app", state="detached")
    assert "Travel Planner is disconnected" in (tab.page.text_content("#message") or "")
    assert tab.page.locator("#connected-apps li.empty").text_content() == "No apps are connected to your account."
    consents = tab.context.request.get(tab.server.url + "/auth/consents").json()
    assert consents == {"consents": []}
    assert tab.page_errors == []
