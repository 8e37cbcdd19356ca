"""SIGTERM under load: what was acknowledged is stored, requests in flight are answered, the mail being sent is
sent, and `passgate serve` exits with status 0."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from passgate.service import mail_queue
from passgate.service.mail import Mailer
from passgate.testing import SoftwareAuthenticator
from tests.mailbox import SmtpServer
from tests.services import PassgateProcess, free_port, passgate_command
from tests.web.conftest import Server


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., tuple[PassgateProcess, str]]]:
    """Start `passgate serve` on a fresh SQLite database; whatever is still running is stopped after the test."""
    started: list[PassgateProcess] = []

    def start_server(**environment: str) -> tuple[PassgateProcess, str]:
        port = free_port()
        origin = f"http://localhost:{port}"
        command = passgate_command(port, database_url=f"sqlite:///{tmp_path / 'passgate.db'}", origin=origin)
        server = PassgateProcess(
            port=port,
            command=command,
            log=tmp_path / "server.log",
            # Every visitor comes from 127.0.0.1: the per-address limit would throttle the load itself.
            environment={
                "PASSGATE_RATE_LIMIT_PER_IP": "0",
                "PASSGATE_OUTBOX_DIR": str(tmp_path / "outbox"),
                **environment,
            },
        )
        started.append(server)
        server.start()
        return server, origin

    yield start_server
    for server in started:
        server.kill()


def rows(tmp_path: Path, query: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(tmp_path / "passgate.db") as connection:
        return connection.execute(query).fetchall()


def visitor(server: PassgateProcess, origin: str) -> httpx.Client:
    # A connection per request: a request is either refused before it is sent (the listener closed) or answered.
    return httpx.Client(base_url=server.url, headers={"Origin": origin, "Connection": "close"}, timeout=30)


def sign_up(client: httpx.Client, origin: str, username: str) -> httpx.Response:
    begin = client.post("/auth/passkey/register/begin", json={"username": username, "displayName": username})
    if begin.status_code != 200:
        return begin
    return client.post(
        "/auth/passkey/register/complete", json=SoftwareAuthenticator().create(begin.json(), origin=origin)
    )


def slow_body(parts: list[bytes], pause: float, started: threading.Event) -> Iterator[bytes]:
    yield parts[0]
    started.set()
    time.sleep(pause)
    yield from parts[1:]


def test_sigterm_under_load_loses_nothing_acknowledged_and_exits_0(
    tmp_path: Path, start: Callable[..., tuple[PassgateProcess, str]]
) -> None:
    server, origin = start()
    acknowledged: list[str] = []
    broken: list[str] = []
    refused = threading.Event()
    lock = threading.Lock()

    def load(number: int) -> None:
        for attempt in range(10_000):
            username = f"user{number}x{attempt}"
            try:
                with visitor(server, origin) as client:
                    response = sign_up(client, origin, username)
            except httpx.ConnectError:  # the listener is closed: nothing was sent
                refused.set()
                return
            except httpx.TransportError as exc:  # sent, and never answered
                with lock:
                    broken.append(f"{username}: {type(exc).__name__} {exc}")
                return
            assert response.status_code == 200, response.text
            with lock:
                acknowledged.append(username)

    slow: dict[str, object] = {}
    sending = threading.Event()

    def in_flight() -> None:
        # A request whose body is still arriving when the signal comes: it is answered all the same.
        body = slow_body([b'{"username": "slowpoke",', b' "displayName": "Slow"}'], 1.5, sending)
        with visitor(server, origin) as client:
            try:
                response = client.post(
                    "/auth/passkey/register/begin", content=body, headers={"Content-Type": "application/json"}
                )
                slow["status"] = response.status_code
            except httpx.TransportError as exc:
                slow["error"] = f"{type(exc).__name__} {exc}"

    threads = [threading.Thread(target=load, args=(number,)) for number in range(4)]
    for thread in threads:
        thread.start()
    while len(acknowledged) < 20:
        time.sleep(0.05)
    slow_thread = threading.Thread(target=in_flight)
    slow_thread.start()
    assert sending.wait(10)
    time.sleep(0.3)
    assert server.process is not None
    server.process.send_signal(signal.SIGTERM)
    for thread in [*threads, slow_thread]:
        thread.join(timeout=60)
    assert server.process.wait(timeout=60) == 0, server.log_tail()
    assert broken == [], broken
    assert slow == {"status": 200}
    assert refused.is_set()
    stored = {name for (name,) in rows(tmp_path, "SELECT username FROM users")}
    assert set(acknowledged) <= stored


def test_sigterm_lets_the_mail_being_sent_go_out(
    tmp_path: Path, smtp: SmtpServer, start: Callable[..., tuple[PassgateProcess, str]]
) -> None:
    smtp.mailbox.delay = 2.0  # the relay takes its time over the message
    settings = {f"PASSGATE_{name.upper()}": str(value) for name, value in smtp.settings.items()}
    server, origin = start(**settings)
    with visitor(server, origin) as client:
        assert sign_up(client, origin, "amy").status_code == 200
        assert client.post("/auth/email", json={"email": "amy@example.com"}).status_code == 202
    time.sleep(0.5)  # the worker, woken at once, is in the middle of the SMTP exchange
    assert smtp.mailbox.to("amy@example.com") == []
    assert server.process is not None
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=60) == 0, server.log_tail()
    assert len(smtp.mailbox.to("amy@example.com")) == 1
    assert rows(tmp_path, "SELECT count(*) FROM mail_outbox") == [(0,)]  # sent, and known to be: not sent again


@dataclass
class StopsAfterOne:
    """The node's mailer, with the node told to stop while its first message is being sent."""

    mailer: Mailer
    stopping: asyncio.Event

    async def send(self, to: str, subject: str, text: str) -> None:
        self.stopping.set()
        await self.mailer.send(to, subject, text)


