"""Attestation statement verification: a registry of verifiers, one per format.

`none` and packed self-attestation are verified here; the certificate-based formats are delegated
to py_webauthn's verifiers, with certificate chains validated at the caller's `now`, and completed
where py_webauthn stops short of the spec: the packed certificate requirements (WebAuthn §8.2.1), the
AAGUID extension of packed and TPM certificates, SafetyNet's ctsProfileMatch and timestamp, packed x5c
without the root, and chains that must not end at a platform vendor's root when the policy does not trust
those.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import re
import struct
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

import cbor2
from cryptography import exceptions as crypto_errors
from cryptography import x509
from cryptography.x509.oid import NameOID
from OpenSSL import crypto as openssl
from OpenSSL.crypto import X509Store
from pyasn1.error import PyAsn1Error
from webauthn.helpers import base64url_to_bytes, parse_attestation_object, validate_certificate_chain
from webauthn.helpers import exceptions as pyw_errors
from webauthn.helpers.tpm.structs import TPMManufacturerInfo
from webauthn.registration.formats.android_key import verify_android_key
from webauthn.registration.formats.android_safetynet import verify_android_safetynet
from webauthn.registration.formats.apple import verify_apple
from webauthn.registration.formats.fido_u2f import verify_fido_u2f
from webauthn.registration.formats.packed import verify_packed
from webauthn.registration.formats.tpm import verify_tpm

from passgate.core import der
from passgate.core.cose import PublicKey
from passgate.core.data import AttestationObject, ClientData
from passgate.core.errors import (
    AttestationInvalid,
    AttestationUntrusted,
    PasskeyError,
    UnsupportedAlgorithm,
    UnsupportedAttestation,
)

Trust = Literal["none", "self", "attested"]

# Formats whose vendor roots py_webauthn always adds to the caller's: their chains are validated even
# without configured roots, and reach those roots even when others are configured.
BUILT_IN_ROOTS = frozenset({"apple", "android-key", "android-safetynet"})

# What py_webauthn and the parsers under it raise about the data they are given: a verdict on the
# authenticator's statement. Anything else (AttributeError, TypeError, ...) is a bug and propagates.
_VERDICTS: tuple[type[Exception], ...] = (
    pyw_errors.WebAuthnException,
    ValueError,  # including UnicodeDecodeError, json and cbor2 decoding errors
    KeyError,
    IndexError,
    struct.error,
    PyAsn1Error,
    openssl.Error,
    crypto_errors.InvalidSignature,
    crypto_errors.UnsupportedAlgorithm,
)

# The attestation statement fields py_webauthn reads, and the CBOR type each must have. Checked first,
# so that a wrong type in the data is a verdict, never a TypeError taken for a bug.
_FIELD_TYPES: Mapping[str, type | tuple[type, ...]] = {
    "alg": int,
    "sig": bytes,
    "x5c": list,
    "ecdaaKeyId": bytes,
    "ver": str,
    "certInfo": bytes,
    "pubArea": bytes,
    "response": bytes,
}

_validation_time: ContextVar[datetime | None] = ContextVar("passgate_validation_time", default=None)


def _store_at_validation_time() -> X509Store:
    store = X509Store()
    when = _validation_time.get()
    if when is not None:
        store.set_time(when)
    return store


def _any_tpm_manufacturer(manufacturer_id: str) -> TPMManufacturerInfo:
    """WebAuthn §8.3.1 asks that the AIK certificate *name* its TPM manufacturer, not that the id be in a
    registry: trust comes from the certificate chain. A well-formed unregistered id (the spec's own test
    TPM uses 0x00000000) is accepted; a malformed one is not."""
    try:
        known: TPMManufacturerInfo = _registered_tpm_manufacturer(manufacturer_id)
    except KeyError:
        if not re.fullmatch(r"id:[0-9A-Fa-f]{8}", manufacturer_id):
            raise
        return TPMManufacturerInfo(name="unregistered", id=manufacturer_id[3:].upper())
    return known


_tpm_module = importlib.import_module("webauthn.registration.formats.tpm")
_registered_tpm_manufacturer = _tpm_module.map_tpm_manufacturer_id
_tpm_module.map_tpm_manufacturer_id = _any_tpm_manufacturer  # type: ignore[attr-defined]

# py_webauthn builds its X509Store through this hook, meant to be replaced to pin the validation time.
_chain_module = importlib.import_module("webauthn.helpers.validate_certificate_chain")
_chain_module._generate_new_cert_store = _store_at_validation_time  # type: ignore[attr-defined]


@dataclass(frozen=True, kw_only=True)
class Statement:
    """Everything an attestation verifier may look at.

    `roots_for` gives the PEM trust anchors for an attestation format: a compound statement's parts are
    each checked against the roots of their own format. `trust_platform_roots` False means the vendor
    roots py_webauthn adds (`BUILT_IN_ROOTS`) are not trust anchors; `require_cts_profile_match` refuses
    a SafetyNet verdict without ctsProfileMatch.
    """

    attestation: AttestationObject
    client_data: ClientData
    client_data_hash: bytes
    credential_key: PublicKey
    roots_for: Callable[[str], tuple[str, ...]]
    trust_platform_roots: bool = True
    require_cts_profile_match: bool = True

    @property
    def trusted_roots(self) -> tuple[str, ...]:
        """The trust anchors for this statement's own format."""
        return self.roots_for(self.attestation.fmt)


