"""Several Passgate nodes (real processes) sharing one PostgreSQL and one Redis."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from passgate.testing import SoftwareAuthenticator
from tests.services import PostgresServer, RedisServer, free_port, wait_for_port

# The public origin a load balancer would serve; every node accepts it.
ORIGIN = "http://localhost:8000"
_databases = itertools.count()


@dataclass
class Node:
    port: int
    command: list[str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as log:
            # Every simulated visitor comes from 127.0.0.1: the per-address limit would throttle the load itself.
            environment = {**os.environ, "PYTHONUNBUFFERED": "1", "PASSGATE_RATE_LIMIT_PER_IP": "0"}
            self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT, env=environment)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"node exited: {self.log.read_text()[-2000:]}")
            try:
                wait_for_port(self.port, timeout=0.2)
                return
            except TimeoutError:
                continue
        raise TimeoutError(f"node on {self.port} did not start: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Cluster:
    database_url: str
    redis_url: str
    nodes: list[Node] = field(default_factory=list)

    def rows(self, query: str) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(self.database_url.replace("postgresql://", "postgresql://", 1)) as connection:
            return connection.execute(query).fetchall()


@pytest.fixture
def cluster(postgres: PostgresServer, redis_server: RedisServer, tmp_path: Path) -> Iterator[Callable[..., Cluster]]:
    """Start N nodes on a fresh database; all are stopped after the test."""
    started: list[Cluster] = []

    def start(count: int, workers: int = 1) -> Cluster:
        database_url = postgres.create_database(f"cluster_{next(_databases)}")
        redis.Redis.from_url(redis_server.url).flushdb()
        group = Cluster(database_url=database_url, redis_url=redis_server.url)
        for number in range(count):
            port = free_port()
            node = Node(
                port=port,
                log=tmp_path / f"node{number}.log",
                command=[
                    sys.executable,
                    "-m",
                    "passgate",
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--rp-id",
                    "localhost",
                    "--origin",
                    ORIGIN,
                    "--database-url",
                    database_url,
                    "--redis-url",
                    redis_server.url,
                    "--log-level",
                    "warning",
                    "--workers",
                    str(workers),
                ],
            )
            group.nodes.append(node)
        for node in group.nodes:
            node.start()
        started.append(group)
        return group

    yield start
    for group in started:
        for node in group.nodes:
            node.stop()


def browser() -> httpx.AsyncClient:
    """A browser's cookie jar; requests name the node by absolute URL (cookies ignore ports)."""
    return httpx.AsyncClient(headers={"Origin": ORIGIN}, timeout=10)


async def sign_up(
    client: httpx.AsyncClient,
    begin_on: Node,
    complete_on: Node,
    username: str,
    authenticator: SoftwareAuthenticator | None = None,
) -> httpx.Response:
    authenticator = authenticator or SoftwareAuthenticator()
    begin = await client.post(f"{begin_on.url}/auth/passkey/register/begin", json={"username": username})
    if begin.status_code != 200:
        return begin
    response = authenticator.create(begin.json(), origin=ORIGIN)
    return await client.post(f"{complete_on.url}/auth/passkey/register/complete", json=response)
