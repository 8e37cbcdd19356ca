"""What every use case needs: the relying party, storage, a clock and a source of randomness."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from passgate import metrics
from passgate.core.errors import ChallengeNotFound, PasskeyError
from passgate.core.mds import MetadataCache, MetadataEntry
from passgate.core.oidc_clients import OidcClient
from passgate.core.policy import Policy
from passgate.core.webhooks import RETRY_SECONDS
from passgate.service.keys import Keyring
from passgate.service.mail import Mailer, OutboxMailer
from passgate.store.base import Event, Spend, Storage, WebhookEvent


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, kw_only=True)
class RelyingParty:
    rp_id: str
    rp_name: str
    origins: tuple[str, ...]
    policy: Policy
    challenge_ttl: timedelta = timedelta(minutes=5)
    session_idle: timedelta = timedelta(hours=12)
    session_absolute: timedelta = timedelta(days=7)
    step_up_window: timedelta = timedelta(minutes=5)
    magic_link_ttl: timedelta = timedelta(minutes=15)
    email_verification_ttl: timedelta = timedelta(hours=24)
    public_url: str = "http://localhost:8000"  # where links in emails point
    cors_origins: tuple[str, ...] = ()  # pages of other origins that call the first-party API with cookies
    rate_limit_per_ip: int = 300  # ceremony steps per minute from one address (0: no limit)
    rate_limit_per_account: int = 30  # ceremony steps per minute for one account (0: no limit)
    session_token_audience: str = ""  # the `aud` of session tokens; empty: the issuer (public_url)
    passwords: Literal["off", "migrate"] = "off"  # password sign-in for imported accounts, while they move
    # How long after a password sign-in the session may ask for a conditional create (the upgrade to a passkey).
    upgrade_window: timedelta = timedelta(minutes=5)
    secret_key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)


@dataclass(frozen=True, kw_only=True)
class WebhookOptions:
    """How this node delivers webhooks (passgate.service.webhooks)."""

    allow_private: bool = False  # private, loopback, link-local... addresses refused unless True
    timeout_seconds: float = 10.0  # to connect, and again to send and to read
    retry_seconds: tuple[float, ...] = RETRY_SECONDS


@dataclass
class OriginsCache:
    """This process's copy of the apps' origins (passgate.service.cors), and until when (time.monotonic) it holds."""

    origins: frozenset[str] = frozenset()
    until: float = 0.0


@dataclass(frozen=True, kw_only=True)
class Context:
    rp: RelyingParty
    storage: Storage
    mailer: Mailer = field(default_factory=lambda: OutboxMailer(directory=Path("outbox"), sender="passgate@localhost"))
    # Set when mail is queued: wakes this node's delivery worker at once.
    mail_ready: asyncio.Event = field(default_factory=asyncio.Event)
    clock: Callable[[], datetime] = utcnow
    random: Callable[[int], bytes] = secrets.token_bytes
    metadata: MetadataCache = field(default_factory=MetadataCache)  # FIDO metadata, when configured
    # OpenID Connect clients of the configuration file ([[oidc.clients]]), by client_id: never stored, and they
    # win over stored clients.
    file_clients: Mapping[str, OidcClient] = field(default_factory=dict)
    keyring: Keyring = field(default_factory=Keyring)  # this process's copy of the signing keys
    app_origins: OriginsCache = field(default_factory=OriginsCache)
    webhooks: WebhookOptions = field(default_factory=WebhookOptions)
    # Set when webhook events are queued: wakes this node's webhook delivery worker at once.
    webhooks_ready: asyncio.Event = field(default_factory=asyncio.Event)

    def models(self) -> Mapping[str, MetadataEntry]:
        """FIDO metadata entries by AAGUID (empty without metadata)."""
        return self.metadata.current.entries if self.metadata.current else {}


@dataclass(frozen=True, kw_only=True)
class Client:
    """Who is asking: the browser's ceremony and session cookies, and what the request says of it."""

    browser_token: str | None = None
    session_token: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    language: str = "en"  # of the pages the person uses (passgate.i18n): the mail a request causes is in it


def digest(value: str | bytes) -> bytes:
    """SHA-256, the at-rest form of every token: a leaked table holds no usable token."""
    return hashlib.sha256(value.encode() if isinstance(value, str) else value).digest()


@dataclass(kw_only=True)
class Audit:
    """One use case's event: filled in as the use case learns who and what, written once at the end."""

    type: str
    user_id: str | None = None
    credential_id: bytes | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    recorded: bool = False  # the use case wrote the success event itself, inside its own transaction
    # Webhook events queued with the success event (passgate.service.webhooks builds them), and those a
    # failure queues with its event, given the error's code.
    outbox: list[WebhookEvent] = field(default_factory=list)
    failure_outbox: Callable[[str], Sequence[WebhookEvent]] | None = None
    # A challenge taken but not yet spent (passgate.service.challenges.take): the use case's record spends it,
    # or, if the use case fails, `audited` does.
    unspent: Spend | None = None


@asynccontextmanager
async def audited(ctx: Context, client: Client, type_: str) -> AsyncIterator[Audit]:
    """Record the use case's outcome as an event: success, or failure with the error's code; and count it."""
    audit = Audit(type=type_)
    try:
        yield audit
    except PasskeyError as exc:
        refusal = await _spent(ctx, audit, exc)
        outbox = audit.failure_outbox(refusal.code) if audit.failure_outbox is not None else ()
        event = event_of(ctx, client, audit, outcome="failure", reason=refusal.code)
        await ctx.storage.events.record(event, outbox=outbox)
        if outbox:
            ctx.webhooks_ready.set()
        metrics.CEREMONIES.labels(audit.type, "failure", refusal.code).inc()
        if refusal is exc:
            raise
        raise refusal from exc
    except Exception:
        with suppress(Exception):  # an outage or a bug: the challenge is spent all the same, if it can be
            await spend_unspent(ctx, audit)
        raise
    assert audit.unspent is None, "the use case neither recorded nor spent its challenge"
    if not audit.recorded:
        await ctx.storage.events.record(
            event_of(ctx, client, audit, outcome="success", reason=None), outbox=audit.outbox
        )
        if audit.outbox:
            ctx.webhooks_ready.set()
    metrics.CEREMONIES.labels(audit.type, "success", metrics.NO_CODE).inc()


async def _spent(ctx: Context, audit: Audit, exc: PasskeyError) -> PasskeyError:
    """Spend a refused ceremony's challenge, if it is not yet; the refusal to give, which is challenge_not_found
    if it was answered before, whatever else is wrong with this answer (as when it is spent when taken)."""
    if isinstance(exc, ChallengeNotFound) or await spend_unspent(ctx, audit):  # spent, or nothing to spend
        return exc
    return ChallengeNotFound()


async def spend_unspent(ctx: Context, audit: Audit) -> bool:
    """Spend, on its own, the challenge `challenges.take` left to the use case's record (`audit.unspent`);
    False if it was answered before. True if there is nothing to spend."""
    if audit.unspent is None:
        return True
    spend, audit.unspent = audit.unspent, None
    return await ctx.storage.challenges.spend(spend.challenge_id, spend.until)


def event_of(
    ctx: Context, client: Client, audit: Audit, *, outcome: Literal["success", "failure"], reason: str | None
) -> Event:
    return Event(
        type=audit.type,
        outcome=outcome,
        reason=reason,
        user_id=audit.user_id,
        credential_id=audit.credential_id,
        ip=client.ip,
        user_agent=(client.user_agent or "")[:512] or None,
        created_at=ctx.clock(),
        detail=audit.detail,
    )
