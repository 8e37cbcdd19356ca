"""Outgoing mail's transports: SMTP in production, a local outbox folder by default.

Both are used by the delivery worker of the mail queue (service.mail_queue), never by a request.
The outbox writes each message as a .eml file and logs it, links included, so someone running Passgate
on their laptop can open them. Over SMTP, message bodies (which hold single-use links) are never logged.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Protocol

import aiosmtplib

log = logging.getLogger("passgate.mail")


class Mailer(Protocol):
    async def send(self, to: str, subject: str, text: str) -> None: ...


def message(sender: str, to: str, subject: str, text: str) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = to
    mail["Subject"] = subject
    mail["Message-ID"] = make_msgid(domain="passgate.invalid")
    # Not quoted-printable (the default for lines over 78 characters): it breaks links across lines with `=`,
    # and a link copied from the raw message, or read by a client that keeps the breaks, no longer works.
    # Lines stay far below SMTP's 998-character limit.
    mail.set_content(text, cte="7bit" if text.isascii() else "8bit")
    return mail


@dataclass(frozen=True, kw_only=True)
class OutboxMailer:
    directory: Path
    sender: str

    async def send(self, to: str, subject: str, text: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{time.time_ns()}.eml"
        path.write_bytes(bytes(message(self.sender, to, subject, text)))
        log.info("mail to %s (%s) written to %s:\n%s", to, subject, path, text)


@dataclass(frozen=True, kw_only=True)
class SmtpMailer:
    host: str
    port: int
    security: str  # starttls, tls or none
    username: str
    password: str
    sender: str

    async def send(self, to: str, subject: str, text: str) -> None:
        await aiosmtplib.send(
            message(self.sender, to, subject, text),
            hostname=self.host,
            port=self.port,
            use_tls=self.security == "tls",
            start_tls=self.security == "starttls",
            username=self.username or None,
            password=self.password or None,
            timeout=10,
        )
        log.info("mail to %s sent (%s)", to, subject)
