"""Security notifications by email, sent only to a verified address."""

from __future__ import annotations

import logging

from passgate.service import mail_queue
from passgate.service.context import Context
from passgate.store.base import User

log = logging.getLogger("passgate")


async def security_event(ctx: Context, user: User, what: str) -> None:
    """Tell the user about a change to their account's security. The message is queued, and the queue retries
    it while the mail server refuses it; if even queuing fails, that is logged, not raised: the change itself
    has been made and recorded."""
    if not user.email or user.email_verified_at is None:
        return
    when = ctx.clock().strftime("%Y-%m-%d %H:%M UTC")
    text = (
        f"Hello {user.display_name},\n\n{what} ({when}).\n\n"
        f"If this was you, there is nothing to do. If it was not, sign in at {ctx.rp.public_url} "
        "and review your passkeys and recent activity.\n"
    )
    try:
        await mail_queue.enqueue(ctx, user.email, f"{ctx.rp.rp_name}: {what}", text)
    except Exception:  # storage unavailable: must not undo or hide the account change
        log.exception("could not queue a security notification")
