"""Android attestations: turns a software authenticator's registration into a genuine "android-key" or
"android-safetynet" attestation, issued by a test root returned alongside.

android-key: the credential key's own certificate carries the Android Keystore key description (its attestation
challenge the client data hash), chained to the root, which x5c ends with as Android sends it. android-safetynet:
a SafetyNet JWS whose nonce binds the authenticator data and client data, signed by an RSA certificate for
attest.android.com. The options produce statements a relying party must refuse.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID, ObjectIdentifier

from passgate.core.encoding import b64url_encode
from passgate.testing.authenticator import SoftwareCredential
from passgate.testing.certificates import TestRoot
from passgate.testing.statements import Attestation, signed_parts, with_statement

KEY_DESCRIPTION = ObjectIdentifier("1.3.6.1.4.1.11129.2.1.17")
KM_ORIGIN_GENERATED, KM_PURPOSE_SIGN = 0, 2


def _der(tag: int, body: bytes) -> bytes:
    if len(body) < 0x80:
        return bytes([tag, len(body)]) + body
    size = (len(body).bit_length() + 7) // 8
    return bytes([tag, 0x80 | size]) + len(body).to_bytes(size, "big") + body


def _integer(value: int) -> bytes:
    return _der(0x02, value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big"))


def _context(number: int, body: bytes) -> bytes:
    """[number] EXPLICIT: constructed, context-specific, in the high-tag-number form past 30."""
    if number < 31:
        return _der(0xA0 | number, body)
    digits = [number & 0x7F]
    number >>= 7
    while number:
        digits.append(0x80 | (number & 0x7F))
        number >>= 7
    head = bytes([0xBF, *reversed(digits)])
    return head + _der(0x00, body)[1:]


def key_description(challenge: bytes) -> bytes:
    """A KeyDescription (Android Keystore attestation schema) for a TEE key generated for signing only."""
    tee_enforced = _der(
        0x30,
        _context(1, _der(0x31, _integer(KM_PURPOSE_SIGN)))  # purpose: SET OF INTEGER
        + _context(702, _integer(KM_ORIGIN_GENERATED)),  # origin
    )
    return _der(
        0x30,
        _integer(3)  # attestationVersion
        + _der(0x0A, b"\x01")  # attestationSecurityLevel: TrustedEnvironment
        + _integer(4)  # keymasterVersion
        + _der(0x0A, b"\x01")  # keymasterSecurityLevel
        + _der(0x04, challenge)  # attestationChallenge
        + _der(0x04, b"")  # uniqueId
        + _der(0x30, b"")  # softwareEnforced
        + tee_enforced,
    )


def android_key_attestation(
    response: dict[str, Any],
    credential: SoftwareCredential,
    *,
    root: TestRoot | None = None,
    challenge: bytes | None = None,
    wrong_public_key: bool = False,
    reversed_chain: bool = False,
    now: datetime.datetime | None = None,
) -> Attestation:
    """Rewrite a registration response as android-key attested; `credential` is the authenticator's credential the
    response made (its key signs, and its certificate names it).

    `challenge` puts another attestation challenge than the client data hash in the key description,
    `wrong_public_key` certifies another key than the credential's, `reversed_chain` sends x5c root first.
    """
    _, auth_data, client_data_hash = signed_parts(response)
    moment = now or datetime.datetime.now(datetime.UTC)
    root = root or TestRoot.create("Passgate Test Android Root", moment)
    public_key = credential.private_key.public_key()
    if wrong_public_key:
        public_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    if not isinstance(public_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        raise ValueError("android-key attestation needs an ECDSA or RSA credential")
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Android Keystore Key")])
    extension = x509.UnrecognizedExtension(KEY_DESCRIPTION, key_description(challenge or client_data_hash))
    leaf = root.issue(subject, public_key).add_extension(extension, critical=False).sign(root.key, hashes.SHA256())
    x5c = [leaf.public_bytes(serialization.Encoding.DER), root.der]
    if reversed_chain:
        x5c.reverse()
    statement = {"alg": credential.algorithm, "sig": credential.sign(auth_data + client_data_hash), "x5c": x5c}
    return Attestation(response=with_statement(response, "android-key", statement, auth_data), root_pem=root.pem)


def safetynet_attestation(
    response: dict[str, Any],
    *,
    root: TestRoot | None = None,
    ver: str = "214815046",
    nonce: str | None = None,
    cts_profile_match: bool = True,
    timestamp: datetime.datetime | None = None,
    x5c: bool = True,
    empty_response: bool = False,
    now: datetime.datetime | None = None,
) -> Attestation:
    """Rewrite a registration response as android-safetynet attested: a JWS from a device that passed SafetyNet.

    `ver`, `nonce` (default: the one that binds this response), `cts_profile_match` and `timestamp` (default:
    `now`) set the statement's fields; `x5c` False leaves the JWS header's certificates out, `empty_response` the
    JWS itself.
    """
    _, auth_data, client_data_hash = signed_parts(response)
    moment = now or datetime.datetime.now(datetime.UTC)
    root = root or TestRoot.create("Passgate Test SafetyNet Root", moment)
    signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Passgate Test"),
            x509.NameAttribute(NameOID.COMMON_NAME, "attest.android.com"),
        ]
    )
    leaf = root.issue(subject, signing_key.public_key()).sign(root.key, hashes.SHA256())
    chain = [base64.b64encode(leaf.public_bytes(serialization.Encoding.DER)).decode()] if x5c else []
    header = {"alg": "RS256", "x5c": chain}
    payload = {
        "nonce": nonce or base64.b64encode(hashlib.sha256(auth_data + client_data_hash).digest()).decode(),
        "timestampMs": int((timestamp or moment).timestamp() * 1000),
        "apkPackageName": "com.google.android.gms",
        "apkCertificateDigestSha256": [base64.b64encode(bytes(32)).decode()],
        "ctsProfileMatch": cts_profile_match,
        "basicIntegrity": True,
    }
    signing_input = f"{b64url_encode(json.dumps(header).encode())}.{b64url_encode(json.dumps(payload).encode())}"
    signature = signing_key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    jws = b"" if empty_response else f"{signing_input}.{b64url_encode(signature)}".encode()
    statement = {"ver": ver, "response": jws}
    return Attestation(response=with_statement(response, "android-safetynet", statement, auth_data), root_pem=root.pem)
