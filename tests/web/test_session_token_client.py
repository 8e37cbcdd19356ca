"""A backend of the same site verifies Passgate's session token with passgate-client, against a real server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import Depends, FastAPI

from passgate.testing import SoftwareAuthenticator
from passgate_client import InsufficientAcr, PassgateUser, PassgateVerifier, WrongAudience
from passgate_client.fastapi import current_user
from tests.services import PassgateProcess, free_port, passgate_command


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory: Path = tmp_path_factory.mktemp("session-token-client")
    port = free_port()
    origin = f"http://localhost:{port}"
    command = passgate_command(port, database_url=f"sqlite:///{directory}/passgate.db", origin=origin)
    process = PassgateProcess(port=port, command=command, log=directory / "server.log")
    process.start()
    try:
        yield origin
    finally:
        process.stop()


def signed_in_token(site: str, name: str) -> tuple[str, str]:
    """Sign up over the JSON API with a software passkey; the session token and the account's id."""
    with httpx.Client(base_url=site, headers={"Origin": site}) as browser:
        options = browser.post("/auth/passkey/register/begin", json={"username": name}).json()
        registered = browser.post(
            "/auth/passkey/register/complete", json=SoftwareAuthenticator().create(options, origin=site)
        )
        assert registered.status_code == 200, registered.text
        issued = browser.post("/auth/session/token")
        assert issued.status_code == 200, issued.text
        return issued.json()["token"], registered.json()["user"]["id"]


def verifier(site: str, require_acr: str | None = None) -> PassgateVerifier:
    return PassgateVerifier(site, site, jwks_uri=f"{site}/.well-known/jwks.json", require_acr=require_acr)


def test_the_client_verifies_the_session_token_with_the_servers_jwks(site: str) -> None:
    token, user_id = signed_in_token(site, "ada")
    user = verifier(site).verify(token)
    assert user.sub == user_id
    assert user.acr == "phr" and "pop" in user.amr and "swk" in user.amr
    assert user.sid and user.auth_time is not None


def test_the_client_refuses_it_for_another_audience_or_a_stronger_acr(site: str) -> None:
    token, _ = signed_in_token(site, "bea")
    with pytest.raises(WrongAudience):
        PassgateVerifier(site, "https://api.other.example", jwks_uri=f"{site}/.well-known/jwks.json").verify(token)
    with pytest.raises(InsufficientAcr):
        verifier(site, require_acr="phrh").verify(token)  # a software passkey is not attested hardware


async def test_a_fastapi_backend_signs_the_person_in_with_it(site: str) -> None:
    token, user_id = signed_in_token(site, "cy")
    app = FastAPI()
    check = verifier(site)

    @app.get("/me")
    async def me(user: PassgateUser = Depends(current_user(check))) -> dict[str, str]:  # noqa: B008
        return {"sub": user.sub}

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://backend") as backend:
        allowed = await backend.get("/me", headers={"Authorization": f"Bearer {token}"})
        refused = await backend.get("/me", headers={"Authorization": f"Bearer {token[:-4]}AAAA"})
    assert allowed.status_code == 200 and allowed.json() == {"sub": user_id}
    assert refused.status_code == 401 and "invalid_token" in refused.headers["www-authenticate"]