Verifier = Callable[[Statement], Trust]


def _verify_none(statement: Statement) -> Trust:
    if statement.attestation.statement:
        raise AttestationInvalid('A "none" attestation must have an empty statement.')
    return "none"


def _verify_packed(statement: Statement) -> Trust:
    fields = statement.attestation.statement
    if not isinstance(fields, Mapping):
        raise AttestationInvalid("A packed attestation statement must be a map.")
    if "x5c" in fields:
        return _verify_packed_x5c(statement)
    alg, sig = fields.get("alg"), fields.get("sig")
    if not isinstance(alg, int) or not isinstance(sig, bytes):
        raise AttestationInvalid("A packed self-attestation needs alg and sig.")
    if alg != statement.credential_key.algorithm:
        raise AttestationInvalid("The self-attestation algorithm differs from the credential key's.")
    signed = bytes(statement.attestation.auth_data) + statement.client_data_hash
    try:
        statement.credential_key.verify(sig, signed)
    except PasskeyError as exc:
        raise AttestationInvalid("The self-attestation signature does not verify.") from exc
    return "self"


def _certified(verify: Callable[[Statement, Any, list[bytes]], bool]) -> Verifier:
    """A verifier for a certificate-based format, delegated to py_webauthn.

    `verify` gets the statement, py_webauthn's parsed attestation statement and the PEM roots.
    """

    def verifier(statement: Statement) -> Trust:
        fmt = statement.attestation.fmt
        _check_field_types(statement)
        roots = [pem.encode() for pem in statement.trusted_roots]
        try:
            parsed = parse_attestation_object(statement.attestation.raw).att_stmt
            # A copy: py_webauthn appends its built-in roots to the list it is given.
            verified = verify(statement, parsed, list(roots))
            if verified and fmt in BUILT_IN_ROOTS and not statement.trust_platform_roots and roots:
                validate_certificate_chain(x5c=_chain(statement), pem_root_certs_bytes=roots)
        except (pyw_errors.UnsupportedAlgorithm, pyw_errors.UnsupportedPublicKey) as exc:
            raise UnsupportedAlgorithm(f"The attestation uses an unsupported algorithm: {exc}") from exc
        except _VERDICTS as exc:
            if any(isinstance(e, pyw_errors.InvalidCertificateChain) for e in (exc, exc.__cause__, exc.__context__)):
                raise AttestationUntrusted() from exc
            raise AttestationInvalid(f"The {fmt} attestation does not verify: {exc}") from exc
        if not verified:
            raise AttestationInvalid()
        return "attested"

    return verifier


