"""In Chromium: response_mode=form_post posts the code to the client, whose redirect URI is a real loopback server;
the code is then exchanged over real HTTP and the ID token verified against the JWKS."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.browser.conftest import Clock, Loopback, Server, Tab, loopback, serve_in_process, sign_up

pytestmark = pytest.mark.browser

SECRET = "a-long-random-client-secret-for-the-local-app"
VERIFIER = "v" * 43


@pytest.fixture
def callback() -> Iterator[Loopback]:
    with loopback("127.0.0.1") as receiver:
        yield receiver


@pytest.fixture
def server(tmp_path: Path, callback: Loopback) -> Iterator[Server]:
    client = {"client_id": "local", "client_secret": SECRET, "redirect_uris": [callback.uri], "first_party": True}
    with serve_in_process(tmp_path, Clock(), oidc_clients=[client]) as running:
        yield running


def test_oidcc_response_mode_form_post_in_a_browser(tab: Tab, callback: Loopback) -> None:
    sign_up(tab, "ada", "Ada Lovelace")
    parameters = {
        "response_type": "code",
        "client_id": "local",
        "redirect_uri": callback.uri,
        "scope": "openid profile",
        "state": "st4te",
        "nonce": "n0nce",
        "code_challenge": create_s256_code_challenge(VERIFIER),
        "code_challenge_method": "S256",
        "response_mode": "form_post",
    }
    tab.goto("/oauth2/authorize?" + urlencode(parameters))
    posted = callback.posted.get(timeout=10)
    assert set(posted) == {"code", "state", "iss"}
    assert posted["state"] == "st4te" and posted["iss"] == tab.server.url
    with httpx.Client(base_url=tab.server.url) as rp:
        token = rp.post(
            "/oauth2/token",
            auth=("local", SECRET),
            data={
                "grant_type": "authorization_code",
                "code": posted["code"],
                "redirect_uri": callback.uri,
                "code_verifier": VERIFIER,
            },
        )
        assert token.status_code == 200, token.text
        jwks = KeySet.import_key_set(rp.get("/.well-known/jwks.json").json())
    claims = jwt.decode(token.json()["id_token"], jwks, algorithms=["RS256"]).claims
    assert claims["nonce"] == "n0nce" and claims["aud"] == "local" and claims["iss"] == tab.server.url
