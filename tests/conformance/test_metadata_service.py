"""The conformance tools' Metadata Service cases (mds-1): a BLOB under the tools' own MDS root, as the daily refresh
takes it (`passgate mds refresh`'s code, with the CRLs of the BLOB's chain), then a FULL packed registration through
/attestation/* on a server that requires attestation. A BLOB refused leaves no metadata, so nothing anchors it."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from passgate.cli import mds as mds_cli
from passgate.core.encoding import b64url_decode, b64url_encode
from passgate.testing import SoftwareAuthenticator
from passgate.testing.metadata import TestMetadataService, metadata_statement
from passgate.testing.packed import packed_attestation
from tests.clock import Clock
from tests.conformance.cases import Case, fails, passes
from tests.conformance.conftest import PACKED_AAGUID, Models, Tool, ok
from tests.web.conftest import Server

MOMENT = Clock().now  # the servers' clock, at which the BLOB is verified
COMPROMISES = [
    "USER_VERIFICATION_BYPASS",
    "ATTESTATION_KEY_COMPROMISE",
    "USER_KEY_REMOTE_COMPROMISE",
    "USER_KEY_PHYSICAL_COMPROMISE",
]

Blob = Callable[[TestMetadataService, Models], tuple[str, list[bytes]]]


def good(service: TestMetadataService, models: Models, *, status: str = "FIDO_CERTIFIED_L1") -> str:
    statement = metadata_statement(PACKED_AAGUID, roots=[models.root.pem])
    return service.blob([statement], statuses={statement["aaguid"]: status}, moment=MOMENT)


def registered_under(blob: Blob, refusal: str | None = None) -> Callable[..., Awaitable[httpx.Response]]:
    """A case: the BLOB (and CRLs) `blob` makes, refreshed into the server's mds_file (or refused with the error code
    `refusal`), then a FULL registration."""

    async def build(make_server: Callable[..., Server], models: Models, directory: Path) -> httpx.Response:
        service = TestMetadataService.create(MOMENT)
        jws, crls = blob(service, models)
        (directory / "blob.jwt").write_text(jws)
        crl_files = []
        for number, crl in enumerate(crls):
            crl_files.append(directory / f"{number}.crl")
            crl_files[-1].write_bytes(crl)
        store = directory / "mds.jwt"
        said = io.StringIO()
        with contextlib.redirect_stdout(said), contextlib.redirect_stderr(said):
            status = mds_cli.refresh(
                str(directory / "blob.jwt"), None, store, MOMENT, crl_files=crl_files, trust_anchor_pem=service.root_pem
            )
        assert (status, store.exists()) == ((1, False) if refusal else (0, True)), said.getvalue()
        assert refusal is None or f"refused ({refusal})" in said.getvalue(), said.getvalue()
        (directory / "root.pem").write_text(service.root_pem)
        server = make_server(
            conformance=True, policy="enterprise", mds_file=str(store), mds_root_pem=str(directory / "root.pem")
        )
        async with server.client() as http:
            authenticator = SoftwareAuthenticator(aaguid=PACKED_AAGUID)
            return await Tool(http=http).register(
                authenticator, attestation="direct", mutate=lambda c: packed_attestation(c, root=models.root).response
            )

    return build


def _changed_payload(service: TestMetadataService, models: Models) -> tuple[str, list[bytes]]:
    header, payload, signature = good(service, models).split(".")
    changed = b64url_decode(payload).replace(b'"no": 1', b'"no": 2')
    return f"{header}.{b64url_encode(changed)}.{signature}", []


def _bad_signature(service: TestMetadataService, models: Models) -> tuple[str, list[bytes]]:
    header, payload, signature = good(service, models).split(".")
    raw = bytearray(b64url_decode(signature))
    raw[5] ^= 0x01
    return f"{header}.{payload}.{b64url_encode(bytes(raw))}", []


def _other_chain(service: TestMetadataService, models: Models) -> tuple[str, list[bytes]]:
    return good(TestMetadataService.create(MOMENT), models), []  # signed under another root than the trusted one


MDS_1: dict[str, Case] = {
    "P-1": passes(
        "FULL packed attestation of a model in a valid BLOB",
        registered_under(lambda s, m: (good(s, m), [s.crl("root", moment=MOMENT), s.crl("ca", moment=MOMENT)])),
    ),
    "F-1": fails(
        "a BLOB whose payload was changed after signing", registered_under(_changed_payload, "mds_signature_invalid")
    ),
    **{
        f"F-2 {status}": fails(
            f"the model's latest status is {status}",
            registered_under(lambda s, m, status=status: (good(s, m, status=status), [])),
        )
        for status in COMPROMISES
    },
    "F-3": fails("a BLOB whose signature does not verify", registered_under(_bad_signature, "mds_signature_invalid")),
    "F-4": fails(
        "a BLOB whose chain does not lead to the MDS root", registered_under(_other_chain, "mds_chain_invalid")
    ),
    "F-5": fails(
        "the MDS intermediate is revoked (the root's CRL)",
        registered_under(
            lambda s, m: (good(s, m), [s.crl("root", revoke=True, moment=MOMENT)]), "mds_revoked_certificate"
        ),
    ),
    "F-6": fails(
        "the MDS signing certificate is revoked (the CA's CRL)",
        registered_under(
            lambda s, m: (good(s, m), [s.crl("ca", revoke=True, moment=MOMENT)]), "mds_revoked_certificate"
        ),
    ),
}

CODES = {
    "MDS-1": {
        case: "authenticator_compromised" if case.startswith("F-2") else "attestation_untrusted" for case in MDS_1
    }
}


@pytest.mark.parametrize("case", MDS_1)
async def test_MDS_1(make_server: Callable[..., Server], models: Models, tmp_path: Path, case: str) -> None:
    spec = MDS_1[case]
    response = await spec.build(make_server, models, tmp_path)
    if spec.passgate == "ok":
        assert ok(response), response.text
    else:
        assert not ok(response) and response.json()["error"] == CODES["MDS-1"][case], response.text


GROUPS: dict[str, dict[str, Case]] = {"MDS-1": MDS_1}