async def test_a_stopping_worker_hands_the_rest_of_its_batch_back_at_once(
    make_server: Callable[..., Server], smtp: SmtpServer
) -> None:
    server = make_server(lifespan=False, **smtp.settings)  # no worker of its own: the test runs one pass
    ctx = server.app.state.ctx
    for number in range(3):
        await mail_queue.enqueue(ctx, f"p{number}@example.com", "Hello", "A message.")
    stopping = asyncio.Event()
    stopping_ctx = dataclasses.replace(ctx, mailer=StopsAfterOne(ctx.mailer, stopping))
    done = await mail_queue.deliver_due(stopping_ctx, "stopping-worker", stopping=stopping)
    assert done.sent == 1 and len(smtp.mailbox.messages) == 1  # the one being sent went out
    left = server.rows("SELECT status, claimed_by FROM mail_outbox")
    assert left == [("queued", None)] * 2  # not held for the lease's length
    again = await mail_queue.deliver_due(ctx, "another-worker")  # due at once, for any worker
    assert again.sent == 2 and len(smtp.mailbox.messages) == 3


def test_a_request_slower_than_the_graceful_timeout_does_not_hold_the_shutdown(
    start: Callable[..., tuple[PassgateProcess, str]],
) -> None:
    server, origin = start(PASSGATE_GRACEFUL_SHUTDOWN_SECONDS="1")
    sending = threading.Event()

    def stalled() -> None:
        body = slow_body([b'{"username": "stalled",', b' "displayName": "S"}'], 30, sending)
        with contextlib.suppress(httpx.TransportError), visitor(server, origin) as client:
            client.post("/auth/passkey/register/begin", content=body, headers={"Content-Type": "application/json"})

    threading.Thread(target=stalled, daemon=True).start()
    assert sending.wait(10)
    time.sleep(0.3)
    assert server.process is not None
    server.process.send_signal(signal.SIGTERM)
    # Cut after its second, not waited for through its thirty.
    assert server.process.wait(timeout=20) == 0, server.log_tail()
