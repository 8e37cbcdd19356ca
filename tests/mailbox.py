"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives, for tests of email flows."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from tests.services import free_port


@dataclass
class Mailbox:
    """What the server received. `delay` holds each message that long before accepting it (a slow relay);
    `refuse` answers that many messages with a temporary failure first (a relay that is down)."""

    messages: list[EmailMessage] = field(default_factory=list)
    delay: float = 0.0
    refuse: int = 0
    refused: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        with self._lock:
            if self.refused < self.refuse:
                self.refused += 1
                return "451 4.3.0 Try again later"
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        with self._lock:
            self.messages.append(parsed)
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        with self._lock:
            return [m for m in self.messages if m["To"] == address]

    def wait_for(self, address: str, *, count: int = 1, timeout: float = 10.0) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.to(address)
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"expected {count} message(s) to {address}, got {len(self.to(address))}")

    def last_link(self, address: str, path: str) -> str:
        """The link to `path` in the newest message to `address`."""
        return _link(self.wait_for(address)[-1], path)

    async def received(self, address: str, *, count: int = 1, timeout: float = 10.0) -> list[EmailMessage]:
        """`wait_for` for a test whose server runs in its own event loop: waiting lets its mail worker run."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.to(address)
            if len(found) >= count:
                return found
            await asyncio.sleep(0.02)
        raise AssertionError(f"expected {count} message(s) to {address}, got {len(self.to(address))}")

    async def newest_link(self, address: str, path: str, *, count: int = 1) -> str:
        """The link to `path` in the newest message to `address` that has one, once `count` messages arrived.

        Waits without blocking the event loop; messages queued together may arrive in either order.
        """
        messages = await self.received(address, count=count)
        for message in reversed(messages):
            if re.search(re.escape(path) + r"\?token=", text_of(message)):
                return _link(message, path)
        raise AssertionError(f"no link to {path} in {len(messages)} message(s) to {address}")


def text_of(message: EmailMessage) -> str:
    """The message's plain text (beside it, the HTML alternative in the site's look)."""
    part = message.get_body(("plain",))
    assert part is not None, message
    return str(part.get_content())


def _link(message: EmailMessage, path: str) -> str:
    body = text_of(message)
    links = re.findall(r"https?://\S+" + re.escape(path) + r"\?token=[A-Za-z0-9_-]+", body)
    assert links, body
    return str(links[-1])


@dataclass
class SmtpServer:
    port: int
    mailbox: Mailbox
    controller: Controller

    @classmethod
    def start(cls) -> SmtpServer:
        mailbox = Mailbox()
        port = free_port()
        controller = Controller(mailbox, hostname="127.0.0.1", port=port)
        controller.start()
        return cls(port=port, mailbox=mailbox, controller=controller)

    def stop(self) -> None:
        self.controller.stop()

    @property
    def settings(self) -> dict[str, Any]:
        """Passgate settings that send mail here."""
        return {
            "smtp_host": "127.0.0.1",
            "smtp_port": self.port,
            "smtp_security": "none",
            "mail_from": "Passgate <passgate@localhost>",
        }
