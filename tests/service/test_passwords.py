"""Password sign-in for imported accounts: every scheme signs in and is rehashed to argon2id, the refusals look and
cost alike, attempts are counted, and a password session may do little more than add a passkey."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import logging
import secrets
import statistics
import time
from typing import Any

import bcrypt
import pytest

from passgate.core.errors import (
    NoPassword,
    PasswordIncorrect,
    PasswordsOff,
    RateLimited,
    StepUpRequired,
)
from passgate.core.passwords import hash_password, needs_rehash, verify_password
from passgate.core.policy import Policy
from passgate.service import account, passwords, recovery, registration, sessions
from passgate.service.context import Client, Context, RelyingParty, digest
from passgate.store.base import StoredPassword, User
from passgate.store.memory import memory_storage
from passgate.testing import SoftwareAuthenticator
from tests.clock import Clock

ORIGIN = "http://localhost:8000"
PASSWORD = "correct horse battery staple"
BROWSER = Client(ip="192.0.2.10", browser_token="browser-one", user_agent="test")


def make_ctx(clock: Clock | None = None, **rp: Any) -> Context:
    relying_party = RelyingParty(
        rp_id="localhost", rp_name="Passgate", origins=(ORIGIN,), policy=Policy(), passwords="migrate", **rp
    )
    return Context(rp=relying_party, storage=memory_storage(), clock=clock or Clock())


@pytest.fixture
def ctx() -> Context:
    return make_ctx()


def bcrypt_hash(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()


def django_hash(password: str, iterations: int = 1000) -> str:
    """Django's PBKDF2PasswordHasher format: pbkdf2_sha256$iterations$salt$base64(hash)."""
    salt = secrets.token_hex(8)
    derived = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), iterations)
    return f"pbkdf2_sha256${iterations}${salt}${base64.b64encode(derived).decode()}"


async def imported(ctx: Context, username: str, password_hash: str | None, *, email: str | None = None) -> User:
    """An account imported with this password hash (or none), and a verified address when `email` is given."""
    now = ctx.clock()
    user = User(
        id=secrets.token_urlsafe(9),
        username=username,
        display_name=username.title(),
        user_handle=secrets.token_bytes(32),
        created_at=now,
        email=email,
        email_verified_at=now if email else None,
    )
    stored = None
    if password_hash is not None:
        stored = StoredPassword(user_id=user.id, hash=password_hash, created_at=now, updated_at=now)
    await ctx.storage.users.create_imported(user, [], stored)
    return user


async def signed_in(ctx: Context, token: str) -> sessions.SignedIn:
    current = await sessions.resolve(ctx, token)
    assert current is not None
    return current


@pytest.mark.parametrize(("scheme", "make_hash"), [("bcrypt", bcrypt_hash), ("django", django_hash)])
async def test_an_older_scheme_signs_in_and_is_rehashed_to_argon2id(ctx: Context, scheme: str, make_hash: Any) -> None:
    old = make_hash(PASSWORD)
    user = await imported(ctx, "Ada", old)
    result = await passwords.login(ctx, BROWSER, "ada", PASSWORD)
    assert result.user.id == user.id and result.rehashed
    stored = await ctx.storage.passwords.get(user.id)
    assert stored is not None and stored.hash.startswith("$argon2id$") and stored.hash != old
    assert not needs_rehash(stored.hash) and verify_password(stored.hash, PASSWORD)
    [event] = await ctx.storage.events.list(user_id=user.id, limit=10)
    assert (event.type, event.outcome, event.user_id) == ("password.sign_in", "success", user.id)
    assert event.detail["rehashed"] is True and event.detail["old_scheme"] not in (None, "", "argon2id")
    # and the new hash signs in too, without another rehash
    again = await passwords.login(ctx, BROWSER, "ADA", PASSWORD)
    assert not again.rehashed
    assert (await ctx.storage.passwords.get(user.id)) == stored


