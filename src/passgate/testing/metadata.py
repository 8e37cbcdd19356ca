"""FIDO metadata for tests: metadata statements naming a test attestation root, and a metadata service of one's
own (a root, a CA and a signing certificate) that signs BLOBs, as the FIDO conformance tools' fake MDS does.

Point `mds_statements_dir` at a folder of `metadata_statement` files, or `mds_file` at a `TestMetadataService`
BLOB with `mds_root_pem` its `root_pem`: test-only settings, for servers under test.
"""

from __future__ import annotations

import base64
import datetime
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from passgate.core.encoding import b64url_encode
from passgate.testing.certificates import TestRoot


def metadata_statement(
    aaguid: bytes | str,
    *,
    description: str = "Passgate Test Authenticator",
    roots: Sequence[str] = (),
    protocol_family: str = "fido2",
) -> dict[str, Any]:
    """A metadata statement for the model `aaguid` (16 bytes or a UUID string) whose attestations chain to `roots`
    (PEM certificates)."""
    name = str(uuid.UUID(bytes=aaguid)) if isinstance(aaguid, bytes) else str(uuid.UUID(aaguid))
    return {
        "aaguid": name,
        "description": description,
        "protocolFamily": protocol_family,
        "schema": 3,
        "attestationTypes": ["basic_full"],
        "attestationRootCertificates": [_der_base64(pem) for pem in roots],
    }


def _der_base64(pem: str) -> str:
    return "".join(line for line in pem.strip().splitlines() if not line.startswith("-----"))


@dataclass(frozen=True, kw_only=True)
class TestMetadataService:
    """A metadata service's PKI: BLOBs are signed by `signer`, whose certificate the CA issued, under the root."""

    __test__ = False  # not a test class, whatever pytest's naming rules say

    root: TestRoot
    ca: TestRoot
    signer: ec.EllipticCurvePrivateKey
    signer_certificate: x509.Certificate

    @classmethod
    def create(cls, moment: datetime.datetime | None = None) -> TestMetadataService:
        root = TestRoot.create("Passgate Test MDS Root", moment or datetime.datetime.now(datetime.UTC))
        ca = root.intermediate("Passgate Test MDS CA")
        signer = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mds.passgate.test")])
        certificate = ca.issue(subject, signer.public_key()).sign(ca.key, hashes.SHA256())
        return cls(root=root, ca=ca, signer=signer, signer_certificate=certificate)

    @property
    def root_pem(self) -> str:
        return self.root.pem

    def crl(
        self, issuer: Literal["root", "ca"], *, revoke: bool = False, moment: datetime.datetime | None = None
    ) -> bytes:
        """A current DER CRL of the root (revoking the CA with `revoke`) or of the CA (revoking the signer)."""
        when = moment or datetime.datetime.now(datetime.UTC)
        authority, revoked = (
            (self.root, self.ca.certificate) if issuer == "root" else (self.ca, self.signer_certificate)
        )
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(authority.name)
            .last_update(when - datetime.timedelta(hours=1))
            .next_update(when + datetime.timedelta(days=7))
        )
        if revoke:
            entry = x509.RevokedCertificateBuilder().serial_number(revoked.serial_number).revocation_date(when)
            builder = builder.add_revoked_certificate(entry.build())
        return builder.sign(authority.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    def blob(
        self,
        statements: Sequence[dict[str, Any]],
        *,
        number: int = 1,
        next_update: datetime.date | None = None,
        statuses: dict[str, str] | None = None,
        moment: datetime.datetime | None = None,
    ) -> str:
        """A BLOB (an ES256 compact JWS) with an entry per statement, issued at `moment` (default: now); `statuses`
        gives an AAGUID's latest status report (default FIDO_CERTIFIED_L1)."""
        today = (moment or datetime.datetime.now(datetime.UTC)).date()
        entries = [
            {
                "aaguid": statement["aaguid"],
                "metadataStatement": statement,
                "statusReports": [
                    {
                        "status": (statuses or {}).get(statement["aaguid"], "FIDO_CERTIFIED_L1"),
                        "effectiveDate": today.isoformat(),
                    }
                ],
                "timeOfLastStatusChange": today.isoformat(),
            }
            for statement in statements
        ]
        payload = {
            "legalHeader": "Test metadata: not for production.",
            "no": number,
            "nextUpdate": (next_update or today + datetime.timedelta(days=30)).isoformat(),
            "entries": entries,
        }
        chain = (self.signer_certificate, self.ca.certificate)
        x5c = [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode() for cert in chain]
        header = {"alg": "ES256", "typ": "JWT", "x5c": x5c}
        signing_input = f"{b64url_encode(json.dumps(header).encode())}.{b64url_encode(json.dumps(payload).encode())}"
        r, s = decode_dss_signature(self.signer.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return f"{signing_input}.{b64url_encode(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"
