"""A conformance-profile server and a client that calls it as the FIDO conformance tools do."""

from __future__ import annotations

import datetime
import hashlib
import itertools
import json
import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cbor2
import httpx
import pytest

from passgate.config import load_settings
from passgate.core.encoding import b64url_decode, b64url_encode
from passgate.store.migrate import upgrade
from passgate.testing import SoftwareAuthenticator, SoftwareCredential
from passgate.testing.certificates import TestRoot
from passgate.testing.metadata import metadata_statement
from passgate.web import create_app
from tests.clock import Clock
from tests.web.conftest import ORIGIN, Server, make_server, server

__all__ = ["make_server", "server"]  # the web tests' fixtures, for these tests too

Mutation = Callable[[dict[str, Any]], Any]
_names = itertools.count(1)


def tool_credential(credential: dict[str, Any]) -> dict[str, Any]:
    """A browser's credential JSON as the tools send it: no rawId, `getClientExtensionResults`."""
    shaped = {key: value for key, value in credential.items() if key not in ("rawId", "clientExtensionResults")}
    shaped["getClientExtensionResults"] = credential.get("clientExtensionResults", {})
    shaped["response"] = {
        key: value
        for key, value in credential["response"].items()
        if key in ("clientDataJSON", "attestationObject", "authenticatorData", "signature", "userHandle")
    }
    return shaped


@dataclass
class Tool:
    """One run of the conformance tool: its own cookie jar, requests shaped as its transport binding says."""

    http: httpx.AsyncClient
    origin: str = ORIGIN
    last_options: dict[str, Any] = field(default_factory=dict)

    async def post(self, path: str, body: Any) -> httpx.Response:
        return await self.http.post(path, json=body)

    async def attestation_options(self, username: str | None = None, **body: Any) -> dict[str, Any]:
        name = username or f"conformance-{next(_names)}"
        response = await self.post("/attestation/options", {"username": name, "displayName": name, **body})
        assert response.status_code == 200, response.text
        self.last_options = response.json()
        return self.last_options

    async def register(
        self,
        authenticator: SoftwareAuthenticator,
        *,
        username: str | None = None,
        mutate: Mutation | None = None,
        **body: Any,
    ) -> httpx.Response:
        """Options, the authenticator's answer (changed by `mutate`, which may return a replacement), result."""
        options = await self.attestation_options(username, **body)
        credential = tool_credential(authenticator.create(options, origin=self.origin))
        if mutate is not None:
            replaced = mutate(credential)
            credential = credential if replaced is None else replaced
        return await self.post("/attestation/result", credential)

    async def assertion_options(self, username: str, **body: Any) -> dict[str, Any]:
        response = await self.post("/assertion/options", {"username": username, **body})
        assert response.status_code == 200, response.text
        self.last_options = response.json()
        return self.last_options

    async def sign_in(
        self,
        authenticator: SoftwareAuthenticator,
        username: str,
        *,
        mutate: Mutation | None = None,
        **body: Any,
    ) -> httpx.Response:
        options = await self.assertion_options(username, **body)
        credential = tool_credential(authenticator.get(options, origin=self.origin))
        if mutate is not None:
            replaced = mutate(credential)
            credential = credential if replaced is None else replaced
        return await self.post("/assertion/result", credential)


def ok(response: httpx.Response) -> bool:
    """The envelope says ok (and a failure is a 4xx or 5xx with a message, as the binding demands)."""
    body = response.json()
    if body["status"] == "ok":
        assert response.status_code == 200 and body["errorMessage"] == "", response.text
        return True
    assert body["status"] == "failed" and body["errorMessage"], response.text
    assert 400 <= response.status_code < 600, response.text
    return False


@pytest.fixture
def conformance_server(make_server: Callable[..., Server]) -> Server:
    return make_server(conformance=True, rate_limit_per_ip=0, rate_limit_per_account=0)


@pytest.fixture
async def tool(conformance_server: Server) -> AsyncIterator[Tool]:
    async with conformance_server.client() as http:
        http.headers.pop("Origin")
        yield Tool(http=http)


# -- the tools' authenticator models: metadata statements naming one conformance-like root --------------------------

