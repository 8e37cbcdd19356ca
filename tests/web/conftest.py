from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from passgate.config import load_settings
from passgate.store.migrate import upgrade
from passgate.testing import SoftwareAuthenticator
from passgate.web import create_app
from tests.clock import Clock

ORIGIN = "http://localhost:8000"


@dataclass
class Server:
    """A Passgate app on a real, migrated SQLite file, and a way to look inside its tables.

    The app's lifespan (its mail delivery worker and housekeeping) runs from its first client on, as under
    uvicorn, unless the server is built with `lifespan=False`: a process stopped before it sent anything.
    """

    app: Any
    database: Path
    clock: Clock
    lifespan: bool = True
    _running: asyncio.Task[None] | None = None
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    def client(self) -> httpx.AsyncClient:
        """A new browser: its own cookie jar, sending the page's Origin like a browser does."""
        if self.lifespan and self._running is None:
            self._running = asyncio.get_running_loop().create_task(self._run())
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url=ORIGIN, headers={"Origin": ORIGIN}
        )

    async def _run(self) -> None:
        async with self.app.router.lifespan_context(self.app):
            await self._stopping.wait()

    async def stop(self) -> None:
        """End the lifespan (the worker stops) and close the database connections."""
        if self._running is not None:
            self._stopping.set()
            await self._running
        await self.app.state.close_storage()

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


def build_server(tmp_path: Path, *, lifespan: bool = True, **flags: Any) -> Server:
    tmp_path.mkdir(parents=True, exist_ok=True)
    database = tmp_path / "passgate.db"
    url = f"sqlite:///{database}"
    upgrade(url)
    settings = load_settings({"database_url": url, "rp_id": "localhost", "origins": [ORIGIN], **flags})
    clock = Clock()
    return Server(app=create_app(settings, clock=clock), database=database, clock=clock, lifespan=lifespan)


@pytest.fixture
async def make_server(tmp_path: Path) -> AsyncIterator[Callable[..., Server]]:
    """Build servers (with settings flags); their database connections are closed after the test."""
    built: list[Server] = []

    def make(*, directory: Path | None = None, lifespan: bool = True, **flags: Any) -> Server:
        built.append(build_server(directory or tmp_path / str(len(built)), lifespan=lifespan, **flags))
        return built[-1]

    yield make
    for server in built:
        await server.stop()


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
