"""The mail queue: a message is stored before the request that caused it is answered, and sent afterwards.

So answering takes the same time whether or not mail goes out (a known address is not told from an unknown one
by the relay's delay), a mail server that is down delays mail instead of losing it, and any node's delivery
worker may send what another queued. Workers lease what they send (`MailOutbox.claim`), so two of them never
send one message at once; a message is deleted once the server has accepted it. A node that stops between
the server accepting a message and the deletion leaves it to be sent again when its lease runs out: mail is
delivered at least once, and twice only then.

Bodies hold single-use links, so they are sealed at rest with AES-GCM under a key derived from `secret_key`;
they are never logged by the SMTP path, nor is a failure's body.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from passgate.service.context import Context
from passgate.store.base import QueuedMail

log = logging.getLogger("passgate.mail")

# The wait after each failed attempt; after the last one the message is kept as failed (about 17 hours in all).
RETRY_DELAYS = tuple(timedelta(seconds=seconds) for seconds in (30, 120, 600, 1800, 3600, 2 * 3600, 4 * 3600, 8 * 3600))
# Long enough for a whole batch to time out one message at a time (SMTP's timeout is 10 s).
LEASE = timedelta(minutes=5)
BATCH = 10
POLL_SECONDS = 5.0  # how often a worker looks for other nodes' mail and for retries that are due


@dataclass(frozen=True, kw_only=True)
class Delivered:
    """What one pass of a worker did."""

    sent: int = 0
    retried: int = 0
    failed: int = 0

    @property
    def claimed(self) -> int:
        return self.sent + self.retried + self.failed


def _key(ctx: Context) -> AESGCM:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"passgate mail outbox v1")
    return AESGCM(hkdf.derive(ctx.rp.secret_key))


def seal(ctx: Context, mail_id: str, text: str) -> bytes:
    """The body at rest: a random nonce and the AES-GCM ciphertext, bound to the message's id."""
    nonce = secrets.token_bytes(12)
    return nonce + _key(ctx).encrypt(nonce, text.encode(), mail_id.encode())


def unseal(ctx: Context, mail_id: str, body: bytes) -> str:
    """Raises InvalidTag: sealed under another secret_key, or altered."""
    return _key(ctx).decrypt(body[:12], body[12:], mail_id.encode()).decode()


async def enqueue(ctx: Context, to: str, subject: str, text: str) -> None:
    """Store a message for delivery and wake this node's worker. Returns once the message is stored."""
    mail_id = secrets.token_hex(16)
    now = ctx.clock()
    await ctx.storage.mail.enqueue(
        QueuedMail(
            id=mail_id,
            recipient=to,
            subject=subject,
            body=seal(ctx, mail_id, text),
            created_at=now,
            next_attempt_at=now,
        )
    )
    ctx.mail_ready.set()


def _reason(exc: BaseException) -> str:
    # The exception's class and the server's reply; never the message, which holds links.
    return f"{type(exc).__name__}: {exc}"[:300]


async def deliver_due(ctx: Context, worker: str, *, limit: int = BATCH) -> Delivered:
    """Claim the messages due now and send them; each is deleted when sent, or queued again or kept as failed.

    Storage errors propagate (the worker tries again later); a mail server's failure is the message's retry.
    """
    sent = retried = failed = 0
    for mail in await ctx.storage.mail.claim(worker=worker, now=ctx.clock(), lease=LEASE, limit=limit):
        try:
            # A node whose secret_key differs (a rolling change, a node set up wrongly) cannot read the body:
            # it leaves the message to be tried again, by a node that can, instead of failing it for good.
            await ctx.mailer.send(mail.recipient, mail.subject, unseal(ctx, mail.id, mail.body))
        except Exception as exc:  # the mail server's or the network's failure, or the body unreadable here
            reason = "sealed under another secret_key" if isinstance(exc, InvalidTag) else _reason(exc)
            if mail.attempts > len(RETRY_DELAYS):
                log.error(
                    "mail %s to %s failed %d times, kept as failed: %s", mail.id, mail.recipient, mail.attempts, reason
                )
                await ctx.storage.mail.fail(mail.id, worker=worker, error=reason)
                failed += 1
            else:
                delay = RETRY_DELAYS[mail.attempts - 1]
                log.warning(
                    "mail %s to %s not sent (attempt %d), retrying in %d s: %s",
                    mail.id,
                    mail.recipient,
                    mail.attempts,
                    delay.total_seconds(),
                    reason,
                )
                await ctx.storage.mail.retry(mail.id, worker=worker, at=ctx.clock() + delay, error=reason)
                retried += 1
            continue
        await ctx.storage.mail.sent(mail.id, worker=worker)
        sent += 1
    return Delivered(sent=sent, retried=retried, failed=failed)


async def flush(ctx: Context) -> Delivered:
    """Send everything due now, until nothing is left (for `passgate mail flush`)."""
    worker = secrets.token_hex(16)
    total = Delivered()
    while True:
        done = await deliver_due(ctx, worker)
        total = Delivered(
            sent=total.sent + done.sent, retried=total.retried + done.retried, failed=total.failed + done.failed
        )
        if done.claimed < BATCH:
            return total


async def run_forever(ctx: Context, *, poll_seconds: float = POLL_SECONDS) -> None:
    """This node's delivery worker: woken at once by `enqueue` here, and every `poll_seconds` for the rest."""
    worker = secrets.token_hex(16)
    while True:
        ctx.mail_ready.clear()  # before claiming: a message queued while this pass runs wakes the next one
        done = Delivered()
        try:
            done = await deliver_due(ctx, worker)
        except Exception:  # storage unavailable: look again at the next poll
            log.exception("mail delivery failed")
        if done.claimed >= BATCH:
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ctx.mail_ready.wait(), poll_seconds)
