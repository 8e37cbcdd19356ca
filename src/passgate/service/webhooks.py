"""Webhooks: endpoints, the events use cases queue with their changes, and the delivery worker.

A use case builds its events here (`passkey_created(ctx, ...)` and the like return `WebhookEvent`s) and hands
them to the store write method that makes the change (`outbox=`): the store queues one delivery per subscribed
endpoint in the same transaction, so a change that is acknowledged is never missing from the webhooks and one
rolled back never appears. Then it wakes this node's worker (`wake`).

Every node runs a delivery worker (`run_forever`). It leases due deliveries as the mail queue does
(`WebhookStore.claim`: `FOR UPDATE SKIP LOCKED` on PostgreSQL, one conditional UPDATE on SQLite), POSTs each
signed anew (Standard Webhooks), and records the outcome: 2xx is delivered (kept a while for the log), 410 Gone
disables the endpoint (`enable` turns it on again; its queued deliveries wait meanwhile), anything else is
retried on the schedule of `WebhookOptions.retry_seconds` with jitter, later when the endpoint's Retry-After
asks, and given up after the last step (about three days by default). A node that stops mid-delivery leaves
the delivery leased; once the lease runs out another worker sends it again with the same `webhook-id`: each
event is delivered at least once, and receivers drop the duplicates by that id.

Requests go only to public addresses unless `allow_private`: the endpoint's name is resolved, every address it
resolves to checked, and the connection made to the checked address (so a second resolution cannot swap it).
Redirects are not followed (a 3xx is a failed attempt), and every step has a timeout.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import httpx

from passgate import metrics
from passgate.core import webhooks as core
from passgate.core.encoding import b64url_encode
from passgate.core.errors import UnknownWebhookDelivery, UnknownWebhookEndpoint, WebhookAddressRefused
from passgate.service import sealing, workers
from passgate.service.context import Context
from passgate.store.base import OutboxOfEnded, WebhookDelivery, WebhookEndpoint, WebhookEvent

log = logging.getLogger("passgate.webhooks")

BATCH = 10
POLL_SECONDS = 2.0  # how often a worker looks for other nodes' events and for retries that are due
FILE_PREFIX = "file-"  # the id of a configuration file's endpoint: this and a digest of its URL

Outcome = Literal["delivered", "retried", "failed", "disabled"]


# --- events -------------------------------------------------------------------------------------------------


def event(ctx: Context, event_type: str, **data: str | int | bool | None) -> WebhookEvent:
    """One event of `event_type` about the ids in `data`, with a new `webhook-id`."""
    assert event_type in core.EVENT_TYPES, event_type
    at = ctx.clock()
    return WebhookEvent(
        message_id="msg_" + secrets.token_urlsafe(18),
        type=event_type,
        body=core.payload(event_type, at, {k: v for k, v in data.items() if v is not None}),
        created_at=at,
    )


def session_ref(token_hash: bytes) -> str:
    """A session's id in webhooks: a digest of its token hash, which tells a receiver one session from another
    and opens nothing."""
    return hashlib.sha256(b"passgate webhook session\x00" + token_hash).hexdigest()[:32]


def user_created(ctx: Context, user_id: str, credential_ids: Iterable[bytes] = ()) -> list[WebhookEvent]:
    """An account was made (with its first passkeys: one passkey.created each)."""
    return [
        event(ctx, "user.created", user_id=user_id),
        *(passkey_created(ctx, user_id, credential_id)[0] for credential_id in credential_ids),
    ]


def user_deleted(ctx: Context, user_id: str) -> list[WebhookEvent]:
    return [event(ctx, "user.deleted", user_id=user_id)]


def user_disabled(ctx: Context, user_id: str) -> list[WebhookEvent]:
    return [event(ctx, "user.disabled", user_id=user_id)]


def with_sessions_ended(ctx: Context, user_id: str, events: list[WebhookEvent], reason: str) -> OutboxOfEnded:
    """`events`, and session.ended for each of the user's sessions that the same change ends."""
    return lambda ended: [*events, *sessions_ended(ctx, user_id, reason)(ended)]


