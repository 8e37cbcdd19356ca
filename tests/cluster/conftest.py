"""Several Passgate nodes (real processes) sharing one PostgreSQL and one Redis."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from passgate.testing import SoftwareAuthenticator
from tests.services import PassgateProcess as Node
from tests.services import PostgresServer, RedisServer, free_port, passgate_command

# The public origin a load balancer would serve; every node accepts it.
ORIGIN = "http://localhost:8000"
_databases = itertools.count()


@dataclass
class Cluster:
    database_url: str
    redis_url: str
    nodes: list[Node] = field(default_factory=list)

    def rows(self, query: str) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(self.database_url) as connection:
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
            command = passgate_command(
                port, database_url=database_url, origin=ORIGIN, redis_url=redis_server.url, workers=workers
            )
            # Every simulated visitor comes from 127.0.0.1: the per-address limit would throttle the load itself.
            node = Node(
                port=port,
                command=command,
                log=tmp_path / f"node{number}.log",
                environment={"PASSGATE_RATE_LIMIT_PER_IP": "0"},
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
    """A browser's cookie jar; requests name the node by absolute URL (cookies ignore ports).

    A new connection per request: a kept-alive one the server closes as idle just when the next request goes out
    fails that request with "Server disconnected", which would say nothing about Passgate.
    """
    return httpx.AsyncClient(headers={"Origin": ORIGIN}, timeout=10, limits=httpx.Limits(max_keepalive_connections=0))


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
