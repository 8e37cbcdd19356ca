"""The upgrade: right after a password sign-in, a conditional create may come back with neither user presence nor
user verification, and is accepted for that challenge only."""

from __future__ import annotations

import dataclasses

import pytest

from passgate.core.encoding import b64url_encode
from passgate.core.errors import ChallengeMismatch, UpgradeNotAllowed, UserNotPresent, UserNotVerified
from passgate.core.options import creation_options
from passgate.core.passwords import hash_password
from passgate.core.policy import Policy
from passgate.core.registration import verify_registration
from passgate.service import authentication, passwords, registration, sessions
from passgate.service.context import Client, Context
from passgate.store.base import User
from passgate.testing import SoftwareAuthenticator, SoftwareAuthenticatorError
from tests.service.test_passwords import ORIGIN, PASSWORD, Clock, imported, make_ctx, signed_in


def silent() -> SoftwareAuthenticator:
    """What a browser's conditional create may give: no prompt, so neither UP nor UV."""
    return SoftwareAuthenticator(user_present=False, user_verified=False)


@dataclasses.dataclass
class Browser:
    """One browser: its ceremony binding and its session."""

    client: Client

    async def current(self, ctx: Context) -> sessions.SignedIn:
        return await signed_in(ctx, self.client.session_token or "")

    async def begin(self, ctx: Context, **options: bool) -> dict[str, object]:
        created, binding = await registration.begin(ctx, self.client, signed_in=await self.current(ctx), **options)
        self.client = dataclasses.replace(self.client, browser_token=binding)
        return created

    async def complete(self, ctx: Context, response: dict[str, object]) -> registration.Registered:
        return await registration.complete(ctx, self.client, response, signed_in=await self.current(ctx))


async def password_browser(ctx: Context, username: str = "grace", ip: str = "192.0.2.1") -> Browser:
    client = Client(ip=ip)
    result = await passwords.login(ctx, client, username, PASSWORD)
    return Browser(client=dataclasses.replace(client, session_token=result.session_token))


async def grace(ctx: Context) -> User:
    user = await ctx.storage.users.by_username("grace")
    assert user is not None
    return user


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def ctx(clock: Clock) -> Context:
    ctx = make_ctx(clock)
    await imported(ctx, "grace", hash_password(PASSWORD), email="grace@example.com")
    return ctx


async def test_a_silent_passkey_is_accepted_on_the_upgrade_challenge(ctx: Context) -> None:
    browser = await password_browser(ctx)
    options = await browser.begin(ctx, conditional=True)
    added = await browser.complete(ctx, silent().create(options, origin=ORIGIN))
    assert added.credential.created_by == "upgrade" and not added.credential.user_verified
    stored = await ctx.storage.credentials.get(added.credential.credential_id)
    assert stored is not None and stored.created_by == "upgrade"
    [event] = [e for e in await ctx.storage.events.list(limit=10) if e.type == "passkey.register"]
    assert (event.outcome, event.detail) == ("success", {"upgrade": True})
    [mail] = await ctx.storage.mail.list()
    assert "A passkey was added to your account after a password sign-in" in mail.subject
    current = await browser.current(ctx)  # still a password session: a silent passkey proves no more
    assert current.session.kind == "password" and current.session.authenticated_at is None


async def test_the_upgrade_excludes_the_accounts_passkeys(ctx: Context) -> None:
    authenticator = SoftwareAuthenticator()
    browser = await password_browser(ctx)
    first = await browser.complete(ctx, authenticator.create(await browser.begin(ctx), origin=ORIGIN))
    options = await browser.begin(ctx, conditional=True)
    excluded = [d["id"] for d in options["excludeCredentials"]]  # type: ignore[attr-defined]
    assert excluded == [b64url_encode(first.credential.credential_id)]
    with pytest.raises(SoftwareAuthenticatorError) as refused:
        authenticator.create(options, origin=ORIGIN)
    assert refused.value.code == "already_registered"


async def test_a_normal_registration_by_the_password_session_needs_user_presence(ctx: Context) -> None:
    browser = await password_browser(ctx)
    options = await browser.begin(ctx)
    with pytest.raises(UserNotPresent):
        await browser.complete(ctx, silent().create(options, origin=ORIGIN))


