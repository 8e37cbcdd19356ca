"""Session tokens: a short-lived signed JWT saying who is signed in, for a backend of the same site to verify
offline against the JWKS (and to check `sid` against introspection when it must know of a sign-out).

Header `typ` "session+jwt", `alg` ES256. Claims: `iss` (the public URL), `sub` (the user id, stable), `aud`
(`session_token_audience`, by default the issuer), `iat`, `nbf`, `exp` (five minutes on), `jti`, `auth_time`
(the last passkey use, or the recovery sign-in), `sid` (the session's public id), `amr`, and `acr` unless the
session is a recovery session (passgate.core.assurance).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from passgate.core.errors import NotSignedIn
from passgate.service import keys, ratelimit
from passgate.service.context import Client, Context, audited
from passgate.service.sessions import SignedIn, assurance_of

LIFETIME = timedelta(minutes=5)
TYP = "session+jwt"
ALGORITHM: Final = "ES256"


@dataclass(frozen=True, kw_only=True)
class SessionToken:
    token: str
    expires_at: datetime


def issuer(ctx: Context) -> str:
    return ctx.rp.public_url.rstrip("/")


async def issue(ctx: Context, client: Client, current: SignedIn) -> SessionToken:
    """Sign a session token for the signed-in user's session.

    Raises:
        RateLimited: too many tokens asked for from this address or for this account.
        NotSignedIn: the session predates public session ids; signing in again gives it one.
    """
    async with audited(ctx, client, "session.token") as audit:
        audit.user_id = current.user.id
        await ratelimit.ceremony(ctx, client, "session-token", account=current.user.id)
        session = current.session
        if session.sid is None:
            raise NotSignedIn("Sign in again to get a session token.")
        proven = await assurance_of(ctx, session)
        now = ctx.clock().replace(microsecond=0)
        expires_at = now + LIFETIME
        claims: dict[str, object] = {
            "iss": issuer(ctx),
            "sub": current.user.id,
            "aud": ctx.rp.session_token_audience or issuer(ctx),
            "iat": int(now.timestamp()),
            "nbf": int(now.timestamp()),
            "exp": int(expires_at.timestamp()),
            "jti": secrets.token_urlsafe(16),
            "auth_time": int((session.authenticated_at or session.created_at).timestamp()),
            "sid": session.sid,
            "amr": list(proven.amr),
        }
        if proven.acr is not None:
            claims["acr"] = proven.acr
        token = await keys.sign(ctx, claims, typ=TYP, alg=ALGORITHM)
        audit.detail.update({"jti": claims["jti"], "sid": session.sid, "acr": proven.acr})
        return SessionToken(token=token, expires_at=expires_at)
