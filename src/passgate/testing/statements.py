"""What the attestation makers share: the parts of a registration response that attestations sign, and the
response rewritten with another attestation statement."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import cbor2

from passgate.core.encoding import b64url_decode, b64url_encode


@dataclass(frozen=True, kw_only=True)
class Attestation:
    response: dict[str, Any]  # the registration response, now with the new attestation object
    root_pem: str  # the trust anchor the statement's chain leads to


def signed_parts(response: dict[str, Any]) -> tuple[dict[str, Any], bytes, bytes]:
    """The response member, the authenticator data and the client data hash of a registration response."""
    body = response["response"]
    attestation = cbor2.loads(b64url_decode(body["attestationObject"]))
    return body, attestation["authData"], hashlib.sha256(b64url_decode(body["clientDataJSON"])).digest()


def with_statement(response: dict[str, Any], fmt: str, statement: dict[str, Any], auth_data: bytes) -> dict[str, Any]:
    """The registration response with the attestation object {fmt, attStmt: statement, authData: auth_data}."""
    body = response["response"]
    attestation_object = cbor2.dumps({"fmt": fmt, "attStmt": statement, "authData": auth_data})
    return {**response, "response": {**body, "attestationObject": b64url_encode(attestation_object)}}
