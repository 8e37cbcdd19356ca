"""The servers the benchmark starts and always stops: Passgate nodes, PostgreSQL and Redis (loopback only).

PostgreSQL and Redis come from tests/services.py (private instances on free ports, PostgreSQL with fsync off,
as in the test suite). Every start registers its stop on a contextlib.ExitStack owned by the caller, so an
error or Ctrl-C anywhere stops whatever had started.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field, fields
from pathlib import Path

from tests.services import PassgateProcess as Node
from tests.services import PostgresServer, RedisServer, free_port, passgate_command

from bench.settings import ORIGIN
from passgate.config import Settings

# Every virtual user shares 127.0.0.1 and signs in far more often than a person: limits this high are still
# counted (their cost is measured) but never reached. Set only where this Passgate has the setting.
_UNREACHABLE_LIMITS = {"rate_limit_per_ip": "1000000000", "rate_limit_per_account": "1000000000"}


def server_environment() -> dict[str, str]:
    """PASSGATE_* variables the benchmark sets for its nodes (only settings this version of Passgate knows)."""
    known = {field.name for field in fields(Settings)}
    return {f"PASSGATE_{name.upper()}": value for name, value in _UNREACHABLE_LIMITS.items() if name in known}


@dataclass
class Nodes:
    """Some nodes sharing one database; stopped together."""

    nodes: list[Node] = field(default_factory=list)

    @property
    def pids(self) -> list[int]:
        return [node.pid for node in self.nodes]

    @property
    def ports(self) -> list[int]:
        return [node.port for node in self.nodes]

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def start_nodes(
    stack: contextlib.ExitStack,
    logs: Path,
    name: str,
    database_url: str,
    *,
    count: int = 1,
    redis_url: str = "",
    workers: int = 1,
) -> Nodes:
    """Start `count` nodes on the same database, one after the other (migrations run once, on the first)."""
    group = Nodes()
    stack.callback(group.stop)
    for number in range(count):
        port = free_port()
        command = passgate_command(port, database_url=database_url, origin=ORIGIN, redis_url=redis_url, workers=workers)
        node = Node(
            port=port,
            command=command,
            log=logs / f"{name}-node{number}.log",
            environment=server_environment(),
            new_session=True,
        )
        group.nodes.append(node)
        node.start()
    return group


def start_postgres(stack: contextlib.ExitStack) -> PostgresServer:
    server = PostgresServer.start()
    stack.callback(server.stop)
    return server


def start_redis(stack: contextlib.ExitStack) -> RedisServer:
    server = RedisServer.start()
    stack.callback(server.stop)
    return server


def postgres_pid(server: PostgresServer) -> int:
    """The postmaster's pid (first line of postmaster.pid); its backends are its children."""
    return int((server.directory / "data" / "postmaster.pid").read_text().split()[0])


def redis_pid(server: RedisServer) -> int:
    if server.process is None:
        raise RuntimeError("redis not started")
    return server.process.pid
