"""`passgate keys rotate` and `passgate keys list` against a server's database, and what its JWKS then says."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime

from joserfc import jwt
from joserfc.jwk import KeySet

from passgate.testing import SoftwareAuthenticator
from tests.web.conftest import Server, sign_up

SECRET = "the server's secret key"


def passgate(server: Server, *arguments: str, secret_key: str | None = SECRET) -> subprocess.CompletedProcess[str]:
    environment = {name: value for name, value in os.environ.items() if not name.startswith("PASSGATE_")}
    if secret_key is not None:
        environment["PASSGATE_SECRET_KEY"] = secret_key
    command = [sys.executable, "-m", "passgate", "keys", *arguments, "--database-url", f"sqlite:///{server.database}"]
    return subprocess.run(command, capture_output=True, text=True, env=environment, timeout=120, check=False)


async def published(server: Server) -> dict[str, str]:
    async with server.client() as client:
        response = await client.get("/.well-known/jwks.json")
    return {key["kid"]: key["alg"] for key in response.json()["keys"]}


async def verify(server: Server, token: str) -> jwt.Token:
    async with server.client() as client:
        jwks = KeySet.import_key_set((await client.get("/.well-known/jwks.json")).json())
    return jwt.decode(token, jwks, algorithms=["ES256"])


async def test_a_token_signed_before_a_rotation_verifies_after_it(make_server: Callable[..., Server]) -> None:
    server = make_server(secret_key=SECRET)
    server.clock.now = datetime.now(UTC)  # the command runs at the real time
    async with server.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), "ann")
        before = (await browser.post("/auth/session/token")).json()["token"]
    old_kid = (await verify(server, before)).header["kid"]

    rotated = passgate(server, "rotate")
    assert rotated.returncode == 0, rotated.stderr
    new_kids = {line.split()[4]: line.split()[2] for line in rotated.stdout.splitlines()}
    assert sorted(new_kids.values()) == ["ES256", "RS256"]
    server.clock.now = datetime.now(UTC)
    assert set(new_kids) | {old_kid} <= set(await published(server))  # the next keys are published at once
    assert (await verify(server, before)).claims["sub"]

    listed = passgate(server, "list").stdout.splitlines()
    assert len(listed) == 4 and all(kid in "\n".join(listed) for kid in (*new_kids, old_kid))
    assert sum(" next " in line for line in listed) == 2 and sum(" active " in line for line in listed) == 2

    server.clock.advance(seconds=301)  # one JWKS max-age on: the new keys sign
    async with server.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), "bob")
        after = (await browser.post("/auth/session/token")).json()["token"]
    [new_es256] = [kid for kid, alg in new_kids.items() if alg == "ES256"]
    assert (await verify(server, after)).header["kid"] == new_es256
    assert (await verify(server, before)).header["kid"] == old_kid

    server.clock.advance(hours=1)  # past the longest lifetime of a token the old key signed
    assert set(await published(server)) == set(new_kids)


async def test_rotating_needs_the_servers_secret_key(server: Server) -> None:
    refused = passgate(server, "rotate", secret_key=None)
    assert refused.returncode == 2 and "secret_key" in refused.stderr
    assert server.rows("SELECT count(*) FROM signing_keys") == [(0,)]
