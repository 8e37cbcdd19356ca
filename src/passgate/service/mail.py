"""Outgoing mail's transports: SMTP in production, a local outbox folder by default.

Both are used by the delivery worker of the mail queue (service.mail_queue), never by a request.
The outbox writes each message as a .eml file and logs it, links included, so someone running Passgate
on their laptop can open them. Over SMTP, message bodies (which hold single-use links) are never logged.
"""

from __future__ import annotations

import html
import logging
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Protocol

import aiosmtplib

from passgate.core.brand import Brand

log = logging.getLogger("passgate.mail")


class Mailer(Protocol):
    async def send(self, to: str, subject: str, text: str) -> None: ...


@dataclass(frozen=True, kw_only=True)
class MailLook:
    """How the HTML part of a message looks: the site's brand, and its public URL for links to its /static files."""

    brand: Brand
    base_url: str


def html_body(look: MailLook, subject: str, text: str) -> str:
    """The message's text as HTML in the site's look: its logo and name above, each paragraph a <p>, and a line that
    is a link a button in the brand colour. Inline styles only: mail clients drop <style> blocks and stylesheets."""
    brand = look.brand
    logo = ""
    if brand.logo_url:
        source = html.escape(brand.absolute(brand.logo_url, look.base_url))
        logo = f'<img src="{source}" alt="" height="32" style="height:32px;vertical-align:middle;margin-right:8px">'
    paragraphs = []
    for paragraph in text.strip().split("\n\n"):
        if paragraph.startswith("https://") or paragraph.startswith("http://"):
            link = html.escape(paragraph)
            paragraphs.append(
                f'<p style="margin:24px 0"><a href="{link}" style="display:inline-block;padding:10px 18px;'
                f"background:{brand.accent};color:{brand.accent_text};border-radius:8px;text-decoration:none;"
                f'font-weight:600">{link}</a></p>'
            )
        else:
            lines = "<br>".join(html.escape(line) for line in paragraph.split("\n"))
            paragraphs.append(f'<p style="margin:0 0 16px">{lines}</p>')
    # One element a line: each stays far below SMTP's 998-character limit, and no encoding folds a link.
    return "\n".join(
        [
            f'<!doctype html>\n<html><head><meta charset="utf-8"><title>{html.escape(subject)}</title></head>',
            f'<body style="margin:0;padding:24px;background:{brand.page_background};'
            "font-family:system-ui,-apple-system,Segoe UI,Roboto,Arial,sans-serif;color:#1c1e21;font-size:16px;"
            'line-height:1.5">',
            '<div style="max-width:32rem;margin:0 auto;background:#ffffff;border-radius:10px;padding:24px;'
            f'border-top:4px solid {brand.accent}">',
            f'<p style="margin:0 0 24px;font-weight:700;font-size:18px;color:{brand.accent}">{logo}'
            f"{html.escape(brand.name)}</p>",
            *paragraphs,
            "</div></body></html>",
            "",
        ]
    )


def message(sender: str, to: str, subject: str, text: str, look: MailLook | None = None) -> EmailMessage:
    """The message: its text, and with `look` an HTML alternative in the site's look (the text stays first, for
    clients that show plain text)."""
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = to
    mail["Subject"] = subject
    mail["Message-ID"] = make_msgid(domain="passgate.invalid")
    # Not quoted-printable (the default for lines over 78 characters): it breaks links across lines with `=`,
    # and a link copied from the raw message, or read by a client that keeps the breaks, no longer works.
    # Lines stay far below SMTP's 998-character limit.
    mail.set_content(text, cte="7bit" if text.isascii() else "8bit")
    if look is not None:
        body = html_body(look, subject, text)
        mail.add_alternative(body, subtype="html", cte="7bit" if body.isascii() else "8bit")
    return mail


@dataclass(frozen=True, kw_only=True)
class OutboxMailer:
    directory: Path
    sender: str
    look: MailLook | None = None

    async def send(self, to: str, subject: str, text: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{time.time_ns()}.eml"
        path.write_bytes(bytes(message(self.sender, to, subject, text, self.look)))
        log.info("mail to %s (%s) written to %s:\n%s", to, subject, path, text)


@dataclass(frozen=True, kw_only=True)
class SmtpMailer:
    host: str
    port: int
    security: str  # starttls, tls or none
    username: str
    password: str
    sender: str
    look: MailLook | None = None

    async def send(self, to: str, subject: str, text: str) -> None:
        await aiosmtplib.send(
            message(self.sender, to, subject, text, self.look),
            hostname=self.host,
            port=self.port,
            use_tls=self.security == "tls",
            start_tls=self.security == "starttls",
            username=self.username or None,
            password=self.password or None,
            timeout=10,
        )
        log.info("mail to %s sent (%s)", to, subject)
