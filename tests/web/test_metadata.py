"""FIDO metadata in the server: compromised models refused at registration, flagged or blocked at sign-in."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable
from datetime import date
from pathlib import Path

import httpx

from passgate.core.mds import MetadataBlob, MetadataEntry, StatusReport
from passgate.testing import SoftwareAuthenticator
from tests.conftest import load_vector
from tests.web.conftest import ORIGIN, Server, login_options, sign_up

MODEL = uuid.UUID("5ca1ab1e-0000-4000-8000-00000000c0de")


def report(server: Server, *statuses: str) -> None:
    """The metadata the server uses now says these statuses of MODEL (latest last)."""
    entry = MetadataEntry(
        aaguid=str(MODEL),
        description="Example Key",
        status_reports=tuple(StatusReport(s, date(2026, 1, 1 + i)) for i, s in enumerate(statuses)),
    )
    server.app.state.ctx.metadata.current = MetadataBlob(
        number=1, next_update=date(2027, 1, 1), entries={str(MODEL): entry}
    )


async def sign_in(client: httpx.AsyncClient, authenticator: SoftwareAuthenticator) -> httpx.Response:
    options = await login_options(client)
    return await client.post("/auth/passkey/login/complete", json=authenticator.get(options, origin=ORIGIN))


async def test_a_compromised_model_cannot_register(server: Server) -> None:
    report(server, "FIDO_CERTIFIED_L1", "REVOKED")
    async with server.client() as client:
        begin = await client.post("/auth/passkey/register/begin", json={"username": "ann"})
        response = SoftwareAuthenticator(aaguid=MODEL.bytes).create(begin.json(), origin=ORIGIN)
        refused = await client.post("/auth/passkey/register/complete", json=response)
        assert refused.status_code == 400 and refused.json()["error"] == "authenticator_compromised"
    assert server.rows("SELECT count(*) FROM users") == [(0,)]


async def test_passkeys_of_a_model_reported_later_sign_in_to_recover(server: Server) -> None:
    authenticator = SoftwareAuthenticator(aaguid=MODEL.bytes)
    async with server.client() as client:
        await sign_up(client, authenticator, "bo")
        await client.post("/auth/logout")
        report(server, "FIDO_CERTIFIED_L1", "USER_KEY_PHYSICAL_COMPROMISE")
        assert (await sign_in(client, authenticator)).status_code == 200
        state = (await client.get("/auth/account")).json()
        assert state["session"]["kind"] == "recovery"  # replace the passkey before anything else
        assert (await client.post("/auth/recovery/codes")).json()["error"] == "step_up_required"
    rows = server.rows("SELECT detail FROM events WHERE type = 'sign_in' AND outcome = 'success'")
    assert '"compromised_model": true' in rows[-1][0]


async def test_the_policy_can_block_them(make_server: Callable[..., Server]) -> None:
    server = make_server(policy_overrides={"on_compromised": "block"})
    authenticator = SoftwareAuthenticator(aaguid=MODEL.bytes)
    async with server.client() as client:
        await sign_up(client, authenticator, "cy")
        await client.post("/auth/logout")
        report(server, "REVOKED")
        refused = await sign_in(client, authenticator)
        assert refused.status_code == 400 and refused.json()["error"] == "authenticator_compromised"
        assert (await client.get("/auth/session")).status_code == 401
        report(server, "REVOKED", "UPDATE_AVAILABLE")  # a later report clears it
        assert (await sign_in(client, authenticator)).status_code == 200


def test_mds_refresh_refuses_an_expired_blob(tmp_path: Path) -> None:
    blob = tmp_path / "blob.jwt"
    blob.write_text(load_vector("mds3_real_fido_blob_no9_webauthn4j.json")["mds_blob_jwt"])
    stored = tmp_path / "mds.jwt"
    command = [sys.executable, "-m", "passgate", "mds", "refresh", "--file", str(blob), "--mds-file", str(stored)]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 1, result.stdout + result.stderr  # signed in 2021: its certificates have expired
    assert "mds_expired" in result.stderr or "expired" in result.stderr.lower()
    assert not stored.exists()