def passkey_created(ctx: Context, user_id: str, credential_id: bytes) -> list[WebhookEvent]:
    return [event(ctx, "passkey.created", user_id=user_id, credential_id=b64url_encode(credential_id))]


def passkey_renamed(ctx: Context, user_id: str, credential_id: bytes) -> list[WebhookEvent]:
    return [event(ctx, "passkey.renamed", user_id=user_id, credential_id=b64url_encode(credential_id))]


def passkey_removed(ctx: Context, user_id: str, credential_id: bytes) -> OutboxOfEnded:
    """passkey.removed, and session.ended for each session the removal ends."""

    def events(ended: Sequence[bytes]) -> list[WebhookEvent]:
        removed = event(ctx, "passkey.removed", user_id=user_id, credential_id=b64url_encode(credential_id))
        return [removed, *sessions_ended(ctx, user_id, "passkey_removed")(ended)]

    return events


def signin_succeeded(ctx: Context, user_id: str, credential_id: bytes | None, token_hash: bytes) -> list[WebhookEvent]:
    """A sign-in with a passkey (`credential_id`), or with a password (None) while passwords are migrated."""
    return [
        event(
            ctx,
            "signin.succeeded",
            user_id=user_id,
            credential_id=b64url_encode(credential_id) if credential_id else None,
            session_id=session_ref(token_hash),
            method="passkey" if credential_id else "password",
        )
    ]


def signin_failed(
    ctx: Context, user_id: str | None, credential_id: bytes | None, code: str, *, method: str = "passkey"
) -> list[WebhookEvent]:
    """A sign-in refused, with the error code (user and passkey when known)."""
    credential = b64url_encode(credential_id) if credential_id else None
    return [event(ctx, "signin.failed", user_id=user_id, credential_id=credential, code=code, method=method)]


def clone_suspected(ctx: Context, user_id: str, credential_id: bytes) -> list[WebhookEvent]:
    return [event(ctx, "passkey.clone_suspected", user_id=user_id, credential_id=b64url_encode(credential_id))]


def recovery_used(ctx: Context, user_id: str, method: Literal["backup_code", "email_link"]) -> list[WebhookEvent]:
    return [event(ctx, "recovery.used", user_id=user_id, method=method)]


def session_ended(ctx: Context, user_id: str, token_hash: bytes, reason: str) -> list[WebhookEvent]:
    return [event(ctx, "session.ended", user_id=user_id, session_id=session_ref(token_hash), reason=reason)]


def sessions_ended(ctx: Context, user_id: str, reason: str) -> OutboxOfEnded:
    """session.ended for each of the sessions a change ends (known only inside its transaction)."""
    return lambda ended: [e for token_hash in ended for e in session_ended(ctx, user_id, token_hash, reason)]


def mds_status_changed(ctx: Context, aaguid: str, status: str, *, blob_number: int) -> list[WebhookEvent]:
    """An authenticator model's FIDO metadata status changed (e.g. to REVOKED) in BLOB `blob_number`.

    Every node refreshes the metadata and notices the change: the `webhook-id` is derived from what changed,
    so the store queues it once (`WebhookStore.enqueue` skips an id queued already).
    """
    found = event(ctx, "mds.status_changed", aaguid=aaguid, status=status)
    digest = hashlib.sha256(f"{aaguid}\x00{status}\x00{blob_number}".encode()).hexdigest()[:24]
    return [replace(found, message_id="msg_mds_" + digest)]


def wake(ctx: Context, queued: int | None = None) -> None:
    """Events were queued: this node's worker looks at once. Given `queued`, the deliveries the write made, only
    if it made any: the worker's claim is a write of its own, and an empty one after every ceremony was 6 % of a
    SQLite node's CPU."""
    if queued is None or queued:
        ctx.webhooks_ready.set()


