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
from typing import Any, Literal

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtensionOID, ObjectIdentifier

from passgate.core.encoding import b64url_decode, b64url_encode
from passgate.testing.certificates import TestRoot

TPM_GENERATED_VALUE = 0xFF544347
TPM_ST_ATTEST_CERTIFY = 0x8017
TPM_ALG_RSA, TPM_ALG_ECC, TPM_ALG_SHA256, TPM_ALG_NULL = 0x0001, 0x0023, 0x000B, 0x0010
TPM_ALG_SHA1 = 0x0004
_TPM_HASHES = {TPM_ALG_SHA1: hashlib.sha1, TPM_ALG_SHA256: hashlib.sha256}
TPM_ECC_NIST_P256 = 0x0003


@dataclass(frozen=True, kw_only=True)
class TpmAttestation:
    response: dict[str, Any]  # the registration response, now with a "tpm" attestation object
    root_pem: str  # the trust anchor the AIK certificate chains to


def _tpm2b(data: bytes) -> bytes:
    return struct.pack(">H", len(data)) + data


def _pub_area(cose_key: dict[int, Any], name_alg: int = TPM_ALG_SHA256) -> bytes:
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
    return struct.pack(">HH", kind, name_alg) + attributes + _tpm2b(b"") + parameters + unique


def _cert_info(
    extra_data: bytes,
    pub_area: bytes,
    *,
    name_alg: int = TPM_ALG_SHA256,
    attested_name_alg: int | None = None,
    magic: int = TPM_GENERATED_VALUE,
) -> bytes:
    # The name is nameAlg's hash of pubArea, preceded by an algorithm id that need not be nameAlg's.
    digest = _TPM_HASHES[name_alg](pub_area).digest()
    name = struct.pack(">H", name_alg if attested_name_alg is None else attested_name_alg) + digest
    return (
        struct.pack(">IH", magic, TPM_ST_ATTEST_CERTIFY)
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
    root: TestRoot | None = None,
    intermediate: bool = False,
    reversed_chain: bool = False,
    sha1: bool = False,
    name_alg: Literal["sha256", "sha1"] = "sha256",
    attested_name_alg: Literal["sha256", "sha1"] | None = None,
    magic: int = TPM_GENERATED_VALUE,
    wrong_extra_data: bool = False,
    wrong_unique: bool = False,
) -> TpmAttestation:
    """Rewrite a registration response (from `SoftwareAuthenticator.create`, ES256 or RS256) as TPM-attested.

    `windows_policies` adds the certificate-policies extension real Windows AIK certificates carry;
    `manufacturer`, `aik_is_ca` and `aaguid_extension` produce certificates that must be refused.

    `root` issues the AIK certificate (default: a new test root), through a CA with `intermediate`
    (`reversed_chain` sends the two in the wrong order). `sha1` makes an RSA AIK sign with RS1 (SHA-1, as older
    TPMs do); `name_alg` is pubArea's nameAlg, `attested_name_alg` the algorithm id certInfo's name carries (by
    default nameAlg's). `magic`, `wrong_extra_data` and `wrong_unique` (a pubArea describing another key) make
    statements that must be refused.
    """
    body = response["response"]
    attestation = cbor2.loads(b64url_decode(body["attestationObject"]))
    auth_data: bytes = attestation["authData"]
    id_length = struct.unpack(">H", auth_data[53:55])[0]
    cose_key = cbor2.loads(auth_data[55 + id_length :])
    if wrong_unique:  # x of an EC key, the modulus of an RSA key
        unique_label = -2 if cose_key[1] == 2 else -1
        cose_key = {**cose_key, unique_label: bytes(len(cose_key[unique_label]))}
    algorithms = {"sha256": TPM_ALG_SHA256, "sha1": TPM_ALG_SHA1}
    pub_area = _pub_area(cose_key, algorithms[name_alg])
    client_data_hash = hashlib.sha256(b64url_decode(body["clientDataJSON"])).digest()
    extra_data = (hashlib.sha1 if sha1 else hashlib.sha256)(auth_data + client_data_hash).digest()
    if wrong_extra_data:
        extra_data = bytes(len(extra_data))
    cert_info = _cert_info(
        extra_data,
        pub_area,
        name_alg=algorithms[name_alg],
        attested_name_alg=None if attested_name_alg is None else algorithms[attested_name_alg],
        magic=magic,
    )

    moment = now or datetime.datetime.now(datetime.UTC)
    root = root or TestRoot.create("Passgate Test TPM Root", moment)
    issuer = root.intermediate("Passgate Test TPM CA") if intermediate else root
    aik_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if sha1
        else ec.generate_private_key(ec.SECP256R1())
    )
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
        issuer.issue(x509.Name([]), aik_key.public_key())
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
    aik = builder.sign(issuer.key, hashes.SHA256())
    x5c = [aik.public_bytes(serialization.Encoding.DER)] + ([issuer.der] if issuer is not root else [])
    if reversed_chain:
        x5c.reverse()
    if isinstance(aik_key, rsa.RSAPrivateKey):
        alg, sig = -65535, aik_key.sign(cert_info, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303 - what old TPMs do
    else:
        alg, sig = -7, aik_key.sign(cert_info, ec.ECDSA(hashes.SHA256()))
    statement = {
        "ver": "2.0",
        "alg": alg,
        "x5c": x5c,
        "sig": sig,
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
