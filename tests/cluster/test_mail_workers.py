"""Two nodes' delivery workers over one database send each queued message exactly once."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections import Counter
from pathlib import Path

import pytest

from passgate.config import load_settings
from passgate.service import mail_queue
from passgate.service.context import Context
from passgate.store.factory import open_storage
from passgate.store.migrate import upgrade
from passgate.web.app import mailer, relying_party
from tests.mailbox import SmtpServer
from tests.services import PostgresServer

MESSAGES = 40
_databases = itertools.count()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        postgres: PostgresServer = request.getfixturevalue("postgres")
        url = postgres.create_database(f"mail_workers_{next(_databases)}")
    else:
        url = f"sqlite:///{tmp_path}/passgate.db"
    upgrade(url)
    return url


async def _with_node(database_url: str, smtp: SmtpServer, work: str, start: threading.Barrier | None) -> int:
    """One node (its own connections): queue the messages, or deliver until nothing is left; returns how many."""
    settings = load_settings(
        {"database_url": database_url, "secret_key": "shared by the nodes", **smtp.settings}, environ={}
    )
    storage, close = open_storage(database_url)
    ctx = Context(rp=relying_party(settings), storage=storage, mailer=mailer(settings))
    try:
        if work == "queue":
            for number in range(MESSAGES):
                await mail_queue.enqueue(ctx, f"user{number}@example.com", f"message {number}", f"Hello {number}\n")
            return MESSAGES
        assert start is not None
        start.wait()
        sent, worker = 0, work
        while True:
            done = await mail_queue.deliver_due(ctx, worker, limit=3)
            sent += done.sent
            if not done.claimed:
                return sent
    finally:
        await close()


async def test_two_nodes_deliver_each_message_once(database_url: str, smtp: SmtpServer) -> None:
    smtp.mailbox.delay = 0.02  # each send takes a moment, so the nodes' claims interleave
    await _with_node(database_url, smtp, "queue", None)
    start = threading.Barrier(2)
    sent: dict[str, int] = {}

    def node(name: str) -> None:
        sent[name] = asyncio.run(_with_node(database_url, smtp, name, start))

    threads = [threading.Thread(target=node, args=(name,)) for name in ("node-a", "node-b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    received = Counter(message["To"] for message in smtp.mailbox.messages)
    assert received == Counter(f"user{number}@example.com" for number in range(MESSAGES))  # each exactly once
    assert sent["node-a"] + sent["node-b"] == MESSAGES
    assert sent["node-a"] and sent["node-b"]  # both took part
