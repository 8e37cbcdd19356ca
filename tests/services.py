"""Private PostgreSQL and Redis servers on loopback ports, started and stopped by the tests themselves."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def _as_postgres(command: list[str]) -> list[str]:
    # initdb refuses to run as root: run the server as the postgres user then.
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@dataclass
class PostgresServer:
    directory: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @classmethod
    def start(cls) -> PostgresServer:
        if not (PG_BIN / "initdb").exists():
            raise RuntimeError(f"PostgreSQL is not installed ({PG_BIN}); run `make test` to install it")
        directory = Path(tempfile.mkdtemp(prefix="passgate-pg-", dir="/tmp"))
        if os.geteuid() == 0:
            shutil.chown(directory, "postgres", "postgres")
        subprocess.run(
            _as_postgres(
                [str(PG_BIN / "initdb"), "-D", str(directory / "data"), "-A", "trust", "-U", "postgres", "--no-sync"]
            ),
            check=True,
            capture_output=True,
        )
        server = cls(directory=directory, port=free_port())
        server.resume()
        return server

    def resume(self) -> None:
        options = (
            f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        subprocess.run(
            _as_postgres(
                [
                    str(PG_BIN / "pg_ctl"),
                    "-D",
                    str(self.directory / "data"),
                    "-o",
                    options,
                    "-l",
                    str(self.directory / "log"),
                    "-w",
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
        )
        wait_for_port(self.port)

    def halt(self, mode: str = "fast") -> None:
        subprocess.run(
            _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.directory / "data"), "-m", mode, "-w", "stop"]),
            check=False,
            capture_output=True,
        )

    def stop(self) -> None:
        self.halt("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)

    def create_database(self, name: str) -> str:
        subprocess.run(
            _as_postgres([str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name]),
            check=True,
            capture_output=True,
        )
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"


@dataclass
class RedisServer:
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @classmethod
    def start(cls) -> RedisServer:
        if shutil.which("redis-server") is None:
            raise RuntimeError("redis-server is not installed; run `make test` to install it")
        server = cls(port=free_port())
        server.resume()
        return server

    def resume(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)

    def halt(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        self.halt()


# The secret every test server process shares (several processes or nodes must have one).
TEST_SECRET_KEY = "passgate test servers' shared secret"


class ServerFailed(RuntimeError):
    """A server process exited, or did not listen in time; the message ends with its log's tail."""


def passgate_command(
    port: int, *, database_url: str, origin: str, redis_url: str = "", workers: int = 1, log_level: str = "warning"
) -> list[str]:
    """`passgate serve` on 127.0.0.1:port for rp id localhost."""
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
        "localhost",
        "--origin",
        origin,
        "--database-url",
        database_url,
        "--log-level",
        log_level,
    ]
    if redis_url:
        command += ["--redis-url", redis_url]
    if workers != 1:
        command += ["--workers", str(workers)]
    return command


@dataclass
class PassgateProcess:
    """One `passgate serve` process (with its workers, if any), started and stopped by a test or the benchmark."""

    port: int
    command: list[str]
    log: Path
    environment: dict[str, str] = field(default_factory=dict)  # PASSGATE_* settings on top of this process's
    new_session: bool = False  # its own session: a terminal's Ctrl-C reaches only the parent, which stops it
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError("server not started")
        return self.process.pid

    def start(self, timeout: float = 60.0) -> None:
        """Start it and wait until it listens (it applies migrations first).

        Raises:
            ServerFailed: it exited, or did not listen within `timeout` seconds.
        """
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.command,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=self.new_session,
                env={"PASSGATE_SECRET_KEY": TEST_SECRET_KEY, **os.environ, "PYTHONUNBUFFERED": "1", **self.environment},
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerFailed(f"passgate exited with {self.process.returncode}: {self.log_tail()}")
            try:
                wait_for_port(self.port, timeout=0.2)
                return
            except TimeoutError:
                continue
        raise ServerFailed(f"passgate on port {self.port} did not start: {self.log_tail()}")

    def log_tail(self, size: int = 2000) -> str:
        try:
            return self.log.read_text(errors="replace")[-size:]
        except OSError:
            return ""

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        """SIGTERM (uvicorn stops its workers), then SIGKILL after 10 s."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
