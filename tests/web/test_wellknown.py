"""The well-known files and the origins of related sites and Android apps."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest

from passgate.config import ConfigError, android_origin, load_settings
from passgate.core.encoding import b64url_encode
from passgate.testing import SoftwareAuthenticator
from tests.web.conftest import ORIGIN, Server

FINGERPRINT = ":".join(f"{b:02X}" for b in hashlib.sha256(b"release key").digest())
APPS = {
    "related_origins": ["https://localhost.example"],
    "ios_apps": ["ABCDE12345.com.example.app"],
    "android_apps": [f"com.example.app={FINGERPRINT}"],
}


@pytest.fixture
def apps_server(make_server: Callable[..., Server]) -> Server:
    return make_server(**APPS)


async def test_app_association_files(apps_server: Server) -> None:
    async with apps_server.client() as client:
        aasa = await client.get("/.well-known/apple-app-site-association")
        assert aasa.headers["content-type"] == "application/json"
        assert aasa.json() == {"webcredentials": {"apps": ["ABCDE12345.com.example.app"]}}
        links = (await client.get("/.well-known/assetlinks.json")).json()
        assert links[0]["target"] == {
            "namespace": "android_app",
            "package_name": "com.example.app",
            "sha256_cert_fingerprints": [FINGERPRINT],
        }
        assert "delegate_permission/common.get_login_creds" in links[0]["relation"]
        related = (await client.get("/.well-known/webauthn")).json()
        assert related == {"origins": [ORIGIN, "https://localhost.example"]}
        endpoints = (await client.get("/.well-known/passkey-endpoints")).json()
        assert endpoints == {"enroll": f"{ORIGIN}/account", "manage": f"{ORIGIN}/account"}


async def test_no_related_origins_means_no_file(server: Server) -> None:
    async with server.client() as client:
        assert (await client.get("/.well-known/webauthn")).status_code == 404


@pytest.mark.parametrize("origin", ["android", "https://localhost.example"])
async def test_android_apps_and_related_sites_can_register(apps_server: Server, origin: str) -> None:
    client_origin = android_origin(FINGERPRINT) if origin == "android" else origin
    assert client_origin.startswith(("android:apk-key-hash:", "https://"))
    async with apps_server.client() as client:
        begin = await client.post("/auth/passkey/register/begin", json={"username": f"app-{len(origin)}"})
        response = SoftwareAuthenticator().create(begin.json(), origin=client_origin, rp_id="localhost")
        complete = await client.post("/auth/passkey/register/complete", json=response)
        assert complete.status_code == 200, complete.text


async def test_an_unknown_app_is_refused(apps_server: Server) -> None:
    other = "android:apk-key-hash:" + b64url_encode(hashlib.sha256(b"someone else").digest())
    async with apps_server.client() as client:
        begin = await client.post("/auth/passkey/register/begin", json={"username": "intruder"})
        response = SoftwareAuthenticator().create(begin.json(), origin=other, rp_id="localhost")
        complete = await client.post("/auth/passkey/register/complete", json=response)
        assert complete.status_code == 400 and complete.json()["error"] == "origin_mismatch"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"related_origins": ["http://other.example"]}, "Related origin"),
        ({"ios_apps": ["com.example.app"]}, "iOS app"),
        ({"android_apps": ["com.example.app=12:34"]}, "Android app"),
        ({"android_apps": [f"not a package={FINGERPRINT}"]}, "Android app"),
    ],
)
def test_app_settings_are_validated_at_start_up(flags: dict[str, list[str]], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(flags, {})
