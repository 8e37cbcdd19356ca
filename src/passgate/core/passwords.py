"""Password hashes of imported accounts: the formats other systems store, verified while accounts move to passkeys.

Passgate never asks anyone for a new password. It keeps the hash an account arrived with, verifies it at a
password sign-in (`passwords = "migrate"`), and replaces it with argon2id at the first success when it was stored
with anything weaker, until the account has a passkey and drops the password. The formats:

    scheme                  stored as
    argon2id, argon2i       $argon2id$v=19$m=65536,t=3,p=4$<salt>$<hash>        (PHC; argon2-cffi)
    bcrypt                  $2a$ / $2b$ / $2y$<cost>$<salt and hash>            (bcrypt)
    django_pbkdf2_sha256    pbkdf2_sha256$<iterations>$<salt>$<base64 hash>     (Django; hashlib)
    django_pbkdf2_sha1      pbkdf2_sha1$<iterations>$<salt>$<base64 hash>
    pbkdf2_sha256           $pbkdf2-sha256$i=<iterations>[,l=<length>]$<salt>$<hash>  (PHC; hashlib)
    pbkdf2_sha512           $pbkdf2-sha512$...; also the form passlib writes: $pbkdf2-sha256$<iterations>$...
    scrypt                  $scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt>$<hash>        (PHC; hashlib)

PHC salts and hashes are base64 without padding, in the standard alphabet or passlib's "adapted" one (`.` for
`+`). A hash is parsed whole before it is stored (`scheme_of`), so an import refuses what could never verify
instead of keeping an account nobody can sign in to. Work factors are capped: an imported hash must not make each
sign-in take minutes or gigabytes.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass

import argon2
import bcrypt
from argon2.exceptions import InvalidHashError, VerificationError

from passgate.core.errors import PasswordFormatUnknown

__all__ = [
    "ARGON2ID_CURRENT",
    "MAX_PASSWORD_LENGTH",
    "PasswordFormatUnknown",
    "dummy_verify",
    "hash_password",
    "needs_rehash",
    "scheme_of",
    "verify_password",
]

# argon2-cffi's defaults: RFC 9106's second recommended option (t=3, 64 MiB, p=4).
_HASHER = argon2.PasswordHasher()
ARGON2ID_CURRENT = f"argon2id m={_HASHER.memory_cost} KiB, t={_HASHER.time_cost}, p={_HASHER.parallelism}"

# Longer is simply wrong: no stored password is this long, and hashing megabytes would cost every sign-in.
MAX_PASSWORD_LENGTH = 1024
# bcrypt reads 72 bytes of the password; the systems that stored these hashes dropped the rest silently, while
# bcrypt 5 refuses longer passwords. Verifying the first 72 bytes is what those systems did.
_BCRYPT_BYTES = 72

# Work factors beyond these cost too much per sign-in (argon2: KiB of memory).
_MAX_ARGON2_MEMORY = 1024 * 1024
_MAX_ARGON2_TIME = 64
_MAX_PARALLELISM = 64
_MAX_BCRYPT_COST = 16
_MAX_PBKDF2_ITERATIONS = 10_000_000
_MAX_SCRYPT_MEMORY = 512 * 1024 * 1024


@dataclass(frozen=True)
class _Parsed:
    scheme: str
    check: Callable[[bytes], bool]  # the UTF-8 password -> whether it matches


def scheme_of(stored: str) -> str:
    """The scheme of a stored hash ("argon2id", "bcrypt", "django_pbkdf2_sha256", ...), once parsed whole.

    Raises:
        PasswordFormatUnknown: no supported scheme reads it, or it is malformed (the message says which part; it
            never repeats the hash).
    """
    return _parse(stored).scheme


def verify_password(stored: str, password: str) -> bool:
    """Whether `password` matches `stored`, compared in constant time.

    Raises:
        PasswordFormatUnknown: as `scheme_of`.
    """
    parsed = _parse(stored)
    if len(password) > MAX_PASSWORD_LENGTH:
        return False
    return parsed.check(password.encode("utf-8", "surrogatepass"))


def needs_rehash(stored: str) -> bool:
    """True unless `stored` is argon2id with the current parameters."""
    return _parse(stored).scheme != "argon2id" or _HASHER.check_needs_rehash(stored)


def hash_password(password: str) -> str:
    """An argon2id hash of `password` with the current parameters."""
    return _HASHER.hash(password)


def dummy_verify(password: str) -> None:
    """Spend what verifying a current argon2id hash costs, for a sign-in with no hash to verify: an unknown
    username, or an account without a password, then takes as long as a wrong password."""
    with contextlib.suppress(VerificationError):
        _HASHER.verify(_dummy_hash(), password[:MAX_PASSWORD_LENGTH])


@functools.cache
def _dummy_hash() -> str:
    return _HASHER.hash("not a password anyone has")


def _parse(stored: object) -> _Parsed:
    if not isinstance(stored, str) or not stored or len(stored) > 1024 or not stored.isascii():
        raise PasswordFormatUnknown("The password hash is not in a format this server verifies.")
    for prefix, parse in _SCHEMES.items():
        if stored.startswith(prefix):
            return parse(stored)
    raise PasswordFormatUnknown("The password hash is not in a format this server verifies.")


def _refuse(scheme: str, what: str) -> PasswordFormatUnknown:
    return PasswordFormatUnknown(f"The {scheme} password hash is malformed: {what}.")


def _b64decode(text: str, scheme: str, part: str) -> bytes:
    """PHC base64 (no padding), in the standard alphabet or passlib's adapted one (`.` for `+`)."""
    if not text or not re.fullmatch(r"[A-Za-z0-9+/.]+", text):
        raise _refuse(scheme, f"its {part} is not base64")
    try:
        return base64.b64decode(text.replace(".", "+") + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise _refuse(scheme, f"its {part} is not base64") from None


def _params(text: str, scheme: str, names: tuple[str, ...]) -> dict[str, int]:
    values: dict[str, int] = {}
    for item in text.split(","):
        name, _, value = item.partition("=")
        if name not in names or name in values or not value.isdigit() or len(value) > 10:
            raise _refuse(scheme, f"its parameters are not {','.join(n + '=' for n in names)}")
        values[name] = int(value)
    return values


def _argon2(stored: str) -> _Parsed:
    scheme = stored.split("$")[1]
    try:
        parameters = argon2.extract_parameters(stored)
    except InvalidHashError:
        raise _refuse(scheme, "its parameters cannot be read") from None
    parts = stored.split("$")
    _b64decode(parts[-2], scheme, "salt")
    _b64decode(parts[-1], scheme, "hash")
    if (
        parameters.memory_cost > _MAX_ARGON2_MEMORY
        or parameters.time_cost > _MAX_ARGON2_TIME
        or parameters.parallelism > _MAX_PARALLELISM
    ):
        raise _refuse(scheme, "its cost is beyond what a sign-in may spend")

    def check(password: bytes) -> bool:
        try:
            return _HASHER.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False

    return _Parsed(scheme, check)


_BCRYPT = re.compile(r"\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}")


def _bcrypt(stored: str) -> _Parsed:
    match = _BCRYPT.fullmatch(stored)
    if match is None:
        raise _refuse("bcrypt", "it is not $2a$, $2b$ or $2y$, two cost digits and 53 characters")
    if not 4 <= int(match.group(1)) <= _MAX_BCRYPT_COST:
        raise _refuse("bcrypt", "its cost is beyond what a sign-in may spend")
    # $2a$, $2b$ (OpenBSD) and $2y$ (PHP) all verify with the bcrypt library as they are.
    encoded = stored.encode()

    def check(password: bytes) -> bool:
        return bcrypt.checkpw(password[:_BCRYPT_BYTES], encoded)

    return _Parsed("bcrypt", check)


def _django_pbkdf2(stored: str) -> _Parsed:
    algorithm, iterations, salt, encoded = ([*stored.split("$"), "", "", ""])[:4]
    digest = algorithm.removeprefix("pbkdf2_")
    scheme = f"django_{algorithm}"
    if stored.count("$") != 3 or not salt:
        raise _refuse(scheme, "it is not algorithm$iterations$salt$hash")
    if not iterations.isdigit() or not 1 <= int(iterations) <= _MAX_PBKDF2_ITERATIONS:
        raise _refuse(scheme, "its iterations are not a number this server accepts")
    try:
        expected = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise _refuse(scheme, "its hash is not base64") from None
    if len(expected) != hashlib.new(digest).digest_size:
        raise _refuse(scheme, "its hash has the wrong length")
    rounds = int(iterations)

    def check(password: bytes) -> bool:
        derived = hashlib.pbkdf2_hmac(digest, password, salt.encode(), rounds, len(expected))
        return hmac.compare_digest(derived, expected)

    return _Parsed(scheme, check)


def _phc_pbkdf2(stored: str) -> _Parsed:
    parts = stored.split("$")
    digest = parts[1].removeprefix("pbkdf2-")
    scheme = f"pbkdf2_{digest}"
    if len(parts) != 5:
        raise _refuse(scheme, "it is not $pbkdf2-<digest>$<parameters>$<salt>$<hash>")
    # passlib writes the iteration count alone; the PHC form names it (and may give the length).
    rounds = int(parts[2]) if parts[2].isdigit() else _params(parts[2], scheme, ("i", "l")).get("i", 0)
    if not 1 <= rounds <= _MAX_PBKDF2_ITERATIONS:
        raise _refuse(scheme, "its iterations are not a number this server accepts")
    salt = _b64decode(parts[3], scheme, "salt")
    expected = _b64decode(parts[4], scheme, "hash")
    if not 16 <= len(expected) <= 128:
        raise _refuse(scheme, "its hash has the wrong length")

    def check(password: bytes) -> bool:
        return hmac.compare_digest(hashlib.pbkdf2_hmac(digest, password, salt, rounds, len(expected)), expected)

    return _Parsed(scheme, check)


def _scrypt(stored: str) -> _Parsed:
    parts = stored.split("$")
    if len(parts) != 5:
        raise _refuse("scrypt", "it is not $scrypt$ln=..,r=..,p=..$<salt>$<hash>")
    values = _params(parts[2], "scrypt", ("ln", "r", "p"))
    if set(values) != {"ln", "r", "p"}:
        raise _refuse("scrypt", "its parameters are not ln=,r=,p=")
    log_n, block, parallel = values["ln"], values["r"], values["p"]
    if not (1 <= log_n <= 24 and 1 <= block <= 64 and 1 <= parallel <= _MAX_PARALLELISM):
        raise _refuse("scrypt", "its cost is beyond what a sign-in may spend")
    n = 1 << log_n
    # What OpenSSL allocates: 128·r·(N + 2) for V, 128·r·p for B.
    memory = 128 * block * (n + 2 + parallel)
    if memory > _MAX_SCRYPT_MEMORY:
        raise _refuse("scrypt", "its cost is beyond what a sign-in may spend")
    salt = _b64decode(parts[3], "scrypt", "salt")
    expected = _b64decode(parts[4], "scrypt", "hash")
    if not 16 <= len(expected) <= 128:
        raise _refuse("scrypt", "its hash has the wrong length")

    def check(password: bytes) -> bool:
        derived = hashlib.scrypt(
            password, salt=salt, n=n, r=block, p=parallel, maxmem=memory + 1024 * 1024, dklen=len(expected)
        )
        return hmac.compare_digest(derived, expected)

    return _Parsed("scrypt", check)


# By how the stored string begins; the first match parses it.
_SCHEMES: dict[str, Callable[[str], _Parsed]] = {
    "$argon2id$": _argon2,
    "$argon2i$": _argon2,
    "$2a$": _bcrypt,
    "$2b$": _bcrypt,
    "$2y$": _bcrypt,
    "pbkdf2_sha256$": _django_pbkdf2,
    "pbkdf2_sha1$": _django_pbkdf2,
    "$pbkdf2-sha256$": _phc_pbkdf2,
    "$pbkdf2-sha512$": _phc_pbkdf2,
    "$scrypt$": _scrypt,
}
