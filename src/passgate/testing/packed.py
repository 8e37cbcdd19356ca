"""Packed attestation with a certificate: turns a software authenticator's registration into a "packed" x5c
attestation, as security keys send it.

The attestation key signs the authenticator data and client data hash; its certificate is issued by a test
root returned alongside. By default the certificate meets WebAuthn §8.2.1 and carries the AAGUID extension
naming the authenticator data's model; the options produce certificates that a relying party must refuse.
"""

from __future__ import annotations

import datetime
import hashlib
from dataclasses import dataclass
from typing import Any, Literal

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID, ObjectIdentifier

from passgate.core import der
from passgate.core.encoding import b64url_decode, b64url_encode
from passgate.testing.certificates import TestRoot

FIDO_GEN_CE_AAGUID = ObjectIdentifier("1.3.6.1.4.1.45724.1.1.4")

ATTESTATION_SUBJECT = x509.Name(
    [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "AA"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Passgate Test Authenticators"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Authenticator Attestation"),
        x509.NameAttribute(NameOID.COMMON_NAME, "Passgate Test Security Key"),
    ]
)


@dataclass(frozen=True, kw_only=True)
class PackedAttestation:
    response: dict[str, Any]  # the registration response, now with a "packed" x5c attestation object
    root_pem: str  # the trust anchor the attestation certificate chains to


Chain = Literal["leaf-first", "with-root", "reversed"]
Validity = Literal["valid", "expired", "not-yet-valid"]


def packed_attestation(
    response: dict[str, Any],
    *,
    aaguid_extension: bool | bytes = True,
    subject: x509.Name = ATTESTATION_SUBJECT,
    certificate_is_ca: bool = False,
    version: Literal[1, 3] = 3,
    now: datetime.datetime | None = None,
    root: TestRoot | None = None,
    intermediate: bool = False,
    expired_intermediate: bool = False,
    chain: Chain = "leaf-first",
    validity: Validity = "valid",
    alg: int = -7,
    signing_key: ec.EllipticCurvePrivateKey | None = None,
) -> PackedAttestation:
    """Rewrite a registration response (from `SoftwareAuthenticator.create`) as packed-attested with x5c.

    `aaguid_extension` True names the authenticator data's AAGUID in the id-fido-gen-ce-aaguid extension,
    False leaves the extension out, and bytes name that value instead. `subject`, `certificate_is_ca` and
    `version=1` (a certificate without extensions) produce certificates WebAuthn §8.2.1 forbids.

    `root` issues the chain (default: a new test root); `intermediate` puts a CA between it and the attestation
    certificate (`expired_intermediate`: one that has expired). `chain` "with-root" sends the root too, and
    "reversed" the certificates in the wrong order; `validity` makes the attestation certificate expired or not
    yet valid; `alg` is the algorithm the statement claims, and `signing_key` signs instead of the attestation
    key (the credential's own key, say): all things a relying party must refuse.
    """
    body = response["response"]
    attestation = cbor2.loads(b64url_decode(body["attestationObject"]))
    auth_data: bytes = attestation["authData"]
    client_data_hash = hashlib.sha256(b64url_decode(body["clientDataJSON"])).digest()

    moment = now or datetime.datetime.now(datetime.UTC)
    root = root or TestRoot.create("Passgate Test Attestation Root", moment)
    issuer = root
    if intermediate or expired_intermediate:
        ended = moment - datetime.timedelta(days=1) if expired_intermediate else None
        issuer = root.intermediate("Passgate Test Attestation CA", not_after=ended)
    attestation_key = ec.generate_private_key(ec.SECP256R1())
    not_before, not_after = {
        "valid": (None, None),
        "expired": (moment - datetime.timedelta(days=30), moment - datetime.timedelta(days=1)),
        "not-yet-valid": (moment + datetime.timedelta(days=1), moment + datetime.timedelta(days=30)),
    }[validity]
    builder = issuer.issue(
        subject, attestation_key.public_key(), not_before=not_before, not_after=not_after
    ).add_extension(x509.BasicConstraints(ca=certificate_is_ca, path_length=None), critical=True)
    if aaguid_extension is not False:
        aaguid = auth_data[37:53] if aaguid_extension is True else aaguid_extension
        builder = builder.add_extension(
            x509.UnrecognizedExtension(FIDO_GEN_CE_AAGUID, _der(der.OCTET_STRING, aaguid)), critical=False
        )
    certificate = builder.sign(issuer.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
    if version == 1:
        certificate = _as_version_1(certificate, issuer.key)
    x5c = [certificate] + ([issuer.der] if issuer is not root else [])
    if chain == "with-root":
        x5c.append(root.der)
    elif chain == "reversed":
        x5c.reverse()
    signer = signing_key or attestation_key
    statement = {
        "alg": alg,
        "sig": signer.sign(auth_data + client_data_hash, ec.ECDSA(hashes.SHA256())),
        "x5c": x5c,
    }
    rewritten = {
        **response,
        "response": {
            **body,
            "attestationObject": b64url_encode(
                cbor2.dumps({"fmt": "packed", "attStmt": statement, "authData": auth_data})
            ),
        },
    }
    return PackedAttestation(response=rewritten, root_pem=root.pem)


def _der(tag: int, body: bytes) -> bytes:
    if len(body) < 0x80:
        return bytes([tag, len(body)]) + body
    size = (len(body).bit_length() + 7) // 8
    return bytes([tag, 0x80 | size]) + len(body).to_bytes(size, "big") + body


def _as_version_1(certificate: bytes, issuer_key: ec.EllipticCurvePrivateKey) -> bytes:
    """The same certificate as X.509 version 1: no version field, no extensions, signed again."""
    [outer] = der.elements(certificate)
    tbs, algorithm, _ = outer.children()
    fields = [field for field in tbs.children() if field.tag not in (0xA0, 0xA3)]
    tbs_v1 = _der(der.SEQUENCE, b"".join(_der(field.tag, field.value) for field in fields))
    signature = issuer_key.sign(tbs_v1, ec.ECDSA(hashes.SHA256()))
    bit_string = _der(0x03, b"\x00" + signature)
    return _der(der.SEQUENCE, tbs_v1 + _der(algorithm.tag, algorithm.value) + bit_string)
