"""Webhooks from real `passgate serve` processes on one PostgreSQL: each event once from two nodes, a node killed
mid-delivery (another delivers, with the same webhook-id), and a node stopped by SIGTERM finishing its delivery."""

from __future__ import annotations

import asyncio
import itertools
import signal
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from passgate.testing import SoftwareAuthenticator
from tests.services import PassgateProcess, PostgresServer, free_port, passgate_command
from tests.webhook_receiver import Receiver

ORIGIN = "http://localhost:8000"
_databases = itertools.count()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver().start()
    yield receiver
    if receiver.hold is not None:
        receiver.hold.set()
    receiver.stop()


@pytest.fixture
def nodes(
    postgres: PostgresServer, receiver: Receiver, tmp_path: Path
) -> Iterator[tuple[str, Callable[[], PassgateProcess]]]:
    """A database, and a way to start nodes on it whose configuration file subscribes the receiver."""
    database_url = postgres.create_database(f"webhook_nodes_{next(_databases)}")
    config = tmp_path / "passgate.toml"
    config.write_text(
        "webhooks_allow_private = true\n"
        "webhook_timeout_seconds = 1\n"
        f"webhook_retry_seconds = [{', '.join(['0.2'] * 10)}]\n"
        "[[webhooks]]\n"
        f'url = "{receiver.url()}"\n'
        'events = ["*"]\n'
        f'secret = "{receiver.secret}"\n'
    )
    started: list[PassgateProcess] = []

    def start() -> PassgateProcess:
        port = free_port()
        node = PassgateProcess(
            port=port,
            command=passgate_command(port, database_url=database_url, origin=ORIGIN),
            log=tmp_path / f"node{len(started)}.log",
            environment={"PASSGATE_CONFIG": str(config), "PASSGATE_RATE_LIMIT_PER_IP": "0"},
        )
        node.start()
        started.append(node)
        return node

    yield database_url, start
    for node in started:
        node.kill()


def rows(database_url: str, query: str) -> list[tuple[object, ...]]:
    with psycopg.connect(database_url) as connection:
        return connection.execute(query).fetchall()


async def sign_up(node: PassgateProcess, username: str) -> None:
    async with httpx.AsyncClient(base_url=node.url, headers={"Origin": ORIGIN}, timeout=10) as browser:
        begin = await browser.post("/auth/passkey/register/begin", json={"username": username})
        assert begin.status_code == 200, begin.text
        created = await browser.post(
            "/auth/passkey/register/complete", json=SoftwareAuthenticator().create(begin.json(), origin=ORIGIN)
        )
        assert created.status_code == 200, created.text


async def delivered(database_url: str, count: int) -> list[tuple[object, ...]]:
    """The outbox once `count` deliveries are recorded delivered (a bound on a stuck test: 30 s)."""
    for _ in range(1500):
        found = rows(database_url, "SELECT message_id, attempts FROM webhook_outbox WHERE status = 'delivered'")
        if len(found) >= count:
            return found
        await asyncio.sleep(0.02)
    raise AssertionError(rows(database_url, "SELECT * FROM webhook_outbox"))


async def test_two_nodes_deliver_each_event_once(
    nodes: tuple[str, Callable[[], PassgateProcess]], receiver: Receiver
) -> None:
    database_url, start = nodes
    first, second = start(), start()
    for number in range(6):
        await sign_up((first, second)[number % 2], f"user{number}")
    outbox = await delivered(database_url, 12)
    await receiver.wait_for(12)
    await asyncio.sleep(0.5)  # a second copy, were one coming, would be on its way
    assert Counter(r.message_id for r in receiver.received) == Counter({m: 1 for m, _ in outbox})
    assert all(attempts == 1 for _, attempts in outbox)
    assert all(r.verified is not None for r in receiver.received)
    assert Counter(receiver.types()) == {"user.created": 6, "passkey.created": 6}


async def test_a_node_killed_mid_delivery_leaves_it_to_another(
    nodes: tuple[str, Callable[[], PassgateProcess]], receiver: Receiver
) -> None:
    database_url, start = nodes
    receiver.hold = threading.Event()  # requests wait for an answer: the node is between commit and delivery
    doomed = start()
    await sign_up(doomed, "kim")  # acknowledged: the events are committed with the account
    held = await receiver.wait_for(2)
    doomed.kill()
    receiver.hold.set()
    successor = start()
    outbox = await delivered(database_url, 2)  # once the dead node's lease has run out
    again = await receiver.wait_for(4)
    assert Counter(r.message_id for r in again) == Counter({r.message_id: 2 for r in held})  # the same ids
    assert sorted(attempts for _, attempts in outbox) == [2, 2]
    successor.stop()


async def test_sigterm_lets_the_delivery_in_flight_finish(
    nodes: tuple[str, Callable[[], PassgateProcess]], receiver: Receiver
) -> None:
    database_url, start = nodes
    receiver.hold = threading.Event()
    node = start()
    await sign_up(node, "lee")
    await receiver.wait_for(2)
    assert node.process is not None
    node.process.send_signal(signal.SIGTERM)
    await asyncio.sleep(0.3)
    receiver.hold.set()  # the endpoint answers after the node was told to stop
    assert await asyncio.to_thread(node.process.wait, 20) == 0
    outbox = rows(database_url, "SELECT status, attempts, claimed_by FROM webhook_outbox")
    assert outbox == [("delivered", 1, None), ("delivered", 1, None)]  # recorded, nothing left leased
    assert len(receiver.received) == 2
