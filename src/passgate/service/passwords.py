"""Signing in with a password an account was imported with, while it moves to passkeys (`passwords = "migrate"`).

A password session proves a password and nothing more (`amr` ["pwd"], never a step-up): it may read its account and
add a passkey, and the page offers the passkey at once (a conditional create, passgate.service.registration). An
unknown username, an account without a password and a wrong password get the same answer after the same work (a
hash verification), so neither the answer nor its time tells which usernames exist or have a password.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from passgate.core.errors import (
    InvalidRequest,
    NoPassword,
    PasswordFormatUnknown,
    PasswordIncorrect,
    PasswordsOff,
    StepUpRequired,
)
from passgate.core.identifiers import normalize_identifier
from passgate.core.passwords import (
    MAX_PASSWORD_LENGTH,
    dummy_verify,
    hash_password,
    needs_rehash,
    scheme_of,
    verify_password,
)
from passgate.i18n import N_
from passgate.service import notify, ratelimit, sessions, webhooks
from passgate.service.accounts import clean_username, refuse_disabled
from passgate.service.context import Client, Context, audited, digest
from passgate.service.sessions import SignedIn, require_recent_passkey
from passgate.store.base import User

# Password attempts a minute for one username, whether or not it names an account: stricter than the ceremonies'
# budget (RelyingParty.rate_limit_per_account), as each attempt is a guess at a secret a person chose.
ATTEMPTS_PER_ACCOUNT = 5

log = logging.getLogger("passgate")


@dataclass(frozen=True, kw_only=True)
class SignedInWithPassword:
    user: User
    session_token: str
    rehashed: bool  # the stored hash was replaced by an argon2id one of the same password


def require_passwords(ctx: Context) -> None:
    """Raises PasswordsOff unless password sign-in is offered (`passwords = "migrate"`)."""
    if ctx.rp.passwords != "migrate":
        raise PasswordsOff()


async def available(ctx: Context, client: Client, username: object) -> bool:
    """Whether the sign-in page should ask for a password: True for an account with one, and for a username with no
    account (whose password then fails like a wrong one), so the answer tells no unknown name apart.

    Raises:
        PasswordsOff, InvalidRequest (a bad username), RateLimited.
    """
    require_passwords(ctx)
    name = clean_username(username)
    await ratelimit.ceremony(ctx, client, "password-available", account=normalize_identifier(name))
    user = await ctx.storage.users.by_username(name)
    return user is None or await ctx.storage.passwords.get(user.id) is not None


async def login(ctx: Context, client: Client, username: object, password: object) -> SignedInWithPassword:
    """Check the password and start a password session (rotating the browser's previous one); a hash of an older
    scheme or older parameters is replaced by an argon2id hash of the same password.

    Recorded as a "password.sign_in" event (never with the password or a hash).

    Raises:
        PasswordsOff, InvalidRequest (a bad username or password), RateLimited (per address, and
        ATTEMPTS_PER_ACCOUNT a minute per username), PasswordIncorrect (unknown user, no password or a wrong one).
    """
    require_passwords(ctx)
    async with audited(ctx, client, "password.sign_in") as audit:
        audit.failure_outbox = lambda code: (
            [] if code == "rate_limited" else webhooks.signin_failed(ctx, audit.user_id, None, code, method="password")
        )
        name = clean_username(username)
        if not isinstance(password, str) or not password:
            raise InvalidRequest("password is required.")
        if len(password) > MAX_PASSWORD_LENGTH:
            raise InvalidRequest(f"password must be at most {MAX_PASSWORD_LENGTH} characters.")
        identifier = normalize_identifier(name)  # the look-up's form: every spelling of a name shares one budget
        await ratelimit.ceremony(ctx, client, "password-login")
        if ctx.rp.rate_limit_per_account:
            limit = ratelimit.Limit(name="password-login-account", count=ATTEMPTS_PER_ACCOUNT, window_seconds=60)
            await ratelimit.check(ctx, limit, identifier)
        user = await ctx.storage.users.by_username(name)
        stored = await ctx.storage.passwords.get(user.id) if user is not None else None
        if user is None or stored is None:
            audit.detail["cause"] = "unknown_user" if user is None else "no_password"
            if user is not None:
                audit.user_id = user.id
            await asyncio.to_thread(dummy_verify, password)  # costs what a wrong password costs
            raise PasswordIncorrect()
        audit.user_id = user.id
        try:
            matches = await asyncio.to_thread(verify_password, stored.hash, password)
        except PasswordFormatUnknown:
            # Imports refuse such hashes, so the stored one was changed since: the server's fault, never the
            # person's, and never an answer that tells this account from the others.
            log.warning("the stored password hash of account %s is in no format Passgate verifies", user.id)
            audit.detail["cause"] = "stored_hash_unreadable"
            await asyncio.to_thread(dummy_verify, password)
            raise PasswordIncorrect() from None
        if not matches:
            audit.detail["cause"] = "wrong_password"
            raise PasswordIncorrect()
        refuse_disabled(user)  # only once the password is right: the answer tells nobody else the account's state
        rehashed = False
        if needs_rehash(stored.hash):
            old_scheme = scheme_of(stored.hash)
            new_hash = await asyncio.to_thread(hash_password, password)
            # Compare-and-set: a concurrent sign-in (or removal) that changed the hash first wins.
            rehashed = await ctx.storage.passwords.rehash(
                user.id, old_hash=stored.hash, new_hash=new_hash, at=ctx.clock()
            )
            if rehashed:
                audit.detail.update({"rehashed": True, "old_scheme": old_scheme})
        token = await sessions.start(ctx, client, user.id, kind="password")
        audit.outbox = webhooks.signin_succeeded(ctx, user.id, None, digest(token))
    return SignedInWithPassword(user=user, session_token=token, rehashed=rehashed)


async def has_password(ctx: Context, user_id: str) -> bool:
    return await ctx.storage.passwords.get(user_id) is not None


async def remove(ctx: Context, client: Client, current: SignedIn) -> None:
    """Remove the account's password: it no longer signs in, and its password sessions end (sessions.resolve).

    Raises:
        PasswordsOff.
        StepUpRequired: no passkey used within the step-up window (a password session never has one).
        NoPassword: the account has none.
    """
    require_passwords(ctx)
    async with audited(ctx, client, "password.removed") as audit:
        audit.user_id = current.user.id
        if current.session.kind == "password":
            raise StepUpRequired()  # a password cannot vouch for removing itself
        require_recent_passkey(ctx, current)
        if not await ctx.storage.passwords.remove(current.user.id):
            raise NoPassword()
    await notify.security_event(ctx, current.user, N_("The password was removed from your account"), client.language)
