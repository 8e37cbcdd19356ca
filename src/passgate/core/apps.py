"""Apps of the passkey API: apps that keep their own users and add passkeys to them through Passgate.

An app has an id, a name, the origins its pages are served from (which must fit its rp id, as the server's
origins fit the server's), a policy preset, and one or more secret API keys (`pg_sk_` and 32 random bytes,
base64url). A key is kept only as its SHA-256 hash: it is 256 random bits, so a fast hash is enough, as it is
for OpenID Connect client secrets.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from passgate.core.errors import InvalidApiKey, InvalidRequest
from passgate.core.policy import PRESETS

KEY_PREFIX = "pg_sk_"
KEY_BYTES = 32
MAX_USER_ID_BYTES = 64
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")


@dataclass(frozen=True, kw_only=True)
class App:
    app_id: str
    name: str
    origins: tuple[str, ...]
    rp_id: str
    policy: str  # a preset name (passgate.core.policy.PRESETS); empty: the server's policy
    created_at: datetime


@dataclass(frozen=True, kw_only=True)
class AppKey:
    key_id: str  # public: names the key in the CLI
    app_id: str
    key_hash: bytes
    created_at: datetime
    revoked_at: datetime | None = None


def _token(random: Callable[[int], bytes], size: int) -> str:
    return base64.urlsafe_b64encode(random(size)).rstrip(b"=").decode()


def generate_app_id(random: Callable[[int], bytes]) -> str:
    return "app_" + _token(random, 12).replace("-", "x").replace("_", "y")


def generate_key(random: Callable[[int], bytes]) -> tuple[str, str]:
    """A new key's public id and its secret (`pg_sk_...`)."""
    return "key_" + _token(random, 9).replace("-", "x").replace("_", "y"), KEY_PREFIX + _token(random, KEY_BYTES)


def hash_key(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def check_key(key: AppKey | None, secret: str) -> AppKey:
    """The key, if `secret` is its secret and it is not revoked; the comparison runs in constant time.

    Raises:
        InvalidApiKey: unknown, revoked, or not a key at all (one answer for each).
    """
    expected = key.key_hash if key is not None else hash_key("\x00 no key")
    matches = hmac.compare_digest(hash_key(secret), expected)
    if key is None or not matches or key.revoked_at is not None:
        raise InvalidApiKey()
    return key


def check_app(name: str, origins: tuple[str, ...], rp_id: str, policy: str) -> None:
    """Raises InvalidRequest naming what is wrong: a name, an origin that does not fit the rp id, a preset."""
    if not name.strip() or len(name) > 100:
        raise InvalidRequest("name: 1 to 100 characters.")
    if rp_id != rp_id.lower() or not _DOMAIN.match(rp_id):
        raise InvalidRequest(f"rp_id {rp_id!r} must be a lower-case domain name such as 'shop.example'.")
    if not origins:
        raise InvalidRequest("origins: an app needs at least one origin.")
    for origin in origins:
        parts = urlsplit(origin)
        host = parts.hostname or ""
        if parts.scheme not in ("https", "http") or not host or parts.path or parts.query or parts.fragment:
            raise InvalidRequest(f"Origin {origin!r} must look like https://host[:port], with no path.")
        if parts.scheme == "http" and host != "localhost" and not host.endswith(".localhost"):
            raise InvalidRequest(f"Origin {origin!r} must use https (plain http is allowed only for localhost).")
        if host != rp_id and not host.endswith("." + rp_id):
            raise InvalidRequest(f"Origin {origin!r}: its host {host!r} is neither {rp_id!r} nor a subdomain of it.")
    if policy and policy not in PRESETS:
        raise InvalidRequest(f"policy: choose one of {', '.join(PRESETS)}.")


def clean_user_id(value: object) -> str:
    """The app's own id of one of its users: an opaque string of 1 to 64 bytes (UTF-8)."""
    if not isinstance(value, str) or not value or len(value.encode()) > MAX_USER_ID_BYTES:
        raise InvalidRequest(f"userId: a string of 1 to {MAX_USER_ID_BYTES} bytes.")
    return value
