"""A software TPM: turns a software authenticator's registration into a genuine "tpm" attestation.

For testing servers' TPM handling (Windows Hello registrations) without Windows: the credential key is
described in a TPM pubArea, certified in a certInfo signed by an attestation identity key (AIK), whose
certificate is issued by a test root returned alongside. Options reproduce what real TPMs send,
including the certificate-policies extension that some X.509 parsers refuse.
"""

from __future__ import annotations

import datetime
import hashlib
import struct
from dataclasses import dataclass
from typing import Any

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtensionOID, ObjectIdentifier

from passgate.core.encoding import b64url_decode, b64url_encode
from passgate.testing.certificates import TestRoot

TPM_GENERATED_VALUE = 0xFF544347
TPM_ST_ATTEST_CERTIFY = 0x8017
TPM_ALG_RSA, TPM_ALG_ECC, TPM_ALG_SHA256, TPM_ALG_NULL = 0x0001, 0x0023, 0x000B, 0x0010
TPM_ECC_NIST_P256 = 0x0003


@dataclass(frozen=True, kw_only=True)
class TpmAttestation:
    response: dict[str, Any]  # the registration response, now with a "tpm" attestation object
    root_pem: str  # the trust anchor the AIK certificate chains to


def _tpm2b(data: bytes) -> bytes:
    return struct.pack(">H", len(data)) + data


def _pub_area(cose_key: dict[int, Any]) -> bytes:
    attributes = struct.pack(">I", 0x00060472)  # fixedTPM, fixedParent, sensitiveDataOrigin, userWithAuth, sign
    if cose_key[1] == 2:  # EC2
        parameters = struct.pack(">HHHH", TPM_ALG_NULL, TPM_ALG_NULL, TPM_ECC_NIST_P256, TPM_ALG_NULL)
        unique = _tpm2b(cose_key[-2]) + _tpm2b(cose_key[-3])
        kind = TPM_ALG_ECC
    else:  # RSA
        exponent = int.from_bytes(cose_key[-2], "big")
        parameters = struct.pack(">HHHI", TPM_ALG_NULL, TPM_ALG_NULL, 2048, 0 if exponent == 65537 else exponent)
        unique = _tpm2b(cose_key[-1])
        kind = TPM_ALG_RSA
    return struct.pack(">HH", kind, TPM_ALG_SHA256) + attributes + _tpm2b(b"") + parameters + unique


def _cert_info(extra_data: bytes, pub_area: bytes) -> bytes:
    name = struct.pack(">H", TPM_ALG_SHA256) + hashlib.sha256(pub_area).digest()
    return (
        struct.pack(">IH", TPM_GENERATED_VALUE, TPM_ST_ATTEST_CERTIFY)
        + _tpm2b(b"")
        + _tpm2b(extra_data)
        + bytes(17)
        + bytes(8)
        + _tpm2b(name)
        + _tpm2b(struct.pack(">H", TPM_ALG_SHA256) + bytes(32))
    )


def _der(tag: int, body: bytes) -> bytes:
    if len(body) < 0x80:
        return bytes([tag, len(body)]) + body
    size = (len(body).bit_length() + 7) // 8
    return bytes([tag, 0x80 | size]) + len(body).to_bytes(size, "big") + body


def _oid_body(text: str) -> bytes:
    parts = [int(p) for p in text.split(".")]
    body = bytes([parts[0] * 40 + parts[1]])
    for part in parts[2:]:
        chunk = [part & 0x7F]
        part >>= 7
        while part:
            chunk.append(0x80 | (part & 0x7F))
            part >>= 7
        body += bytes(reversed(chunk))
    return body


def windows_certificate_policies() -> bytes:
    """A certificate-policies value as some Windows TPM AIK certificates carry it: a UserNotice with data after
    its explicit text (which `cryptography` refuses to parse)."""
    notice = _der(0x30, _der(0x1A, b"TCPA  Trusted  Platform  Identity") + b"\x05\x00")
    qualifier = _der(0x30, _der(0x06, _oid_body("1.3.6.1.5.5.7.2.2")) + notice)
    information = _der(0x30, _der(0x06, _oid_body("1.3.6.1.4.1.311.21.31")) + _der(0x30, qualifier))
    return _der(0x30, information)


def tpm_attestation(
    response: dict[str, Any],
    *,
    manufacturer: str = "id:414D4400",
    windows_policies: bool = False,
    aik_is_ca: bool = False,
    aaguid_extension: bytes | None = None,
    now: datetime.datetime | None = None,
) -> TpmAttestation:
    """Rewrite a registration response (from `SoftwareAuthenticator.create`, ES256 or RS256) as TPM-attested.

    `windows_policies` adds the certificate-policies extension real Windows AIK certificates carry;
    `manufacturer`, `aik_is_ca` and `aaguid_extension` produce certificates that must be refused.
    """
    body = response["response"]
    attestation = cbor2.loads(b64url_decode(body["attestationObject"]))
    auth_data: bytes = attestation["authData"]
    id_length = struct.unpack(">H", auth_data[53:55])[0]
    cose_key = cbor2.loads(auth_data[55 + id_length :])
    pub_area = _pub_area(cose_key)
    client_data_hash = hashlib.sha256(b64url_decode(body["clientDataJSON"])).digest()
    cert_info = _cert_info(hashlib.sha256(auth_data + client_data_hash).digest(), pub_area)

    moment = now or datetime.datetime.now(datetime.UTC)
    root, aik_key = TestRoot.create("Passgate Test TPM Root", moment), ec.generate_private_key(ec.SECP256R1())
    tpm_name = x509.Name(
        [
            x509.RelativeDistinguishedName(
                [
                    x509.NameAttribute(ObjectIdentifier("2.23.133.2.1"), manufacturer),
                    x509.NameAttribute(ObjectIdentifier("2.23.133.2.2"), "passgate-test-tpm"),
                    x509.NameAttribute(ObjectIdentifier("2.23.133.2.3"), "id:13"),
                ]
            )
        ]
    )
    builder = (
        root.issue(x509.Name([]), aik_key.public_key())
        .add_extension(x509.SubjectAlternativeName([x509.DirectoryName(tpm_name)]), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ObjectIdentifier("2.23.133.8.3")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=aik_is_ca, path_length=None), critical=True)
    )
    if windows_policies:
        builder = builder.add_extension(
            x509.UnrecognizedExtension(ExtensionOID.CERTIFICATE_POLICIES, windows_certificate_policies()),
            critical=False,
        )
    if aaguid_extension is not None:
        builder = builder.add_extension(
            x509.UnrecognizedExtension(ObjectIdentifier("1.3.6.1.4.1.45724.1.1.4"), _der(0x04, aaguid_extension)),
            critical=False,
        )
    aik = builder.sign(root.key, hashes.SHA256())
    statement = {
        "ver": "2.0",
        "alg": -7,
        "x5c": [aik.public_bytes(serialization.Encoding.DER)],
        "sig": aik_key.sign(cert_info, ec.ECDSA(hashes.SHA256())),
        "certInfo": cert_info,
        "pubArea": pub_area,
    }
    rewritten = {
        **response,
        "response": {
            **body,
            "attestationObject": b64url_encode(
                cbor2.dumps({"fmt": "tpm", "attStmt": statement, "authData": auth_data})
            ),
        },
    }
    return TpmAttestation(response=rewritten, root_pem=root.pem)
