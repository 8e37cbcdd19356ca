"""The servers the benchmark starts and always stops: Passgate nodes, PostgreSQL and Redis (loopback only).

PostgreSQL and Redis come from tests/services.py (private instances on free ports, PostgreSQL with fsync off,
as in the test suite). Every start registers its stop on a contextlib.ExitStack owned by the caller, so an
error or Ctrl-C anywhere stops whatever had started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

from tests.services import PostgresServer, RedisServer, free_port, wait_for_port

from bench.settings import ORIGIN, RP_ID
from passgate.config import Settings

_START_SECONDS = 60.0


class NodeFailed(RuntimeError):
    """A node exited or did not listen in time; the message holds the tail of its log."""


# Every virtual user shares 127.0.0.1 and signs in far more often than a person: limits this high are still
# counted (their cost is measured) but never reached. Set only where this Passgate has the setting.
_UNREACHABLE_LIMITS = {"rate_limit_per_ip": "1000000000", "rate_limit_per_account": "1000000000"}


def server_environment() -> dict[str, str]:
    """PASSGATE_* variables the benchmark sets for its nodes (only settings this version of Passgate knows)."""
    known = {field.name for field in fields(Settings)}
    return {f"PASSGATE_{name.upper()}": value for name, value in _UNREACHABLE_LIMITS.items() if name in known}


@dataclass
class Node:
    """One `passgate serve` process (with its workers, if any) on 127.0.0.1:port."""

    port: int
    command: list[str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError("node not started")
        return self.process.pid

    def start(self) -> None:
        """Start the process and wait until it accepts connections (applying migrations comes first).

        Raises:
            NodeFailed: the process exited, or did not listen within a minute (its log's tail is in the message).
        """
        with self.log.open("ab") as log:
            # A session of its own: a terminal's Ctrl-C reaches only the benchmark, which then stops the node.
            self.process = subprocess.Popen(
                self.command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **server_environment(), "PYTHONUNBUFFERED": "1"},
                start_new_session=True,
            )
        deadline = time.monotonic() + _START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise NodeFailed(f"passgate node exited with {self.process.returncode}: {self.log_tail()}")
            with contextlib.suppress(TimeoutError):
                wait_for_port(self.port, timeout=0.2)
                return
        raise NodeFailed(f"passgate node on port {self.port} did not start: {self.log_tail()}")

    def log_tail(self, size: int = 2000) -> str:
        try:
            return self.log.read_text(errors="replace")[-size:]
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM (uvicorn stops its workers), then SIGKILL after 10 s."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def passgate_command(port: int, database_url: str, *, redis_url: str = "", workers: int = 1) -> list[str]:
    """The command line of one node, as tests/cluster starts them."""
    command = [
        sys.executable,
        "-m",
        "passgate",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--rp-id",
        RP_ID,
        "--origin",
        ORIGIN,
        "--database-url",
        database_url,
        "--log-level",
        "warning",
    ]
    if redis_url:
        command += ["--redis-url", redis_url]
    if workers != 1:
        command += ["--workers", str(workers)]
    return command


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
        command = passgate_command(port, database_url, redis_url=redis_url, workers=workers)
        node = Node(port=port, command=command, log=logs / f"{name}-node{number}.log")
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
