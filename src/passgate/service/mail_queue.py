"""The mail queue: a message is stored before the request that caused it is answered, and sent afterwards.

So answering takes the same time whether or not mail goes out (a known address is not told from an unknown one
by the relay's delay), a mail server that is down delays mail instead of losing it, and any node's delivery
worker may send what another queued. Workers lease what they send (`MailOutbox.claim`), so two of them never
send one message at once; a message is deleted once the server has accepted it. A node that stops between
the server accepting a message and the deletion leaves it to be sent again when its lease runs out: mail is
delivered at least once, and twice only then.

Bodies hold single-use links, so they are sealed at rest with AES-GCM under a key derived from `secret_key`;
they are never logged by the SMTP path, nor is a failure's body.

Besides messages the queue carries jobs that become messages. A sign-in link request stores one, whatever the
address; the worker that claims it looks the address up, and for an account's verified address stores the link's
token and puts the message in the job's place (one atomic `MailOutbox.replace`, leased to itself), then sends it
like any message, retries included; for another address it deletes the job and sends nothing. A job whose worker
stopped half-way is carried out again once its lease runs out: a second token at worst, the first never sent.

The queue also carries OpenID Connect back-channel logout deliveries (kind "logout_token",
`passgate.service.backchannel`): the recipient is the client, and "sending" is POSTing a logout token to it.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from passgate import metrics
from passgate.service import backchannel, email_links, sealing, workers
from passgate.service.context import Context
from passgate.store.base import MailKind, QueuedMail

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
    dropped: int = 0  # jobs that called for no message (a sign-in link asked for an address without an account)

    @property
    def claimed(self) -> int:
        return self.sent + self.retried + self.failed + self.dropped


def seal(ctx: Context, mail_id: str, text: str) -> bytes:
    """The body at rest: a random nonce and the AES-GCM ciphertext, bound to the message's id."""
    return sealing.seal(
        ctx.rp.secret_key, purpose=sealing.MAIL_OUTBOX, bound_to=mail_id.encode(), plaintext=text.encode()
    )


def unseal(ctx: Context, mail_id: str, body: bytes) -> str:
    """Raises InvalidTag: sealed under another secret_key, or altered."""
    opened = sealing.unseal(ctx.rp.secret_key, purpose=sealing.MAIL_OUTBOX, bound_to=mail_id.encode(), sealed=body)
    return opened.decode()


async def enqueue(ctx: Context, to: str, subject: str, text: str, *, kind: MailKind = "message") -> None:
    """Store a message (or a job, by its `kind`) for delivery and wake this node's worker. Returns once stored."""
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
            kind=kind,
        )
    )
    ctx.mail_ready.set()


def _reason(exc: BaseException) -> str:
    # The exception's class and the server's reply; never the message, which holds links.
    return f"{type(exc).__name__}: {exc}"[:300]


async def deliver_due(
    ctx: Context, worker: str, *, limit: int = BATCH, stopping: asyncio.Event | None = None
) -> Delivered:
    """Claim the mail due now and send it; each message is deleted when sent, or queued again or kept as failed.
    A job is carried out first: it becomes a message sent in the same pass, or is deleted.

    Once `stopping` is set, the message being sent is finished and the rest of the batch is handed back, due at
    once, for another worker (or this node after its restart) to send.

    Storage errors propagate (the worker tries again later); a mail server's failure is the message's retry.
    """
    done = {"sent": 0, "retried": 0, "failed": 0, "dropped": 0}
    for claimed in await ctx.storage.mail.claim(worker=worker, now=ctx.clock(), lease=LEASE, limit=limit):
        if stopping is not None and stopping.is_set():
            await ctx.storage.mail.retry(claimed.id, worker=worker, at=ctx.clock(), error="not sent: the node stopped")
            continue
        try:
            ready = await _ready(ctx, worker, claimed)
        except _Unreadable as exc:
            done[await _attempt_failed(ctx, worker, claimed, str(exc))] += 1
            continue
        if ready is None:
            done["dropped"] += 1
            continue
        mail, text = ready
        try:
            if mail.kind == "logout_token":
                await backchannel.deliver(ctx, mail.recipient, text)
            else:
                await ctx.mailer.send(mail.recipient, mail.subject, text)
        except Exception as exc:  # the mail server's, the client's or the network's failure
            done[await _attempt_failed(ctx, worker, mail, _reason(exc))] += 1
            continue
        await ctx.storage.mail.sent(mail.id, worker=worker)
        metrics.MAIL_SENT.labels(mail.kind).inc()
        done["sent"] += 1
    return Delivered(**done)


