"""A real issuer on loopback: a discovery document and a JWKS over HTTP, with keys the tests sign tokens with."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

AUDIENCE = "https://shop.example"


class Clock:
    """The verifier's clock: it moves only when a test moves it."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Issuer:
    """Publishes ``published`` keys at /.well-known/jwks.json and signs tokens with any key it holds."""

    def __init__(self, es256: ECKey, rs256: RSAKey) -> None:
        self.es256 = es256
        self.rs256 = rs256
        self.published: list[ECKey | RSAKey] = [self.es256, self.rs256]
        self.cache_control = "public, max-age=300"
        self.requests: Counter[str] = Counter()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://localhost:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()
        self._stopped = False

    def stop(self) -> None:
        """Stop answering: the port is closed, so a fetch is refused."""
        if self._stopped:
            return
        self._stopped = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def claims(self, **changes: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.url,
            "sub": "user-1",
            "aud": AUDIENCE,
            "iat": now,
            "nbf": now,
            "exp": now + 300,
            "jti": "token-1",
            "auth_time": now - 10,
            "sid": "session-1",
            "amr": ["pop", "user", "mfa", "swk"],
            "acr": "phr",
        }
        claims.update(changes)
        return {name: value for name, value in claims.items() if value is not None}

    def token(
        self,
        key: ECKey | RSAKey | None = None,
        *,
        typ: str = "session+jwt",
        header: dict[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        key = key or self.es256
        alg = "ES256" if isinstance(key, ECKey) else "RS256"
        protected = {"alg": alg, "typ": typ, "kid": key.thumbprint(), **(header or {})}
        return jwt.encode(protected, self.claims(**claims), key, algorithms=[alg])

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                issuer.requests[self.path] += 1
                if self.path == "/.well-known/openid-configuration":
                    self._json({"issuer": issuer.url, "jwks_uri": f"{issuer.url}/.well-known/jwks.json"}, None)
                elif self.path == "/.well-known/jwks.json":
                    keys = [{**k.as_dict(private=False), "kid": k.thumbprint()} for k in issuer.published]
                    self._json({"keys": keys}, issuer.cache_control)
                else:
                    self.send_error(404)

            def _json(self, document: dict[str, Any], cache_control: str | None) -> None:
                body = json.dumps(document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                if cache_control:
                    self.send_header("Cache-Control", cache_control)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture(scope="session")
def signing_keys() -> tuple[ECKey, RSAKey]:
    return ECKey.generate_key("P-256", parameters={"use": "sig"}), RSAKey.generate_key(2048, parameters={"use": "sig"})


@pytest.fixture
def issuer(signing_keys: tuple[ECKey, RSAKey]) -> Iterator[Issuer]:
    server = Issuer(*signing_keys)
    yield server
    server.stop()


@pytest.fixture
def clock() -> Clock:
    return Clock()
