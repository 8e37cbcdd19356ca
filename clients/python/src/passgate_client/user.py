"""What a verified Passgate token says about who is signed in."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any


@dataclass(frozen=True, kw_only=True)
class PassgateUser:
    """The subject of a token whose signature, issuer, audience, type and lifetime were verified."""

    sub: str
    sid: str | None
    amr: tuple[str, ...]
    acr: str | None
    auth_time: int | None
    expires_at: int
    scope: tuple[str, ...]
    client_id: str | None
    token_type: str
    claims: Mapping[str, Any]

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any], *, token_type: str) -> PassgateUser:
        """Build from claims already checked by the verifier (``sub`` a string, ``exp`` a number)."""
        amr = claims.get("amr")
        scope = claims.get("scope")
        return cls(
            sub=claims["sub"],
            sid=_str_or_none(claims.get("sid")),
            amr=tuple(m for m in amr if isinstance(m, str)) if isinstance(amr, list) else (),
            acr=_str_or_none(claims.get("acr")),
            auth_time=_int_or_none(claims.get("auth_time")),
            expires_at=int(claims["exp"]),
            scope=tuple(scope.split()) if isinstance(scope, str) else (),
            # RFC 9068 access tokens name the client `client_id`; ID tokens name it `azp`.
            client_id=_str_or_none(claims.get("client_id")) or _str_or_none(claims.get("azp")),
            token_type=token_type,
            claims=MappingProxyType(dict(claims)),
        )


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _int_or_none(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)