async def test_a_current_argon2id_hash_signs_in_and_is_kept(ctx: Context) -> None:
    current = hash_password(PASSWORD)
    user = await imported(ctx, "grace", current)
    result = await passwords.login(ctx, BROWSER, "grace", PASSWORD)
    assert not result.rehashed
    stored = await ctx.storage.passwords.get(user.id)
    assert stored is not None and stored.hash == current
    [event] = await ctx.storage.events.list(user_id=user.id, limit=10)
    assert "rehashed" not in event.detail


async def test_a_password_sign_in_opens_a_password_session(ctx: Context) -> None:
    user = await imported(ctx, "grace", hash_password(PASSWORD))
    result = await passwords.login(ctx, BROWSER, "grace", PASSWORD)
    current = await signed_in(ctx, result.session_token)
    assert current.user.id == user.id
    assert current.session.kind == "password" and current.session.authenticated_at is None
    assert current.session.created_at == ctx.clock()
    assert (await sessions.assurance_of(ctx, current.session)).amr == ("pwd",)


async def test_unknown_user_no_password_and_wrong_password_are_one_answer(ctx: Context) -> None:
    await imported(ctx, "grace", hash_password(PASSWORD))
    nopass = await imported(ctx, "linus", None)
    refusals = []
    for username, password in (("nobody", PASSWORD), ("linus", PASSWORD), ("grace", "wrong password")):
        with pytest.raises(PasswordIncorrect) as refused:
            await passwords.login(ctx, BROWSER, username, password)
        refusals.append((type(refused.value), refused.value.code, refused.value.message))
    assert len(set(refusals)) == 1 and refusals[0][1] == "password_incorrect"
    events = sorted(await ctx.storage.events.list(limit=10), key=lambda e: e.detail["cause"])
    refused = ("password.sign_in", "failure", "password_incorrect")
    assert [(e.type, e.outcome, e.reason) for e in events] == [refused] * 3
    assert {e.detail["cause"]: e.user_id for e in events} == {
        "no_password": nopass.id,
        "unknown_user": None,  # an unknown name is no account's event
        "wrong_password": events[2].user_id,
    }
    assert events[2].user_id is not None


async def test_a_stored_hash_no_scheme_reads_fails_like_a_wrong_password(
    ctx: Context, caplog: pytest.LogCaptureFixture
) -> None:
    """Imports refuse such hashes; one changed since is the server's fault, and answers as any refusal does."""
    user = await imported(ctx, "grace", "$argon2id$v=19$not-a-hash")
    with pytest.raises(PasswordIncorrect):
        await passwords.login(ctx, BROWSER, "grace", PASSWORD)
    [event] = await ctx.storage.events.list(user_id=user.id, limit=10)
    assert (event.reason, event.detail["cause"]) == ("password_incorrect", "stored_hash_unreadable")
    assert "not-a-hash" not in caplog.text and user.id in caplog.text


async def test_an_unknown_user_costs_what_a_wrong_password_costs() -> None:
    """The dummy verification has the current argon2id parameters, as the account's hash does: the medians of
    several attempts stay within a factor of three of each other."""
    ctx = make_ctx(rate_limit_per_account=0, rate_limit_per_ip=0)
    await imported(ctx, "grace", hash_password(PASSWORD))

    async def seconds(username: str) -> float:
        started = time.perf_counter()
        with pytest.raises(PasswordIncorrect):
            await passwords.login(ctx, BROWSER, username, "not the password")
        return time.perf_counter() - started

    unknown, wrong = [], []
    for attempt in range(7):  # interleaved, so load on the machine weighs on both alike
        unknown.append(await seconds(f"nobody-{attempt}"))
        wrong.append(await seconds("grace"))
    ratio = statistics.median(unknown) / statistics.median(wrong)
    assert 1 / 3 < ratio < 3, (unknown, wrong)


