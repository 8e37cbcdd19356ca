"""Relying-party libraries against a real `passgate serve`: authlib's client (Python) and openid-client (Node).

Each signs a person in with the authorization code flow and PKCE S256: the person signs up in Chromium with its
virtual authenticator's passkey, then Chromium follows the authorization URL the library built and is sent to
the client's redirect URI, a real loopback HTTP server. The library then exchanges the code, verifies the ID
token against the JWKS and calls userinfo, refreshes (rotation, and the rotated token refused when presented
again) and signs the person out through RP-initiated logout, all over real HTTP.
"""

from __future__ import annotations

import json
import queue
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from authlib.common.security import generate_token
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.browser.conftest import Loopback, Server, Tab, loopback, passgate_serve, sign_up

pytestmark = pytest.mark.browser

CLIENT_ID = "local-app"
SECRET = "a-long-random-client-secret-for-the-local-app"
SCOPE = "openid profile email offline_access"
NODE_RP = Path(__file__).resolve().parents[1] / "node" / "rp.mjs"


@pytest.fixture
def callback() -> Iterator[Loopback]:
    with loopback() as receiver:
        yield receiver


@pytest.fixture
def server(tmp_path: Path, callback: Loopback) -> Iterator[Server]:
    """`passgate serve` with the client registered in its configuration file."""
    config = (
        "[[oidc.clients]]\n"
        f'client_id = "{CLIENT_ID}"\n'
        f'client_secret = "{SECRET}"\n'
        f'redirect_uris = ["{callback.uri}"]\n'
        f'post_logout_redirect_uris = ["{signed_out_uri(callback)}"]\n'
        'scopes = ["openid", "profile", "email", "offline_access"]\n'
        "first_party = true\n"
    )
    with passgate_serve(tmp_path, config=config) as running:
        yield running


def sign_in_through(tab: Tab, authorization_url: str, callback: Loopback) -> str:
    """Sign up with a passkey on the hosted pages, then follow the authorization URL to the redirect URI. Returns
    the URL the browser was sent to."""
    sign_up(tab, "ada", "Ada Lovelace")
    tab.page.goto(authorization_url)
    try:
        return callback.received.get(timeout=10)
    except queue.Empty:
        pytest.fail(f"the redirect URI was not reached; the page is at {tab.page.url}")


def signed_out_uri(callback: Loopback) -> str:
    return callback.uri.replace("/callback", "/signed-out")


def sign_out_through(tab: Tab, end_session_url: str, callback: Loopback, state: str) -> None:
    """Follow the RP-initiated logout URL the library built: the hint names this browser's session, so Passgate
    signs the person out at once and sends them to the post-logout redirect URI with the state."""
    tab.page.goto(end_session_url)
    try:
        assert callback.received.get(timeout=10) == f"{signed_out_uri(callback)}?state={state}"
    except queue.Empty:
        pytest.fail(f"the post-logout redirect URI was not reached; the page is at {tab.page.url}")
    assert tab.session_status() == 401


def assert_refreshed(original: dict[str, Any], refreshed: dict[str, Any]) -> None:
    """The ID token of a refresh names the same person and sign-in (OIDC Core section 12.2)."""
    for claim in ("iss", "sub", "aud", "auth_time", "sid", "amr", "acr"):
        assert refreshed[claim] == original[claim], claim
    assert "nonce" not in refreshed


def assert_claims_of_ada(tab: Tab, id_token: dict[str, Any], userinfo: dict[str, Any]) -> None:
    account_id = tab.session()["user"]["id"]
    assert id_token["sub"] == account_id and id_token["aud"] == CLIENT_ID and id_token["iss"] == tab.server.url
    assert "pop" in id_token["amr"] and id_token["acr"] == "phr"
    # profile brings the names; email brings nothing for an account without an address.
    assert userinfo == {"sub": account_id, "preferred_username": "ada", "name": "Ada Lovelace"}