async def queue(ctx: Context, events: Sequence[WebhookEvent]) -> int:
    """Queue events that no other write records (in their own transaction); returns the deliveries made."""
    queued = await ctx.storage.webhooks.enqueue(events)
    wake(ctx, queued)
    return queued


# --- endpoints ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class AddedEndpoint:
    endpoint: WebhookEndpoint
    secret: str  # shown once: the receiver verifies with it


def _seal(ctx: Context, endpoint_id: str, secrets_: Sequence[str]) -> bytes:
    return sealing.seal(
        ctx.rp.secret_key,
        purpose=sealing.WEBHOOK_SECRETS,
        bound_to=endpoint_id.encode(),
        plaintext=json.dumps(list(secrets_)).encode(),
    )


def endpoint_secrets(ctx: Context, endpoint: WebhookEndpoint) -> list[str]:
    """The endpoint's signing secrets, newest first. Raises sealing.InvalidTag under another secret_key."""
    opened = sealing.unseal(
        ctx.rp.secret_key, purpose=sealing.WEBHOOK_SECRETS, bound_to=endpoint.id.encode(), sealed=endpoint.secrets
    )
    return [str(secret) for secret in json.loads(opened)]


def _check_address_literal(ctx: Context, url: str) -> None:
    host = urlsplit(url).hostname or ""
    try:
        allowed = core.address_allowed(host.strip("[]"), allow_private=ctx.webhooks.allow_private)
    except ValueError:  # a name: checked at each delivery, after resolving it
        allowed = ctx.webhooks.allow_private or not (host == "localhost" or host.endswith(".localhost"))
    if not allowed:
        raise WebhookAddressRefused()


async def add_endpoint(
    ctx: Context, url: str, events: Sequence[str] = (core.ALL_EVENTS,), *, secret: str | None = None
) -> AddedEndpoint:
    """Subscribe `url` to `events`, signed with `secret` (a new one if None).

    Raises:
        InvalidRequest: a URL, event type or secret of the wrong shape.
        WebhookAddressRefused: the URL names a non-public address and webhooks_allow_private is off.
    """
    core.check_url(url)
    checked = core.check_event_types(events)
    secret = core.check_secret(secret) if secret is not None else core.new_secret(ctx.random(32))
    _check_address_literal(ctx, url)
    endpoint_id = "ep_" + secrets.token_hex(12)
    endpoint = WebhookEndpoint(
        id=endpoint_id,
        url=url,
        events=checked,
        secrets=_seal(ctx, endpoint_id, [secret]),
        created_at=ctx.clock(),
    )
    await ctx.storage.webhooks.put_endpoint(endpoint)
    return AddedEndpoint(endpoint=endpoint, secret=secret)


async def get_endpoint(ctx: Context, endpoint_id: str) -> WebhookEndpoint:
    """Raises UnknownWebhookEndpoint."""
    endpoint = await ctx.storage.webhooks.get_endpoint(endpoint_id)
    if endpoint is None:
        raise UnknownWebhookEndpoint()
    return endpoint


async def list_endpoints(ctx: Context) -> list[WebhookEndpoint]:
    return await ctx.storage.webhooks.list_endpoints()


async def remove_endpoint(ctx: Context, endpoint_id: str) -> None:
    """Remove a stored endpoint with its deliveries. Raises UnknownWebhookEndpoint (a configuration file's
    endpoint is removed from the file instead: it comes back at the next start)."""
    if not await ctx.storage.webhooks.remove_endpoint(endpoint_id):
        raise UnknownWebhookEndpoint()


async def enable_endpoint(ctx: Context, endpoint_id: str) -> WebhookEndpoint:
    """Turn a disabled endpoint (by a 410 Gone, or an operator) on again: its queued deliveries go out.
    Raises UnknownWebhookEndpoint."""
    if not await ctx.storage.webhooks.set_enabled(endpoint_id, True):
        raise UnknownWebhookEndpoint()
    wake(ctx)
    return await get_endpoint(ctx, endpoint_id)