PACKED_AAGUID = bytes.fromhex("4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e")
TPM_AAGUID = bytes.fromhex("08987058cadc4b81b6e130de50dcbe96")
ANDROID_KEY_AAGUID = bytes.fromhex("b93fd961f2e6462fb12282002247de78")
SAFETYNET_AAGUID = bytes.fromhex("b5397666488f4e4c9b8d2f8d6c4e7a21")
# Every algorithm the tools try (RS1 and ES256K included), as a conformance test server's policy lists them.
ALL_ALGORITHMS = [-7, -35, -36, -47, -8, -19, -37, -38, -39, -257, -258, -259, -65535]


@dataclass(frozen=True)
class Models:
    root: TestRoot  # the root every model's statement names, like the conformance tools' fake root
    statements: Path  # the folder of metadata statements (mds_statements_dir)


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> Models:
    root = TestRoot.create("Conformance Test Attestation Root", datetime.datetime.now(datetime.UTC))
    folder = tmp_path_factory.mktemp("statements")
    for name, aaguid in [
        ("packed", PACKED_AAGUID),
        ("tpm", TPM_AAGUID),
        ("android-key", ANDROID_KEY_AAGUID),
        ("android-safetynet", SAFETYNET_AAGUID),
    ]:
        statement = metadata_statement(aaguid, description=f"Conformance {name} authenticator", roots=[root.pem])
        (folder / f"{name}.json").write_text(json.dumps(statement))
    return Models(root=root, statements=folder)


@pytest.fixture(scope="session")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite database to copy: migrating one per case would cost most of the cases' time."""
    database = tmp_path_factory.mktemp("template") / "passgate.db"
    upgrade(f"sqlite:///{database}")
    return database


@pytest.fixture
async def tool_with_models(migrated: Path, models: Models, tmp_path: Path) -> AsyncIterator[Tool]:
    """A conformance test server as the tools expect it: the statements loaded, every algorithm accepted."""
    database = tmp_path / "passgate.db"
    shutil.copyfile(migrated, database)
    settings = load_settings(
        {
            "database_url": f"sqlite:///{database}",
            "origins": [ORIGIN],
            "conformance": True,
            "rate_limit_per_ip": 0,
            "rate_limit_per_account": 0,
            "mds_statements_dir": str(models.statements),
            "policy_overrides": {"allowed_algorithms": ALL_ALGORITHMS},
        }
    )
    server = Server(app=create_app(settings, clock=Clock()), database=database, clock=Clock(), lifespan=False)
    try:
        async with server.client() as http:
            http.headers.pop("Origin")
            yield Tool(http=http)
    finally:
        await server.stop()


# -- changing what the authenticator answered ----------------------------------------------------------------------


def client_data(credential: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(b64url_decode(credential["response"]["clientDataJSON"]))
    return data


def set_client_data(credential: dict[str, Any], data: dict[str, Any] | bytes) -> None:
    raw = data if isinstance(data, bytes) else json.dumps(data, separators=(",", ":")).encode()
    credential["response"]["clientDataJSON"] = b64url_encode(raw)


def attestation_object(credential: dict[str, Any]) -> dict[str, Any]:
    decoded: dict[str, Any] = cbor2.loads(b64url_decode(credential["response"]["attestationObject"]))
    return decoded


def set_attestation_object(credential: dict[str, Any], value: dict[str, Any] | bytes) -> None:
    raw = value if isinstance(value, bytes) else cbor2.dumps(value)
    credential["response"]["attestationObject"] = b64url_encode(raw)


def signed_data(credential: dict[str, Any], auth_data: bytes) -> bytes:
    return auth_data + hashlib.sha256(b64url_decode(credential["response"]["clientDataJSON"])).digest()


def resign_assertion(credential: dict[str, Any], key: SoftwareCredential, auth_data: bytes | None = None) -> None:
    """Sign the (changed) authenticator data and client data again, as a genuine authenticator would."""
    if auth_data is not None:
        credential["response"]["authenticatorData"] = b64url_encode(auth_data)
    data = b64url_decode(credential["response"]["authenticatorData"])
    credential["response"]["signature"] = b64url_encode(key.sign(signed_data(credential, data)))


def with_extensions(auth_data: bytes, extensions: dict[str, Any]) -> bytes:
    """Authenticator data with the ED flag and an extensions map after whatever it holds."""
    return auth_data[:32] + bytes([auth_data[32] | 0x80]) + auth_data[33:] + cbor2.dumps(extensions)
