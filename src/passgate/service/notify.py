"""Security notifications by email, sent only to a verified address, in the language of the request that made
the change."""

from __future__ import annotations

import logging

from passgate import i18n
from passgate.service import mail_queue
from passgate.service.context import Context
from passgate.store.base import User

log = logging.getLogger("passgate")


async def security_event(ctx: Context, user: User, what: str, language: str = "en") -> None:
    """Tell the user about a change to their account's security: `what` (English, marked with i18n.N_) in
    `language`. The message is queued, and the queue retries it while the mail server refuses it; if even queuing
    fails, that is logged, not raised: the change itself has been made and recorded."""
    if not user.email or user.email_verified_at is None:
        return
    _ = i18n.translator(language).gettext
    happened = _(what)
    values = {
        "name": user.display_name,
        "what": happened,
        "when": i18n.format_moment(ctx.clock(), language),
        "url": ctx.rp.public_url,
    }
    text = (
        _("Hello %(name)s,") % values
        + "\n\n"
        + _("%(what)s (%(when)s).") % values
        + "\n\n"
        + _(
            "If this was you, there is nothing to do. If it was not, sign in at %(url)s and review your passkeys "
            "and recent activity."
        )
        % values
        + "\n"
    )
    subject = _("%(site)s: %(what)s") % {"site": ctx.rp.rp_name, "what": happened}
    try:
        await mail_queue.enqueue(ctx, user.email, subject, text)
    except Exception:  # storage unavailable: must not undo or hide the account change
        log.exception("could not queue a security notification")
