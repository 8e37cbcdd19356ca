"""Links sent by email: the single-use token and the message that carries it; and the delivery worker's half of a
sign-in link request.

A sign-in link request is answered after storing one queue job, whatever the address (`service.recovery`); the
worker looks the address up afterwards, so the answer's timing and the request's storage work tell nobody whether
the address has an account.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from passgate import i18n
from passgate.core.encoding import b64url_decode, b64url_encode
from passgate.service.context import Audit, Client, Context, digest, event_of
from passgate.store.base import EmailPurpose, EmailToken, User

MAX_USER_AGENT = 512  # as much of it as an event keeps


@dataclass(frozen=True, kw_only=True)
class Composed:
    """A message ready to queue; its link's token is stored (as its hash) already."""

    to: str
    subject: str
    text: str


async def compose(
    ctx: Context, user: User, email: str, purpose: EmailPurpose, browser: bytes | None, language: str = "en"
) -> Composed:
    """Store a new single-use token for `purpose` and write the message that carries its link to `email`, in
    `language` (passgate.i18n).

    `browser` is the digest of the ceremony cookie the link is bound to (None: any browser).
    """
    token = b64url_encode(ctx.random(32))
    ttl = ctx.rp.email_verification_ttl if purpose == "verify_email" else ctx.rp.magic_link_ttl
    now = ctx.clock()
    await ctx.storage.email_tokens.put(
        EmailToken(
            token_hash=digest(token),
            purpose=purpose,
            user_id=user.id,
            email=email,
            browser=browser,
            created_at=now,
            expires_at=now + ttl,
        )
    )
    minutes = int(ttl.total_seconds() // 60)
    translations = i18n.translator(language)
    _, ngettext = translations.gettext, translations.ngettext
    if purpose == "verify_email":
        # The address is not verified yet: it may be anyone's. Nothing the requester chose goes into the message
        # (no display name, no username), so the confirmation cannot carry someone's words to a stranger.
        link = f"{ctx.rp.public_url}/email/verify?token={token}"
        hours = minutes // 60
        values = {"site": ctx.rp.rp_name, "url": ctx.rp.public_url, "hours": i18n.format_number(hours, language)}
        subject = _("%(site)s: confirm your email address") % values
        paragraphs = [
            _("Hello,"),
            _("Someone asked to use this address for an account at %(url)s. If that was you, confirm it:") % values,
            link,
            ngettext(
                "The link works once, for %(hours)s hour. If you did not ask for this, ignore this message: the "
                "address is not used until it is confirmed.",
                "The link works once, for %(hours)s hours. If you did not ask for this, ignore this message: the "
                "address is not used until it is confirmed.",
                hours,
            )
            % values,
        ]
    else:
        link = f"{ctx.rp.public_url}/recover/email?token={token}"
        values = {
            "site": ctx.rp.rp_name,
            "name": user.display_name,
            "username": user.username,
            "minutes": i18n.format_number(minutes, language),
        }
        subject = _("%(site)s: your sign-in link") % values
        paragraphs = [
            _("Hello %(name)s,") % values,
            _("Sign in to your account (%(username)s) with this link, in the browser where you asked for it:") % values,
            link,
            ngettext(
                "The link works once, for %(minutes)s minute. Then add a new passkey. If you did not ask for this, "
                "ignore this message: nobody can use the link without access to your email.",
                "The link works once, for %(minutes)s minutes. Then add a new passkey. If you did not ask for this, "
                "ignore this message: nobody can use the link without access to your email.",
                minutes,
            )
            % values,
        ]
    return Composed(to=email, subject=subject, text="\n\n".join(paragraphs) + "\n")


@dataclass(frozen=True, kw_only=True)
class LinkRequest:
    """What a sign-in link request hands to the worker, sealed in its job: the browser's binding and who asked."""

    browser: bytes  # the digest of the asking browser's ceremony cookie
    ip: str | None
    user_agent: str | None
    language: str = "en"  # of the page that asked: the message is written in it

    @classmethod
    def of(cls, client: Client, browser: str) -> LinkRequest:
        return cls(
            browser=digest(browser),
            ip=client.ip,
            user_agent=(client.user_agent or "")[:MAX_USER_AGENT] or None,
            language=client.language,
        )

    def dumps(self) -> str:
        return json.dumps(
            {
                "browser": b64url_encode(self.browser),
                "ip": self.ip,
                "user_agent": self.user_agent,
                "language": self.language,
            }
        )

    @classmethod
    def loads(cls, text: str) -> LinkRequest:
        fields = json.loads(text)
        return cls(
            browser=b64url_decode(fields["browser"]),
            ip=fields["ip"],
            user_agent=fields["user_agent"],
            # Jobs queued before languages were written in English.
            language=i18n.supported(fields.get("language")) or "en",
        )


async def fulfil_sign_in_link(ctx: Context, address: str, request: LinkRequest) -> Composed | None:
    """The worker's half of a sign-in link request: a link for the account whose verified address `address` is,
    recorded in that account's activity as sent (from the IP address and browser that asked); None for an address
    no account has verified. Storage errors propagate (the job is tried again)."""
    user = await ctx.storage.users.by_email(address)
    if user is None or user.email is None:  # by_email finds verified addresses only
        return None
    if user.disabled_at is not None:  # no way in for a disabled account: the request is dropped as unknown
        return None
    composed = await compose(ctx, user, user.email, "sign_in", request.browser, request.language)
    asker = Client(ip=request.ip, user_agent=request.user_agent)
    sent = Audit(type="sign_in_link.sent", user_id=user.id)
    await ctx.storage.events.record(event_of(ctx, asker, sent, outcome="success", reason=None))
    return composed
