"""A webhook receiver on 127.0.0.1 for tests: it verifies every request with the standardwebhooks library, as a
real receiver would, and answers as the test tells it (a status, headers, held until released, or down)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError

from passgate.core.webhooks import new_secret
from tests.services import free_port


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: str
    verified: dict[str, Any] | None  # the payload, if its signature verified with the receiver's secret

    @property
    def message_id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def type(self) -> str:
        assert self.verified is not None, self
        return str(self.verified["type"])


@dataclass
class Receiver:
    secret: str = field(default_factory=lambda: new_secret(b"receiver secret, 32 bytes long!!"))
    port: int = field(default_factory=free_port)
    received: list[Received] = field(default_factory=list)
    # Answers to give, in order, as (status, headers); then 200.
    answers: deque[tuple[int, dict[str, str]]] = field(default_factory=deque)
    hold: threading.Event | None = None  # set: requests are answered; clear: they wait (the sender hangs)
    _server: ThreadingHTTPServer | None = None

    def url(self, path: str = "/hooks") -> str:
        return f"http://localhost:{self.port}{path}"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length).decode()
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    verified = Webhook(receiver.secret).verify(body, headers)
                except WebhookVerificationError:
                    verified = None
                receiver.received.append(Received(self.path, headers, body, verified))
                if receiver.hold is not None:
                    receiver.hold.wait(30)
                status, extra = receiver.answers.popleft() if receiver.answers else (200, {})
                if verified is None:
                    status = 400
                try:
                    self.send_response(status)
                    for name, value in extra.items():
                        self.send_header(name, value)
                    self.send_header("content-length", "0")
                    self.end_headers()
                except OSError:  # the sender went away (a node killed while we held its request)
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Down: connections are refused until `start` again (on the same port)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def types(self) -> list[str]:
        return [r.type for r in self.received]

    def payloads(self) -> list[dict[str, Any]]:
        return [json.loads(r.body) for r in self.received]

    async def wait_for(self, count: int, *, seconds: float = 30.0) -> list[Received]:
        """Wait until `count` requests have come (failing after `seconds`, a bound on a stuck test)."""
        for _ in range(int(seconds / 0.02)):
            if len(self.received) >= count:
                return list(self.received)
            await asyncio.sleep(0.02)
        raise AssertionError(f"{len(self.received)} of {count} webhook requests arrived: {self.types()}")