def _check_field_types(statement: Statement) -> None:
    fields = statement.attestation.statement
    if not isinstance(fields, Mapping):
        raise AttestationInvalid(f"A {statement.attestation.fmt} attestation statement must be a map.")
    for name, kind in _FIELD_TYPES.items():
        if name in fields and not isinstance(fields[name], kind):
            raise AttestationInvalid(f"The attestation statement's {name} has the wrong type.")
    x5c = fields.get("x5c", [])
    if not all(isinstance(certificate, bytes) for certificate in x5c):
        raise AttestationInvalid("The attestation statement's x5c must hold DER certificates.")


def _chain(statement: Statement) -> list[bytes]:
    """The certificates the statement presents, leaf first."""
    fields = statement.attestation.statement
    assert isinstance(fields, Mapping)  # _check_field_types checked it
    if statement.attestation.fmt == "android-safetynet":
        return [base64url_to_bytes(certificate) for certificate in _safetynet_jws(fields)[0]["x5c"]]
    return [bytes(certificate) for certificate in fields["x5c"]]


def _credential_key(statement: Statement) -> bytes:
    attested = statement.attestation.auth_data.attested
    assert attested is not None  # registration checks this before attestation
    return attested.public_key


_verify_packed_x5c_by_py_webauthn = _certified(
    lambda s, parsed, roots: verify_packed(
        attestation_statement=parsed,
        attestation_object=s.attestation.raw,
        client_data_json=s.client_data.raw,
        credential_public_key=_credential_key(s),
        pem_root_certs_bytes=roots,
    )
)


def _verify_packed_x5c(statement: Statement) -> Trust:
    """Packed attestation with a certificate: py_webauthn checks the signature and the chain; the
    certificate requirements of WebAuthn §8.2.1 and its AAGUID extension are checked here."""
    trust = _verify_packed_x5c_by_py_webauthn(statement)
    fields = statement.attestation.statement
    attested = statement.attestation.auth_data.attested
    assert isinstance(fields, Mapping) and attested is not None
    with _malformed_is_invalid():
        chain = [x509.load_der_x509_certificate(bytes(certificate)) for certificate in fields["x5c"]]
        # The trust anchor comes from the relying party, never from the statement (FIDO server requirements).
        if any(certificate.issuer == certificate.subject for certificate in chain):
            raise AttestationInvalid("The attestation's x5c must not include a root certificate.")
    certificate = bytes(fields["x5c"][0])
    with _malformed_is_invalid():
        _check_packed_certificate(x509.load_der_x509_certificate(certificate))
        _check_aaguid_extension(der.read_certificate(certificate), attested.aaguid.bytes)
    return trust


_PACKED_SUBJECT = {
    NameOID.COUNTRY_NAME: "C",
    NameOID.ORGANIZATION_NAME: "O",
    NameOID.ORGANIZATIONAL_UNIT_NAME: "OU",
    NameOID.COMMON_NAME: "CN",
}


def _check_packed_certificate(certificate: x509.Certificate) -> None:
    """WebAuthn §8.2.1 packed attestation statement certificate requirements."""
    if certificate.version != x509.Version.v3:
        raise AttestationInvalid("The attestation certificate is not version 3.")
    for oid, name in _PACKED_SUBJECT.items():
        if not certificate.subject.get_attributes_for_oid(oid):
            raise AttestationInvalid(f"The attestation certificate's subject has no {name}.")
    units = [unit.value for unit in certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)]
    if "Authenticator Attestation" not in units:
        raise AttestationInvalid('The attestation certificate\'s subject OU is not "Authenticator Attestation".')
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return  # absent, the certificate is not a CA's (RFC 5280 §4.2.1.9)
    if constraints.ca:
        raise AttestationInvalid("The attestation certificate is a CA certificate.")


def _fido_u2f(statement: Statement, parsed: Any, roots: list[bytes]) -> bool:
    attested = statement.attestation.auth_data.attested
    assert attested is not None
    return verify_fido_u2f(
        attestation_statement=parsed,
        client_data_json=statement.client_data.raw,
        rp_id_hash=statement.attestation.auth_data.rp_id_hash,
        credential_id=attested.credential_id,
        credential_public_key=attested.public_key,
        aaguid=attested.aaguid.bytes,
        pem_root_certs_bytes=roots,
    )


