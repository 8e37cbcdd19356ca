"""In Chromium: response_mode=form_post posts the code to the client, whose redirect URI is a real loopback server;
the code is then exchanged over real HTTP and the ID token verified against the JWKS."""

from __future__ import annotations

import http.server
import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode

import httpx
import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.browser.conftest import Clock, Server, Tab, serve_in_process, sign_up

pytestmark = pytest.mark.browser

SECRET = "a-long-random-client-secret-for-the-local-app"
VERIFIER = "v" * 43


class Callback(http.server.ThreadingHTTPServer):
    """The client's redirect URI: keeps each form posted to it."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), CallbackHandler)
        self.posted: queue.Queue[dict[str, str]] = queue.Queue()

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/callback"


class CallbackHandler(http.server.BaseHTTPRequestHandler):
    server: Callback

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        self.server.posted.put({name: values[0] for name, values in parse_qs(body).items()})
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"signed in")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def callback() -> Iterator[Callback]:
    receiver = Callback()
    thread = threading.Thread(target=receiver.serve_forever, daemon=True)
    thread.start()
    yield receiver
    receiver.shutdown()
    receiver.server_close()


@pytest.fixture
def server(tmp_path: Path, callback: Callback) -> Iterator[Server]:
    client = {"client_id": "local", "client_secret": SECRET, "redirect_uris": [callback.uri], "first_party": True}
    with serve_in_process(tmp_path, Clock(), oidc_clients=[client]) as running:
        yield running


def test_oidcc_response_mode_form_post_in_a_browser(tab: Tab, callback: Callback) -> None:
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
