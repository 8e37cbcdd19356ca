"""Serving the application with uvicorn, in one process or in N workers.

Once every process listens, the last line printed is "Open <the site's origin>": uvicorn's own line names the
address it binds (http://127.0.0.1:8000), where passkeys for the configured origin (http://localhost:8000) fail.

SIGTERM (or Ctrl-C) stops it gracefully: no new connection is accepted, requests in flight are answered (for
`graceful_shutdown_seconds` at most), the mail worker finishes the message it is sending, and the exit status is 0.

With several workers, their metrics live in files of a private temporary directory (PROMETHEUS_MULTIPROC_DIR),
made empty at start and removed at exit; a scrape of any worker, or of the metrics listener, adds them up.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import struct
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess
from uvicorn.supervisors.multiprocess import Process

from passgate import logs
from passgate.config import Settings, to_json
from passgate.web.app import SETTINGS_VARIABLE, create_app
from passgate.web.metrics import MetricsListener, prepare_multiprocess_dir

# How long the supervisor waits for its workers' start-up (migrations are done; this is imports and pools).
WORKER_STARTUP_SECONDS = 120.0
# At shutdown, how long connections already made (queued in the kernel, or just accepted) have to be taken in
# and to deliver their requests before the listener closes. A connection made and not yet taken in when a
# listening socket closes is reset by the kernel: its client may well have sent its request already.
DRAIN_SECONDS = 0.25
_SO_ATTACH_FILTER = 26  # Linux <asm-generic/socket.h>
_DROP_EVERYTHING = struct.pack("HBBI", 0x06, 0, 0, 0)  # one classic BPF instruction: BPF_RET | BPF_K, 0


def _refuse_new_connections(listeners: list[Any]) -> None:
    """Drop new connection attempts (SYNs) at these listening sockets, while those already made wait to be
    accepted: the clients of new attempts see a refused connection once the socket closes, having sent nothing.
    Linux only (a socket filter); elsewhere nothing changes."""
    if not sys.platform.startswith("linux"):
        return
    program = ctypes.create_string_buffer(_DROP_EVERYTHING)
    fprog = struct.pack("HP", 1, ctypes.addressof(program))
    for listener in listeners:
        with contextlib.suppress(OSError):
            listener.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, fprog)


class _Draining(uvicorn.Server):
    """uvicorn's server, whose shutdown first lets the connections already made in, so that none is reset."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        _refuse_new_connections([listener for server in self.servers for listener in server.sockets])
        await asyncio.sleep(DRAIN_SECONDS)  # the queued ones are accepted, and their requests read
        await super().shutdown(sockets)


class _Server(_Draining):
    def __init__(self, config: uvicorn.Config, announce: Callable[[], None]) -> None:
        super().__init__(config)
        self._announce = announce

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:  # after uvicorn's "Uvicorn running on ..." line
            self._announce()


class _Worker(Process):
    """A worker process whose server drains at shutdown."""

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            self._server = _Draining(config=self.config)
        return self._server


class _Workers(Multiprocess):
    """uvicorn's worker supervisor, announcing once every worker has finished its start-up."""

    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket], announce: Callable[[], None]) -> None:
        super().__init__(config, sockets)
        self._announce = announce

    def init_processes(self) -> None:
        for _ in range(self.processes_num):
            worker = _Worker(self.config, self.sockets)
            worker.start()
            self.processes.append(worker)
        if all(worker.wait_until_ready(WORKER_STARTUP_SECONDS, self.should_exit) for worker in self.processes):
            self._announce()


def serve(settings: Settings) -> int:
    """Serve until stopped; returns the exit status (1 if the server could not start)."""

    def announce() -> None:
        if settings.log_format == "json":  # every line of the log a JSON object
            logging.getLogger("passgate").info("Open %s", settings.link_base)
        else:
            print(f"Open {settings.link_base}", flush=True)

    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        # The client address (rate limits, events) is the socket's, unless it is a proxy named in the settings.
        "proxy_headers": bool(settings.forwarded_allow_ips),
        "forwarded_allow_ips": list(settings.forwarded_allow_ips) or None,
        "server_header": False,
        "log_config": logs.uvicorn_config(settings.log_format, settings.log_level),
        "access_log": settings.log_format != "json",  # JSON access lines are Passgate's own (web.middleware)
        "timeout_graceful_shutdown": settings.graceful_shutdown_seconds,
    }
    # uvicorn raises the signal it caught again once it has shut down: a SIGTERM then ends the process with the
    # signal's status unless it is handled. It is handled here (by nothing more: the shutdown is done) for exit 0.
    previous = signal.signal(signal.SIGTERM, _shut_down)
    try:
        if settings.workers == 1:
            with _metrics_listener(settings):
                server = _Server(uvicorn.Config(create_app(settings), **common), announce)
                server.run()
            return 0 if server.started else 1
        with _multiprocess_metrics(), _metrics_listener(settings):
            # Workers rebuild the app from these settings (the secret key included, so they agree on decoys).
            os.environ[SETTINGS_VARIABLE] = to_json(settings)
            config = uvicorn.Config(
                "passgate.web.app:app_from_environment", factory=True, workers=settings.workers, **common
            )
            _Workers(config, [config.bind_socket()], announce).run()
    except KeyboardInterrupt:  # uvicorn raises the SIGINT it caught again once it has shut down
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


def _shut_down(_signal: int, _frame: FrameType | None) -> None:
    pass


@contextlib.contextmanager
def _multiprocess_metrics() -> Iterator[None]:
    directory = Path(tempfile.mkdtemp(prefix="passgate-metrics-"))
    prepare_multiprocess_dir(directory)
    try:
        yield
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@contextlib.contextmanager
def _metrics_listener(settings: Settings) -> Iterator[None]:
    if not settings.metrics_port:
        yield
        return
    listener = MetricsListener(settings.host, settings.metrics_port)
    listener.start()
    try:
        yield
    finally:
        listener.stop()
