"""Password hash formats of imported accounts: each verifies its password, refuses others, and moves to argon2id.

Fixtures are made at test time by each format's own library (argon2-cffi, bcrypt, Django's hashers) or, for the PHC
PBKDF2 and scrypt strings, built here from hashlib independently of the module; a few published hashes with known
passwords are checked as well.
"""

from __future__ import annotations

import base64
import hashlib
import os

import argon2
import bcrypt
import pytest
from argon2.low_level import Type, hash_secret
from django.contrib.auth.hashers import PBKDF2PasswordHasher, PBKDF2SHA1PasswordHasher

from passgate.core.errors import PasswordFormatUnknown
from passgate.core.passwords import (
    MAX_PASSWORD_LENGTH,
    dummy_verify,
    hash_password,
    needs_rehash,
    scheme_of,
    verify_password,
)

PASSWORD = "correct horse battery stäple"


def _phc_b64(data: bytes, *, adapted: bool) -> str:
    text = base64.b64encode(data).decode().rstrip("=")
    return text.replace("+", ".") if adapted else text


def _argon2(kind: Type) -> str:
    return hash_secret(
        PASSWORD.encode(), os.urandom(16), time_cost=1, memory_cost=8, parallelism=1, hash_len=32, type=kind
    ).decode()


def _bcrypt(prefix: str) -> str:
    return prefix + bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()[4:]


def _phc_pbkdf2(digest: str, *, adapted: bool) -> str:
    salt = os.urandom(16)
    key = hashlib.pbkdf2_hmac(digest, PASSWORD.encode(), salt, 1000)
    if adapted:  # as passlib writes it: the iteration count alone, "adapted" base64
        return f"$pbkdf2-{digest}$1000${_phc_b64(salt, adapted=True)}${_phc_b64(key, adapted=True)}"
    return f"$pbkdf2-{digest}$i=1000,l={len(key)}${_phc_b64(salt, adapted=False)}${_phc_b64(key, adapted=False)}"


def _scrypt(*, adapted: bool) -> str:
    salt = os.urandom(16)
    key = hashlib.scrypt(PASSWORD.encode(), salt=salt, n=1 << 10, r=8, p=1, dklen=32)
    return f"$scrypt$ln=10,r=8,p=1${_phc_b64(salt, adapted=adapted)}${_phc_b64(key, adapted=adapted)}"


GENERATED = {
    "argon2id": lambda: _argon2(Type.ID),
    "argon2i": lambda: _argon2(Type.I),
    "bcrypt $2b$": lambda: _bcrypt("$2b$"),
    "bcrypt $2a$": lambda: _bcrypt("$2a$"),
    "bcrypt $2y$": lambda: _bcrypt("$2y$"),
    "django_pbkdf2_sha256": lambda: PBKDF2PasswordHasher().encode(PASSWORD, PBKDF2PasswordHasher().salt(), 1000),
    "django_pbkdf2_sha1": lambda: PBKDF2SHA1PasswordHasher().encode(PASSWORD, PBKDF2SHA1PasswordHasher().salt(), 1000),
    "pbkdf2_sha256 (PHC)": lambda: _phc_pbkdf2("sha256", adapted=False),
    "pbkdf2_sha256 (passlib)": lambda: _phc_pbkdf2("sha256", adapted=True),
    "pbkdf2_sha512 (PHC)": lambda: _phc_pbkdf2("sha512", adapted=False),
    "pbkdf2_sha512 (passlib)": lambda: _phc_pbkdf2("sha512", adapted=True),
    "scrypt (PHC)": lambda: _scrypt(adapted=False),
    "scrypt (passlib)": lambda: _scrypt(adapted=True),
}

