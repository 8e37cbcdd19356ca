"""A real Passgate app in this process, with OpenID Connect clients, and a person signed in to it with a passkey."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from passgate.config import load_settings
from passgate.store.migrate import upgrade
from passgate.testing import SoftwareAuthenticator
from passgate.web import create_app

ISSUER = "http://localhost:8000"
APP = "https://shop.example"
CALLBACK = f"{APP}/auth/callback"
SECRET = "a-long-random-client-secret-for-the-shop-0123"
CLIENTS = [
    {"client_id": "shop", "client_secret": SECRET, "redirect_uris": [CALLBACK], "first_party": True},
    {"client_id": "spa", "redirect_uris": [CALLBACK], "first_party": True},
]


def _app(directory: Path, issuer: str) -> Any:
    url = f"sqlite:///{directory}/passgate.db"
    upgrade(url)
    return create_app(
        load_settings({"database_url": url, "rp_id": "localhost", "origins": [issuer], "oidc_clients": CLIENTS})
    )


@asynccontextmanager
async def passgate_app(directory: Path) -> AsyncIterator[Any]:
    """Passgate's application on a fresh, migrated SQLite file (issuer ``ISSUER``), closed afterwards."""
    app = _app(directory, ISSUER)
    try:
        yield app
    finally:
        await app.state.close_storage()


def unused_port() -> int:
    """A loopback port nothing listens on (a connection to it is refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def browser(app: Any, base_url: str) -> httpx.AsyncClient:
    """A browser's view of one site: its own cookie jar, the page's Origin on every request."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url, headers={"Origin": base_url})


async def sign_up(passgate: httpx.AsyncClient, username: str) -> None:
    """Create an account with a software passkey over Passgate's JSON API: the browser is then signed in."""
    authenticator = SoftwareAuthenticator()
    begin = await passgate.post("/auth/passkey/register/begin", json={"username": username, "displayName": username})
    assert begin.status_code == 200, begin.text
    complete = await passgate.post(
        "/auth/passkey/register/complete", json=authenticator.create(begin.json(), origin=ISSUER)
    )
    assert complete.status_code == 200, complete.text


@contextmanager
def served_passgate(directory: Path) -> Iterator[str]:
    """The same application served over HTTP by uvicorn in a thread, for sync code: yields its issuer URL."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    issuer = f"http://localhost:{listener.getsockname()[1]}"
    server = uvicorn.Server(
        uvicorn.Config(_app(directory, issuer), log_config=None, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the Passgate server did not start")
            time.sleep(0.02)
        yield issuer
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()


def sign_up_sync(passgate: httpx.Client, username: str) -> None:
    """``sign_up`` for a sync client of a served Passgate (``passgate.base_url`` is its origin)."""
    origin = str(passgate.base_url).rstrip("/")
    begin = passgate.post("/auth/passkey/register/begin", json={"username": username, "displayName": username})
    assert begin.status_code == 200, begin.text
    complete = passgate.post(
        "/auth/passkey/register/complete", json=SoftwareAuthenticator().create(begin.json(), origin=origin)
    )
    assert complete.status_code == 200, complete.text
