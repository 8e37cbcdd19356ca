"""Admin API keys: `pga_...` secrets shown once, kept as their SHA-256 with the scopes they were given.

A key is looked up by its hash and compared again in constant time (as app keys are, passgate.core.apps): an
unknown, revoked or malformed key gets one answer, `invalid_admin_key`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable

from passgate.core.errors import InsufficientScope, InvalidAdminKey, InvalidRequest
from passgate.service.context import Client, Context, audited
from passgate.store.base import ADMIN_SCOPES, AdminKey, AdminScope

KEY_PREFIX = "pga_"
KEY_BYTES = 32
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_KEY_LENGTH = 128


def hash_key(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def clean_scopes(scopes: Iterable[str]) -> tuple[AdminScope, ...]:
    """The scopes in their canonical order (ADMIN_SCOPES). Raises InvalidRequest naming an unknown one."""
    asked = set(scopes)
    unknown = sorted(asked - set(ADMIN_SCOPES))
    if unknown:
        raise InvalidRequest(f"unknown scope {unknown[0]!r}: one of {', '.join(ADMIN_SCOPES)}.")
    if not asked:
        raise InvalidRequest(f"a key needs at least one scope: {', '.join(ADMIN_SCOPES)}.")
    return tuple(scope for scope in ADMIN_SCOPES if scope in asked)


async def add(ctx: Context, client: Client, name: str, scopes: Iterable[str]) -> tuple[AdminKey, str]:
    """A new admin key; returns it and its secret, which is shown once and kept only as its hash.

    Raises:
        InvalidRequest: a bad name (letters, digits, `.`, `_`, `-`; at most 64) or an unknown scope.
        AdminKeyExists: an unrevoked key has this name.
    """
    if not NAME.match(name):
        raise InvalidRequest("name: 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit.")
    granted = clean_scopes(scopes)
    secret = KEY_PREFIX + base64.urlsafe_b64encode(ctx.random(KEY_BYTES)).rstrip(b"=").decode()
    key = AdminKey(name=name, key_hash=hash_key(secret), scopes=granted, created_at=ctx.clock())
    async with audited(ctx, client, "admin.key.add") as audit:
        audit.detail.update({"admin_key": "cli", "name": name, "scopes": list(granted)})
        await ctx.storage.admin_keys.add(key)
    return key, secret


async def list_keys(ctx: Context) -> list[AdminKey]:
    return await ctx.storage.admin_keys.list()


async def revoke(ctx: Context, client: Client, name: str) -> bool:
    """Revoke the unrevoked key of this name (at once: its next request is refused); False if there is none."""
    async with audited(ctx, client, "admin.key.revoke") as audit:
        audit.detail.update({"admin_key": "cli", "name": name})
        revoked = await ctx.storage.admin_keys.revoke(name, ctx.clock())
        audit.detail["revoked"] = revoked
    return revoked


async def authenticate(ctx: Context, secret: str | None) -> AdminKey:
    """The unrevoked admin key whose secret this is.

    Raises:
        InvalidAdminKey: missing, unknown, revoked, or not an admin key at all (a session token, an app key).
    """
    presented = secret or ""
    if not presented.startswith(KEY_PREFIX) or len(presented) > MAX_KEY_LENGTH:
        raise InvalidAdminKey()
    key = await ctx.storage.admin_keys.by_hash(hash_key(presented))
    expected = key.key_hash if key is not None else hash_key("\x00 no key")
    matches = hmac.compare_digest(hash_key(presented), expected)
    if key is None or not matches or key.revoked_at is not None:
        raise InvalidAdminKey()
    return key


def require_scope(key: AdminKey, scope: AdminScope) -> None:
    """Raises InsufficientScope if the key was not given `scope`."""
    if scope not in key.scopes:
        raise InsufficientScope(f"This admin key does not have the scope {scope!r}.")