def _same_arguments(verify: Callable[..., bool]) -> Verifier:
    """For the py_webauthn verifiers that share one signature (tpm, apple, android-key)."""
    return _certified(
        lambda s, parsed, roots: verify(
            attestation_statement=parsed,
            attestation_object=s.attestation.raw,
            client_data_json=s.client_data.raw,
            credential_public_key=_credential_key(s),
            pem_root_certs_bytes=roots,
        )
    )


_verify_tpm_by_py_webauthn = _same_arguments(verify_tpm)

TPM_MANUFACTURER, TPM_MODEL, TPM_VERSION = "2.23.133.2.1", "2.23.133.2.2", "2.23.133.2.3"
TCG_KP_AIK_CERTIFICATE = "2.23.133.8.3"
SUBJECT_ALT_NAME, EXTENDED_KEY_USAGE, BASIC_CONSTRAINTS = "2.5.29.17", "2.5.29.37", "2.5.29.19"
FIDO_GEN_CE_AAGUID = "1.3.6.1.4.1.45724.1.1.4"


def _verify_tpm(statement: Statement) -> Trust:
    """TPM attestation, also for AIK certificates whose extensions `cryptography` cannot parse.

    py_webauthn checks pubArea against the credential key, certInfo, the AIK's signature and the
    certificate chain, then reads the AIK certificate's extensions with `cryptography`. Real Windows
    Hello certificates carry a certificate-policies extension it refuses (a UserNotice with trailing
    data), which locks those users out. When exactly that happens, everything before it has passed,
    and the certificate requirements of WebAuthn §8.3.1 are checked here with a tolerant DER reader.
    """
    fields = statement.attestation.statement
    attested = statement.attestation.auth_data.attested
    assert attested is not None
    try:
        trust = _verify_tpm_by_py_webauthn(statement)
    except AttestationInvalid as exc:
        if not _extensions_unparseable(exc, statement):
            raise
        assert isinstance(fields, Mapping)  # _extensions_unparseable checked x5c
        with _malformed_is_invalid():
            _check_aik_certificate(bytes(fields["x5c"][0]), attested.aaguid.bytes)
        return "attested"
    # py_webauthn leaves the id-fido-gen-ce-aaguid extension unchecked.
    assert isinstance(fields, Mapping)
    with _malformed_is_invalid():
        _check_aaguid_extension(der.read_certificate(bytes(fields["x5c"][0])), attested.aaguid.bytes)
    return trust


@contextlib.contextmanager
def _malformed_is_invalid() -> Iterator[None]:
    try:
        yield
    except (IndexError, ValueError) as exc:  # DER that is not what a certificate should hold
        raise AttestationInvalid("The attestation certificate is malformed.") from exc


def _extensions_unparseable(error: AttestationInvalid, statement: Statement) -> bool:
    cause = error.__cause__
    if not isinstance(cause, ValueError) or "asn1" not in str(cause):
        return False
    fields = statement.attestation.statement
    x5c = fields.get("x5c") if isinstance(fields, Mapping) else None
    if not isinstance(x5c, list) or not x5c or not isinstance(x5c[0], bytes):
        return False
    try:
        x509.load_der_x509_certificate(x5c[0]).extensions  # noqa: B018 - parsing is the point
    except ValueError:
        return True
    return False


