"""One line of an import file (JSON Lines): an account from another system, checked before anything is stored.

A line is refused as a whole, naming the field at fault (`InvalidImportRecord.field`), for anything that would
store data that cannot work or silently lose some: an unknown field (a typo), a password hash no scheme of
passgate.core.passwords verifies, a public key that does not parse or whose algorithm the policy refuses.

Public keys come as COSE_Key (base64url), or as SubjectPublicKeyInfo (DER as base64url, or PEM text), which is
converted to the COSE_Key WebAuthn stores; SPKI does not tell RS256 from PS256, so `algorithm` is required with it.

Names and the address are only type-checked here: the service cleans them as sign-up does.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import cbor2
from cryptography.exceptions import UnsupportedAlgorithm as _CryptoUnsupported
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from passgate.core import cose
from passgate.core.encoding import load_json
from passgate.core.errors import InvalidImportRecord, PasskeyError
from passgate.core.passwords import scheme_of

MAX_LINE = 64 * 1024  # characters: far above an account with its passkeys
MAX_PASSKEYS = 100
MAX_CREDENTIAL_ID = 1023  # WebAuthn's limit on credential ids
MAX_USER_HANDLE = 64  # WebAuthn's limit on user.id
MAX_EXTERNAL_ID = 255
MAX_TRANSPORTS = 8
MAX_TRANSPORT = 32
MAX_SIGN_COUNT = 0xFFFFFFFF

ACCOUNT_FIELDS = frozenset(
    [
        "username",
        "displayName",
        "email",
        "emailVerified",
        "externalId",
        "createdAt",
        "password",
        "userHandle",
        "passkeys",
    ]
)
PASSKEY_FIELDS = frozenset(
    [
        "credentialId",
        "publicKey",
        "algorithm",
        "signCount",
        "transports",
        "aaguid",
        "backupEligible",
        "backedUp",
        "nickname",
        "createdAt",
        "lastUsedAt",
    ]
)
ZERO_AAGUID = "00000000-0000-0000-0000-000000000000"
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*={0,2}")
_EC_CURVE_IDS: Mapping[str, int] = {"secp256r1": 1, "secp384r1": 2, "secp521r1": 3}
_RSA_ALGORITHMS = frozenset({cose.RS256, cose.RS384, cose.RS512, cose.PS256, cose.PS384, cose.PS512})
_EC_ALGORITHMS: Mapping[int, int] = {cose.ES256: 1, cose.ES384: 2, cose.ES512: 3}
_ED25519_ALGORITHMS = frozenset({cose.EDDSA, cose.ED25519})


@dataclass(frozen=True, kw_only=True)
class ImportedPasskey:
    credential_id: bytes
    public_key: bytes  # COSE_Key, whatever form the line gave it in
    algorithm: int
    sign_count: int
    transports: tuple[str, ...]
    aaguid: str
    backup_eligible: bool
    backed_up: bool
    nickname: str | None
    created_at: datetime
    last_used_at: datetime | None


@dataclass(frozen=True, kw_only=True)
class ImportRecord:
    """An account as the line gives it; `username`, `display_name`, `email` and nicknames are still to be cleaned."""

    username: str
    display_name: object
    email: object
    email_verified: bool
    external_id: str | None
    created_at: datetime
    password: str | None
    password_scheme: str | None
    user_handle: bytes | None  # None: none given (and no passkeys), so the account gets a random one
    passkeys: tuple[ImportedPasskey, ...]


def parse_record(line: str | bytes, *, now: datetime, allowed_algorithms: Sequence[int]) -> ImportRecord:
    """Parse and check one line; `now` stands in for missing creation times.

    Raises:
        InvalidImportRecord: the line is not a JSON object, or a field is unknown, missing or wrong.
    """
    if len(line) > MAX_LINE:
        raise InvalidImportRecord(f"The line is longer than {MAX_LINE} characters.")
    try:
        fields = load_json(line, what="The line")
    except PasskeyError as exc:
        raise InvalidImportRecord(exc.message) from exc
    if not isinstance(fields, dict):
        raise InvalidImportRecord("The line must be a JSON object (one account).")
    _refuse_unknown(fields, ACCOUNT_FIELDS, prefix="")
    if not isinstance(fields.get("username"), str):
        raise InvalidImportRecord("username is required (a string).", field="username")
    passkeys = fields.get("passkeys", [])
    if not isinstance(passkeys, list):
        raise InvalidImportRecord("passkeys must be a list.", field="passkeys")
    if len(passkeys) > MAX_PASSKEYS:
        raise InvalidImportRecord(f"An account may bring at most {MAX_PASSKEYS} passkeys.", field="passkeys")
    parsed = tuple(
        _passkey(passkey, field=f"passkeys[{index}]", now=now, allowed_algorithms=allowed_algorithms)
        for index, passkey in enumerate(passkeys)
    )
    first: dict[bytes, int] = {}
    for index, passkey in enumerate(parsed):
        if (earlier := first.setdefault(passkey.credential_id, index)) != index:
            name = f"passkeys[{index}].credentialId"
            raise InvalidImportRecord(f"{name} is the same as passkeys[{earlier}]'s.", field=name)
    user_handle = None
    if fields.get("userHandle") is not None:
        user_handle = _base64url(fields["userHandle"], field="userHandle", most=MAX_USER_HANDLE)
    elif parsed:
        # The passkeys hold the old system's user handle and return it at every sign-in: it cannot be made up.
        raise InvalidImportRecord("userHandle is required with passkeys.", field="userHandle")
    password = _optional(fields, "password", str)
    return ImportRecord(
        username=fields["username"],
        display_name=fields.get("displayName"),
        email=fields.get("email"),
        email_verified=_optional(fields, "emailVerified", bool) or False,
        external_id=_external_id(fields.get("externalId")),
        created_at=_time(fields, "createdAt", field="createdAt") or now,
        password=password,
        password_scheme=_scheme(password) if password is not None else None,
        user_handle=user_handle,
        passkeys=parsed,
    )


def _refuse_unknown(fields: Mapping[str, Any], known: frozenset[str], *, prefix: str) -> None:
    for name in fields:
        if name not in known:
            raise InvalidImportRecord(f"Unknown field {prefix}{name}.", field=f"{prefix}{name}")


def _optional(fields: Mapping[str, Any], name: str, kind: type, *, field: str | None = None) -> Any:
    value = fields.get(name)
    # bool is an int to Python, never to the file: true is not a sign count.
    if value is not None and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
        raise InvalidImportRecord(f"{field or name} must be a {_KIND_NAMES[kind]}.", field=field or name)
    return value


_KIND_NAMES: Mapping[type, str] = {str: "string", bool: "boolean (true or false)", int: "whole number", list: "list"}


def _external_id(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # many systems number their accounts
    if not isinstance(value, str) or not value or len(value) > MAX_EXTERNAL_ID:
        raise InvalidImportRecord(
            f"externalId must be a string of 1 to {MAX_EXTERNAL_ID} characters (or a whole number).", field="externalId"
        )
    return value


def _time(fields: Mapping[str, Any], name: str, *, field: str) -> datetime | None:
    value = _optional(fields, name, str, field=field)
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidImportRecord(f"{field} must be an RFC 3339 time, e.g. 2024-05-01T12:00:00Z.", field=field) from exc
    if parsed.tzinfo is None:
        raise InvalidImportRecord(f"{field} must give its offset from UTC (Z or +hh:mm).", field=field)
    return parsed.astimezone(UTC)


def _scheme(password: str) -> str:
    try:
        return scheme_of(password)
    except PasskeyError as exc:
        raise InvalidImportRecord(
            f"password is not a hash Passgate can verify ({exc.message}); it would never let anyone in.",
            field="password",
        ) from exc


def _base64url(value: object, *, field: str, most: int) -> bytes:
    if not isinstance(value, str) or not _BASE64URL.fullmatch(value) or len(value.rstrip("=")) % 4 == 1:
        raise InvalidImportRecord(f"{field} must be base64url.", field=field)
    text = value.rstrip("=")
    decoded = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if not 1 <= len(decoded) <= most:
        raise InvalidImportRecord(f"{field} must be 1 to {most} bytes.", field=field)
    return decoded


def _passkey(value: object, *, field: str, now: datetime, allowed_algorithms: Sequence[int]) -> ImportedPasskey:
    if not isinstance(value, dict):
        raise InvalidImportRecord(f"{field} must be an object (one passkey).", field=field)
    _refuse_unknown(value, PASSKEY_FIELDS, prefix=f"{field}.")
    for required in ("credentialId", "publicKey"):
        if value.get(required) is None:
            raise InvalidImportRecord(f"{field}.{required} is required.", field=f"{field}.{required}")
    credential_id = _base64url(value["credentialId"], field=f"{field}.credentialId", most=MAX_CREDENTIAL_ID)
    algorithm = _optional(value, "algorithm", int, field=f"{field}.algorithm")
    public_key, algorithm = _public_key(value["publicKey"], algorithm, field=field)
    if algorithm not in allowed_algorithms:
        name = cose.ALGORITHM_NAMES.get(algorithm, str(algorithm))
        raise InvalidImportRecord(f"The policy does not allow {name} passkeys.", field=f"{field}.algorithm")
    sign_count = _optional(value, "signCount", int, field=f"{field}.signCount") or 0
    if not 0 <= sign_count <= MAX_SIGN_COUNT:
        raise InvalidImportRecord(f"{field}.signCount must be 0 to {MAX_SIGN_COUNT}.", field=f"{field}.signCount")
    backup_eligible = _optional(value, "backupEligible", bool, field=f"{field}.backupEligible") or False
    backed_up = _optional(value, "backedUp", bool, field=f"{field}.backedUp") or False
    if backed_up and not backup_eligible:
        raise InvalidImportRecord(
            f"{field}.backedUp is true but backupEligible is not: no authenticator reports that.",
            field=f"{field}.backedUp",
        )
    nickname = _optional(value, "nickname", str, field=f"{field}.nickname")
    return ImportedPasskey(
        credential_id=credential_id,
        public_key=public_key,
        algorithm=algorithm,
        sign_count=sign_count,
        transports=_transports(value.get("transports"), field=f"{field}.transports"),
        aaguid=_aaguid(value.get("aaguid"), field=f"{field}.aaguid"),
        backup_eligible=backup_eligible,
        backed_up=backed_up,
        nickname=nickname,
        created_at=_time(value, "createdAt", field=f"{field}.createdAt") or now,
        last_used_at=_time(value, "lastUsedAt", field=f"{field}.lastUsedAt"),
    )


def _transports(value: object, *, field: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_TRANSPORTS:
        raise InvalidImportRecord(f"{field} must be a list of at most {MAX_TRANSPORTS} strings.", field=field)
    for transport in value:
        if not isinstance(transport, str) or not 1 <= len(transport) <= MAX_TRANSPORT or not transport.isprintable():
            raise InvalidImportRecord(f"{field} must hold transport names such as usb, nfc, hybrid.", field=field)
    return tuple(dict.fromkeys(value))


def _aaguid(value: object, *, field: str) -> str:
    if value is None:
        return ZERO_AAGUID
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        return str(uuid.UUID(value))
    except ValueError as exc:
        raise InvalidImportRecord(f"{field} must be a UUID.", field=field) from exc


def _public_key(value: object, algorithm: int | None, *, field: str) -> tuple[bytes, int]:
    """The key as COSE_Key bytes that cose.parse_public_key reads, and its algorithm."""
    name = f"{field}.publicKey"
    if not isinstance(value, str) or not value.strip():
        raise InvalidImportRecord(f"{name} must be a string: COSE_Key or SPKI (DER) as base64url, or PEM.", field=name)
    if value.lstrip().startswith("-----BEGIN"):
        spki = _load_spki(lambda: serialization.load_pem_public_key(value.strip().encode()), field=name)
        cose_key = _cose_of(spki, algorithm, field=field)
    else:
        raw = _base64url(value.strip(), field=name, most=16 * 1024)
        if raw[0] == 0x30:  # an ASN.1 SEQUENCE: SPKI DER; a COSE_Key is a CBOR map (0xa0..0xbf)
            spki = _load_spki(lambda: serialization.load_der_public_key(raw), field=name)
            cose_key = _cose_of(spki, algorithm, field=field)
        else:
            cose_key = raw
    try:
        parsed = cose.parse_public_key(cose_key)
    except PasskeyError as exc:
        raise InvalidImportRecord(f"{name} is not a public key Passgate can use: {exc.message}", field=name) from exc
    if algorithm is not None and algorithm != parsed.algorithm:
        raise InvalidImportRecord(
            f"{field}.algorithm is {algorithm} but the COSE key says {parsed.algorithm}.", field=f"{field}.algorithm"
        )
    return cose_key, parsed.algorithm


def _load_spki(load: Callable[[], Any], *, field: str) -> Any:
    try:
        return load()
    except (ValueError, TypeError, _CryptoUnsupported) as exc:
        raise InvalidImportRecord(f"{field} is not a SubjectPublicKeyInfo public key.", field=field) from exc


def _cose_of(key: Any, algorithm: int | None, *, field: str) -> bytes:
    """The COSE_Key (RFC 9053) of an SPKI public key, for the algorithm the line names."""
    if algorithm is None:
        raise InvalidImportRecord(
            f"{field}.algorithm is required with an SPKI public key (e.g. -7 ES256, -257 RS256, -8 EdDSA).",
            field=f"{field}.algorithm",
        )
    mismatch = InvalidImportRecord(
        f"{field}.algorithm {cose.ALGORITHM_NAMES.get(algorithm, algorithm)} does not fit this public key.",
        field=f"{field}.algorithm",
    )
    if isinstance(key, ec.EllipticCurvePublicKey):
        curve = _EC_CURVE_IDS.get(key.curve.name)
        if curve is None or _EC_ALGORITHMS.get(algorithm) != curve:
            raise mismatch
        numbers, size = key.public_numbers(), (key.curve.key_size + 7) // 8
        fields: dict[int, Any] = {
            1: 2,
            3: algorithm,
            -1: curve,
            -2: numbers.x.to_bytes(size, "big"),
            -3: numbers.y.to_bytes(size, "big"),
        }
    elif isinstance(key, rsa.RSAPublicKey):
        if algorithm not in _RSA_ALGORITHMS:
            raise mismatch
        rsa_numbers = key.public_numbers()
        fields = {1: 3, 3: algorithm, -1: _unsigned(rsa_numbers.n), -2: _unsigned(rsa_numbers.e)}
    elif isinstance(key, ed25519.Ed25519PublicKey):
        if algorithm not in _ED25519_ALGORITHMS:
            raise mismatch
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        fields = {1: 1, 3: algorithm, -1: 6, -2: raw}
    else:
        raise InvalidImportRecord(
            f"{field}.publicKey is of a kind Passgate does not import (EC P-256, P-384, P-521, RSA or Ed25519).",
            field=f"{field}.publicKey",
        )
    return cbor2.dumps(fields)


def _unsigned(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8, "big")