class _Unreadable(Exception):
    """This node cannot read the mail: another node may (a secret_key or a version being rolled out)."""


async def _ready(ctx: Context, worker: str, mail: QueuedMail) -> tuple[QueuedMail, str] | None:
    """The message to send for `mail`, and its text: the message itself, or the one its job became (None: none).

    Raises:
        _Unreadable: sealed under another secret_key, or a job this version does not know.
    """
    try:
        # A node whose secret_key differs (a rolling change, a node set up wrongly) cannot read the body:
        # it leaves the message to be tried again, by a node that can, instead of failing it for good.
        text = unseal(ctx, mail.id, mail.body)
    except sealing.InvalidTag:
        raise _Unreadable("sealed under another secret_key") from None
    if mail.kind in ("message", "logout_token"):
        return mail, text
    if mail.kind == "sign_in_link":
        return await _sign_in_link(ctx, worker, mail, text)
    raise _Unreadable(f"a job of unknown kind {mail.kind!r}")


async def _sign_in_link(ctx: Context, worker: str, job: QueuedMail, text: str) -> tuple[QueuedMail, str] | None:
    """The job's message, stored in its place and leased to `worker`; None once a job that calls for none is gone."""
    try:
        request = email_links.LinkRequest.loads(text)
    except (ValueError, KeyError, TypeError):
        raise _Unreadable("a sign-in link job this version cannot read") from None
    composed = await email_links.fulfil_sign_in_link(ctx, job.recipient, request)
    if composed is None:
        await ctx.storage.mail.sent(job.id, worker=worker)  # nothing to send: the job is done
        return None
    now = ctx.clock()
    message_id = secrets.token_hex(16)
    message = QueuedMail(
        id=message_id,
        recipient=composed.to,
        subject=composed.subject,
        body=seal(ctx, message_id, composed.text),
        created_at=now,
        next_attempt_at=now,
        attempts=1,  # this one
        claimed_by=worker,
        claimed_until=now + LEASE,
    )
    if not await ctx.storage.mail.replace(job.id, worker=worker, by=message):
        return None  # held too long: the lease ran out and another worker carries the job out
    return message, composed.text


async def _attempt_failed(ctx: Context, worker: str, mail: QueuedMail, reason: str) -> Literal["retried", "failed"]:
    """Queue the message again after its wait, or keep it as failed after the last attempt."""
    if mail.attempts > len(RETRY_DELAYS):
        log.error("mail %s to %s failed %d times, kept as failed: %s", mail.id, mail.recipient, mail.attempts, reason)
        await ctx.storage.mail.fail(mail.id, worker=worker, error=reason)
        metrics.MAIL_FAILED.labels(mail.kind, "failed").inc()
        return "failed"
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
    metrics.MAIL_FAILED.labels(mail.kind, "retried").inc()
    return "retried"


async def flush(ctx: Context) -> Delivered:
    """Send everything due now, until nothing is left (for `passgate mail flush`)."""
    worker = secrets.token_hex(16)
    total = Delivered()
    while True:
        done = await deliver_due(ctx, worker)
        total = Delivered(
            sent=total.sent + done.sent,
            retried=total.retried + done.retried,
            failed=total.failed + done.failed,
            dropped=total.dropped + done.dropped,
        )
        if done.claimed < BATCH:
            return total


async def run_forever(
    ctx: Context, *, poll_seconds: float = POLL_SECONDS, stopping: asyncio.Event | None = None
) -> None:
    """This node's delivery worker: woken at once by `enqueue` here, and every `poll_seconds` for the rest.

    Returns once `stopping` is set, after the message it is sending (if any) is sent or queued again: a node
    that shuts down neither cuts a message off half-way nor holds the rest of its batch for a lease's length.
    """
    worker = secrets.token_hex(16)
    if stopping is None:
        stopping = asyncio.Event()  # never set: the task is cancelled instead
    while not stopping.is_set():
        ctx.mail_ready.clear()  # before claiming: a message queued while this pass runs wakes the next one
        done = Delivered()
        try:
            done = await deliver_due(ctx, worker, stopping=stopping)
        except Exception:  # storage unavailable: look again at the next poll
            log.exception("mail delivery failed")
        if done.claimed >= BATCH:
            continue
        await workers.wait_for_work(ctx.mail_ready, stopping, poll_seconds)