# (scheme, password, hash) as published with their passwords.
PUBLISHED = [
    # The Argon2 reference implementation's README and test vectors (password "password", salt "somesalt").
    ("argon2i", "password", "$argon2i$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$wWKIMhR9lyDFvRz9YTZweHKfbftvj+qf+YFY4NeBbtA"),
    # Openwall's crypt_blowfish test vectors (wrapper.c).
    ("bcrypt", "U*U", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"),
    ("bcrypt", "U*U*", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.VGOzA784oUp/Z0DY336zx7pLYAy0lwK"),
    # passlib's test suite (test_handlers_pbkdf2.py) and its scrypt documentation.
    (
        "pbkdf2_sha256",
        "password",
        "$pbkdf2-sha256$1212$4vjV83LKPjQzk31VI4E0Vw$hsYF68OiOUPdDZ1Fg.fJPeq1h/gXXY7acBp9/6c.tmQ",
    ),
    (
        "pbkdf2_sha512",
        "password",
        "$pbkdf2-sha512$1212$RHY0Fr3IDMSVO/RSZyb5ow$eNLfBK.eVozomMr.1gYa17k9B7KIK25NOEshvhrSX.esqY3s.FvWZViXz4KoLlQI"
        ".BzY/YTNJOiKc5gBYFYGww",
    ),
    ("scrypt", "password", "$scrypt$ln=16,r=8,p=1$aM15713r3Xsvxbi31lqr1Q$nFNh2CVHVjNldFVKDHDlm4CbdRSCdEBsjjJxD+iCs5E"),
]


@pytest.mark.parametrize("made_by", GENERATED)
def test_each_format_verifies_its_password_and_moves_to_argon2id(made_by: str) -> None:
    stored = GENERATED[made_by]()
    assert scheme_of(stored) == made_by.split(" ")[0]
    assert verify_password(stored, PASSWORD)
    assert not verify_password(stored, PASSWORD + "!")
    assert not verify_password(stored, PASSWORD.upper())
    assert not verify_password(stored, "")
    assert needs_rehash(stored)
    moved = hash_password(PASSWORD)
    assert scheme_of(moved) == "argon2id"
    assert verify_password(moved, PASSWORD) and not verify_password(moved, PASSWORD + "!")
    assert not needs_rehash(moved)


@pytest.mark.parametrize(("scheme", "password", "stored"), PUBLISHED)
def test_published_hashes(scheme: str, password: str, stored: str) -> None:
    assert scheme_of(stored) == scheme
    assert verify_password(stored, password)
    assert not verify_password(stored, password + "x")


def test_argon2id_with_weaker_parameters_moves_to_the_current_ones() -> None:
    weak = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
    assert scheme_of(weak) == "argon2id" and verify_password(weak, PASSWORD)
    assert needs_rehash(weak)


def test_bcrypt_reads_the_first_72_bytes_as_the_systems_that_stored_it_did() -> None:
    long = "x" * 80
    stored = bcrypt.hashpw(long[:72].encode(), bcrypt.gensalt(4)).decode()
    assert verify_password(stored, long)
    assert verify_password(stored, long[:72])
    assert not verify_password(stored, long[:71])


def test_a_password_too_long_to_be_anyones_is_wrong_without_being_hashed() -> None:
    stored = hash_password("a")
    assert not verify_password(stored, "a" * (MAX_PASSWORD_LENGTH + 1))
    dummy_verify("a" * 10 * MAX_PASSWORD_LENGTH)  # no error, bounded cost


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "plain",
        "md5$a$b",
        "sha1$salt$0123456789abcdef0123456789abcdef01234567",
        "$argon2id$garbage",
        "$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$!!!",
        "$argon2d$v=19$m=16,t=2,p=1$Mmx3eWR3YkJONkhoTGFnNA$HD1EIj2bqdfwQrJDP+FY6w",
        "$argon2id$v=19$m=4194304,t=3,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG",
        "$2b$04$short",
        "$2b$31$" + "a" * 53,
        "$2x$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
        "pbkdf2_sha256$notanumber$salt$aGFzaA==",
        "pbkdf2_sha256$1000$salt$%%%%",
        "pbkdf2_sha256$1000$salt$aGFzaA==",  # the wrong length for SHA-256
        "pbkdf2_sha256$1000$$" + base64.b64encode(bytes(32)).decode(),
        "pbkdf2_md5$1000$salt$aGFzaA==",
        "$pbkdf2-sha256$1000$c2FsdA$!!",
        "$pbkdf2-sha256$x=1000$c2FsdHNhbHQ$" + _phc_b64(bytes(32), adapted=False),
        "$pbkdf2-sha256$0$c2FsdHNhbHQ$" + _phc_b64(bytes(32), adapted=False),
        "$scrypt$ln=40,r=8,p=1$c2FsdHNhbHQ$" + _phc_b64(bytes(32), adapted=False),
        "$scrypt$ln=16,r=8$c2FsdHNhbHQ$" + _phc_b64(bytes(32), adapted=False),
        "$scrypt$ln=20,r=64,p=1$c2FsdHNhbHQ$" + _phc_b64(bytes(32), adapted=False),
        "$scrypt$ln=10,r=8,p=1$c2FsdHNhbHQ",
    ],
)
def test_a_hash_no_scheme_verifies_is_refused_without_being_repeated(stored: str) -> None:
    for use in (scheme_of, lambda s: verify_password(s, PASSWORD), needs_rehash):
        with pytest.raises(PasswordFormatUnknown) as refused:
            use(stored)
        assert refused.value.code == "password_format_unknown"
        if stored:
            assert stored not in refused.value.message
            assert stored.split("$")[-1] not in refused.value.message


def test_a_hash_must_be_a_string() -> None:
    with pytest.raises(PasswordFormatUnknown):
        scheme_of(b"$2b$04$" + b"a" * 53)  # type: ignore[arg-type]
