"""One line of an import file: every field checked, public keys in every form read as the same key."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import bcrypt
import cbor2
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from passgate.core import cose
from passgate.core.encoding import b64url_encode
from passgate.core.errors import InvalidImportRecord
from passgate.core.imports import ZERO_AAGUID, ImportRecord, parse_record
from passgate.core.policy import DEFAULT_ALGORITHMS

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
BCRYPT = bcrypt.hashpw(b"correct horse", bcrypt.gensalt(rounds=4)).decode()
P256 = ec.generate_private_key(ec.SECP256R1()).public_key()
RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
ED25519 = ed25519.Ed25519PrivateKey.generate().public_key()


def spki_der(key: Any) -> str:
    return b64url_encode(key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))


def spki_pem(key: Any) -> str:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def cose_p256(key: ec.EllipticCurvePublicKey) -> str:
    numbers = key.public_numbers()
    fields = {1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")}
    return b64url_encode(cbor2.dumps(fields))


def passkey(**changes: Any) -> dict[str, Any]:
    return {"credentialId": b64url_encode(b"credential-1"), "publicKey": cose_p256(P256), **changes}


def account(**changes: Any) -> dict[str, Any]:
    return {"username": "ada", "userHandle": b64url_encode(b"legacy-user-0042"), "passkeys": [passkey()], **changes}


def parse(fields: dict[str, Any] | str, allowed: tuple[int, ...] = DEFAULT_ALGORITHMS) -> ImportRecord:
    line = fields if isinstance(fields, str) else json.dumps(fields)
    return parse_record(line, now=NOW, allowed_algorithms=allowed)


def refused(fields: dict[str, Any] | str, allowed: tuple[int, ...] = DEFAULT_ALGORITHMS) -> InvalidImportRecord:
    with pytest.raises(InvalidImportRecord) as caught:
        parse(fields, allowed)
    return caught.value


def test_a_username_alone_is_an_account_with_defaults() -> None:
    record = parse({"username": "ada"})
    assert record.username == "ada" and record.display_name is None and record.email is None
    assert not record.email_verified and record.external_id is None
    assert record.created_at == NOW and record.password is None and record.password_scheme is None
    assert record.user_handle is None and record.passkeys == ()


def test_every_field_is_read() -> None:
    line = account(
        displayName="Ada Lovelace",
        email="ada@example.com",
        emailVerified=True,
        externalId=1815,
        createdAt="2020-02-03T04:05:06+01:00",
        password=BCRYPT,
        passkeys=[
            passkey(
                signCount=7,
                transports=["usb", "nfc", "usb"],
                aaguid="ADCE0002-35BC-C60A-648B-0B25F1F05503",
                backupEligible=True,
                backedUp=True,
                nickname="Key ring",
                createdAt="2021-01-01T00:00:00Z",
                lastUsedAt="2022-01-01T00:00:00.5Z",
            )
        ],
    )
    record = parse(line)
    assert (record.display_name, record.email, record.email_verified) == ("Ada Lovelace", "ada@example.com", True)
    assert record.external_id == "1815"  # numbered accounts keep their number, as text
    assert record.created_at == datetime(2020, 2, 3, 3, 5, 6, tzinfo=UTC)
    assert record.password == BCRYPT and record.password_scheme == "bcrypt"
    assert record.user_handle == b"legacy-user-0042"
    (imported,) = record.passkeys
    assert imported.credential_id == b"credential-1" and imported.algorithm == cose.ES256
    assert imported.sign_count == 7 and imported.transports == ("usb", "nfc")
    assert imported.aaguid == "adce0002-35bc-c60a-648b-0b25f1f05503"
    assert imported.backup_eligible and imported.backed_up and imported.nickname == "Key ring"
    assert imported.created_at == datetime(2021, 1, 1, tzinfo=UTC)
    assert imported.last_used_at == datetime(2022, 1, 1, 0, 0, 0, 500000, tzinfo=UTC)


def test_a_passkey_has_defaults() -> None:
    (imported,) = parse(account()).passkeys
    assert imported.sign_count == 0 and imported.transports == () and imported.aaguid == ZERO_AAGUID
    assert not imported.backup_eligible and not imported.backed_up and imported.nickname is None
    assert imported.created_at == NOW and imported.last_used_at is None


@pytest.mark.parametrize("form", ["der", "pem"])
@pytest.mark.parametrize(
    ("key", "algorithm"), [(P256, cose.ES256), (RSA, cose.RS256), (RSA, cose.PS256), (ED25519, cose.EDDSA)]
)
def test_an_spki_public_key_becomes_the_same_cose_key(form: str, key: Any, algorithm: int) -> None:
    given = spki_der(key) if form == "der" else spki_pem(key)
    (imported,) = parse(account(passkeys=[passkey(publicKey=given, algorithm=algorithm)])).passkeys
    parsed = cose.parse_public_key(imported.public_key)
    assert imported.algorithm == parsed.algorithm == algorithm
    if isinstance(key, ed25519.Ed25519PublicKey):
        raw = (serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        assert parsed.key.public_bytes(*raw) == key.public_bytes(*raw)
    else:
        assert parsed.key.public_numbers() == key.public_numbers()


def test_a_cose_key_names_its_own_algorithm() -> None:
    (imported,) = parse(account()).passkeys
    assert cose.parse_public_key(imported.public_key).key.public_numbers() == P256.public_numbers()
    assert parse(account(passkeys=[passkey(algorithm=cose.ES256)])).passkeys[0].algorithm == cose.ES256


BAD_PEM = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"
OTHER_KEY_DER = spki_der(ec.generate_private_key(ec.SECP256R1()).public_key())


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"nickname": 3}, "nickname"),  # an unknown field: a typo must not drop data silently
        ({"passkeys": [passkey(nickName="Typo")]}, "passkeys[0].nickName"),
        ({"username": None}, "username"),
        ({"password": "5f4dcc3b5aa765d61d8327deb882cf99"}, "password"),  # an unsalted MD5: never verifiable
        ({"password": 17}, "password"),
        ({"userHandle": None}, "userHandle"),  # passkeys return the old handle: required with them
        ({"userHandle": b64url_encode(bytes(65))}, "userHandle"),
        ({"userHandle": ""}, "userHandle"),
        ({"userHandle": "not base64!"}, "userHandle"),
        ({"emailVerified": "yes"}, "emailVerified"),
        ({"externalId": ""}, "externalId"),
        ({"externalId": True}, "externalId"),
        ({"createdAt": "2020-02-03T04:05:06"}, "createdAt"),  # no offset: which time?
        ({"createdAt": "yesterday"}, "createdAt"),
        ({"passkeys": {"credentialId": "x"}}, "passkeys"),
        ({"passkeys": ["x"]}, "passkeys[0]"),
        ({"passkeys": [passkey(), passkey(credentialId="a")]}, "passkeys[1].credentialId"),  # one char: no bytes
        ({"passkeys": [passkey(credentialId="Y3JlZA$$")]}, "passkeys[0].credentialId"),
        ({"passkeys": [passkey(credentialId=None)]}, "passkeys[0].credentialId"),
        ({"passkeys": [passkey(), passkey(publicKey=spki_pem(P256), algorithm=-7)]}, "passkeys[1].credentialId"),
        ({"passkeys": [passkey(publicKey=None)]}, "passkeys[0].publicKey"),
        ({"passkeys": [passkey(publicKey="%%%")]}, "passkeys[0].publicKey"),
        ({"passkeys": [passkey(publicKey=b64url_encode(b"\xa1\x01\x02"))]}, "passkeys[0].publicKey"),  # no alg
        ({"passkeys": [passkey(publicKey=b64url_encode(b"\x30\x03\x02\x01\x01"))]}, "passkeys[0].publicKey"),
        ({"passkeys": [passkey(publicKey=BAD_PEM)]}, "passkeys[0].publicKey"),
        ({"passkeys": [passkey(publicKey=OTHER_KEY_DER)]}, "passkeys[0].algorithm"),  # SPKI needs it
        ({"passkeys": [passkey(publicKey=spki_der(RSA), algorithm=cose.ES256)]}, "passkeys[0].algorithm"),
        ({"passkeys": [passkey(publicKey=spki_der(P256), algorithm=cose.ES384)]}, "passkeys[0].algorithm"),
        ({"passkeys": [passkey(publicKey=spki_der(ED25519), algorithm=cose.RS256)]}, "passkeys[0].algorithm"),
        ({"passkeys": [passkey(algorithm=cose.RS256)]}, "passkeys[0].algorithm"),  # not what the COSE key says
        ({"passkeys": [passkey(algorithm="-7")]}, "passkeys[0].algorithm"),
        ({"passkeys": [passkey(signCount=-1)]}, "passkeys[0].signCount"),
        ({"passkeys": [passkey(signCount=2**32)]}, "passkeys[0].signCount"),
        ({"passkeys": [passkey(signCount=True)]}, "passkeys[0].signCount"),
        ({"passkeys": [passkey(transports="usb")]}, "passkeys[0].transports"),
        ({"passkeys": [passkey(transports=[""])]}, "passkeys[0].transports"),
        ({"passkeys": [passkey(aaguid="not-a-uuid")]}, "passkeys[0].aaguid"),
        ({"passkeys": [passkey(backedUp=True)]}, "passkeys[0].backedUp"),  # backed up but not eligible
        ({"passkeys": [passkey(backupEligible=1)]}, "passkeys[0].backupEligible"),
        ({"passkeys": [passkey(nickname=["a"])]}, "passkeys[0].nickname"),
        ({"passkeys": [passkey(lastUsedAt="2022-01-01")]}, "passkeys[0].lastUsedAt"),
    ],
)
def test_a_wrong_field_refuses_the_line_naming_it(changes: dict[str, Any], field: str) -> None:
    error = refused(account(**changes))
    assert error.field == field, error.message
    assert error.code == "invalid_import_record"
    assert field in error.message


def test_an_algorithm_the_policy_refuses_is_refused() -> None:
    error = refused(account(passkeys=[passkey(publicKey=spki_pem(RSA), algorithm=cose.RS256)]), (cose.ES256,))
    assert error.field == "passkeys[0].algorithm" and "RS256" in error.message


@pytest.mark.parametrize("line", ["", "not json", "[1, 2]", '"ada"', "{" * 40 + "}" * 40])
def test_a_line_that_is_not_an_object_is_refused(line: str) -> None:
    assert refused(line).field is None


def test_a_line_may_come_as_bytes_and_must_then_be_utf8() -> None:
    assert parse_record(b'{"username": "ad\xc3\xa1"}', now=NOW, allowed_algorithms=DEFAULT_ALGORITHMS).username == "adá"
    with pytest.raises(InvalidImportRecord, match="UTF-8"):
        parse_record(b'{"username": "ad\xe1"}', now=NOW, allowed_algorithms=DEFAULT_ALGORITHMS)


def test_a_password_hash_is_kept_as_given() -> None:
    record = parse({"username": "ada", "password": BCRYPT})
    assert record.password == BCRYPT and record.password_scheme == "bcrypt"