async def test_a_passkey_sessions_registration_needs_user_presence(ctx: Context) -> None:
    user = await grace(ctx)
    token = await sessions.start(ctx, Client(), user.id, "passkey", credential_id=b"k" * 16)
    browser = Browser(client=Client(session_token=token))
    with pytest.raises(UpgradeNotAllowed):
        await browser.begin(ctx, conditional=True)
    options = await browser.begin(ctx)
    with pytest.raises(UserNotPresent):
        await browser.complete(ctx, silent().create(options, origin=ORIGIN))


async def test_the_upgrade_is_offered_only_within_the_window(ctx: Context, clock: Clock) -> None:
    browser = await password_browser(ctx)
    clock.advance(seconds=ctx.rp.upgrade_window.total_seconds() + 1)
    with pytest.raises(UpgradeNotAllowed):
        await browser.begin(ctx, conditional=True)


async def test_an_upgrade_begun_in_the_window_completes_while_its_challenge_lives(ctx: Context, clock: Clock) -> None:
    """The window bounds when a silent creation may start; the challenge's own lifetime bounds the rest."""
    browser = await password_browser(ctx)
    clock.advance(minutes=4)
    options = await browser.begin(ctx, conditional=True)
    clock.advance(minutes=2)  # past the window, within the challenge's five minutes
    added = await browser.complete(ctx, silent().create(options, origin=ORIGIN))
    assert added.credential.created_by == "upgrade"


async def test_the_upgrade_challenge_is_bound_to_its_browser_and_session(ctx: Context) -> None:
    browser = await password_browser(ctx)
    options = await browser.begin(ctx, conditional=True)
    response = silent().create(options, origin=ORIGIN)
    # another browser signed in to the same account, with its own binding
    other = await password_browser(ctx, ip="192.0.2.2")
    other.client = dataclasses.replace(other.client, browser_token="another-browser")
    with pytest.raises(ChallengeMismatch):
        await other.complete(ctx, response)
    # the same browser's binding, but a session opened since (another password sign-in)
    options = await browser.begin(ctx, conditional=True)
    response = silent().create(options, origin=ORIGIN)
    again = await passwords.login(ctx, browser.client, "grace", PASSWORD)
    browser.client = dataclasses.replace(browser.client, session_token=again.session_token)
    with pytest.raises(ChallengeMismatch):
        await browser.complete(ctx, response)
    assert await ctx.storage.credentials.list_for_user((await browser.current(ctx)).user.id) == []


async def test_the_upgrade_needs_a_password_sign_in(ctx: Context) -> None:
    with pytest.raises(UpgradeNotAllowed):
        await registration.begin(ctx, Client(), signed_in=None, conditional=True)
    token = await sessions.start(ctx, Client(), (await grace(ctx)).id, "recovery")
    with pytest.raises(UpgradeNotAllowed):
        await Browser(client=Client(session_token=token)).begin(ctx, conditional=True)


async def test_signing_in_without_user_presence_is_still_refused(ctx: Context) -> None:
    authenticator = silent()
    browser = await password_browser(ctx)
    await browser.complete(ctx, authenticator.create(await browser.begin(ctx, conditional=True), origin=ORIGIN))
    options, binding = await authentication.begin(ctx, Client(), username="grace")
    with pytest.raises(UserNotPresent):
        await authentication.complete(ctx, Client(browser_token=binding), authenticator.get(options, origin=ORIGIN))


@pytest.mark.parametrize(("present", "verified"), [(False, False), (True, False), (False, True)])
def test_verify_registration_skips_presence_and_verification_only_when_told(present: bool, verified: bool) -> None:
    """Even a policy that requires user verification takes a conditional create's response without it."""
    policy = Policy(user_verification="required")
    challenge = bytes(range(32))
    options = creation_options(
        rp_id="localhost",
        rp_name="Passgate",
        user_handle=b"u" * 32,
        username="grace",
        display_name="Grace",
        challenge=challenge,
        policy=policy,
    )
    response = SoftwareAuthenticator(user_present=present, user_verified=verified).create(options, origin=ORIGIN)

    def verify(**presence: bool) -> bool:
        registered = verify_registration(
            response,
            expected_challenge=challenge,
            expected_rp_id="localhost",
            expected_origins=[ORIGIN],
            policy=policy,
            **presence,
        )
        return registered.user_verified

    with pytest.raises(UserNotPresent if not present else UserNotVerified):
        verify()
    assert verify(require_user_presence=False) is verified