def test_oidcc_server_with_authlib_relying_party(tab: Tab, callback: Loopback) -> None:
    issuer = tab.server.url
    with OAuth2Session(
        CLIENT_ID,
        SECRET,
        scope=SCOPE,
        redirect_uri=callback.uri,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
    ) as rp:
        metadata = rp.get(issuer + "/.well-known/openid-configuration", withhold_token=True).json()
        assert metadata["issuer"] == issuer
        verifier, nonce = generate_token(48), generate_token(20)
        authorization_url, state = rp.create_authorization_url(
            metadata["authorization_endpoint"], code_verifier=verifier, nonce=nonce
        )
        redirected_to = sign_in_through(tab, authorization_url, callback)
        answer = {name: values[0] for name, values in parse_qs(urlsplit(redirected_to).query).items()}
        assert answer["iss"] == issuer  # RFC 9207, which authlib's client leaves to the application
        token = rp.fetch_token(
            metadata["token_endpoint"], authorization_response=redirected_to, state=state, code_verifier=verifier
        )
        jwks = KeySet.import_key_set(rp.get(metadata["jwks_uri"], withhold_token=True).json())
        decoded = jwt.decode(token["id_token"], jwks, algorithms=metadata["id_token_signing_alg_values_supported"])
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": CLIENT_ID},
            nonce={"essential": True, "value": nonce},
            exp={"essential": True},
        ).validate(decoded.claims)
        userinfo = rp.get(metadata["userinfo_endpoint"]).json()  # the session sends its access token
        assert_claims_of_ada(tab, decoded.claims, userinfo)

        refreshed = rp.refresh_token(metadata["token_endpoint"])
        assert refreshed["refresh_token"] != token["refresh_token"]
        renewed = jwt.decode(refreshed["id_token"], jwks, algorithms=metadata["id_token_signing_alg_values_supported"])
        assert_refreshed(decoded.claims, renewed.claims)
        with pytest.raises(OAuthError) as reused:
            rp.refresh_token(metadata["token_endpoint"], refresh_token=token["refresh_token"])
        assert reused.value.error == "invalid_grant"

        logout_state = generate_token(16)
        hint = {"id_token_hint": refreshed["id_token"], "post_logout_redirect_uri": signed_out_uri(callback)}
        end_session = metadata["end_session_endpoint"] + "?" + urlencode({**hint, "state": logout_state})
        sign_out_through(tab, end_session, callback, logout_state)
    assert token["token_type"].lower() == "bearer" and set(token["scope"].split()) == set(SCOPE.split())


def test_oidcc_server_with_openid_client_relying_party(tab: Tab, callback: Loopback) -> None:
    node = shutil.which("node")
    assert node is not None, "Node.js is missing (apt-get install nodejs)"
    assert (NODE_RP.parent / "node_modules" / "openid-client").is_dir(), "run `make install` (npm ci in tests/node)"
    rp = subprocess.Popen(
        [node, str(NODE_RP), tab.server.url, CLIENT_ID, SECRET, callback.uri, SCOPE, signed_out_uri(callback)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert rp.stdout is not None and rp.stdin is not None
        first = rp.stdout.readline()
        assert first, f"the Node relying party printed no authorization URL: {rp.stderr.read() if rp.stderr else ''}"
        authorization_url = json.loads(first)["authorization_url"]
        redirected_to = sign_in_through(tab, authorization_url, callback)
        out, err = rp.communicate(redirected_to + "\n", timeout=30)
    finally:
        if rp.poll() is None:
            rp.kill()
            rp.wait()
    assert rp.returncode == 0, err
    result = json.loads(out)
    assert set(result["scope"].split()) == set(SCOPE.split())
    assert_claims_of_ada(tab, result["id_token"], result["userinfo"])
    # The access token, verified with jose as an API would (README: Integrate your app > OpenID Connect).
    access = result["access_token"]
    assert access["sub"] == result["id_token"]["sub"] and access["client_id"] == CLIENT_ID
    assert set(access["scope"].split()) == set(SCOPE.split())
    assert result["refreshed"]["rotated"] and result["reuse_error"] == "invalid_grant"
    assert_refreshed(result["id_token"], result["refreshed"]["id_token"])
    sign_out_through(tab, result["end_session_url"], callback, result["logout_state"])
