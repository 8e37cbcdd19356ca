from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from passgate.config import load_settings
from passgate.store.migrate import upgrade
from passgate.testing import SoftwareAuthenticator
from passgate.web import create_app

ORIGIN = "http://localhost:8000"


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: datetime(2026, 1, 1, 12, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Server:
    """A Passgate app on a real, migrated SQLite file, and a way to look inside its tables."""

    app: Any
    database: Path
    clock: Clock

    def client(self) -> httpx.AsyncClient:
        """A new browser: its own cookie jar, sending the page's Origin like a browser does."""
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url=ORIGIN, headers={"Origin": ORIGIN}
        )

    def rows(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.database) as connection:
            return connection.execute(query, args).fetchall()

    def snapshot(self) -> dict[str, Any]:
        """Everything a refused request must leave unchanged."""
        return {
            "users": self.rows("SELECT id, username FROM users ORDER BY id"),
            "credentials": self.rows(
                "SELECT credential_id, user_id, sign_count, last_used_at, backed_up FROM credentials ORDER BY 1"
            ),
            "sessions": self.rows("SELECT token_hash, user_id FROM sessions ORDER BY 1"),
        }


def build_server(tmp_path: Path, **flags: Any) -> Server:
    tmp_path.mkdir(parents=True, exist_ok=True)
    database = tmp_path / "passgate.db"
    url = f"sqlite:///{database}"
    upgrade(url)
    settings = load_settings({"database_url": url, "rp_id": "localhost", "origins": [ORIGIN], **flags})
    clock = Clock()
    return Server(app=create_app(settings, clock=clock), database=database, clock=clock)


@pytest.fixture
async def make_server(tmp_path: Path) -> AsyncIterator[Callable[..., Server]]:
    """Build servers (with settings flags); their database connections are closed after the test."""
    built: list[Server] = []

    def make(**flags: Any) -> Server:
        built.append(build_server(tmp_path / str(len(built)), **flags))
        return built[-1]

    yield make
    for server in built:
        await server.app.state.close_storage()


@pytest.fixture
def server(make_server: Callable[..., Server]) -> Server:
    return make_server()


@pytest.fixture
async def browser(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with server.client() as client:
        yield client


async def sign_up(client: httpx.AsyncClient, authenticator: SoftwareAuthenticator, username: str) -> dict[str, Any]:
    begin = await client.post("/auth/passkey/register/begin", json={"username": username, "displayName": username})
    assert begin.status_code == 200, begin.text
    complete = await client.post(
        "/auth/passkey/register/complete", json=authenticator.create(begin.json(), origin=ORIGIN)
    )
    assert complete.status_code == 200, complete.text
    result: dict[str, Any] = complete.json()
    return result


async def login_options(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = (
        await client.post("/auth/passkey/login/begin", json=body)
        if body
        else await client.post("/auth/passkey/login/begin")
    )
    assert response.status_code == 200, response.text
    options: dict[str, Any] = response.json()
    return options
