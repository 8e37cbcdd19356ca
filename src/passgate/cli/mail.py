"""`passgate mail`: send the queued mail that is due now, or list what waits and what failed."""

from __future__ import annotations

import asyncio

from passgate.config import Settings
from passgate.service import mail_queue
from passgate.service.context import Context
from passgate.store.base import QueuedMail
from passgate.store.factory import open_storage


def flush(settings: Settings) -> int:
    """Send every message due now with this configuration's mail server (or outbox), as a node's worker would."""
    done = asyncio.run(_flush(settings))
    print(f"passgate: {done.sent} sent, {done.retried} to be retried, {done.failed} failed")
    return 0 if not done.retried and not done.failed else 1


async def _flush(settings: Settings) -> mail_queue.Delivered:
    from passgate.web.app import mailer, relying_party

    storage, close = open_storage(settings.database_url)
    try:
        return await mail_queue.flush(Context(rp=relying_party(settings), storage=storage, mailer=mailer(settings)))
    finally:
        await close()


def show(settings: Settings) -> int:
    """The messages waiting or failed: who to, what about (or the kind of job), attempts, and the last error
    (never a body)."""
    for mail in asyncio.run(_list(settings)):
        state = mail.status if mail.status == "failed" else f"next attempt {mail.next_attempt_at:%Y-%m-%d %H:%M:%S}"
        about = repr(mail.subject) if mail.kind == "message" else f"({mail.kind} job)"
        print(
            f"{mail.created_at:%Y-%m-%d %H:%M:%S}  {mail.recipient}  {about}  attempts {mail.attempts}"
            f"  {state}  {mail.last_error or ''}".rstrip()
        )
    return 0


async def _list(settings: Settings) -> list[QueuedMail]:
    storage, close = open_storage(settings.database_url)
    try:
        return await storage.mail.list(limit=1000)
    finally:
        await close()
