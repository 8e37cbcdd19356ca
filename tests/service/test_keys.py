"""Signing keys: made once for every node, sealed at rest, rotated so that no verifier is caught out."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey

from passgate.core.policy import Policy
from passgate.service import housekeeping, keys, sealing
from passgate.service.context import Context, RelyingParty
from passgate.store.base import SigningKey, Storage
from passgate.store.factory import open_storage
from passgate.store.memory import MemorySigningKeys, memory_storage
from passgate.store.migrate import upgrade
from tests.clock import Clock
from tests.services import PostgresServer

SECRET = b"s" * 32
MAX_AGE = timedelta(seconds=300)


class CountedKeys(MemorySigningKeys):
    """Memory storage that counts how often the keys are read."""

    reads = 0

    async def all(self) -> list[SigningKey]:
        self.reads += 1
        return await super().all()


def node(storage: Storage, clock: Clock, secret_key: bytes = SECRET) -> Context:
    """One process: its own key cache, over shared storage."""
    rp = RelyingParty(
        rp_id="localhost", rp_name="t", origins=("http://localhost",), policy=Policy(), secret_key=secret_key
    )
    return Context(rp=rp, storage=storage, clock=clock)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ctx(clock: Clock) -> Context:
    return node(memory_storage(), clock)


async def verify(token: str, ctx: Context) -> jwt.Token:
    return jwt.decode(token, KeySet.import_key_set(await keys.jwks(ctx)), algorithms=["ES256", "RS256"])


async def test_the_first_keys_sign_at_once_and_are_named_by_their_thumbprint(ctx: Context) -> None:
    token = await keys.sign(ctx, {"sub": "u1"}, typ="session+jwt")
    stored = await ctx.storage.signing_keys.all()
    assert sorted(key.alg for key in stored) == ["ES256", "RS256"]
    assert all(key.signs_from == key.publish_at == key.created_at == ctx.clock() for key in stored)
    for key in stored:
        imported = (ECKey if key.alg == "ES256" else RSAKey).import_key(key.public_jwk)
        assert key.kid == key.public_jwk["kid"] == imported.thumbprint()  # RFC 7638
        assert b"PRIVATE KEY" not in key.private_key
        pem = sealing.unseal(SECRET, purpose=sealing.SIGNING_KEYS, bound_to=key.kid.encode(), sealed=key.private_key)
        assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    [es256] = [key for key in stored if key.alg == "ES256"]
    decoded = await verify(token, ctx)
    assert decoded.header == {"alg": "ES256", "kid": es256.kid, "typ": "session+jwt"}
    assert decoded.claims == {"sub": "u1"}


async def test_rs256_tokens_are_signed_with_a_2048_bit_key(ctx: Context) -> None:
    token = await keys.sign(ctx, {"sub": "u1"}, typ="JWT", alg="RS256")
    decoded = await verify(token, ctx)
    assert decoded.header["alg"] == "RS256"
    [rsa] = [key for key in await ctx.storage.signing_keys.all() if key.alg == "RS256"]
    assert RSAKey.import_key(rsa.public_jwk).raw_value.key_size == 2048


async def test_signing_reads_storage_only_when_the_keys_may_have_changed(clock: Clock) -> None:
    counted = CountedKeys()
    storage = memory_storage()
    ctx = node(Storage(**{**storage.__dict__, "signing_keys": counted}), clock)
    for _ in range(20):
        await keys.sign(ctx, {"n": 1}, typ="JWT")
        clock.advance(seconds=1)
    reads = counted.reads
    assert reads <= 3  # the first read, and the read again after making the first keys
    clock.advance(seconds=60)
    await keys.sign(ctx, {"n": 1}, typ="JWT")
    assert counted.reads == reads + 1  # a minute on: another node may have rotated


async def test_a_rotation_publishes_first_signs_later_and_keeps_old_tokens_verifiable(
    ctx: Context, clock: Clock
) -> None:
    old_token = await keys.sign(ctx, {"sub": "u1"}, typ="session+jwt")
    old_kid = jwt.decode(old_token, KeySet.import_key_set(await keys.jwks(ctx))).header["kid"]
    clock.advance(minutes=1)
    made = await keys.rotate(ctx)
    assert sorted(key.alg for key in made) == ["ES256", "RS256"]
    assert all(key.signs_from == clock.now + MAX_AGE for key in made)
    published = {key["kid"] for key in (await keys.jwks(ctx))["keys"]}
    assert {key.kid for key in made} < published and old_kid in published
    # Until one JWKS max-age has passed, verifiers may hold the old JWKS only: the old key still signs.
    clock.advance(seconds=299)
    assert (await verify(await keys.sign(ctx, {}, typ="JWT"), ctx)).header["kid"] == old_kid
    clock.advance(seconds=1)
    [new_es256] = [key.kid for key in made if key.alg == "ES256"]
    assert (await verify(await keys.sign(ctx, {}, typ="JWT"), ctx)).header["kid"] == new_es256
    # The old key is published as long as a token it signed may live, then no more.
    clock.advance(minutes=59, seconds=59)
    assert (await verify(old_token, ctx)).claims == {"sub": "u1"}
    clock.advance(seconds=1)
    assert old_kid not in {key["kid"] for key in (await keys.jwks(ctx))["keys"]}
    assert {key["kid"] for key in (await keys.jwks(ctx))["keys"]} == {key.kid for key in made}
    states = {key.kid: keys.state(key, clock.now) for key in await keys.list_keys(ctx)}
    assert states[old_kid] == "retired" and states[new_es256] == "active"
    await keys.rotate(ctx)  # and a later rotation deletes it
    assert old_kid not in {key.kid for key in await keys.list_keys(ctx)}


async def test_another_node_signs_with_the_rotated_keys_once_they_sign(clock: Clock) -> None:
    storage = memory_storage()
    first, second = node(storage, clock), node(storage, clock)
    before = await keys.sign(second, {}, typ="JWT")
    made = await keys.rotate(first)
    clock.advance(seconds=300)
    after = await keys.sign(second, {}, typ="JWT")
    [new_es256] = [key.kid for key in made if key.alg == "ES256"]
    assert (await verify(after, first)).header["kid"] == new_es256
    assert (await verify(before, first)).header["kid"] != new_es256


async def test_keys_sealed_under_another_secret_are_replaced_and_stay_published(clock: Clock) -> None:
    storage = memory_storage()
    old = node(storage, clock, secret_key=b"a" * 32)
    old_token = await keys.sign(old, {"sub": "u1"}, typ="JWT")
    restarted = node(storage, clock, secret_key=b"b" * 32)
    new_token = await keys.sign(restarted, {"sub": "u1"}, typ="JWT")
    assert jwt.decode(old_token, KeySet.import_key_set(await keys.jwks(restarted))).claims == {"sub": "u1"}
    new_kid = jwt.decode(new_token, KeySet.import_key_set(await keys.jwks(restarted))).header["kid"]
    assert new_kid != jwt.decode(old_token, KeySet.import_key_set(await keys.jwks(restarted))).header["kid"]


_databases = itertools.count()


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "postgresql":
        postgres: PostgresServer = request.getfixturevalue("postgres")
        url = postgres.create_database(f"keys_{next(_databases)}")
    else:
        url = f"sqlite:///{tmp_path}/keys.db"
    upgrade(url)
    yield url


async def test_nodes_starting_together_make_one_key_set(database_url: str) -> None:
    """Four nodes (each its own process's storage, thread and event loop) sign their first token at once."""
    start = threading.Barrier(4, timeout=30)

    def first_token() -> str:
        async def run() -> str:
            storage, close = open_storage(database_url)
            try:
                ctx = node(storage, Clock(datetime.now(UTC)))
                await asyncio.to_thread(start.wait)
                return await keys.sign(ctx, {"sub": "u1"}, typ="JWT")
            finally:
                await close()

        return asyncio.run(run())

    tokens = await asyncio.gather(*(asyncio.to_thread(first_token) for _ in range(4)))
    storage, close = open_storage(database_url)
    try:
        stored = await storage.signing_keys.all()
    finally:
        await close()
    assert sorted((key.alg, key.generation) for key in stored) == [("ES256", 1), ("RS256", 1)]
    [es256] = [key for key in stored if key.alg == "ES256"]
    published = KeySet.import_key_set({"keys": [key.public_jwk for key in stored]})
    assert {jwt.decode(token, published).header["kid"] for token in tokens} == {es256.kid}


async def test_a_node_whose_clock_is_behind_signs_with_the_first_keys(clock: Clock) -> None:
    storage = memory_storage()
    ahead = node(storage, clock)
    await keys.sign(ahead, {}, typ="JWT")
    behind = node(storage, Clock(clock.now - timedelta(seconds=2)))
    token = await keys.sign(behind, {}, typ="JWT")
    assert [key.generation for key in await storage.signing_keys.all()] == [1, 1]
    assert (await verify(token, ahead)).header["typ"] == "JWT"


async def test_housekeeping_deletes_keys_no_longer_published(ctx: Context, clock: Clock) -> None:
    first = {key.kid for key in await keys.list_keys(ctx)}
    made = await keys.rotate(ctx)
    clock.advance(seconds=300, hours=1)
    await housekeeping.purge(ctx)
    assert {key.kid for key in await ctx.storage.signing_keys.all()} == {key.kid for key in made}
    assert first.isdisjoint(key.kid for key in await ctx.storage.signing_keys.all())
