"""A real Passgate app in this process, with OpenID Connect clients, and a person signed in to it with a passkey."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

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


@asynccontextmanager
async def passgate_app(directory: Path) -> AsyncIterator[Any]:
    """Passgate's application on a fresh, migrated SQLite file (issuer ``ISSUER``), closed afterwards."""
    url = f"sqlite:///{directory}/passgate.db"
    upgrade(url)
    app = create_app(
        load_settings({"database_url": url, "rp_id": "localhost", "origins": [ISSUER], "oidc_clients": CLIENTS})
    )
    try:
        yield app
    finally:
        await app.state.close_storage()


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
