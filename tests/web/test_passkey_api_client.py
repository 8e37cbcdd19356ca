"""An app's server uses passgate_client's PasskeyApi, sync and async, against a real Passgate."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from passgate.testing import SoftwareAuthenticator
from passgate_client import PasskeyApi, PasskeyApiError
from tests.services import PassgateProcess, free_port, passgate_command

SHOP = "http://shop.localhost:3000"


@dataclass
class Site:
    url: str
    app_id: str
    secret: str


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    directory: Path = tmp_path_factory.mktemp("passkey-api-client")
    port = free_port()
    database = f"sqlite:///{directory}/passgate.db"
    environment = {name: value for name, value in os.environ.items() if not name.startswith("PASSGATE_")}
    added = subprocess.run(
        [sys.executable, "-m", "passgate", "apps", "add", "Shop", "--origin", SHOP, "--database-url", database],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=True,
    )
    app_id = re.search(r"^app_id: (\S+)$", added.stdout, re.MULTILINE)
    secret = re.search(r"^api_key: (\S+)$", added.stdout, re.MULTILINE)
    assert app_id and secret, added.stdout
    command = passgate_command(port, database_url=database, origin=f"http://localhost:{port}")
    process = PassgateProcess(port=port, command=command, log=directory / "server.log")
    process.start()
    try:
        yield Site(url=process.url, app_id=app_id.group(1), secret=secret.group(1))
    finally:
        process.stop()


def browser_adds_passkey(site: Site, authenticator: SoftwareAuthenticator, token: str) -> str:
    with httpx.Client(base_url=site.url, headers={"Origin": SHOP}) as page:
        begin = page.post("/api/v1/passkeys/register/begin", json={"registrationToken": token})
        assert begin.status_code == 200, begin.text
        done = page.post(
            "/api/v1/passkeys/register/complete",
            json=authenticator.create(begin.json(), origin=SHOP),
            headers={"Passgate-Ceremony": begin.headers["Passgate-Ceremony"]},
        )
        assert done.status_code == 200, done.text
        credential_id: str = done.json()["credentialId"]
        return credential_id


def browser_signs_in(site: Site, authenticator: SoftwareAuthenticator) -> str:
    with httpx.Client(base_url=site.url, headers={"Origin": SHOP}) as page:
        begin = page.post("/api/v1/passkeys/login/begin", json={"appId": site.app_id})
        done = page.post(
            "/api/v1/passkeys/login/complete",
            json=authenticator.get(begin.json(), origin=SHOP),
            headers={"Passgate-Ceremony": begin.headers["Passgate-Ceremony"]},
        )
        assert done.status_code == 200, done.text
        token: str = done.json()["token"]
        return token


def test_the_sync_client_registers_verifies_and_manages_passkeys(site: Site) -> None:
    api = PasskeyApi(site.url, site.secret)
    authenticator = SoftwareAuthenticator()
    issued = api.create_registration("user-1", "ada@shop", "Ada")
    credential_id = browser_adds_passkey(site, authenticator, issued["registrationToken"])
    token = browser_signs_in(site, authenticator)
    who = api.verify_sign_in(token)
    assert who["userId"] == "user-1" and who["credentialId"] == credential_id
    with pytest.raises(PasskeyApiError) as used:
        api.verify_sign_in(token)
    assert used.value.status == 410 and used.value.code == "token_used"
    assert api.rename_passkey(credential_id, "Laptop")["nickname"] == "Laptop"
    assert [p["nickname"] for p in api.list_passkeys("user-1")] == ["Laptop"]
    api.remove_passkey(credential_id)
    assert api.list_passkeys("user-1") == []
    api.remove_user("user-1")
    with pytest.raises(PasskeyApiError) as gone:
        api.list_passkeys("user-1")
    assert gone.value.code == "not_found"


async def test_the_async_client_does_the_same(site: Site) -> None:
    api = PasskeyApi(site.url, site.secret)
    authenticator = SoftwareAuthenticator()
    issued = await api.acreate_registration("user/2", "bea@shop")
    credential_id = browser_adds_passkey(site, authenticator, issued["registrationToken"])
    who = await api.averify_sign_in(browser_signs_in(site, authenticator))
    assert who["userId"] == "user/2"
    assert [p["id"] for p in await api.alist_passkeys("user/2")] == [credential_id]
    assert (await api.arename_passkey(credential_id, "Phone"))["nickname"] == "Phone"
    await api.aremove_passkey(credential_id)
    await api.aremove_user("user/2")
    with pytest.raises(PasskeyApiError) as gone:
        await api.alist_passkeys("user/2")
    assert gone.value.status == 404


def test_a_wrong_key_is_refused(site: Site) -> None:
    with pytest.raises(PasskeyApiError) as refused:
        PasskeyApi(site.url, "pg_sk_not-a-key").create_registration("u", "u")
    assert refused.value.status == 401 and refused.value.code == "invalid_api_key"
