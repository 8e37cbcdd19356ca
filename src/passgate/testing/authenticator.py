"""A software WebAuthn authenticator (plus the client's part) for testing relying parties.

`SoftwareAuthenticator` takes the options JSON a relying party sends to the browser
(``PublicKeyCredentialCreationOptionsJSON`` / ``PublicKeyCredentialRequestOptionsJSON``) and returns
what ``PublicKeyCredential.toJSON()`` would give the page: real keys, real CBOR and real signatures,
so a relying party verifies its output exactly as it verifies a browser's.

It plays both the authenticator and the browser, but deliberately leaves out the browser's
client-side refusals (rp id must suit the origin, user verification "required" but unavailable,
...): tests need to send such responses to check that the relying party rejects them.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeAlias
from urllib.parse import urlsplit

import cbor2
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from passgate.core.encoding import b64url_decode, b64url_encode
from passgate.core.errors import MalformedResponse

__all__ = [
    "ALG_EDDSA",
    "ALG_ES256",
    "ALG_RS256",
    "CredentialPrivateKey",
    "SoftwareAuthenticator",
    "SoftwareAuthenticatorError",
    "SoftwareCredential",
]

ALG_ES256: Final = -7
ALG_EDDSA: Final = -8
ALG_RS256: Final = -257
# The curve (COSE crv, cryptography curve) and hash of each ECDSA algorithm; the hash of each RSA one.
_ECDSA: Final[Mapping[int, tuple[int, type[ec.EllipticCurve], type[hashes.HashAlgorithm]]]] = {
    ALG_ES256: (1, ec.SECP256R1, hashes.SHA256),
    -35: (2, ec.SECP384R1, hashes.SHA384),  # ES384
    -36: (3, ec.SECP521R1, hashes.SHA512),  # ES512
    -47: (8, ec.SECP256K1, hashes.SHA256),  # ES256K
}
_PKCS1: Final[Mapping[int, type[hashes.HashAlgorithm]]] = {
    ALG_RS256: hashes.SHA256,
    -258: hashes.SHA384,  # RS384
    -259: hashes.SHA512,  # RS512
    -65535: hashes.SHA1,  # RS1, which the FIDO conformance tools still use
}
_PSS: Final[Mapping[int, type[hashes.HashAlgorithm]]] = {-37: hashes.SHA256, -38: hashes.SHA384, -39: hashes.SHA512}
_EDDSA_ALGORITHMS: Final = frozenset({ALG_EDDSA, -19})  # EdDSA, and the fully specified Ed25519
_SUPPORTED_ALGORITHMS: Final = frozenset({*_ECDSA, *_PKCS1, *_PSS, *_EDDSA_ALGORITHMS})
_ATTESTATION_FORMATS: Final = frozenset({"none", "packed"})

FLAG_UP: Final = 0x01
FLAG_UV: Final = 0x04
FLAG_BE: Final = 0x08
FLAG_BS: Final = 0x10
FLAG_AT: Final = 0x40

_MAX_SIGN_COUNT: Final = 0xFFFFFFFF

CredentialPrivateKey: TypeAlias = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey


class SoftwareAuthenticatorError(Exception):
    """The authenticator refused the ceremony, as a browser would reject ``navigator.credentials``.

    ``code`` is one of:

    * ``"not_supported"``: none of the relying party's ``pubKeyCredParams`` is this authenticator's
      algorithm (a browser's ``NotSupportedError``);
    * ``"already_registered"``: ``excludeCredentials`` names a credential this authenticator holds for the
      rp id (``InvalidStateError``);
    * ``"not_allowed"``: no credential this authenticator holds can answer the request
      (``NotAllowedError``).
    """

    def __init__(self, code: str, message: str | None = None) -> None:
        self.code = code
        self.message = message or code
        super().__init__(self.message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


@dataclass(kw_only=True, eq=False)
class SoftwareCredential:
    """One credential (passkey) held by a `SoftwareAuthenticator`.

    ``sign_count`` is the counter value last reported with this credential (the authenticator's counter
    is global, as the spec allows, so it may jump between two uses of one credential).
    """

    credential_id: bytes
    rp_id: str
    user_handle: bytes
    user_name: str
    private_key: CredentialPrivateKey
    algorithm: int
    public_key_cose: bytes
    sign_count: int = 0

    @property
    def public_key_spki(self) -> bytes:
        """The public key as DER SubjectPublicKeyInfo (what ``response.publicKey`` carries)."""
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, data: bytes) -> bytes:
        """Sign ``data`` with this credential's key as WebAuthn does for its algorithm.

        ECDSA algorithms give a DER signature with their curve's hash, EdDSA a raw Ed25519 signature, RS* an
        RSASSA-PKCS1-v1_5 and PS* an RSASSA-PSS signature with their hash.
        """
        key = self.private_key
        if isinstance(key, ec.EllipticCurvePrivateKey):
            return key.sign(data, ec.ECDSA(_ECDSA[self.algorithm][2]()))
        if isinstance(key, ed25519.Ed25519PrivateKey):
            return key.sign(data)
        if self.algorithm in _PSS:
            digest = _PSS[self.algorithm]()
            return key.sign(data, padding.PSS(padding.MGF1(digest), digest.digest_size), digest)
        return key.sign(data, padding.PKCS1v15(), _PKCS1[self.algorithm]())


class SoftwareAuthenticator:
    """A software passkey authenticator that answers relying parties' options JSON with real credentials.

    The flags (``user_present``, ``user_verified``, ``backup_eligible``, ``backed_up``) and the counter
    (``sign_count``) are plain attributes a test may change between calls. Every assertion first adds one to
    ``sign_count`` and reports the new value; ``sign_count=None`` models an authenticator without a counter,
    which always reports 0. Registration reports the current counter (or 0) without advancing it.

    Raises:
        ValueError: an unsupported ``algorithm`` or ``attestation``, an ``aaguid`` that is not 16 bytes,
            or a ``sign_count`` outside 0..2**32-1.
    """

    def __init__(
        self,
        *,
        algorithm: int = ALG_ES256,
        attestation: str = "none",
        aaguid: bytes = bytes(16),
        user_present: bool = True,
        user_verified: bool = True,
        backup_eligible: bool = False,
        backed_up: bool = False,
        sign_count: int | None = 0,
        transports: Sequence[str] = ("internal",),
        attachment: str = "platform",
    ) -> None:
        if algorithm not in _SUPPORTED_ALGORITHMS:
            raise ValueError(f"algorithm must be one of {sorted(_SUPPORTED_ALGORITHMS)}, not {algorithm}")
        if attestation not in _ATTESTATION_FORMATS:
            raise ValueError(f"attestation must be 'none' or 'packed', not {attestation!r}")
        if len(aaguid) != 16:
            raise ValueError("aaguid must be exactly 16 bytes")
        _check_sign_count(sign_count)
        self.algorithm = algorithm
        self.attestation = attestation
        self.aaguid = bytes(aaguid)
        self.user_present = user_present
        self.user_verified = user_verified
        self.backup_eligible = backup_eligible
        self.backed_up = backed_up
        self.sign_count = sign_count
        self.transports: tuple[str, ...] = tuple(transports)
        self.attachment = attachment
        self.credentials: list[SoftwareCredential] = []

    # -- registration -------------------------------------------------------------------------------

    def create(
        self,
        options: Mapping[str, Any] | str,
        *,
        origin: str,
        cross_origin: bool = False,
        top_origin: str | None = None,
        rp_id: str | None = None,
    ) -> dict[str, Any]:
        """Register a new credential, as ``navigator.credentials.create()`` followed by ``toJSON()``.

        ``options`` is the creation options JSON (a dict or a JSON string; a ``{"publicKey": {...}}``
        wrapper is accepted too). The rp id is the ``rp_id`` argument if given, else ``rp.id``, else the
        host of ``origin``. An empty ``pubKeyCredParams`` means ES256 or RS256, as the spec says.

        Returns:
            A RegistrationResponseJSON dict; every binary value is unpadded base64url.

        Raises:
            SoftwareAuthenticatorError: ``not_supported`` if this authenticator's algorithm is not among
                ``pubKeyCredParams``; ``already_registered`` if ``excludeCredentials`` lists a credential
                it holds for the rp id.
            ValueError: ``options`` is not valid creation options JSON.
        """
        opts = _load_options(options)
        rp = opts.get("rp") or {}
        user = opts.get("user")
        if not isinstance(rp, Mapping) or not isinstance(user, Mapping):
            raise ValueError("creation options need 'rp' and 'user' objects")
        effective_rp_id = rp_id or _optional_str(rp.get("id"), "rp.id") or _host(origin)
        challenge = _decode(opts.get("challenge"), "challenge")
        user_handle = _decode(user.get("id"), "user.id")
        user_name = _optional_str(user.get("name"), "user.name") or ""

        offered = _offered_algorithms(opts.get("pubKeyCredParams"))
        if self.algorithm not in offered:
            raise SoftwareAuthenticatorError(
                "not_supported", f"the relying party does not accept COSE algorithm {self.algorithm}"
            )
        excluded = set(_descriptor_ids(opts.get("excludeCredentials"), "excludeCredentials"))
        if any(c.rp_id == effective_rp_id and c.credential_id in excluded for c in self.credentials):
            raise SoftwareAuthenticatorError(
                "already_registered", "this authenticator already holds a credential in excludeCredentials"
            )

        private_key = _generate_key(self.algorithm)
        credential = SoftwareCredential(
            credential_id=secrets.token_bytes(16 + secrets.randbelow(17)),
            rp_id=effective_rp_id,
            user_handle=user_handle,
            user_name=user_name,
            private_key=private_key,
            algorithm=self.algorithm,
            public_key_cose=_cose_public_key(private_key, self.algorithm),
            sign_count=self.sign_count or 0,
        )

        client_data_json = _client_data_json(
            "webauthn.create", challenge, origin, cross_origin=cross_origin, top_origin=top_origin
        )
        attested_data = (
            self.aaguid
            + struct.pack(">H", len(credential.credential_id))
            + credential.credential_id
            + credential.public_key_cose
        )
        auth_data = (
            self._auth_data_prefix(effective_rp_id, FLAG_AT, _pack_sign_count(credential.sign_count)) + attested_data
        )
        att_stmt: dict[str, Any] = {}
        if self.attestation == "packed":
            # Self attestation: no x5c, so the credential key itself signs, as for an assertion.
            att_stmt = {
                "alg": self.algorithm,
                "sig": credential.sign(auth_data + hashlib.sha256(client_data_json).digest()),
            }
        attestation_object = cbor2.dumps(
            {"fmt": self.attestation, "attStmt": att_stmt, "authData": auth_data}, canonical=True
        )

        # Only now, so that a refused or failed ceremony leaves no credential behind.
        self.credentials.append(credential)

        extensions = opts.get("extensions")
        client_extension_results: dict[str, Any] = {}
        if isinstance(extensions, Mapping) and extensions.get("credProps"):
            # Every credential made here is discoverable (it stores the user handle).
            client_extension_results["credProps"] = {"rk": True}

        credential_id = b64url_encode(credential.credential_id)
        return {
            "id": credential_id,
            "rawId": credential_id,
            "type": "public-key",
            "authenticatorAttachment": self.attachment,
            "response": {
                "clientDataJSON": b64url_encode(client_data_json),
                "attestationObject": b64url_encode(attestation_object),
                "transports": list(self.transports),
                "publicKeyAlgorithm": self.algorithm,
                "publicKey": b64url_encode(credential.public_key_spki),
                "authenticatorData": b64url_encode(auth_data),
            },
            "clientExtensionResults": client_extension_results,
        }

    # -- authentication -----------------------------------------------------------------------------

    def get(
        self,
        options: Mapping[str, Any] | str,
        *,
        origin: str,
        credential_id: bytes | None = None,
        cross_origin: bool = False,
        top_origin: str | None = None,
        rp_id: str | None = None,
    ) -> dict[str, Any]:
        """Sign in with a held credential, as ``navigator.credentials.get()`` followed by ``toJSON()``.

        ``options`` is the request options JSON (a dict or a JSON string; a ``{"publicKey": {...}}``
        wrapper is accepted too). The rp id is the ``rp_id`` argument if given, else ``rpId``, else the
        host of ``origin``. The credential is ``credential_id`` if given (any credential this
        authenticator holds, even one outside ``allowCredentials``, so tests can send unexpected ones);
        else the first entry of ``allowCredentials`` held for the rp id; else, when ``allowCredentials``
        is empty or missing (discoverable sign-in), the most recently created credential for the rp id.

        Returns:
            An AuthenticationResponseJSON dict; every binary value is unpadded base64url.

        Raises:
            SoftwareAuthenticatorError: ``not_allowed`` if no held credential fits.
            ValueError: ``options`` is not valid request options JSON, or the counter would pass 2**32-1.
        """
        opts = _load_options(options)
        effective_rp_id = rp_id or _optional_str(opts.get("rpId"), "rpId") or _host(origin)
        challenge = _decode(opts.get("challenge"), "challenge")
        allowed = _descriptor_ids(opts.get("allowCredentials"), "allowCredentials")
        credential = self._choose_credential(effective_rp_id, allowed, credential_id)

        counter = 0
        if self.sign_count is not None:
            counter = self.sign_count + 1
            _check_sign_count(counter)
            self.sign_count = counter
        credential.sign_count = counter

        client_data_json = _client_data_json(
            "webauthn.get", challenge, origin, cross_origin=cross_origin, top_origin=top_origin
        )
        auth_data = self._auth_data_prefix(effective_rp_id, 0, _pack_sign_count(counter))
        signature = credential.sign(auth_data + hashlib.sha256(client_data_json).digest())

        encoded_id = b64url_encode(credential.credential_id)
        return {
            "id": encoded_id,
            "rawId": encoded_id,
            "type": "public-key",
            "authenticatorAttachment": self.attachment,
            "response": {
                "clientDataJSON": b64url_encode(client_data_json),
                "authenticatorData": b64url_encode(auth_data),
                "signature": b64url_encode(signature),
                "userHandle": b64url_encode(credential.user_handle),
            },
            "clientExtensionResults": {},
        }

    # -- helpers ------------------------------------------------------------------------------------

    def credential(self, credential_id: bytes | str) -> SoftwareCredential:
        """The held credential with this id (raw bytes or base64url).

        Raises:
            KeyError: this authenticator holds no such credential.
        """
        raw = _decode(credential_id, "credential_id") if isinstance(credential_id, str) else credential_id
        for held in self.credentials:
            if held.credential_id == raw:
                return held
        raise KeyError(credential_id)

    def _choose_credential(self, rp_id: str, allowed: list[bytes], credential_id: bytes | None) -> SoftwareCredential:
        if credential_id is not None:
            for held in self.credentials:
                if held.credential_id == credential_id:
                    return held
            raise SoftwareAuthenticatorError("not_allowed", "this authenticator does not hold that credential")
        for_rp = [c for c in self.credentials if c.rp_id == rp_id]
        if allowed:
            for wanted in allowed:
                for held in for_rp:
                    if held.credential_id == wanted:
                        return held
            raise SoftwareAuthenticatorError(
                "not_allowed", f"none of allowCredentials is held by this authenticator for {rp_id!r}"
            )
        if for_rp:
            return for_rp[-1]
        raise SoftwareAuthenticatorError("not_allowed", f"this authenticator holds no credential for {rp_id!r}")

    def _auth_data_prefix(self, rp_id: str, extra_flags: int, counter: bytes) -> bytes:
        flags = extra_flags
        if self.user_present:
            flags |= FLAG_UP
        if self.user_verified:
            flags |= FLAG_UV
        if self.backup_eligible:
            flags |= FLAG_BE
        if self.backed_up:
            flags |= FLAG_BS
        return hashlib.sha256(rp_id.encode("utf-8")).digest() + bytes([flags]) + counter


def _check_sign_count(value: int | None) -> None:
    if value is not None and not 0 <= value <= _MAX_SIGN_COUNT:
        raise ValueError("sign_count must be between 0 and 2**32-1")


def _pack_sign_count(value: int) -> bytes:
    _check_sign_count(value)
    return struct.pack(">I", value)


def _load_options(options: Mapping[str, Any] | str) -> Mapping[str, Any]:
    loaded: object = json.loads(options) if isinstance(options, str) else options
    if not isinstance(loaded, Mapping):
        raise ValueError("options must be a JSON object")
    inner = loaded.get("publicKey")
    # Some servers send what the page passes to navigator.credentials: {"publicKey": {...}}.
    if "challenge" not in loaded and isinstance(inner, Mapping):
        loaded = inner
    return loaded


def _decode(value: object, field: str) -> bytes:
    try:
        return b64url_decode(value, field=field)
    except MalformedResponse as exc:
        raise ValueError(f"options {field} must be a base64url string") from exc


def _optional_str(value: object, field: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"options {field} must be a string")
    return value


def _host(origin: str) -> str:
    host = urlsplit(origin).hostname
    if not host:
        raise ValueError(f"origin {origin!r} has no host")
    return host


def _offered_algorithms(params: object) -> set[int]:
    if params is None:
        params = []
    if not isinstance(params, Sequence) or isinstance(params, str):
        raise ValueError("options pubKeyCredParams must be a list")
    if not params:
        return {ALG_ES256, ALG_RS256}
    offered: set[int] = set()
    for param in params:
        if not isinstance(param, Mapping):
            raise ValueError("options pubKeyCredParams entries must be objects")
        alg = param.get("alg")
        # Browsers skip entries of unknown types rather than failing.
        if param.get("type", "public-key") == "public-key" and isinstance(alg, int):
            offered.add(alg)
    return offered


def _descriptor_ids(descriptors: object, field: str) -> list[bytes]:
    if descriptors is None:
        return []
    if not isinstance(descriptors, Sequence) or isinstance(descriptors, str):
        raise ValueError(f"options {field} must be a list")
    ids: list[bytes] = []
    for descriptor in descriptors:
        if not isinstance(descriptor, Mapping):
            raise ValueError(f"options {field} entries must be objects")
        ids.append(_decode(descriptor.get("id"), f"{field}[].id"))
    return ids


def _client_data_json(
    ceremony: str, challenge: bytes, origin: str, *, cross_origin: bool, top_origin: str | None
) -> bytes:
    # Key order and compact form as browsers serialise it; some relying parties parse it by prefix.
    data: dict[str, Any] = {
        "type": ceremony,
        "challenge": b64url_encode(challenge),
        "origin": origin,
        "crossOrigin": cross_origin,
    }
    if top_origin is not None:
        data["topOrigin"] = top_origin
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _generate_key(algorithm: int) -> CredentialPrivateKey:
    if algorithm in _ECDSA:
        return ec.generate_private_key(_ECDSA[algorithm][1]())
    if algorithm in _EDDSA_ALGORITHMS:
        return ed25519.Ed25519PrivateKey.generate()
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _cose_public_key(private_key: CredentialPrivateKey, algorithm: int) -> bytes:
    cose: dict[int, Any]
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        numbers = private_key.public_key().public_numbers()
        size = (private_key.curve.key_size + 7) // 8
        cose = {
            1: 2,
            3: algorithm,
            -1: _ECDSA[algorithm][0],
            -2: numbers.x.to_bytes(size, "big"),
            -3: numbers.y.to_bytes(size, "big"),
        }
    elif isinstance(private_key, ed25519.Ed25519PrivateKey):
        raw = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        cose = {1: 1, 3: algorithm, -1: 6, -2: raw}
    else:
        rsa_numbers = private_key.public_key().public_numbers()
        cose = {1: 3, 3: algorithm, -1: _unsigned_bytes(rsa_numbers.n), -2: _unsigned_bytes(rsa_numbers.e)}
    # Canonical CBOR is CTAP2's key order (1, 3, -1, -2, -3), as real authenticators emit.
    return cbor2.dumps(cose, canonical=True)


def _unsigned_bytes(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8, "big")
