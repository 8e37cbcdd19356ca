"""Ways back in without a passkey: backup codes and email sign-in links; and verifying an email address.

Both lead to a *recovery* session, which can add a passkey but cannot change security settings until a
passkey has been used.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from passgate.core.errors import InvalidCode, InvalidLink, InvalidRequest, LinkOtherBrowser
from passgate.core.identifiers import normalize_identifier
from passgate.i18n import N_
from passgate.service import email_links, mail_queue, notify, ratelimit, sessions, webhooks
from passgate.service.accounts import clean_username, refuse_disabled
from passgate.service.context import Audit, Client, Context, audited, digest
from passgate.service.sessions import SignedIn, require_recent_passkey
from passgate.store.base import BackupCode, EmailPurpose, EmailToken, User

CODE_COUNT = 10
# No look-alike characters (0/o, 1/l/i): codes are read from paper and typed.
CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
CODE_LENGTH = 10  # about 50 bits each
# scrypt: deliberately slow, so a stolen table of hashes is expensive to guess against.
SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,252}\.[^@\s]{2,}$")
MAX_EMAIL = 254

CODE_ATTEMPTS_PER_USER = ratelimit.Limit(name="code-user", count=5, window_seconds=900)
CODE_ATTEMPTS_PER_IP = ratelimit.Limit(name="code-ip", count=20, window_seconds=900)
LINKS_PER_ADDRESS = ratelimit.Limit(name="link-address", count=3, window_seconds=900)
LINKS_PER_IP = ratelimit.Limit(name="link-ip", count=10, window_seconds=900)
VERIFICATIONS_PER_ADDRESS = ratelimit.Limit(name="verify-address", count=3, window_seconds=900)
# An account changes its address rarely; more than this is someone mailing strangers through it.
VERIFICATIONS_PER_ACCOUNT = ratelimit.Limit(name="verify-account", count=5, window_seconds=3600)
VERIFICATIONS_PER_IP = ratelimit.Limit(name="verify-ip", count=10, window_seconds=3600)


@dataclass(frozen=True, kw_only=True)
class Recovered:
    user: User
    session_token: str


def _normalize_code(code: str) -> str:
    return "".join(ch for ch in code.lower() if ch in CODE_ALPHABET)


def _hash_code(code: str, salt: bytes) -> bytes:
    return hashlib.scrypt(_normalize_code(code).encode(), salt=salt, **SCRYPT)


def _new_code() -> str:
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return f"{raw[:5]}-{raw[5:]}"


async def generate_codes(ctx: Context, client: Client, current: SignedIn) -> list[str]:
    """A new set of backup codes, shown once; the previous set stops working.

    Raises:
        StepUpRequired: no passkey used within the step-up window.
    """
    async with audited(ctx, client, "backup_codes.generate") as audit:
        audit.user_id = current.user.id
        await ratelimit.ceremony(ctx, client, "codes-generate", account=current.user.id)
        require_recent_passkey(ctx, current)
        salt = ctx.random(16)  # one salt per set: a sign-in hashes the typed code once, not once per code
        codes = [_new_code() for _ in range(CODE_COUNT)]
        now = ctx.clock()
        await ctx.storage.backup_codes.replace(
            current.user.id,
            [
                BackupCode(
                    user_id=current.user.id, number=number, code_hash=_hash_code(code, salt), salt=salt, created_at=now
                )
                for number, code in enumerate(codes)
            ],
        )
    return codes


async def codes_remaining(ctx: Context, user_id: str) -> int:
    return len(await ctx.storage.backup_codes.unused(user_id))


async def sign_in_with_code(ctx: Context, client: Client, username: object, code: object) -> Recovered:
    """Sign in with a backup code: a recovery session, meant for registering a new passkey.

    A refused attempt on an existing account is in that account's activity; the answer is the same as for
    an unknown username.

    Raises:
        RateLimited: too many attempts for this account or from this address.
        InvalidCode: unknown user, wrong code, or a code used before (one answer for all three).
    """
    name = clean_username(username)
    if not isinstance(code, str) or not 1 <= len(code) <= 64:
        raise InvalidRequest("code must be a string of at most 64 characters.")
    async with audited(ctx, client, "sign_in.backup_code") as audit:
        await ratelimit.check(ctx, CODE_ATTEMPTS_PER_IP, client.ip or "-")
        user = await ctx.storage.users.by_username(name)
        audit.user_id = user.id if user else None
        await ratelimit.check(ctx, CODE_ATTEMPTS_PER_USER, normalize_identifier(name))
        unused = await ctx.storage.backup_codes.unused(user.id) if user else []
        # Hash even when there is nothing to compare against, so timing does not tell accounts apart.
        typed = _hash_code(code, unused[0].salt if unused else ctx.random(16))
        match = None
        for candidate in unused:  # every candidate compared, in constant time
            if hmac.compare_digest(typed, candidate.code_hash):
                match = candidate
        if user is None or match is None:
            raise InvalidCode()
        refuse_disabled(user)  # only once the code is right, and the code stays unused
        used = webhooks.recovery_used(ctx, user.id, "backup_code")
        if not await ctx.storage.backup_codes.use(user.id, match.number, ctx.clock(), outbox=used):
            raise InvalidCode()  # used by a concurrent attempt
        webhooks.wake(ctx)
        token = await sessions.start(ctx, client, user.id, kind="recovery")
        audit.detail["codes_left"] = len(unused) - 1
    await notify.security_event(ctx, user, N_("A backup code was used to sign in to your account"), client.language)
    return Recovered(user=user, session_token=token)


def clean_email(value: object) -> str:
    """The address as typed, trimmed; its `normalize_identifier` form is what storage compares.

    Raises:
        InvalidRequest: not an email address, or longer than 254 characters (normalized form included).
    """
    if not isinstance(value, str) or len(value) > MAX_EMAIL or not EMAIL.match(value.strip()):
        raise InvalidRequest("Enter an email address such as name@example.com.")
    if len(normalize_identifier(value)) > MAX_EMAIL:
        raise InvalidRequest(f"email must be at most {MAX_EMAIL} characters once normalized.")
    return value.strip()


async def set_email(ctx: Context, client: Client, current: SignedIn, email: object) -> None:
    """Set the account's email address (unverified) and send a verification link.

    Raises:
        StepUpRequired, InvalidRequest, RateLimited.
    """
    address = clean_email(email)
    async with audited(ctx, client, "email.set") as audit:
        audit.user_id = current.user.id
        require_recent_passkey(ctx, current)
        await ratelimit.check(ctx, VERIFICATIONS_PER_IP, client.ip or "-")
        await ratelimit.check(ctx, VERIFICATIONS_PER_ACCOUNT, current.user.id)
        await ratelimit.check(ctx, VERIFICATIONS_PER_ADDRESS, normalize_identifier(address))
        await ctx.storage.users.set_email(current.user.id, address, verified_at=None)
        composed = await email_links.compose(ctx, current.user, address, "verify_email", None, client.language)
        await mail_queue.enqueue(ctx, composed.to, composed.subject, composed.text)


async def verify_email(ctx: Context, client: Client, token: object) -> User:
    """Mark the account's address verified: from now on it belongs to this account alone.

    Raises:
        InvalidLink: unknown, used, expired, or for an address the account no longer has.
        EmailTaken: another account verified this address first (nothing changes).
    """
    async with audited(ctx, client, "email.verify") as audit:
        await ratelimit.ceremony(ctx, client, "email-verify")
        stored = await _take(ctx, client, audit, token, "verify_email")
        user = await ctx.storage.users.get(stored.user_id)
        if user is None or user.email != stored.email:
            raise InvalidLink()
        refuse_disabled(user)
        await ctx.storage.users.set_email(user.id, stored.email, verified_at=ctx.clock())
        verified = await ctx.storage.users.get(user.id)
    assert verified is not None
    return verified


async def request_sign_in_link(ctx: Context, client: Client, email: object, browser: str) -> None:
    """Ask for a sign-in link by email, sent if the address is verified on an account. The caller answers the same
    either way.

    The request does the same work for every address: it queues one job, which the delivery worker turns into
    a link if the address is an account's (`email_links.fulfil_sign_in_link`) and drops otherwise. Nothing here
    looks the address up, so neither the answer's timing nor its event tells a known address from an unknown one.
    `browser` is the ceremony cookie's token: the link works in this browser only.

    Raises:
        InvalidRequest: not an email address. RateLimited: too many requests.
    """
    address = clean_email(email)
    async with audited(ctx, client, "sign_in_link.request"):
        await ratelimit.check(ctx, LINKS_PER_IP, client.ip or "-")
        await ratelimit.check(ctx, LINKS_PER_ADDRESS, normalize_identifier(address))
        job = email_links.LinkRequest.of(client, browser)
        await mail_queue.enqueue(ctx, address, "", job.dumps(), kind="sign_in_link")


async def sign_in_with_link(ctx: Context, client: Client, token: object) -> Recovered:
    """Raises InvalidLink, or LinkOtherBrowser (the link stays usable in the browser that asked for it)."""
    async with audited(ctx, client, "sign_in.email_link") as audit:
        await ratelimit.ceremony(ctx, client, "email-link")
        stored = await _take(ctx, client, audit, token, "sign_in")
        user = await ctx.storage.users.get(stored.user_id)
        if user is None or user.email != stored.email or user.email_verified_at is None:
            raise InvalidLink()
        refuse_disabled(user)
        token_ = await sessions.start(ctx, client, user.id, kind="recovery")
        audit.outbox = webhooks.recovery_used(ctx, user.id, "email_link")
    await notify.security_event(
        ctx, user, N_("An email sign-in link was used to sign in to your account"), client.language
    )
    return Recovered(user=user, session_token=token_)


async def _take(ctx: Context, client: Client, audit: Audit, token: object, purpose: EmailPurpose) -> EmailToken:
    """Use up a link, but only from the browser it is bound to: opened elsewhere, it stays for that browser."""
    if not isinstance(token, str) or not 16 <= len(token) <= 128:
        raise InvalidLink()
    token_hash = digest(token)
    browser = digest(client.browser_token) if client.browser_token else None
    stored = await ctx.storage.email_tokens.take(token_hash, purpose=purpose, browser=browser)
    if stored is None:
        held = await ctx.storage.email_tokens.get(token_hash)
        if held is not None and held.purpose == purpose and ctx.clock() < held.expires_at:
            audit.user_id = held.user_id
            raise LinkOtherBrowser()  # bound to another browser: take left it in place
        raise InvalidLink()
    audit.user_id = stored.user_id
    if ctx.clock() >= stored.expires_at:
        raise InvalidLink()
    return stored
