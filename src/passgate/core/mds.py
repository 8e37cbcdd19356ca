"""FIDO Metadata Service v3: verify a metadata BLOB and read what it says of authenticator models.

The BLOB is a compact JWS (``header.payload.signature``, base64url) whose header carries the signing
certificate chain in ``x5c``. It is processed in the order of the MDS3 specification (3.2): the chain is
validated at ``now`` up to a pinned trust anchor, the given CRLs are checked, then the signature, then
the payload. Nothing here reads files, the network or the clock.

    PasskeyError
    └── MetadataError                   mds_error
        ├── MetadataMalformed           mds_malformed            (not a JWS, or a payload without no/nextUpdate/entries)
        ├── MetadataSignatureInvalid    mds_signature_invalid    (also: an algorithm other than RS256 or ES256)
        ├── MetadataChainInvalid        mds_chain_invalid        (x5c does not chain to the trust anchor)
        ├── MetadataExpired             mds_expired              (a chain certificate is outside its validity at now)
        ├── MetadataCrlInvalid          mds_crl_invalid          (unreadable, not signed by the chain, not yet valid)
        ├── MetadataCrlExpired          mds_crl_expired          (past its nextUpdate)
        ├── MetadataRevokedCertificate  mds_revoked_certificate
        └── MetadataRollback            mds_rollback             (an older BLOB than the one in use)
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from types import MappingProxyType
from typing import Any, NamedTuple

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import ExtensionOID
from OpenSSL.crypto import X509, X509Store, X509StoreContext, X509StoreContextError

from passgate.core.errors import PasskeyError

# GlobalSign Root CA - R3 (SHA-256 fingerprint cbb522d7...dc963c53b), which anchors mds3.fidoalliance.org.
GLOBALSIGN_ROOT_R3 = """\
-----BEGIN CERTIFICATE-----
MIIDXzCCAkegAwIBAgILBAAAAAABIVhTCKIwDQYJKoZIhvcNAQELBQAwTDEgMB4G
A1UECxMXR2xvYmFsU2lnbiBSb290IENBIC0gUjMxEzARBgNVBAoTCkdsb2JhbFNp
Z24xEzARBgNVBAMTCkdsb2JhbFNpZ24wHhcNMDkwMzE4MTAwMDAwWhcNMjkwMzE4
MTAwMDAwWjBMMSAwHgYDVQQLExdHbG9iYWxTaWduIFJvb3QgQ0EgLSBSMzETMBEG
A1UEChMKR2xvYmFsU2lnbjETMBEGA1UEAxMKR2xvYmFsU2lnbjCCASIwDQYJKoZI
hvcNAQEBBQADggEPADCCAQoCggEBAMwldpB5BngiFvXAg7aEyiie/QV2EcWtiHL8
RgJDx7KKnQRfJMsuS+FggkbhUqsMgUdwbN1k0ev1LKMPgj0MK66X17YUhhB5uzsT
gHeMCOFJ0mpiLx9e+pZo34knlTifBtc+ycsmWQ1z3rDI6SYOgxXG71uL0gRgykmm
KPZpO/bLyCiR5Z2KYVc3rHQU3HTgOu5yLy6c+9C7v/U9AOEGM+iCK65TpjoWc4zd
QQ4gOsC0p6Hpsk+QLjJg6VfLuQSSaGjlOCZgdbKfd/+RFO+uIEn8rUAVSNECMWEZ
XriX7613t2Saer9fwRPvm2L7DWzgVGkWqQPabumDk3F2xmmFghcCAwEAAaNCMEAw
DgYDVR0PAQH/BAQDAgEGMA8GA1UdEwEB/wQFMAMBAf8wHQYDVR0OBBYEFI/wS3+o
LkUkrk1Q+mOai97i3Ru8MA0GCSqGSIb3DQEBCwUAA4IBAQBLQNvAUKr+yAzv95ZU
RUm7lgAJQayzE4aGKAczymvmdLm6AC2upArT9fHxD4q/c2dKg8dEe3jgr25sbwMp
jjM5RcOO5LlXbKr8EpbsU8Yt5CRsuZRj+9xTaGdWPoO4zzUhw8lo/s7awlOqzJCK
6fBdRoyV3XpYKBovHd7NADdBj+1EbddTKJd+82cEHhXXipa0095MJ6RMG3NzdvQX
mcIfeg7jLQitChws/zyrVQ4PkX4268NXSb7hLi18YIvDQVETI53O9zJrlAGomecs
Mx86OyXShkDOOyyGeMlhLxS67ttVb9+E7gUJTb0o2HLO02JQZR7rkpeDMdmztcpH
WD9f
-----END CERTIFICATE-----
"""

# Statuses that make a model untrustworthy when they are its latest report.
COMPROMISED_STATUSES = frozenset(
    {
        "REVOKED",
        "ATTESTATION_KEY_COMPROMISE",
        "USER_VERIFICATION_BYPASS",
        "USER_KEY_REMOTE_COMPROMISE",
        "USER_KEY_PHYSICAL_COMPROMISE",
    }
)
# Lowest first. The legacy "FIDO_CERTIFIED" (no level) is not a level.
CERTIFICATION_LEVELS = (
    "FIDO_CERTIFIED_L1",
    "FIDO_CERTIFIED_L1plus",
    "FIDO_CERTIFIED_L2",
    "FIDO_CERTIFIED_L2plus",
    "FIDO_CERTIFIED_L3",
    "FIDO_CERTIFIED_L3plus",
)

# OpenSSL's X509_V_ERR_CERT_NOT_YET_VALID and X509_V_ERR_CERT_HAS_EXPIRED.
_OUTSIDE_VALIDITY = frozenset({9, 10})


class MetadataError(PasskeyError):
    code = "mds_error"
    default_message = "The FIDO metadata BLOB could not be verified."


class MetadataMalformed(MetadataError):
    code = "mds_malformed"
    default_message = "The FIDO metadata BLOB is not well formed."


class MetadataSignatureInvalid(MetadataError):
    code = "mds_signature_invalid"
    default_message = "The FIDO metadata BLOB's signature does not verify."


class MetadataChainInvalid(MetadataError):
    code = "mds_chain_invalid"
    default_message = "The FIDO metadata BLOB's certificates do not chain to the trust anchor."


class MetadataExpired(MetadataError):
    code = "mds_expired"
    default_message = "A certificate of the FIDO metadata BLOB is expired or not yet valid."


class MetadataCrlInvalid(MetadataError):
    code = "mds_crl_invalid"
    default_message = "A certificate revocation list for the FIDO metadata BLOB is not valid."


class MetadataCrlExpired(MetadataError):
    code = "mds_crl_expired"
    default_message = "A certificate revocation list for the FIDO metadata BLOB is out of date."


class MetadataRevokedCertificate(MetadataError):
    code = "mds_revoked_certificate"
    default_message = "A certificate of the FIDO metadata BLOB has been revoked."


class MetadataRollback(MetadataError):
    code = "mds_rollback"
    default_message = "This FIDO metadata BLOB is older than the one in use."


class StatusReport(NamedTuple):
    """One entry of ``statusReports``: a status such as "FIDO_CERTIFIED_L1" and the day it took effect."""

    status: str
    effective_date: date | None


@dataclass(frozen=True, kw_only=True)
class MetadataEntry:
    """What the BLOB says of one authenticator model.

    Attributes:
        aaguid: lower-case UUID; None for U2F models, which are known by `attestation_certificate_key_identifiers`.
        attestation_certificate_key_identifiers: lower-case hex SHA-1 key identifiers (U2F models).
        description: the model's name.
        icon: a ``data:`` URI, or None (absent, or not a data URI: pages must never load a remote icon).
        attestation_root_certificates: PEM trust anchors for the model's attestation.
        status_reports: in the BLOB's order.
    """

    aaguid: str | None
    attestation_certificate_key_identifiers: tuple[str, ...] = ()
    description: str
    icon: str | None = None
    attestation_root_certificates: tuple[str, ...] = ()
    status_reports: tuple[StatusReport, ...] = ()

    @property
    def latest_status(self) -> str | None:
        """The status of the report with the latest effective date (the later one in the BLOB on a tie)."""
        if not self.status_reports:
            return None
        order = sorted(enumerate(self.status_reports), key=lambda item: (item[1].effective_date or date.min, item[0]))
        return order[-1][1].status

    @property
    def certification_level(self) -> str | None:
        """The highest FIDO_CERTIFIED_L* status ever reported (whatever came later: see `compromised`)."""
        levels = [CERTIFICATION_LEVELS.index(r.status) for r in self.status_reports if r.status in CERTIFICATION_LEVELS]
        return CERTIFICATION_LEVELS[max(levels)] if levels else None

    @property
    def compromised(self) -> bool:
        """The latest status is REVOKED or a key-compromise or user-verification-bypass report."""
        return self.latest_status in COMPROMISED_STATUSES


@dataclass(frozen=True, kw_only=True)
class MetadataBlob:
    """A verified BLOB.

    Attributes:
        number: the BLOB's serial number (``no``); a newer BLOB has a greater one.
        next_update: the day by which FIDO promises a newer BLOB.
        legal_header: the terms the BLOB is used under.
        entries: FIDO2 models by AAGUID (lower-case UUID).
        by_key_identifier: U2F models by attestation certificate key identifier (lower-case hex).
            UAF models (known only by ``aaid``) cannot appear in WebAuthn and are left out.
        skipped: one line per entry that could not be read (it is left out; the rest of the BLOB is used,
            so that one odd entry never blocks the compromise reports of all the others).
        jws: the BLOB exactly as verified, to store and verify again later.
    """

    number: int
    next_update: date
    legal_header: str = ""
    entries: Mapping[str, MetadataEntry] = field(default_factory=lambda: MappingProxyType({}))
    by_key_identifier: Mapping[str, MetadataEntry] = field(default_factory=lambda: MappingProxyType({}))
    skipped: tuple[str, ...] = ()
    jws: str = field(default="", repr=False)

    def entry(self, aaguid: uuid.UUID | bytes | str) -> MetadataEntry | None:
        """The entry of a model by AAGUID (as in authenticator data, a UUID, or any UUID spelling)."""
        try:
            key = _aaguid(aaguid)
        except MetadataMalformed:
            return None
        return self.entries.get(key)

    def is_stale(self, now: datetime) -> bool:
        """True once `now` is past `next_update`: a newer BLOB should be fetched (this one stays authentic)."""
        return _utc(now).date() > self.next_update


def verify_blob(
    jws: str, *, trust_anchor_pem: str = GLOBALSIGN_ROOT_R3, crls_der_or_pem: Sequence[bytes] = (), now: datetime
) -> MetadataBlob:
    """Verify a metadata BLOB at `now` and read it.

    The ``x5c`` chain must lead to `trust_anchor_pem` with every certificate valid at `now`. Each CRL
    given must be signed by a certificate of that chain (or the anchor) and be current at `now`; a
    certificate it lists as revoked fails the BLOB. Chain certificates whose issuer has no CRL here are
    not checked for revocation. A naive `now` is taken as UTC.

    Raises:
        MetadataMalformed: not a compact JWS, an unreadable header or x5c, or a payload without a
            valid ``legalHeader``, ``no``, ``nextUpdate`` or ``entries``.
        MetadataChainInvalid: x5c does not chain to the trust anchor.
        MetadataExpired: a certificate of the chain is expired or not yet valid at `now`.
        MetadataCrlInvalid: a CRL is unreadable, not signed by a certificate of the chain, or not yet valid.
        MetadataCrlExpired: a CRL is past its nextUpdate.
        MetadataRevokedCertificate: a CRL revokes a certificate of the chain.
        MetadataSignatureInvalid: the algorithm is not RS256 or ES256, or the signature does not verify.
        ValueError: `trust_anchor_pem` is not a PEM certificate (configuration, not the BLOB).
    """
    anchor = x509.load_pem_x509_certificate(trust_anchor_pem.encode("ascii"))
    moment = _utc(now)
    encoded_header, encoded_payload, signature = _split(jws)
    header = _json_object(_b64url(encoded_header, "header"), "header")
    if "crit" in header:
        raise MetadataMalformed("The BLOB's header has critical extensions this server does not know.")
    chain = _x5c(header)
    verified_chain = _validate_chain(chain, anchor, moment)
    _check_revocation(verified_chain, [_load_crl(raw) for raw in crls_der_or_pem], moment)
    _verify_signature(header.get("alg"), chain[0], f"{encoded_header}.{encoded_payload}".encode("ascii"), signature)
    return _parse_payload(_b64url(encoded_payload, "payload"), jws)


def accept_update(current: MetadataBlob | None, candidate: MetadataBlob) -> MetadataBlob:
    """The BLOB to use once `candidate` (verified) has been fetched.

    A BLOB with the same number as `current` changes nothing: `current` is kept.

    Raises:
        MetadataRollback: `candidate` is numbered lower than `current`.
    """
    if current is None or candidate.number > current.number:
        return candidate
    if candidate.number == current.number:
        return current
    raise MetadataRollback(f"BLOB no. {candidate.number} is older than no. {current.number}, which is in use.")


class MetadataCache:
    """Keeps the last good BLOB: a refresh that does not verify, or goes backwards, changes nothing.

    Attributes:
        current: the BLOB in use, or None before the first good one.
        last_error: why the last refresh was refused (None after a good one), for the caller to log.
    """

    def __init__(self, *, trust_anchor_pem: str = GLOBALSIGN_ROOT_R3, current: MetadataBlob | None = None) -> None:
        x509.load_pem_x509_certificate(trust_anchor_pem.encode("ascii"))  # a bad anchor fails at startup
        self.trust_anchor_pem = trust_anchor_pem
        self.current = current
        self.last_error: MetadataError | None = None

    def refresh(self, jws: str, *, now: datetime, crls_der_or_pem: Sequence[bytes] = ()) -> bool:
        """Verify `jws` and use it if it is not older than `current`.

        Returns True when `jws` verified and `current` is now that BLOB (or one with the same number);
        False when it was refused: `current` is unchanged and `last_error` says why.
        """
        try:
            candidate = verify_blob(
                jws, trust_anchor_pem=self.trust_anchor_pem, crls_der_or_pem=crls_der_or_pem, now=now
            )
            self.current = accept_update(self.current, candidate)
        except MetadataError as error:
            self.last_error = error
            return False
        self.last_error = None
        return True


def _utc(now: datetime) -> datetime:
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)


def _split(jws: str) -> tuple[str, str, bytes]:
    parts = jws.strip().split(".")
    if len(parts) != 3 or not all(parts):
        raise MetadataMalformed("The BLOB is not a compact JWS (header.payload.signature).")
    if not all(part.isascii() for part in parts):
        raise MetadataMalformed("The BLOB is not base64url.")
    return parts[0], parts[1], _b64url(parts[2], "signature")


def _b64url(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MetadataMalformed(f"The BLOB's {what} is not base64url.") from exc


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError as exc:  # also UnicodeDecodeError
        raise MetadataMalformed(f"The BLOB's {what} is not JSON.") from exc
    if not isinstance(value, dict):
        raise MetadataMalformed(f"The BLOB's {what} is not a JSON object.")
    return value


def _x5c(header: Mapping[str, Any]) -> list[x509.Certificate]:
    encoded = header.get("x5c")
    if not isinstance(encoded, list) or not encoded or not all(isinstance(item, str) for item in encoded):
        raise MetadataMalformed("The BLOB's header has no x5c certificate chain.")
    try:
        return [x509.load_der_x509_certificate(base64.b64decode(item, validate=True)) for item in encoded]
    except ValueError as exc:  # binascii.Error is a ValueError
        raise MetadataMalformed("The BLOB's x5c holds something other than base64 DER certificates.") from exc


def _validate_chain(
    chain: Sequence[x509.Certificate], anchor: x509.Certificate, now: datetime
) -> list[x509.Certificate]:
    store = X509Store()
    store.add_cert(X509.from_cryptography(anchor))
    store.set_time(now)
    context = X509StoreContext(
        store, X509.from_cryptography(chain[0]), [X509.from_cryptography(cert) for cert in chain[1:]]
    )
    try:
        verified = context.get_verified_chain()
    except X509StoreContextError as exc:
        error, _depth, reason = exc.errors
        subject = exc.certificate.to_cryptography().subject.rfc4514_string()
        if error in _OUTSIDE_VALIDITY:
            raise MetadataExpired(f"{subject}: {reason} at {now.isoformat()}.") from exc
        raise MetadataChainInvalid(f"{subject}: {reason}.") from exc
    return [cert.to_cryptography() for cert in verified]


def _load_crl(raw: bytes) -> x509.CertificateRevocationList:
    try:
        if raw.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_crl(raw)
        return x509.load_der_x509_crl(raw)
    except ValueError as exc:
        raise MetadataCrlInvalid("A CRL is neither PEM nor DER.") from exc


_IssuerKey = (
    rsa.RSAPublicKey,
    ec.EllipticCurvePublicKey,
    dsa.DSAPublicKey,
    ed25519.Ed25519PublicKey,
    ed448.Ed448PublicKey,
)


def _signed_by(crl: x509.CertificateRevocationList, issuer: x509.Certificate) -> bool:
    key = issuer.public_key()
    return crl.issuer == issuer.subject and isinstance(key, _IssuerKey) and crl.is_signature_valid(key)


def _check_revocation(
    chain: Sequence[x509.Certificate], crls: Sequence[x509.CertificateRevocationList], now: datetime
) -> None:
    for crl in crls:
        issuer_name = crl.issuer.rfc4514_string()
        issuer = next((cert for cert in chain if _signed_by(crl, cert)), None)
        if issuer is None:
            raise MetadataCrlInvalid(f"The CRL of {issuer_name} is not signed by a certificate of the BLOB's chain.")
        if not _may_sign_crls(issuer):
            raise MetadataCrlInvalid(f"{issuer_name} may not sign CRLs.")
        if _has_extension(crl, ExtensionOID.DELTA_CRL_INDICATOR):
            raise MetadataCrlInvalid(f"The CRL of {issuer_name} is a delta CRL; give complete CRLs.")
        if crl.last_update_utc > now:
            raise MetadataCrlInvalid(f"The CRL of {issuer_name} is not valid until {crl.last_update_utc.isoformat()}.")
        if crl.next_update_utc is not None and crl.next_update_utc < now:
            raise MetadataCrlExpired(f"The CRL of {issuer_name} expired at {crl.next_update_utc.isoformat()}.")
    # The anchor is last in the verified chain: it is trusted as configured, so only the others are looked up.
    for cert, issuer in itertools.pairwise(chain):
        for crl in crls:
            if _signed_by(crl, issuer) and crl.get_revoked_certificate_by_serial_number(cert.serial_number):
                raise MetadataRevokedCertificate(f"{cert.subject.rfc4514_string()} is revoked by its issuer's CRL.")


def _may_sign_crls(cert: x509.Certificate) -> bool:
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return True
    return usage.crl_sign


def _has_extension(crl: x509.CertificateRevocationList, oid: x509.ObjectIdentifier) -> bool:
    try:
        crl.extensions.get_extension_for_oid(oid)
    except x509.ExtensionNotFound:
        return False
    return True


def _verify_rs256(key: object, signing_input: bytes, signature: bytes) -> None:
    if not isinstance(key, rsa.RSAPublicKey):
        raise MetadataSignatureInvalid("The header says RS256 but the signing certificate's key is not RSA.")
    key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())


def _verify_es256(key: object, signing_input: bytes, signature: bytes) -> None:
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise MetadataSignatureInvalid("The header says ES256 but the signing certificate's key is not P-256.")
    if len(signature) != 64:
        raise MetadataSignatureInvalid("An ES256 signature is 64 bytes.")
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    key.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))


# The algorithms the MDS3 specification allows for the BLOB.
_SIGNATURE_VERIFIERS: dict[str, Callable[[object, bytes, bytes], None]] = {
    "RS256": _verify_rs256,
    "ES256": _verify_es256,
}


def _verify_signature(alg: object, leaf: x509.Certificate, signing_input: bytes, signature: bytes) -> None:
    verify = _SIGNATURE_VERIFIERS.get(alg) if isinstance(alg, str) else None
    if verify is None:
        raise MetadataSignatureInvalid(f"The BLOB's algorithm {alg!r} is not accepted (RS256 or ES256).")
    try:
        verify(leaf.public_key(), signing_input, signature)
    except InvalidSignature as exc:
        raise MetadataSignatureInvalid() from exc


def _parse_payload(raw: bytes, jws: str) -> MetadataBlob:
    payload = _json_object(raw, "payload")
    number = payload.get("no")
    if not isinstance(number, int) or isinstance(number, bool) or number < 0:
        raise MetadataMalformed("The BLOB's payload has no serial number (no).")
    legal_header = payload.get("legalHeader")
    if not isinstance(legal_header, str):
        raise MetadataMalformed("The BLOB's payload has no legalHeader.")
    raw_entries = payload.get("entries")
    if not isinstance(raw_entries, list):
        raise MetadataMalformed("The BLOB's payload has no entries.")
    next_update = _date(payload.get("nextUpdate"), "nextUpdate")
    by_aaguid: dict[str, MetadataEntry] = {}
    by_key_identifier: dict[str, MetadataEntry] = {}
    skipped: list[str] = []
    for index, raw_entry in enumerate(raw_entries):
        try:
            entry = _parse_entry(raw_entry)
        except MetadataMalformed as exc:
            skipped.append(f"entry {index}: {exc.message}")
            continue
        if entry is None:
            continue
        if entry.aaguid is not None:
            if entry.aaguid in by_aaguid:
                skipped.append(f"entry {index}: AAGUID {entry.aaguid} appears twice; the first is used.")
                continue
            by_aaguid[entry.aaguid] = entry
        for key_identifier in entry.attestation_certificate_key_identifiers:
            by_key_identifier.setdefault(key_identifier, entry)
    return MetadataBlob(
        number=number,
        next_update=next_update,
        legal_header=legal_header,
        entries=MappingProxyType(by_aaguid),
        by_key_identifier=MappingProxyType(by_key_identifier),
        skipped=tuple(skipped),
        jws=jws.strip(),
    )


def _parse_entry(raw: object) -> MetadataEntry | None:
    """One entry, or None for a UAF model (no AAGUID, no U2F key identifier)."""
    if not isinstance(raw, dict):
        raise MetadataMalformed("not a JSON object")
    aaguid = _aaguid(raw["aaguid"]) if isinstance(raw.get("aaguid"), str) else None
    if "aaguid" in raw and aaguid is None:
        raise MetadataMalformed("aaguid is not a string")
    key_identifiers = tuple(_key_identifier(item) for item in _list(raw.get("attestationCertificateKeyIdentifiers")))
    if aaguid is None and not key_identifiers:
        return None
    statement = raw.get("metadataStatement")
    if not isinstance(statement, dict) or not isinstance(statement.get("description"), str):
        raise MetadataMalformed("no metadataStatement with a description")
    icon = statement.get("icon")
    return MetadataEntry(
        aaguid=aaguid,
        attestation_certificate_key_identifiers=key_identifiers,
        description=statement["description"].strip(),
        icon=icon if isinstance(icon, str) and icon.startswith("data:") else None,
        attestation_root_certificates=tuple(_pem(item) for item in _list(statement.get("attestationRootCertificates"))),
        status_reports=tuple(_status_report(item) for item in _list(raw.get("statusReports"))),
    )


def statement_entry(statement: object) -> MetadataEntry | None:
    """The entry a bare metadata statement (as the conformance tools hand them out, outside any BLOB) describes;
    None for a UAF model. It has no status reports: a statement alone says nothing of compromise.

    Raises:
        MetadataMalformed: not a metadata statement with a description.
    """
    if not isinstance(statement, dict):
        raise MetadataMalformed("not a JSON object")
    wrapped = {
        "aaguid": statement.get("aaguid"),
        "attestationCertificateKeyIdentifiers": statement.get("attestationCertificateKeyIdentifiers"),
        "metadataStatement": statement,
    }
    return _parse_entry({k: v for k, v in wrapped.items() if v is not None})


def _aaguid(value: uuid.UUID | bytes | str) -> str:
    try:
        if isinstance(value, uuid.UUID):
            return str(value)
        return str(uuid.UUID(bytes=value) if isinstance(value, bytes) else uuid.UUID(value))
    except ValueError as exc:
        raise MetadataMalformed(f"{value!r} is not an AAGUID") from exc


def _key_identifier(value: object) -> str:
    if not isinstance(value, str):
        raise MetadataMalformed("an attestation certificate key identifier is not a string")
    try:
        return bytes.fromhex(value).hex()
    except ValueError as exc:
        raise MetadataMalformed(f"attestation certificate key identifier {value!r} is not hex") from exc


def _list(value: object) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise MetadataMalformed(f"{value!r} is not a list")
    return value


def _pem(value: object) -> str:
    if not isinstance(value, str):
        raise MetadataMalformed("an attestation root certificate is not a string")
    try:  # some entries wrap their base64 in lines
        der = base64.b64decode("".join(value.split()), validate=True)
    except ValueError as exc:
        raise MetadataMalformed("an attestation root certificate is not base64") from exc
    body = base64.b64encode(der).decode("ascii")
    lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN CERTIFICATE-----\n{lines}\n-----END CERTIFICATE-----\n"


def _status_report(value: object) -> StatusReport:
    if not isinstance(value, dict) or not isinstance(value.get("status"), str):
        raise MetadataMalformed("a status report has no status")
    effective = value.get("effectiveDate")
    return StatusReport(value["status"], None if effective is None else _date(effective, "effectiveDate"))


def _date(value: object, what: str) -> date:
    if not isinstance(value, str):
        raise MetadataMalformed(f"{what} is not a date")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise MetadataMalformed(f"{what} {value!r} is not a date (YYYY-MM-DD)") from exc