async def test_the_sixth_attempt_a_minute_for_one_account_is_refused_even_with_the_password() -> None:
    clock = Clock()
    ctx = make_ctx(clock)
    await imported(ctx, "grace", hash_password(PASSWORD))
    for attempt in range(passwords.ATTEMPTS_PER_ACCOUNT):
        client = Client(ip=f"192.0.2.{attempt}")  # from many addresses: the account's budget still runs out
        with pytest.raises(PasswordIncorrect):
            await passwords.login(ctx, client, "Grace" if attempt % 2 else "grace", "guess")
    with pytest.raises(RateLimited):
        await passwords.login(ctx, Client(ip="198.51.100.1"), "grace", PASSWORD)
    clock.advance(minutes=1)
    assert (await passwords.login(ctx, BROWSER, "grace", PASSWORD)).user.username == "grace"


async def test_attempts_on_an_unknown_name_are_counted_alike(ctx: Context) -> None:
    for _ in range(passwords.ATTEMPTS_PER_ACCOUNT):
        with pytest.raises(PasswordIncorrect):
            await passwords.login(ctx, BROWSER, "nobody", "guess")
    with pytest.raises(RateLimited):
        await passwords.login(ctx, BROWSER, "nobody", "guess")


async def test_attempts_are_limited_per_address() -> None:
    ctx = make_ctx(rate_limit_per_ip=3)
    await imported(ctx, "grace", hash_password(PASSWORD))
    for name in ("a", "b", "c"):
        with pytest.raises(PasswordIncorrect):
            await passwords.login(ctx, BROWSER, name, "guess")
    with pytest.raises(RateLimited):
        await passwords.login(ctx, BROWSER, "grace", PASSWORD)
    assert (await passwords.login(ctx, Client(ip="198.51.100.7"), "grace", PASSWORD)).user.username == "grace"


async def test_available_answers_true_for_unknown_names_and_password_accounts(ctx: Context) -> None:
    await imported(ctx, "grace", hash_password(PASSWORD))
    await imported(ctx, "linus", None)
    assert await passwords.available(ctx, BROWSER, "GRACE") is True
    assert await passwords.available(ctx, BROWSER, "nobody") is True
    assert await passwords.available(ctx, BROWSER, "linus") is False


async def test_with_passwords_off_nothing_signs_in_and_password_sessions_end() -> None:
    ctx = make_ctx()
    await imported(ctx, "grace", hash_password(PASSWORD))
    token = (await passwords.login(ctx, BROWSER, "grace", PASSWORD)).session_token
    off = dataclasses.replace(ctx, rp=dataclasses.replace(ctx.rp, passwords="off"))
    with pytest.raises(PasswordsOff):
        await passwords.login(off, BROWSER, "grace", PASSWORD)
    with pytest.raises(PasswordsOff):
        await passwords.available(off, BROWSER, "grace")
    assert await sessions.resolve(off, token) is None
    assert await ctx.storage.sessions.get(digest(token)) is None  # ended, not just ignored
    assert await sessions.resolve(ctx, token) is None


async def test_a_password_session_may_add_a_passkey_without_step_up_and_stays_a_password_session(
    ctx: Context,
) -> None:
    user = await imported(ctx, "grace", hash_password(PASSWORD))
    token = (await passwords.login(ctx, BROWSER, "grace", PASSWORD)).session_token
    client = dataclasses.replace(BROWSER, session_token=token)
    options, browser = await registration.begin(ctx, client, signed_in=await signed_in(ctx, token))
    client = dataclasses.replace(client, browser_token=browser)
    response = SoftwareAuthenticator().create(options, origin=ORIGIN)
    added = await registration.complete(ctx, client, response, signed_in=await signed_in(ctx, token))
    assert added.user.id == user.id and added.credential.created_by == "registration"
    after = await signed_in(ctx, token)
    assert after.session.kind == "password" and after.session.authenticated_at is None