async def disable_endpoint(ctx: Context, endpoint_id: str, reason: str) -> None:
    """Raises UnknownWebhookEndpoint."""
    if not await ctx.storage.webhooks.set_enabled(endpoint_id, False, reason=reason[:200], at=ctx.clock()):
        raise UnknownWebhookEndpoint()


async def rotate_secret(ctx: Context, endpoint_id: str) -> str:
    """Give a stored endpoint a new secret, keeping the current one beside it: requests carry both signatures
    until the next rotation. Returns the new secret. Raises UnknownWebhookEndpoint."""
    endpoint = await get_endpoint(ctx, endpoint_id)
    secret = core.new_secret(ctx.random(32))
    current = endpoint_secrets(ctx, endpoint)
    await ctx.storage.webhooks.put_endpoint(replace(endpoint, secrets=_seal(ctx, endpoint.id, [secret, current[0]])))
    return secret


def file_endpoint_id(url: str) -> str:
    return FILE_PREFIX + hashlib.sha256(url.encode()).hexdigest()[:24]


async def keep_file_endpoints(ctx: Context, endpoints: Sequence[Mapping[str, Any]]) -> None:
    """Make the stored copies of the configuration file's endpoints (`Settings.file_webhooks`) what the file
    says, and remove those no longer in it. Whether one is enabled is kept (a 410 stays recorded)."""
    wanted = {file_endpoint_id(e["url"]): e for e in endpoints}
    for stored in await ctx.storage.webhooks.list_endpoints():
        if stored.source == "file" and stored.id not in wanted:
            await ctx.storage.webhooks.remove_endpoint(stored.id)
    for endpoint_id, table in wanted.items():
        current = await ctx.storage.webhooks.get_endpoint(endpoint_id)
        await ctx.storage.webhooks.put_endpoint(
            WebhookEndpoint(
                id=endpoint_id,
                url=table["url"],
                events=tuple(table["events"]),
                secrets=_seal(ctx, endpoint_id, table["secrets"]),
                created_at=current.created_at if current else ctx.clock(),
                source="file",
                enabled=current.enabled if current else True,
                disabled_reason=current.disabled_reason if current else None,
                disabled_at=current.disabled_at if current else None,
            )
        )


async def deliveries(ctx: Context, endpoint_id: str, *, limit: int = 50) -> list[WebhookDelivery]:
    """The endpoint's deliveries, newest first (queued, delivered and failed). Raises UnknownWebhookEndpoint."""
    await get_endpoint(ctx, endpoint_id)
    return await ctx.storage.webhooks.list_deliveries(endpoint_id=endpoint_id, limit=limit)


async def redeliver(ctx: Context, delivery_id: int) -> WebhookDelivery:
    """Send a delivery again now (same webhook-id), whatever became of it. Raises UnknownWebhookDelivery."""
    if not await ctx.storage.webhooks.redeliver(delivery_id, at=ctx.clock()):
        raise UnknownWebhookDelivery()
    wake(ctx)
    found = await ctx.storage.webhooks.get_delivery(delivery_id)
    assert found is not None
    return found


# --- delivery -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Delivered:
    """What one pass of a worker did."""

    delivered: int = 0
    retried: int = 0
    failed: int = 0
    disabled: int = 0

    @property
    def claimed(self) -> int:
        return self.delivered + self.retried + self.failed + self.disabled