def _check_aik_certificate(certificate: bytes, aaguid: bytes) -> None:
    """WebAuthn §8.3.1 TPM attestation statement certificate requirements."""
    tbs = der.read_certificate(certificate)
    extensions = tbs.extensions
    if tbs.version != 2:
        raise AttestationInvalid("The AIK certificate is not version 3.")
    if tbs.subject:
        raise AttestationInvalid("The AIK certificate's subject must be empty.")
    if SUBJECT_ALT_NAME not in extensions:
        raise AttestationInvalid("The AIK certificate has no subject alternative name.")
    tpm = der.attributes(der.Element(der.SEQUENCE, extensions[SUBJECT_ALT_NAME].value))
    if not {TPM_MANUFACTURER, TPM_MODEL, TPM_VERSION} <= set(tpm):
        raise AttestationInvalid("The AIK certificate does not name its TPM's manufacturer, model and version.")
    manufacturer = tpm[TPM_MANUFACTURER].decode("utf-8", "replace")
    try:
        _any_tpm_manufacturer(manufacturer)
    except KeyError as exc:
        raise AttestationInvalid(f"Unrecognized TPM manufacturer {manufacturer!r}.") from exc
    usage = extensions.get(EXTENDED_KEY_USAGE)
    if usage is None or TCG_KP_AIK_CERTIFICATE not in der.all_oids(der.Element(der.SEQUENCE, usage.value)):
        raise AttestationInvalid("The AIK certificate is not for attestation identity keys (2.23.133.8.3).")
    constraints = extensions.get(BASIC_CONSTRAINTS)
    if constraints is None:
        raise AttestationInvalid("The AIK certificate has no basic constraints.")
    [sequence] = list(der.elements(constraints.value))
    fields = sequence.children()
    if fields and fields[0].tag == der.BOOLEAN and fields[0].value != b"\x00":
        raise AttestationInvalid("The AIK certificate is a CA certificate.")
    _check_aaguid_extension(tbs, aaguid)


def _check_aaguid_extension(tbs: der.TbsCertificate, aaguid: bytes) -> None:
    declared = tbs.extensions.get(FIDO_GEN_CE_AAGUID)
    if declared is not None:
        [inner] = list(der.elements(declared.value))
        if declared.critical or inner.value != aaguid:
            raise AttestationInvalid("The attestation certificate's AAGUID extension names another authenticator.")


def _verify_compound(statement: Statement) -> Trust:
    """WebAuthn Level 3 "compound": two or more statements about the same credential, all of which must verify."""
    parts = statement.attestation.statement
    if not isinstance(parts, list) or len(parts) < 2:
        raise AttestationInvalid("A compound attestation needs at least two statements.")
    trusts: list[Trust] = []
    for part in parts:
        if (
            not isinstance(part, dict)
            or not isinstance(part.get("fmt"), str)
            or not isinstance(part.get("attStmt"), dict)
        ):
            raise AttestationInvalid("Each statement of a compound attestation needs fmt and attStmt.")
        if part["fmt"] == "compound":
            raise AttestationInvalid("A compound attestation cannot contain another.")
        auth_data = bytes(statement.attestation.auth_data)
        raw = cbor2.dumps({"fmt": part["fmt"], "attStmt": part["attStmt"], "authData": auth_data})
        single = AttestationObject(
            raw=raw, fmt=part["fmt"], statement=part["attStmt"], auth_data=statement.attestation.auth_data
        )
        verifier = VERIFIERS.get(part["fmt"])
        if verifier is None:
            raise UnsupportedAttestation(f'Attestation format "{part["fmt"]}" is not supported.')
        trusts.append(verifier(replace(statement, attestation=single)))
    return min(trusts, key=_STRENGTH.index)  # as strong as its weakest statement


_STRENGTH: tuple[Trust, ...] = ("none", "self", "attested")


# A SafetyNet verdict is good for SAFETYNET_GRACE around its timestamp (py_webauthn's window), checked at the
# caller's `now`; without one, py_webauthn checks it against the current time, as it does the certificates.
SAFETYNET_GRACE_MS = 10_000
_verify_android_safetynet_by_py_webauthn = _certified(
    lambda s, parsed, roots: verify_android_safetynet(
        attestation_statement=parsed,
        attestation_object=s.attestation.raw,
        client_data_json=s.client_data.raw,
        pem_root_certs_bytes=roots,
        verify_timestamp_ms=_validation_time.get() is None,
    )
)


