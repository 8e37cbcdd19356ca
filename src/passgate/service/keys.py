"""Signing keys and the JWKS: every node signs with the same keys, kept in storage with their private halves sealed.

A key's life (each key a `SigningKey`):

- published from its creation, so verifiers that cache the JWKS for up to `JWKS_MAX_AGE` know it before it signs;
- signing from `signs_from`: one JWKS max-age after it was made (at once for the very first keys, as nothing can
  have cached an older JWKS then);
- retired at `retired_at`, the moment its successor starts signing;
- published until `remove_after`: its retirement plus `MAX_TOKEN_LIFETIME`, the longest a token it signed may live.

There is one key of each algorithm per generation. The first use makes generation 1 (ES256 and RS256); `rotate`
makes the next. Storage refuses a second key set of one generation, so nodes starting (or rotating) together agree
on one set. `kid` is the key's RFC 7638 thumbprint.

Signing does not read storage each time: each process keeps the keys it read (`Keyring`), decrypted as they are
first used, and reads them again every `REFRESH` and whenever a moment it knows of passes (a key starting to sign,
retiring or leaving the JWKS). As `REFRESH` is shorter than `JWKS_MAX_AGE`, every node has learnt of a rotation
before its keys sign. The JWKS itself is read from storage each time it is asked for.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from passgate.service import sealing
from passgate.store.base import Event, SigningAlgorithm, SigningKey

if TYPE_CHECKING:
    from passgate.service.context import Context

log = logging.getLogger("passgate.keys")

JWKS_MAX_AGE = timedelta(seconds=300)  # the Cache-Control max-age of /.well-known/jwks.json
# The longest lifetime of any token Passgate signs (session tokens live 5 minutes; ID and access tokens up to this):
# a retired key stays published this long after it stopped signing.
MAX_TOKEN_LIFETIME = timedelta(hours=1)
REFRESH = timedelta(minutes=1)  # how often a process reads the keys again, to learn of another node's rotation
ALGORITHMS: tuple[SigningAlgorithm, ...] = ("ES256", "RS256")
RSA_BITS = 2048

KeyState = Literal["next", "active", "retired"]
KeysAction = Callable[["Context"], Awaitable[list[SigningKey]]]
_Key = ECKey | RSAKey


@dataclass
class Keyring:
    """One process's copy of the stored keys, and the private keys it has decrypted."""

    keys: list[SigningKey] = field(default_factory=list)
    read_at: datetime | None = None
    private: dict[str, _Key] = field(default_factory=dict)

    def fresh(self, now: datetime) -> bool:
        if self.read_at is None or not self.read_at <= now < self.read_at + REFRESH:
            return False
        # A moment that has passed since the read may have changed which key signs or what is published.
        return not any(self.read_at < moment <= now for key in self.keys for moment in _moments(key))


def _moments(key: SigningKey) -> tuple[datetime, ...]:
    return tuple(moment for moment in (key.signs_from, key.retired_at, key.remove_after) if moment is not None)


def state(key: SigningKey, now: datetime) -> KeyState:
    """Where a key is in its life at `now` (published in every state; gone from the JWKS after `remove_after`)."""
    if now < key.signs_from:
        return "next"
    if key.retired_at is None or now < key.retired_at:
        return "active"
    return "retired"


def _published(key: SigningKey, now: datetime) -> bool:
    return key.publish_at <= now and (key.remove_after is None or now < key.remove_after)


def _generate(alg: SigningAlgorithm) -> _Key:
    if alg == "ES256":
        return ECKey.generate_key("P-256", private=True)
    return RSAKey.generate_key(RSA_BITS, private=True)


async def _new_generation(ctx: Context, generation: int, signs_from: datetime) -> list[SigningKey]:
    now = ctx.clock()
    made = []
    for alg in ALGORITHMS:
        key = await asyncio.to_thread(_generate, alg)  # an RSA key takes a while: not on the event loop
        kid = key.thumbprint()
        public = {**key.as_dict(private=False), "kid": kid, "alg": alg, "use": "sig"}
        pem = key.as_pem(private=True)
        made.append(
            SigningKey(
                kid=kid,
                alg=alg,
                generation=generation,
                public_jwk=public,
                private_key=sealing.seal(
                    ctx.rp.secret_key, purpose=sealing.SIGNING_KEYS, bound_to=kid.encode(), plaintext=pem
                ),
                created_at=now,
                publish_at=now,
                signs_from=signs_from,
            )
        )
    return made


async def _add(ctx: Context, signs_from: datetime) -> bool:
    """Store the next generation, signing from `signs_from`; the current keys retire at that moment."""
    stored = await ctx.storage.signing_keys.all()
    generation = max((key.generation for key in stored), default=0) + 1
    keys = await _new_generation(ctx, generation, signs_from)
    added = await ctx.storage.signing_keys.add_generation(
        keys, retire_at=signs_from, remove_after=signs_from + MAX_TOKEN_LIFETIME
    )
    ctx.keyring.read_at = None
    return added