async def test_a_password_session_can_change_nothing_sensitive(ctx: Context) -> None:
    authenticator = SoftwareAuthenticator()
    await imported(ctx, "grace", hash_password(PASSWORD))
    token = (await passwords.login(ctx, BROWSER, "grace", PASSWORD)).session_token
    client = dataclasses.replace(BROWSER, session_token=token)
    options, browser = await registration.begin(ctx, client, signed_in=await signed_in(ctx, token))
    client = dataclasses.replace(client, browser_token=browser)
    response = authenticator.create(options, origin=ORIGIN)
    added = await registration.complete(ctx, client, response, signed_in=await signed_in(ctx, token))
    current = await signed_in(ctx, token)
    with pytest.raises(StepUpRequired):
        await account.remove(ctx, client, current, added.credential.credential_id)
    with pytest.raises(StepUpRequired):
        await recovery.set_email(ctx, client, current, "grace@example.com")
    with pytest.raises(StepUpRequired):
        await recovery.generate_codes(ctx, client, current)
    with pytest.raises(StepUpRequired):
        await passwords.remove(ctx, client, current)
    assert len(await ctx.storage.credentials.list_for_user(current.user.id)) == 1
    assert await ctx.storage.passwords.get(current.user.id) is not None


async def passkey_session(ctx: Context, user: User) -> sessions.SignedIn:
    """A session whose passkey was used just now (as after a step-up)."""
    token = await sessions.start(ctx, Client(), user.id, "passkey", credential_id=b"k" * 16, user_verified=True)
    return await signed_in(ctx, token)


async def test_removing_the_password(ctx: Context) -> None:
    user = await imported(ctx, "grace", hash_password(PASSWORD), email="grace@example.com")
    password_token = (await passwords.login(ctx, BROWSER, "grace", PASSWORD)).session_token
    await passwords.remove(ctx, BROWSER, await passkey_session(ctx, user))
    assert await ctx.storage.passwords.get(user.id) is None
    with pytest.raises(PasswordIncorrect):  # like a wrong password
        await passwords.login(ctx, BROWSER, "grace", PASSWORD)
    assert await sessions.resolve(ctx, password_token) is None  # whoever knew the password is signed out
    events = [e for e in await ctx.storage.events.list(user_id=user.id, limit=10) if e.type == "password.removed"]
    assert [(e.outcome, e.reason) for e in events] == [("success", None)]
    [mail] = await ctx.storage.mail.list()
    assert mail.recipient == "grace@example.com" and "The password was removed from your account" in mail.subject
    with pytest.raises(NoPassword):
        await passwords.remove(ctx, BROWSER, await passkey_session(ctx, user))


async def test_removing_the_password_needs_a_recent_passkey() -> None:
    clock = Clock()
    ctx = make_ctx(clock)
    user = await imported(ctx, "grace", hash_password(PASSWORD))
    current = await passkey_session(ctx, user)
    clock.advance(minutes=6)
    with pytest.raises(StepUpRequired):
        await passwords.remove(ctx, BROWSER, current)
    assert await ctx.storage.passwords.get(user.id) is not None


async def test_no_event_or_log_holds_the_password_or_a_hash(ctx: Context, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    old = bcrypt_hash(PASSWORD)
    user = await imported(ctx, "grace", old)
    with pytest.raises(PasswordIncorrect):
        await passwords.login(ctx, BROWSER, "grace", "a wrong guess")
    await passwords.login(ctx, BROWSER, "grace", PASSWORD)
    stored = await ctx.storage.passwords.get(user.id)
    assert stored is not None and stored.hash != old
    secrets_ = (PASSWORD, "a wrong guess", old, stored.hash)
    events = await ctx.storage.events.list(limit=10)
    assert len(events) == 2
    for event in events:
        text = repr(event)
        assert not any(secret in text for secret in secrets_), text
    assert not any(secret in caplog.text for secret in secrets_)
