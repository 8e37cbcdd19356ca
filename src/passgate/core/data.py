"""The binary and JSON structures a WebAuthn response carries, each parsing itself.

Binary types subclass `bytes` so the exact bytes that were signed are never lost.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import cbor2

from passgate.core.encoding import MAX_NESTING, b64url_decode, load_json
from passgate.core.errors import MalformedResponse

FLAG_UP, FLAG_UV, FLAG_BE, FLAG_BS, FLAG_AT, FLAG_ED = 0x01, 0x04, 0x08, 0x10, 0x40, 0x80

# Limits far above anything an authenticator sends, so hostile input stays cheap to reject.
MAX_CREDENTIAL_ID = 1023
MAX_CLIENT_DATA = 16 * 1024


def _cbor_loads(data: bytes, what: str) -> Any:
    try:
        return cbor2.loads(data, max_depth=MAX_NESTING)
    except Exception as exc:  # cbor2 raises a variety of types on hostile input
        raise MalformedResponse(f"{what} is not valid CBOR.") from exc


@dataclass(frozen=True, kw_only=True)
class ClientData:
    """CollectedClientData (WebAuthn §5.8.1), parsed from the exact clientDataJSON bytes."""

    raw: bytes
    type: str
    challenge: bytes
    origin: str
    cross_origin: bool
    top_origin: str | None
    token_binding_status: str | None

    @classmethod
    def parse(cls, raw: bytes) -> ClientData:
        """Raises MalformedResponse if `raw` is not a CollectedClientData JSON object."""
        if len(raw) > MAX_CLIENT_DATA:
            raise MalformedResponse("clientDataJSON is too long.")
        fields = load_json(raw, what="clientDataJSON")
        if not isinstance(fields, dict):
            raise MalformedResponse("clientDataJSON is not a JSON object.")
        kind, origin = fields.get("type"), fields.get("origin")
        if not isinstance(kind, str) or not isinstance(origin, str):
            raise MalformedResponse("clientDataJSON lacks its type or origin.")
        cross_origin = fields.get("crossOrigin", False)
        top_origin = fields.get("topOrigin")
        if not isinstance(cross_origin, bool) or not isinstance(top_origin, str | None):
            raise MalformedResponse("clientDataJSON has an invalid crossOrigin or topOrigin.")
        binding = fields.get("tokenBinding")
        status = binding.get("status") if isinstance(binding, dict) else None
        return cls(
            raw=raw,
            type=kind,
            challenge=b64url_decode(fields.get("challenge"), field="clientDataJSON.challenge"),
            origin=origin,
            cross_origin=cross_origin,
            top_origin=top_origin,
            token_binding_status=status if isinstance(status, str) else None,
        )


@dataclass(frozen=True, kw_only=True)
class AttestedCredential:
    aaguid: UUID
    credential_id: bytes
    public_key: bytes  # the COSE_Key bytes, exactly as the authenticator sent them


class AuthenticatorData(bytes):
    """Authenticator data (WebAuthn §6.1); the instance is the raw bytes that were signed."""

    rp_id_hash: bytes
    flags: int
    sign_count: int
    attested: AttestedCredential | None
    extensions: Mapping[Any, Any] | None

    def __new__(cls, raw: bytes) -> AuthenticatorData:
        self = super().__new__(cls, raw)
        if len(raw) < 37:
            raise MalformedResponse("Authenticator data is too short.")
        self.rp_id_hash = raw[:32]
        self.flags = raw[32]
        self.sign_count = struct.unpack(">I", raw[33:37])[0]
        rest = io.BytesIO(raw[37:])
        self.attested = self._read_attested(rest) if self.flags & FLAG_AT else None
        self.extensions = None
        if self.flags & FLAG_ED:
            extensions = _read_cbor_item(rest, "Authenticator extensions")
            if not isinstance(extensions, dict):
                raise MalformedResponse("Authenticator extensions are not a map.")
            self.extensions = extensions
        if rest.read(1):
            raise MalformedResponse("Authenticator data has trailing bytes.")
        return self

    @staticmethod
    def _read_attested(stream: io.BytesIO) -> AttestedCredential:
        header = stream.read(18)
        if len(header) < 18:
            raise MalformedResponse("Attested credential data is truncated.")
        length = struct.unpack(">H", header[16:18])[0]
        credential_id = stream.read(length)
        if len(credential_id) != length or length == 0 or length > MAX_CREDENTIAL_ID:
            raise MalformedResponse("The credential id is missing, truncated or too long.")
        start = stream.tell()
        _read_cbor_item(stream, "The credential public key")
        public_key = stream.getvalue()[start : stream.tell()]
        return AttestedCredential(aaguid=UUID(bytes=header[:16]), credential_id=credential_id, public_key=public_key)

    @property
    def user_present(self) -> bool:
        return bool(self.flags & FLAG_UP)

    @property
    def user_verified(self) -> bool:
        return bool(self.flags & FLAG_UV)

    @property
    def backup_eligible(self) -> bool:
        return bool(self.flags & FLAG_BE)

    @property
    def backed_up(self) -> bool:
        return bool(self.flags & FLAG_BS)


def _read_cbor_item(stream: io.BytesIO, what: str) -> Any:
    try:
        return cbor2.CBORDecoder(stream, max_depth=MAX_NESTING).decode()
    except Exception as exc:  # cbor2 raises a variety of types on hostile input
        raise MalformedResponse(f"{what} is not valid CBOR.") from exc


@dataclass(frozen=True, kw_only=True)
class AttestationObject:
    raw: bytes
    fmt: str
    statement: Mapping[str, Any] | list[Any]  # a list only for the "compound" format
    auth_data: AuthenticatorData

    @classmethod
    def parse(cls, raw: bytes) -> AttestationObject:
        """Raises MalformedResponse if `raw` is not a CBOR attestation object."""
        fields = _cbor_loads(raw, "The attestation object")
        if not isinstance(fields, dict):
            raise MalformedResponse("The attestation object is not a map.")
        fmt, statement, auth_data = fields.get("fmt"), fields.get("attStmt"), fields.get("authData")
        statement_types = (dict, list) if fmt == "compound" else (dict,)
        if not isinstance(fmt, str) or not isinstance(statement, statement_types) or not isinstance(auth_data, bytes):
            raise MalformedResponse("The attestation object lacks fmt, attStmt or authData.")
        return cls(raw=raw, fmt=fmt, statement=statement, auth_data=AuthenticatorData(auth_data))


@dataclass(frozen=True, kw_only=True)
class RegistrationResponse:
    """A RegistrationResponseJSON, decoded; unknown members are ignored."""

    credential_id: bytes
    client_data: ClientData
    attestation: AttestationObject
    transports: tuple[str, ...]
    authenticator_attachment: str | None
    client_extension_results: Mapping[str, Any]

    @classmethod
    def parse(cls, response: Mapping[str, Any] | str | bytes) -> RegistrationResponse:
        fields = _credential_fields(response)
        body = fields["response"]
        transports = body.get("transports") or []
        if not isinstance(transports, list) or not all(isinstance(t, str) for t in transports):
            raise MalformedResponse("response.transports must be a list of strings.")
        return cls(
            credential_id=fields["_raw_id"],
            client_data=ClientData.parse(b64url_decode(body.get("clientDataJSON"), field="clientDataJSON")),
            attestation=AttestationObject.parse(
                b64url_decode(body.get("attestationObject"), field="attestationObject")
            ),
            transports=tuple(dict.fromkeys(transports)),
            authenticator_attachment=_optional_str(fields.get("authenticatorAttachment")),
            client_extension_results=_extension_results(fields),
        )


@dataclass(frozen=True, kw_only=True)
class AuthenticationResponse:
    """An AuthenticationResponseJSON, decoded; unknown members are ignored."""

    credential_id: bytes
    client_data: ClientData
    auth_data: AuthenticatorData
    signature: bytes
    user_handle: bytes | None

    @classmethod
    def parse(cls, response: Mapping[str, Any] | str | bytes) -> AuthenticationResponse:
        fields = _credential_fields(response)
        body = fields["response"]
        user_handle = body.get("userHandle")
        return cls(
            credential_id=fields["_raw_id"],
            client_data=ClientData.parse(b64url_decode(body.get("clientDataJSON"), field="clientDataJSON")),
            auth_data=AuthenticatorData(b64url_decode(body.get("authenticatorData"), field="authenticatorData")),
            signature=b64url_decode(body.get("signature"), field="signature"),
            user_handle=None if user_handle in (None, "") else b64url_decode(user_handle, field="userHandle"),
        )


def _credential_fields(response: Mapping[str, Any] | str | bytes) -> dict[str, Any]:
    if isinstance(response, str | bytes):
        response = load_json(response, what="The credential")
    if not isinstance(response, Mapping):
        raise MalformedResponse("The credential must be a JSON object.")
    fields = dict(response)
    if not isinstance(fields.get("response"), dict):
        raise MalformedResponse("The credential lacks its response member.")
    if fields.get("type") != "public-key":
        raise MalformedResponse('The credential type must be "public-key".')
    raw_id = b64url_decode(fields.get("rawId", fields.get("id")), field="rawId")
    if "id" in fields and b64url_decode(fields["id"], field="id") != raw_id:
        raise MalformedResponse("id and rawId differ.")
    if not raw_id or len(raw_id) > MAX_CREDENTIAL_ID:
        raise MalformedResponse("The credential id is empty or too long.")
    fields["_raw_id"] = raw_id
    return fields


def _optional_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _extension_results(fields: Mapping[str, Any]) -> Mapping[str, Any]:
    results = fields.get("clientExtensionResults") or {}
    if not isinstance(results, dict):
        raise MalformedResponse("clientExtensionResults must be an object.")
    return results
