"""fido-u2f attestation: turns a software authenticator's ES256 registration into what a U2F security key sends,
its attestation certificate issued by a test root returned alongside."""

from __future__ import annotations

import datetime
import struct
from typing import Any

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from passgate.testing.certificates import TestRoot
from passgate.testing.statements import Attestation, signed_parts, with_statement


def fido_u2f_attestation(
    response: dict[str, Any], *, root: TestRoot | None = None, now: datetime.datetime | None = None
) -> Attestation:
    """Rewrite a registration response (an ES256 credential) as a U2F security key's "fido-u2f" attestation: the
    attestation key signs 0x00 || rpIdHash || clientDataHash || credentialId || the raw P-256 public key."""
    _, auth_data, client_data_hash = signed_parts(response)
    moment = now or datetime.datetime.now(datetime.UTC)
    root = root or TestRoot.create("Passgate Test U2F Root", moment)
    id_length = struct.unpack(">H", auth_data[53:55])[0]
    credential_id = auth_data[55 : 55 + id_length]
    cose_key = cbor2.loads(auth_data[55 + id_length :])
    raw_key = b"\x04" + cose_key[-2] + cose_key[-3]
    attestation_key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Passgate Test U2F Key")])
    certificate = root.issue(subject, attestation_key.public_key()).sign(root.key, hashes.SHA256())
    signed = b"\x00" + auth_data[:32] + client_data_hash + credential_id + raw_key
    statement = {
        "sig": attestation_key.sign(signed, ec.ECDSA(hashes.SHA256())),
        "x5c": [certificate.public_bytes(serialization.Encoding.DER)],
    }
    return Attestation(response=with_statement(response, "fido-u2f", statement, auth_data), root_pem=root.pem)
