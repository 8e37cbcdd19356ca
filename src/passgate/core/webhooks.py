"""Webhooks, the pure parts: event types, thin payloads, Standard Webhooks signatures, the retry schedule and
which addresses a delivery may reach.

A payload names what happened and the ids it happened to, never a person's data:
`{"type": "passkey.created", "timestamp": "2026-12-03T05:50:00Z", "data": {"user_id": ..., "credential_id": ...}}`.
A receiver that wants more asks Passgate's API for it, with its own credentials.

Signatures follow Standard Webhooks (https://www.standardwebhooks.com/): the `webhook-id`, `webhook-timestamp`
and `webhook-signature` headers, `v1,<base64 HMAC-SHA256 of "id.timestamp.body">` under a `whsec_` secret. While
a secret rotates, the endpoint has two and each request carries both signatures, so the receiver may switch
whenever it likes.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

from standardwebhooks import Webhook

from passgate.core.errors import InvalidRequest

EVENT_TYPES = (
    "user.created",
    "user.deleted",
    "user.disabled",
    "passkey.created",
    "passkey.removed",
    "passkey.renamed",
    "signin.succeeded",
    "signin.failed",
    "passkey.clone_suspected",
    "recovery.used",
    "session.ended",
    "mds.status_changed",
)
ALL_EVENTS = "*"
SECRET_PREFIX = "whsec_"  # noqa: S105 (the Standard Webhooks prefix, not a secret)

# Standard Webhooks' schedule (after the first attempt: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h), carried on
# with two daily attempts so an endpoint that is down over a weekend still gets its events: about 3 days in all.
RETRY_SECONDS = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0, 86400.0, 86400.0)
JITTER = 0.2  # each wait is drawn from +-20% around its step, so endpoints that failed together retry apart
MAX_RETRY_AFTER = timedelta(hours=24)  # a Retry-After beyond this is taken as this


@dataclass(frozen=True, kw_only=True)
class Signed:
    """What a delivery sends: the body and the three Standard Webhooks headers."""

    body: str
    headers: Mapping[str, str]


def check_event_types(events: Sequence[str]) -> tuple[str, ...]:
    """The subscription's event types, checked: known types, "*" for all, or "group.*" (e.g. "passkey.*").

    Raises:
        InvalidRequest: empty, or naming a type Passgate does not send.
    """
    if not events:
        raise InvalidRequest("events must name at least one event type, or '*' for all.")
    groups = {name.split(".")[0] for name in EVENT_TYPES}
    for name in events:
        if name == ALL_EVENTS or name in EVENT_TYPES:
            continue
        if name.endswith(".*") and name.removesuffix(".*") in groups:
            continue
        raise InvalidRequest(f"Unknown event type {name!r}; known: {', '.join(EVENT_TYPES)} (or '*').")
    return tuple(dict.fromkeys(events))


def subscribed(events: Sequence[str], event_type: str) -> bool:
    """Whether a subscription to `events` receives `event_type`."""
    group = event_type.split(".")[0] + ".*"
    return ALL_EVENTS in events or event_type in events or group in events


def check_secret(secret: str) -> str:
    """A `whsec_` secret: the prefix and 24 to 64 random bytes in base64, as Standard Webhooks asks.

    Raises:
        InvalidRequest: another shape.
    """
    if not secret.startswith(SECRET_PREFIX):
        raise InvalidRequest("A webhook secret starts with whsec_ (followed by base64 of 24 to 64 random bytes).")
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest("A webhook secret is whsec_ followed by base64.") from None
    if not 24 <= len(key) <= 64:
        raise InvalidRequest("A webhook secret holds 24 to 64 random bytes (whsec_ and their base64).")
    return secret


def new_secret(random: bytes) -> str:
    """A secret from 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(random).decode()


def payload(event_type: str, at: datetime, data: Mapping[str, str | int | bool | None]) -> str:
    """The body of an event, compact JSON; `data` holds ids only."""
    moment = at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return json.dumps({"type": event_type, "timestamp": moment, "data": dict(data)}, separators=(",", ":"))


def sign(*, message_id: str, body: str, secrets: Sequence[str], at: datetime) -> Signed:
    """The request for one attempt: signed at `at` (each attempt is signed anew) with every current secret."""
    signatures = " ".join(Webhook(secret).sign(message_id, at, body) for secret in secrets)
    return Signed(
        body=body,
        headers={
            "webhook-id": message_id,
            "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": signatures,
            "content-type": "application/json",
        },
    )


def retry_delay(attempts: int, *, schedule: Sequence[float], jitter: float, retry_after: float | None) -> float | None:
    """Seconds to wait after the `attempts`-th failed attempt (1: the first), or None once the schedule is done.

    `jitter` is a number in [0, 1) drawn by the caller; a `Retry-After` the endpoint sent (seconds) is honoured
    when it asks for longer than the schedule would wait.
    """
    if attempts > len(schedule):
        return None
    step = schedule[attempts - 1]
    delay = step * (1 - JITTER + 2 * JITTER * jitter)
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER.total_seconds()))
    return delay


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """A Retry-After header: delay-seconds or an HTTP date; None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def status_changes(before: Mapping[str, str | None], after: Mapping[str, str | None]) -> list[tuple[str, str]]:
    """The models (AAGUID, new status) whose latest FIDO metadata status differs between two BLOBs' entries
    (AAGUID to latest status), models new to the BLOB left out; sorted."""
    return sorted(
        (aaguid, status)
        for aaguid, status in after.items()
        if aaguid in before and status is not None and before[aaguid] != status
    )


def address_allowed(address: str, *, allow_private: bool) -> bool:
    """Whether a delivery may connect to this IP address: a global unicast address, or with `allow_private`,
    any unicast one (private, loopback, link-local...). Multicast, unspecified and reserved never."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_multicast or ip.is_unspecified:
        return False
    if allow_private:
        return True
    return ip.is_global and not ip.is_reserved


def check_url(url: str) -> str:
    """An endpoint URL: http or https with a host, no credentials, no fragment.

    Raises:
        InvalidRequest: another shape.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InvalidRequest("A webhook URL is https://host/path (http only for tests and private networks).")
    if parts.username or parts.password or parts.fragment:
        raise InvalidRequest("A webhook URL has no user name, password or fragment.")
    try:
        _ = parts.port
    except ValueError:
        raise InvalidRequest("A webhook URL's port is a number from 1 to 65535.") from None
    return url