def _verify_android_safetynet(statement: Statement) -> Trust:
    """SafetyNet: py_webauthn checks the nonce, basicIntegrity, the chain and the JWS signature; the
    ctsProfileMatch verdict it ignores is checked here, once the signature proved the payload genuine."""
    fields = statement.attestation.statement
    if not isinstance(fields, Mapping):
        raise AttestationInvalid("An android-safetynet attestation statement must be a map.")
    _, payload = _safetynet_jws(fields)
    trust = _verify_android_safetynet_by_py_webauthn(statement)
    now = _validation_time.get()
    timestamp = payload.get("timestampMs")
    if now is not None:
        if not isinstance(timestamp, int) or isinstance(timestamp, bool):
            raise AttestationInvalid("The SafetyNet verdict has no timestamp.")
        if abs(now.timestamp() * 1000 - timestamp) > SAFETYNET_GRACE_MS:
            raise AttestationInvalid("The SafetyNet verdict is not from the time of this registration.")
    if statement.require_cts_profile_match and payload.get("ctsProfileMatch") is not True:
        raise AttestationInvalid("The Android device failed SafetyNet's compatibility check (ctsProfileMatch).")
    return trust


def _safetynet_jws(fields: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The JWS header and payload, each a JSON object, the header's x5c a list of strings.

    Raises:
        AttestationInvalid: the response is not such a JWS.
    """
    response = fields.get("response")
    parts = response.split(b".") if isinstance(response, bytes) else []
    if len(parts) != 3:
        raise AttestationInvalid("The SafetyNet response is not a JWS.")
    try:
        header, payload = (json.loads(base64url_to_bytes(part.decode("ascii"))) for part in parts[:2])
    except ValueError as exc:  # not base64url, ASCII or JSON
        raise AttestationInvalid("The SafetyNet response is not a JWS.") from exc
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise AttestationInvalid("The SafetyNet JWS header and payload must be JSON objects.")
    x5c = header.get("x5c")
    if not isinstance(x5c, list) or not x5c or not all(isinstance(certificate, str) for certificate in x5c):
        raise AttestationInvalid("The SafetyNet JWS header must carry its certificates in x5c.")
    return header, payload


VERIFIERS: Mapping[str, Verifier] = {
    "none": _verify_none,
    "packed": _verify_packed,
    "fido-u2f": _certified(_fido_u2f),
    "tpm": _verify_tpm,
    "apple": _same_arguments(verify_apple),
    "android-key": _same_arguments(verify_android_key),
    "compound": _verify_compound,
    "android-safetynet": _verify_android_safetynet,
}


def formats(attestation_object: AttestationObject) -> tuple[str, ...]:
    """The formats of the statements an attestation object carries: its own, or a compound's parts'."""
    parts = attestation_object.statement
    if attestation_object.fmt == "compound" and isinstance(parts, list):
        return tuple(str(part.get("fmt")) for part in parts if isinstance(part, dict))
    return (attestation_object.fmt,)


def anchored(statement: Statement) -> bool:
    """Whether the chains of a statement that verified as "attested" were checked against trust anchors:
    roots for each of its formats, or the platform vendors' when those are trusted. Without anchors a
    certificate proves only that its key signed, not who made the authenticator."""
    return all(
        bool(statement.roots_for(fmt)) or (statement.trust_platform_roots and fmt in BUILT_IN_ROOTS)
        for fmt in formats(statement.attestation)
    )


@contextlib.contextmanager
def _validating_at(now: datetime | None) -> Iterator[None]:
    token = _validation_time.set(now)
    try:
        yield
    finally:
        _validation_time.reset(token)


def verify_statement(statement: Statement, *, now: datetime | None) -> Trust:
    """Verify an attestation statement with the verifier registered for its format.

    Raises:
        UnsupportedAttestation: no verifier for the format.
        AttestationInvalid: the statement does not verify.
        AttestationUntrusted: the certificate chain does not lead to a trusted root at `now`.
    """
    verifier = VERIFIERS.get(statement.attestation.fmt)
    if verifier is None:
        raise UnsupportedAttestation(f'Attestation format "{statement.attestation.fmt}" is not supported.')
    with _validating_at(now):
        return verifier(statement)