class AttemptFailed(Exception):
    """The endpoint did not take the delivery: its answer (`status`), or why there was none."""

    def __init__(self, reason: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.retry_after = retry_after


def lease(ctx: Context) -> timedelta:
    # A batch is sent concurrently; one request is bounded by a connect, a write and a read timeout.
    return timedelta(seconds=4 * ctx.webhooks.timeout_seconds + 1)


async def _resolve(host: str, port: int) -> list[str]:
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise AttemptFailed(f"cannot resolve {host}: {exc.strerror}") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def post(ctx: Context, url: str, signed: core.Signed) -> int:
    """POST the signed event to `url`, connecting only to a checked address; returns the 2xx status.

    Raises:
        AttemptFailed: refused address, no connection, timeout, or an answer other than 2xx (3xx included).
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = await _resolve(host, port)
    refused = [a for a in addresses if not core.address_allowed(a, allow_private=ctx.webhooks.allow_private)]
    if refused or not addresses:
        # Every address is checked: a name that resolves to a public and a private one is refused.
        raise AttemptFailed(f"address refused: {host} resolves to {', '.join(refused) or 'nothing'}")
    address = addresses[0]
    netloc = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    target = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    headers = {**signed.headers, "host": parts.netloc, "user-agent": "Passgate-Webhooks"}
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    timeout = httpx.Timeout(ctx.webhooks.timeout_seconds)
    try:
        async with (
            httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False) as http,
            http.stream("POST", target, content=signed.body, headers=headers, extensions=extensions) as answer,
        ):
            status, retry_after = answer.status_code, answer.headers.get("retry-after")
    except httpx.HTTPError as exc:
        raise AttemptFailed(f"{type(exc).__name__}: {exc}"[:300]) from None
    if 200 <= status < 300:
        return status
    raise AttemptFailed(f"HTTP {status}", status=status, retry_after=core.parse_retry_after(retry_after, ctx.clock()))


async def deliver_due(
    ctx: Context, worker: str, *, limit: int = BATCH, stopping: asyncio.Event | None = None
) -> Delivered:
    """Claim the deliveries due now and send them (concurrently); each is recorded delivered, queued again or
    given up. Once `stopping` is set, a claimed batch not yet started is handed back, due at once.

    Storage errors propagate (the worker tries again later); an endpoint's failure is the delivery's retry.
    """
    claimed = await ctx.storage.webhooks.claim(worker=worker, now=ctx.clock(), lease=lease(ctx), limit=limit)
    if stopping is not None and stopping.is_set():
        for delivery in claimed:
            await ctx.storage.webhooks.retry(delivery.id, worker=worker, at=ctx.clock(), error="the node stopped")
        return Delivered()
    endpoints: dict[str, WebhookEndpoint | None] = {}
    for endpoint_id in {delivery.endpoint_id for delivery in claimed}:
        endpoints[endpoint_id] = await ctx.storage.webhooks.get_endpoint(endpoint_id)
    outcomes = await asyncio.gather(
        *(_deliver(ctx, worker, delivery, endpoints[delivery.endpoint_id]) for delivery in claimed)
    )
    counted = {"delivered": 0, "retried": 0, "failed": 0, "disabled": 0}
    for outcome in outcomes:
        counted[outcome] += 1
    return Delivered(**counted)


async def _deliver(ctx: Context, worker: str, delivery: WebhookDelivery, endpoint: WebhookEndpoint | None) -> Outcome:
    if endpoint is None:  # removed meanwhile (its deliveries with it)
        return "failed"
    try:
        secrets_ = endpoint_secrets(ctx, endpoint)
    except sealing.InvalidTag:
        # Another node, with the right secret_key, may send it: this one leaves it for later.
        return await _failed(ctx, worker, delivery, AttemptFailed("secrets sealed under another secret_key"))
    signed = core.sign(message_id=delivery.message_id, body=delivery.body, secrets=secrets_, at=ctx.clock())
    try:
        status = await post(ctx, endpoint.url, signed)
    except AttemptFailed as failure:
        if failure.status == 410:
            return await _gone(ctx, worker, delivery, endpoint)
        return await _failed(ctx, worker, delivery, failure)
    now = ctx.clock()
    await ctx.storage.webhooks.delivered(delivery.id, worker=worker, at=now, status=status)
    metrics.WEBHOOK_DELIVERIES.labels("delivered").inc()
    metrics.WEBHOOK_LAG.observe(max(0.0, (now - delivery.created_at).total_seconds()))
    return "delivered"


async def _gone(ctx: Context, worker: str, delivery: WebhookDelivery, endpoint: WebhookEndpoint) -> Outcome:
    """410 Gone: the receiver asks for no more. The endpoint is disabled; this delivery and the others queued
    wait, and go out if an operator enables it again."""
    now = ctx.clock()
    reason = f"410 Gone at {now:%Y-%m-%d %H:%M:%S} UTC (delivery {delivery.id})"
    await ctx.storage.webhooks.set_enabled(endpoint.id, False, reason=reason, at=now)
    await ctx.storage.webhooks.retry(
        delivery.id, worker=worker, at=now, error="HTTP 410: endpoint disabled", status=410
    )
    log.warning("webhook endpoint %s (%s) answered 410 Gone: disabled", endpoint.id, endpoint.url)
    metrics.WEBHOOK_DELIVERIES.labels("disabled").inc()
    return "disabled"


async def _failed(ctx: Context, worker: str, delivery: WebhookDelivery, failure: AttemptFailed) -> Outcome:
    reason = str(failure)
    delay = core.retry_delay(
        delivery.attempts,
        schedule=ctx.webhooks.retry_seconds,
        jitter=secrets.randbelow(1_000_000) / 1_000_000,
        retry_after=failure.retry_after,
    )
    now = ctx.clock()
    if delay is None:
        log.error(
            "webhook %s to endpoint %s given up after %d attempts: %s",
            delivery.message_id,
            delivery.endpoint_id,
            delivery.attempts,
            reason,
        )
        await ctx.storage.webhooks.fail(
            delivery.id, worker=worker, at=now, error=f"given up: {reason}", status=failure.status
        )
        metrics.WEBHOOK_DELIVERIES.labels("failed").inc()
        return "failed"
    log.info(
        "webhook %s to endpoint %s not delivered (attempt %d), retrying in %.1f s: %s",
        delivery.message_id,
        delivery.endpoint_id,
        delivery.attempts,
        delay,
        reason,
    )
    await ctx.storage.webhooks.retry(
        delivery.id, worker=worker, at=now + timedelta(seconds=delay), error=reason, status=failure.status
    )
    metrics.WEBHOOK_DELIVERIES.labels("retried").inc()
    return "retried"


async def run_forever(ctx: Context, *, stopping: asyncio.Event | None = None) -> None:
    """This node's webhook delivery worker: woken at once by `wake` here, and every few seconds for the rest.

    Returns once `stopping` is set, after the deliveries in flight are recorded: a node that shuts down leaves
    nothing leased for a lease's length.
    """
    worker = secrets.token_hex(16)
    if stopping is None:
        stopping = asyncio.Event()  # never set: the task is cancelled instead
    poll = min(POLL_SECONDS, min(ctx.webhooks.retry_seconds))
    while not stopping.is_set():
        ctx.webhooks_ready.clear()  # before claiming: events queued while this pass runs wake the next one
        done = Delivered()
        try:
            done = await deliver_due(ctx, worker, stopping=stopping)
        except Exception:  # storage unavailable: look again at the next poll
            log.exception("webhook delivery failed")
        if done.claimed >= BATCH:
            continue
        await workers.wait_for_work(ctx.webhooks_ready, stopping, poll)


async def flush(ctx: Context) -> Delivered:
    """Send everything due now, until nothing due is left."""
    worker = secrets.token_hex(16)
    total = Delivered()
    while True:
        done = await deliver_due(ctx, worker)
        total = Delivered(
            delivered=total.delivered + done.delivered,
            retried=total.retried + done.retried,
            failed=total.failed + done.failed,
            disabled=total.disabled + done.disabled,
        )
        if done.claimed < BATCH:
            return total
