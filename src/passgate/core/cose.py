"""COSE public keys (RFC 9052/9053) and WebAuthn signature verification.

Passgate parses credential public keys itself so that every algorithm WebAuthn authenticators use is
supported, whatever the underlying library knows, and so a parsed key can be cached by its bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.exceptions import UnsupportedAlgorithm as _CryptoUnsupported
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa

from passgate.core.encoding import MAX_NESTING
from passgate.core.errors import BadSignature, MalformedResponse, UnsupportedAlgorithm

# COSE algorithm identifiers (IANA "COSE Algorithms").
ES256, ES384, ES512, ES256K = -7, -35, -36, -47  # ES256K: ECDSA on secp256k1 (RFC 8812)
EDDSA, ED25519, ED448 = -8, -19, -53
PS256, PS384, PS512 = -37, -38, -39
RS256, RS384, RS512, RS1 = -257, -258, -259, -65535
ML_DSA_44, ML_DSA_65, ML_DSA_87 = -48, -49, -50

ALGORITHM_NAMES: Mapping[int, str] = {
    ES256: "ES256",
    ES384: "ES384",
    ES512: "ES512",
    ES256K: "ES256K",
    EDDSA: "EdDSA",
    ED25519: "Ed25519",
    ED448: "Ed448",
    PS256: "PS256",
    PS384: "PS384",
    PS512: "PS512",
    RS256: "RS256",
    RS384: "RS384",
    RS512: "RS512",
    RS1: "RS1",
    ML_DSA_44: "ML-DSA-44",
    ML_DSA_65: "ML-DSA-65",
    ML_DSA_87: "ML-DSA-87",
}

_KTY_OKP, _KTY_EC2, _KTY_RSA, _KTY_AKP = 1, 2, 3, 7
_EC_CURVES: Mapping[int, ec.EllipticCurve] = {
    1: ec.SECP256R1(),
    2: ec.SECP384R1(),
    3: ec.SECP521R1(),
    8: ec.SECP256K1(),
}
# The curve each ECDSA algorithm must be used with (WebAuthn §5.8.5 / RFC 9053).
_EC_ALG_CURVE: Mapping[int, int] = {ES256: 1, ES384: 2, ES512: 3, ES256K: 8}
_HASHES: Mapping[int, Callable[[], hashes.HashAlgorithm]] = {
    ES256: hashes.SHA256,
    ES384: hashes.SHA384,
    ES512: hashes.SHA512,
    ES256K: hashes.SHA256,
    PS256: hashes.SHA256,
    PS384: hashes.SHA384,
    PS512: hashes.SHA512,
    RS256: hashes.SHA256,
    RS384: hashes.SHA384,
    RS512: hashes.SHA512,
    RS1: hashes.SHA1,
}


@dataclass(frozen=True, kw_only=True)
class PublicKey:
    """A credential public key: its COSE algorithm and the key ready to verify signatures."""

    algorithm: int
    key: Any

    def verify(self, signature: bytes, data: bytes, *, algorithm: int | None = None) -> None:
        """Verify `signature` over `data` (with this key's algorithm unless `algorithm` is given).

        Raises:
            BadSignature: the signature does not verify.
            UnsupportedAlgorithm: the algorithm does not fit this key.
        """
        verify_signature(self.key, algorithm if algorithm is not None else self.algorithm, signature, data)


def verify_signature(key: Any, algorithm: int, signature: bytes, data: bytes) -> None:
    """Verify a WebAuthn signature made with COSE `algorithm` by `key` (a `cryptography` public key).

    Raises:
        BadSignature: the signature does not verify.
        UnsupportedAlgorithm: `algorithm` is unknown or does not fit the key.
    """
    try:
        if isinstance(key, ec.EllipticCurvePublicKey) and algorithm in (ES256, ES384, ES512, ES256K):
            key.verify(signature, data, ec.ECDSA(_HASHES[algorithm]()))
        elif isinstance(key, rsa.RSAPublicKey) and algorithm in (RS256, RS384, RS512, RS1):
            key.verify(signature, data, padding.PKCS1v15(), _HASHES[algorithm]())
        elif isinstance(key, rsa.RSAPublicKey) and algorithm in (PS256, PS384, PS512):
            digest = _HASHES[algorithm]()
            key.verify(signature, data, padding.PSS(padding.MGF1(digest), digest.digest_size), digest)
        elif isinstance(key, ed25519.Ed25519PublicKey) and algorithm in (EDDSA, ED25519):
            key.verify(signature, data)
        elif isinstance(key, ed448.Ed448PublicKey) and algorithm in (EDDSA, ED448):
            key.verify(signature, data)
        elif algorithm in (ML_DSA_44, ML_DSA_65, ML_DSA_87) and hasattr(key, "verify"):
            key.verify(signature, data)
        else:
            raise UnsupportedAlgorithm(f"Algorithm {algorithm} cannot be used with this key.")
    except InvalidSignature as exc:
        raise BadSignature() from exc


def parse_public_key(cose_key: bytes) -> PublicKey:
    """Parse a COSE_Key (the credential public key in authenticator data).

    Parsed keys are cached by their bytes: a server verifies the same keys over and over.

    Raises:
        MalformedResponse: the bytes are not a COSE key.
        UnsupportedAlgorithm: the key type, curve or algorithm is not supported.
    """
    return _parse_cached(bytes(cose_key))


@lru_cache(maxsize=4096)
def _parse_cached(cose_key: bytes) -> PublicKey:
    try:
        fields = cbor2.loads(cose_key, max_depth=MAX_NESTING)
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError) as exc:
        raise MalformedResponse("The credential public key is not valid CBOR.") from exc
    if not isinstance(fields, dict):
        raise MalformedResponse("The credential public key is not a COSE key.")
    return public_key_from_cose(fields)


def public_key_from_cose(fields: Mapping[Any, Any]) -> PublicKey:
    """Build a `PublicKey` from decoded COSE_Key fields.

    Raises:
        MalformedResponse: a required field is missing or of the wrong type.
        UnsupportedAlgorithm: the key type, curve or algorithm is not supported.
    """
    kty, alg = fields.get(1), fields.get(3)
    if not isinstance(kty, int) or not isinstance(alg, int):
        raise MalformedResponse("The COSE key lacks its key type or algorithm.")
    if alg not in ALGORITHM_NAMES:
        raise UnsupportedAlgorithm(f"COSE algorithm {alg} is not supported.")
    try:
        key = _KEY_BUILDERS[kty](alg, fields)
    except KeyError as exc:
        raise UnsupportedAlgorithm(f"COSE key type {kty} is not supported.") from exc
    except (ValueError, TypeError, _CryptoUnsupported) as exc:
        raise MalformedResponse("The COSE key's parameters are invalid.") from exc
    return PublicKey(algorithm=alg, key=key)


def _bytes_param(fields: Mapping[Any, Any], label: int) -> bytes:
    value = fields.get(label)
    if not isinstance(value, bytes) or not value:
        raise MalformedResponse(f"The COSE key lacks parameter {label}.")
    return value


def _ec2(alg: int, fields: Mapping[Any, Any]) -> Any:
    crv = fields.get(-1)
    if alg not in _EC_ALG_CURVE or crv not in _EC_CURVES:
        raise UnsupportedAlgorithm(f"EC2 key with algorithm {alg} and curve {crv} is not supported.")
    if _EC_ALG_CURVE[alg] != crv:
        raise UnsupportedAlgorithm(f"Algorithm {alg} cannot be used with curve {crv}.")
    x, y = _bytes_param(fields, -2), _bytes_param(fields, -3)
    numbers = ec.EllipticCurvePublicNumbers(int.from_bytes(x, "big"), int.from_bytes(y, "big"), _EC_CURVES[crv])
    return numbers.public_key()


def _okp(alg: int, fields: Mapping[Any, Any]) -> Any:
    crv, x = fields.get(-1), _bytes_param(fields, -2)
    if crv == 6 and alg in (EDDSA, ED25519):
        return ed25519.Ed25519PublicKey.from_public_bytes(x)
    if crv == 7 and alg in (EDDSA, ED448):
        return ed448.Ed448PublicKey.from_public_bytes(x)
    raise UnsupportedAlgorithm(f"OKP key with algorithm {alg} and curve {crv} is not supported.")


def _rsa(alg: int, fields: Mapping[Any, Any]) -> Any:
    if alg not in (RS256, RS384, RS512, RS1, PS256, PS384, PS512):
        raise UnsupportedAlgorithm(f"RSA key with algorithm {alg} is not supported.")
    n, e = _bytes_param(fields, -1), _bytes_param(fields, -2)
    return rsa.RSAPublicNumbers(int.from_bytes(e, "big"), int.from_bytes(n, "big")).public_key()


def _akp(alg: int, fields: Mapping[Any, Any]) -> Any:
    from cryptography.hazmat.primitives.asymmetric import mldsa  # type: ignore[attr-defined,unused-ignore]

    classes: dict[int, Any] = {
        ML_DSA_44: mldsa.MLDSA44PublicKey,
        ML_DSA_65: mldsa.MLDSA65PublicKey,
        ML_DSA_87: mldsa.MLDSA87PublicKey,
    }
    if alg not in classes:
        raise UnsupportedAlgorithm(f"AKP key with algorithm {alg} is not supported.")
    return classes[alg].from_public_bytes(_bytes_param(fields, -1))


_KEY_BUILDERS: Mapping[int, Callable[[int, Mapping[Any, Any]], Any]] = {
    _KTY_EC2: _ec2,
    _KTY_OKP: _okp,
    _KTY_RSA: _rsa,
    _KTY_AKP: _akp,
}