async def _keys(ctx: Context, *, read: bool = False) -> list[SigningKey]:
    """The stored keys, from this process's copy while it is fresh (unless `read`); the first use anywhere makes
    the first keys."""
    ring = ctx.keyring
    now = ctx.clock()
    if not read and ring.fresh(now):
        return ring.keys
    keys = await ctx.storage.signing_keys.all()
    if not keys:
        # Nothing has published a JWKS yet, so these sign at once. Another node may make them at the same moment:
        # storage keeps one set, and this node then reads that one.
        await _add(ctx, now)
        keys = await ctx.storage.signing_keys.all()
    ring.keys, ring.read_at = keys, now
    ring.private = {kid: key for kid, key in ring.private.items() if any(k.kid == kid for k in keys)}
    return keys


def _signing(keys: list[SigningKey], alg: SigningAlgorithm, now: datetime) -> SigningKey:
    """The key of `alg` that signs now: the newest whose `signs_from` has come. If none has (this node's clock is
    behind the one that made the first keys), the oldest one not retired: a key to sign with is always there."""
    candidates = [key for key in keys if key.alg == alg]
    active = [key for key in candidates if state(key, now) == "active"]
    if active:
        return max(active, key=lambda key: key.generation)
    waiting = [key for key in candidates if key.retired_at is None or now < key.retired_at]
    return min(waiting or candidates, key=lambda key: key.generation)


def _private(ctx: Context, key: SigningKey) -> _Key | None:
    """The decrypted private key, or None if it was sealed under another secret_key."""
    if key.kid not in ctx.keyring.private:
        try:
            pem = sealing.unseal(
                ctx.rp.secret_key, purpose=sealing.SIGNING_KEYS, bound_to=key.kid.encode(), sealed=key.private_key
            )
        except sealing.InvalidTag:
            return None
        ctx.keyring.private[key.kid] = (ECKey if key.alg == "ES256" else RSAKey).import_key(pem)
    return ctx.keyring.private[key.kid]


async def sign(ctx: Context, claims: Mapping[str, Any], *, typ: str, alg: SigningAlgorithm = "ES256") -> str:
    """A compact JWS of `claims` (a JWT) with the header `alg`, `kid` and `typ`, by the key that signs now.

    Callers choose the claims (iss, aud, exp...) and the `typ` that tells this kind of token from others
    ("session+jwt", "at+jwt", "logout+jwt"...), so one kind of token cannot be taken for another.
    """
    for _ in range(2):
        key = _signing(await _keys(ctx), alg, ctx.clock())
        private = _private(ctx, key)
        if private is not None:
            return jwt.encode({"alg": alg, "kid": key.kid, "typ": typ}, dict(claims), private)
        # The stored keys were sealed under another secret_key (one process started without one, and restarted):
        # they cannot sign. New keys sign at once; the old ones stay published, so their tokens still verify.
        log.warning(
            "the signing keys cannot be decrypted with this secret_key: making new ones. Set secret_key, the same"
            " on every node, so that keys outlive a restart."
        )
        await _add(ctx, ctx.clock())
    raise RuntimeError("the signing keys just made cannot be decrypted")


async def jwks(ctx: Context) -> dict[str, Any]:
    """The JWK Set of the public keys published now: the next keys, the signing ones, and retired keys whose
    tokens may still be alive."""
    # Read from storage each time, not from this process's copy: a verifier that fetches it just after another node
    # rotated must learn the new keys now, as they sign one max-age later. Verifiers cache it for that long.
    now = ctx.clock()
    return {"keys": [dict(key.public_jwk) for key in await _keys(ctx, read=True) if _published(key, now)]}


async def rotate(ctx: Context) -> list[SigningKey]:
    """Make a new key of each algorithm, published now and signing one JWKS max-age from now; the keys signing
    now retire at that moment and leave the JWKS `MAX_TOKEN_LIFETIME` later. Keys past that are deleted.

    Returns the new keys (if another rotation stored its keys first, those).
    """
    now = ctx.clock()
    await ctx.storage.signing_keys.purge(now)
    await _keys(ctx)  # the first keys, if there were none: a rotation needs something to rotate from
    await _add(ctx, now + JWKS_MAX_AGE)
    keys = await _keys(ctx)
    newest = max(key.generation for key in keys)
    made = [key for key in keys if key.generation == newest]
    await ctx.storage.events.record(
        Event(
            type="signing_keys.rotate",
            outcome="success",
            created_at=now,
            detail={"kids": [key.kid for key in made], "signs_from": made[0].signs_from.isoformat()},
        )
    )
    return made


async def list_keys(ctx: Context) -> list[SigningKey]:
    """Every stored key, including those past `remove_after` that a rotation has not deleted yet."""
    return await _keys(ctx, read=True)
