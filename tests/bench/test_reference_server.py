"""The benchmark's SimpleWebAuthn reference server starts, and discoverable sign-ins through it succeed (or are
refused) as through Passgate: the same virtual browser and ceremony the benchmark drives it with."""

from __future__ import annotations

import contextlib
import secrets
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from bench.browsers import RawBrowser
from bench.ceremonies import LOGIN_BEGIN, LOGIN_COMPLETE, CeremonyFailed, Population, SignIn
from bench.load import LoadResult
from bench.run import Sample, merged
from bench.servers import Nodes
from bench.settings import ORIGIN, RP_ID

from bench import reference_server
from passgate.core.encoding import b64url_encode
from passgate.testing import SoftwareAuthenticator


def registered(name: str) -> SoftwareAuthenticator:
    """An ES256 passkey for `name` made from creation options alone (the seed carries it to the server)."""
    authenticator = SoftwareAuthenticator(sign_count=None)
    options = {
        "rp": {"id": RP_ID, "name": "bench"},
        "user": {"id": b64url_encode(secrets.token_bytes(16)), "name": name, "displayName": name},
        "challenge": b64url_encode(secrets.token_bytes(32)),
        "pubKeyCredParams": [{"type": "public-key", "alg": -7}],
    }
    authenticator.create(options, origin=ORIGIN)
    return authenticator


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[tuple[Nodes, list[SoftwareAuthenticator]]]:
    authenticators = [registered("alice"), registered("bob")]
    with contextlib.ExitStack() as stack:
        yield reference_server.start(stack, tmp_path, "reference", authenticators), authenticators


async def test_seeded_passkeys_sign_in_through_the_reference_server(
    seeded: tuple[Nodes, list[SoftwareAuthenticator]],
) -> None:
    nodes, authenticators = seeded
    browser = RawBrowser("127.0.0.1", nodes.ports[0])
    try:
        sign_in = SignIn(Population(authenticators=authenticators))
        for _ in range(4):  # each seeded user twice, on one keep-alive connection
            await sign_in(browser)
        options = (await browser.post(LOGIN_BEGIN)).data
        assert options["rpId"] == RP_ID and not options.get("allowCredentials")
        complete = await browser.post(LOGIN_COMPLETE, authenticators[1].get(options, origin=ORIGIN))
        assert complete.status == 200
        assert complete.data["verified"] is True and complete.data["user"]["username"] == "bob"
    finally:
        await browser.close()


async def test_the_reference_server_refuses_what_it_must(seeded: tuple[Nodes, list[SoftwareAuthenticator]]) -> None:
    nodes, _ = seeded
    stranger = registered("mallory")  # not in the seed
    browser = RawBrowser("127.0.0.1", nodes.ports[0])
    try:
        with pytest.raises(CeremonyFailed, match="login/complete 400 unknown_credential"):
            await SignIn(Population(authenticators=[stranger]))(browser)
        options = (await browser.post(LOGIN_BEGIN)).data
        replayed = seeded[1][0].get(options, origin=ORIGIN)
        assert (await browser.post(LOGIN_COMPLETE, replayed)).data["verified"] is True
        again = await browser.post(LOGIN_COMPLETE, replayed)  # the challenge was taken by the first answer
        assert (again.status, again.data["error"]) == (400, "challenge_not_found")
    finally:
        await browser.close()


def test_the_seed_holds_each_users_passkeys() -> None:
    alice = registered("alice")
    document = reference_server.seed_document([alice])
    (user,) = document["users"]  # type: ignore[misc]
    credential = alice.credentials[0]
    assert user["username"] == "alice" and user["userHandle"] == b64url_encode(credential.user_handle)
    assert user["credentials"] == [
        {
            "id": b64url_encode(credential.credential_id),
            "publicKey": b64url_encode(credential.public_key_cose),
            "counter": 0,
        }
    ]


def test_side_by_side_rounds_are_summed() -> None:
    first = Sample(
        result=LoadResult(ok=10, errors=Counter({"timeout": 1}), latencies=[0.1] * 10, elapsed=2.0),
        server_cpu=0.5,
        db_cpu=0.0,
        generator_cpu=0.1,
        machine_cpu=1.0,
        processes=1,
    )
    second = Sample(
        result=LoadResult(ok=30, latencies=[0.3] * 30, elapsed=2.0),
        server_cpu=0.7,
        db_cpu=0.0,
        generator_cpu=0.2,
        machine_cpu=1.5,
        processes=1,
        attempts=2,
    )
    total = merged([first, second])
    assert (total.result.ok, total.result.elapsed, total.result.rate) == (40, 4.0, 10.0)
    assert total.result.errors == Counter({"timeout": 1}) and len(total.result.latencies) == 40
    assert (total.server_cpu, total.attempts) == (pytest.approx(1.2), 3)
    assert total.result.percentile(0.5) == 0.3
