"""One SQLite file served by several worker processes: writes that must not interleave, don't."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from passgate.testing import SoftwareAuthenticator
from tests.cluster.conftest import ORIGIN, browser, sign_up
from tests.services import PassgateProcess, free_port, passgate_command

ACCOUNTS = 300


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[tuple[PassgateProcess, Path]]:
    database = tmp_path / "passgate.db"
    port = free_port()
    node = PassgateProcess(
        port=port,
        command=passgate_command(port, database_url=f"sqlite:///{database}", origin=ORIGIN, workers=2),
        log=tmp_path / "node.log",
        environment={"PASSGATE_RATE_LIMIT_PER_IP": "0"},  # every visitor of the test comes from 127.0.0.1
    )
    node.start()
    yield node, database
    node.stop()


async def two_passkeys(client: httpx.AsyncClient, node: PassgateProcess, username: str) -> list[str]:
    """A new account (no email, no backup codes) with two passkeys; the ids of both."""
    assert (await sign_up(client, node, node, username)).status_code == 200
    begin = await client.post(f"{node.url}/auth/passkey/register/begin", json={})
    assert begin.status_code == 200, begin.text
    added = SoftwareAuthenticator().create(begin.json(), origin=ORIGIN)
    complete = await client.post(f"{node.url}/auth/passkey/register/complete", json=added)
    assert complete.status_code == 200, complete.text
    passkeys = (await client.get(f"{node.url}/auth/passkeys")).json()["passkeys"]
    return [passkey["id"] for passkey in passkeys]


async def remove_both(client: httpx.AsyncClient, node: PassgateProcess, ids: list[str]) -> list[httpx.Response]:
    return list(await asyncio.gather(*(client.delete(f"{node.url}/auth/passkeys/{id_}") for id_ in ids)))


async def test_concurrent_removals_of_the_last_two_passkeys_keep_one(
    workers: tuple[PassgateProcess, Path],
) -> None:
    node, database = workers
    clients = [browser() for _ in range(ACCOUNTS)]
    try:
        ids = [await two_passkeys(client, node, f"pair{index}") for index, client in enumerate(clients)]
        # One pair at a time, its two requests at once on two connections: both workers take part.
        pairs = [await remove_both(client, node, pair) for client, pair in zip(clients, ids, strict=True)]
    finally:
        await asyncio.gather(*(client.aclose() for client in clients))
    with sqlite3.connect(database) as connection:
        left = dict(
            connection.execute(
                "SELECT u.username, count(c.credential_id) FROM users u"
                " LEFT JOIN credentials c ON c.user_id = u.id GROUP BY u.id"
            ).fetchall()
        )
    assert len(left) == ACCOUNTS
    emptied = sorted(name for name, count in left.items() if count == 0)
    assert emptied == [], f"{len(emptied)} of {ACCOUNTS} accounts lost every passkey"
    assert set(left.values()) == {1}
    for responses in pairs:
        assert sorted(r.status_code for r in responses) == [200, 409], [r.text for r in responses]
        [refused] = [r for r in responses if r.status_code == 409]
        assert refused.json()["error"] == "last_passkey"
