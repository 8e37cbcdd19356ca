"""The test-only metadata settings: metadata statements from a folder, and an MDS root of one's own."""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from passgate.config import ConfigError, load_settings
from passgate.core.mds import MetadataChainInvalid
from passgate.testing import SoftwareAuthenticator
from passgate.testing.certificates import TestRoot
from passgate.testing.metadata import TestMetadataService, metadata_statement
from passgate.testing.packed import packed_attestation
from tests.clock import Clock
from tests.conformance.conftest import Tool, ok
from tests.web.conftest import Server

AAGUID = bytes.fromhex("c5ef55ff" + "ad9a4b9f" + "80b3e5cd" + "2a1e0001")


def _root() -> TestRoot:
    return TestRoot.create("Conformance Test Root", datetime.datetime.now(datetime.UTC))


async def test_statements_in_the_folder_anchor_attestations(make_server: Callable[..., Server], tmp_path: Path) -> None:
    root = _root()
    folder = tmp_path / "statements"
    folder.mkdir()
    (folder / "model.json").write_text(json.dumps(metadata_statement(AAGUID, roots=[root.pem])))
    (folder / "notes.json").write_text("not a statement")  # skipped with a warning
    server = make_server(conformance=True, policy="enterprise", mds_statements_dir=str(folder))
    async with server.client() as http:
        tool = Tool(http=http)
        anchored = await tool.register(
            SoftwareAuthenticator(aaguid=AAGUID),
            attestation="direct",
            mutate=lambda credential: packed_attestation(credential, root=root).response,
        )
        assert ok(anchored), anchored.text
        elsewhere = await tool.register(
            SoftwareAuthenticator(aaguid=AAGUID),
            attestation="direct",
            mutate=lambda credential: packed_attestation(credential).response,
        )
        assert not ok(elsewhere) and elsewhere.json()["error"] == "attestation_untrusted"


async def test_without_the_statements_nothing_anchors_them(make_server: Callable[..., Server]) -> None:
    root = _root()
    server = make_server(conformance=True, policy="enterprise")
    async with server.client() as http:
        refused = await Tool(http=http).register(
            SoftwareAuthenticator(aaguid=AAGUID),
            attestation="direct",
            mutate=lambda credential: packed_attestation(credential, root=root).response,
        )
    assert not ok(refused) and refused.json()["error"] == "attestation_untrusted"


async def test_a_blob_signed_under_the_configured_mds_root_is_used(
    make_server: Callable[..., Server], tmp_path: Path
) -> None:
    moment = Clock().now  # the servers' clock
    service = TestMetadataService.create(moment)
    statement = metadata_statement(AAGUID)
    blob = tmp_path / "mds.jwt"
    compromised = {statement["aaguid"]: "ATTESTATION_KEY_COMPROMISE"}
    blob.write_text(service.blob([statement], statuses=compromised, moment=moment))
    root_file = tmp_path / "mds-root.pem"
    root_file.write_text(service.root_pem)
    with pytest.raises(MetadataChainInvalid):  # under the pinned GlobalSign root the BLOB does not verify
        make_server(conformance=True, mds_file=str(blob))
    server = make_server(conformance=True, mds_file=str(blob), mds_root_pem=str(root_file))
    async with server.client() as http:
        response = await Tool(http=http).register(SoftwareAuthenticator(aaguid=AAGUID))
        # The BLOB verified, and it reports the model compromised.
        assert not ok(response) and response.json()["error"] == "authenticator_compromised"
        other = await Tool(http=http).register(SoftwareAuthenticator())
        assert ok(other), other.text


def test_the_mds_root_may_be_the_pem_itself_and_must_be_a_certificate(tmp_path: Path) -> None:
    pem = TestMetadataService.create().root_pem
    assert load_settings({"mds_root_pem": pem}).mds_root == pem
    with pytest.raises(ConfigError, match="mds_root_pem is neither a PEM certificate nor a file"):
        load_settings({"mds_root_pem": str(tmp_path / "missing.pem")})
    with pytest.raises(ConfigError, match=r"mds_statements_dir .* is not a folder"):
        load_settings({"mds_statements_dir": str(tmp_path / "missing")})
