"""OpenID Connect RP-Initiated Logout 1.0: a client sends the person here to sign out of Passgate.

The request (`read`) names its client by `id_token_hint` (an ID token Passgate issued: its signature is checked
against the published keys, its expiry is not, as the specification allows), by `client_id`, or both (then they
must agree). A `post_logout_redirect_uri` must be one the client registered, exactly; without a known client
the person is never redirected. A refused request changes nothing and is shown on a page.

Whether to ask (`decide`): the person signs out at once only when the hint's `sid` is the browser's own session,
proof that the client asking is one this session signed in to. Otherwise, the specification's SHOULD: a page
asks "Sign out of ...?", and its button POSTs back the request with a confirmation bound to the session
(`confirmation`), which another site cannot forge.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from passgate.core.authorization import response_uri
from passgate.core.errors import InvalidRequest
from passgate.core.oidc_clients import OidcClient
from passgate.service import confirmations, keys, oidc, oidc_clients, sessions
from passgate.service.context import Client, Context
from passgate.service.sessions import SignedIn

CONFIRMATION_LABEL = b"passgate logout confirmation v1"


@dataclass(frozen=True, kw_only=True)
class LogoutRequest:
    client: OidcClient | None
    post_logout_redirect_uri: str | None  # registered by `client`, checked
    state: str | None
    hint_sid: str | None  # the id_token_hint's session


@dataclass(frozen=True, kw_only=True)
class Ended:
    """Signed out (or was not signed in): where the browser goes next, if anywhere."""

    location: str | None


async def read(ctx: Context, parameters: Mapping[str, str]) -> LogoutRequest:
    """Read a logout request's parameters (`ui_locales` is ignored).

    Raises:
        InvalidRequest: the id_token_hint is not an ID token Passgate issued, names another client than
            client_id, the client is unknown, or the post_logout_redirect_uri is not one the client registered
            (or there is no client to have registered it).
    """
    hint = await _hinted(ctx, parameters["id_token_hint"]) if parameters.get("id_token_hint") else None
    client_id = parameters.get("client_id") or None
    if hint is not None:
        if client_id is not None and client_id != hint[0]:
            raise InvalidRequest("id_token_hint was issued to another client than client_id.")
        client_id = hint[0]
    client = await oidc_clients.get(ctx, client_id) if client_id else None
    if client_id is not None and client is None:
        raise InvalidRequest("The client is not registered.")
    uri = parameters.get("post_logout_redirect_uri") or None
    if uri is not None:
        if client is None:
            raise InvalidRequest("post_logout_redirect_uri needs id_token_hint or client_id.")
        if not oidc_clients.post_logout_redirect_uri_allowed(client, uri):
            raise InvalidRequest("post_logout_redirect_uri is not registered for this client.")
    return LogoutRequest(
        client=client,
        post_logout_redirect_uri=uri,
        state=parameters.get("state") or None,
        hint_sid=hint[1] if hint else None,
    )


async def _hinted(ctx: Context, token: str) -> tuple[str, str | None]:
    """The client (`aud`) and session (`sid`) of an ID token Passgate signed; expired is accepted."""
    refused = InvalidRequest("id_token_hint is not an ID token this provider issued.")
    published = KeySet.import_key_set(await keys.jwks(ctx))  # type: ignore[arg-type]
    try:
        decoded = jwt.decode(token, published, algorithms=oidc.VERIFIED_ALGORITHMS)
    except (JoseError, ValueError) as exc:
        raise refused from exc
    claims = decoded.claims
    audience = claims.get("aud")
    if isinstance(audience, list) and len(audience) == 1:
        audience = audience[0]
    if decoded.header.get("typ") == oidc.ACCESS_TOKEN_TYP or claims.get("iss") != oidc.issuer(ctx):
        raise refused
    if not isinstance(audience, str) or not isinstance(claims.get("sub"), str):
        raise refused
    sid = claims.get("sid")
    return audience, sid if isinstance(sid, str) else None


def confirmation(ctx: Context, current: SignedIn) -> str:
    """The value the confirmation page posts back: bound to the session, so no other site can make it."""
    return confirmations.session_bound(ctx, current, CONFIRMATION_LABEL)


def decide(
    ctx: Context, request: LogoutRequest, current: SignedIn | None, confirmed: str | None, *, posted: bool
) -> Literal["sign_out", "ask"]:
    """Sign out at once, or ask the person first.

    A form another site POSTs comes without the session cookie (SameSite=Lax): seeming signed out, it is asked
    about all the same, and the page's own POST, from this site, shows whether a session is there to end.
    """
    if current is None:
        return "ask" if posted and confirmed is None else "sign_out"
    if request.hint_sid is not None and hmac.compare_digest(request.hint_sid, current.session.sid or ""):
        return "sign_out"
    if confirmed is not None and hmac.compare_digest(confirmed, confirmation(ctx, current)):
        return "sign_out"
    return "ask"


async def sign_out(ctx: Context, client: Client, request: LogoutRequest) -> Ended:
    """End the browser's session (back-channel logout follows) and say where to go: the client's registered
    post_logout_redirect_uri with `state`, or nowhere (a signed-out page)."""
    await sessions.end(ctx, client, asked_by=request.client.client_id if request.client else None)
    if request.post_logout_redirect_uri is None:
        return Ended(location=None)
    parameters = {"state": request.state} if request.state is not None else {}
    return Ended(location=response_uri(request.post_logout_redirect_uri, parameters))
