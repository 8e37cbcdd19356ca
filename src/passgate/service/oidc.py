"""The OpenID Connect provider: the authorization code flow (authorize, token exchange, userinfo).

authlib's `AuthorizationServer` and grants are not used: they call storage synchronously from inside their
checks (look up the client, the code, save the token) and delete a code only once every check passed, where
Passgate's storage is async and a code must be taken first, atomically, whatever the outcome. The pure pieces
come from authlib through `passgate.core.authorization` (PKCE, URL building); every JOSE operation is joserfc's.

Tokens:
- access token: an RFC 9068 JWT (`typ` at+jwt, RS256), five minutes, audience the client; userinfo accepts it
  while its code was not presented again and its session lasts;
- ID token: `iss sub aud exp iat auth_time nonce sid amr acr azp`, RS256, five minutes;
- refresh token (only with offline_access): opaque, stored as its SHA-256, rotated on each use; see
  `refresh` for what ends one.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from passgate.core import authorization
from passgate.core.authorization import AuthorizationRequest, PageError, Parameters
from passgate.core.errors import (
    AccessDenied,
    AccountDisabled,
    AuthorizationError,
    ConsentRequired,
    InvalidClient,
    InvalidGrant,
    InvalidRequest,
    InvalidScope,
    InvalidToken,
    LoginRequired,
    PasskeyError,
    UnmetAuthenticationRequirements,
    UnsupportedGrantType,
)
from passgate.service import backchannel, consent, keys, oidc_clients, ratelimit, session_tokens
from passgate.service.accounts import refuse_disabled
from passgate.service.context import Audit, Client, Context, audited, digest
from passgate.service.sessions import SignedIn, assurance_of
from passgate.store.base import AuthorizationCode, RefreshToken, SigningAlgorithm, User

CODE_LIFETIME = timedelta(minutes=1)
ACCESS_TOKEN_LIFETIME = timedelta(minutes=5)
ID_TOKEN_LIFETIME = timedelta(minutes=5)
REFRESH_TOKEN_IDLE = timedelta(days=14)  # unused this long, a refresh token has expired
REFRESH_TOKEN_LIFETIME = timedelta(days=30)  # a family's absolute life, from the sign-in's code exchange
ACCESS_TOKEN_TYP = "at+jwt"  # noqa: S105 (a header value, not a secret)
# RS256: every relying party library accepts it, and OpenID Connect makes it the default.
SIGNING_ALGORITHM: SigningAlgorithm = "RS256"  # of ID and access tokens
# How long a fresh sign-in asked for by prompt=login, max_age, acr_values or id_token_hint may take.
FRESH_SIGN_IN_WINDOW = timedelta(minutes=10)
CLAIMS_SUPPORTED = (
    *("iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "sid", "amr", "acr", "azp"),
    *("preferred_username", "name", "email", "email_verified"),
)
VERIFIED_ALGORITHMS = ("RS256", "ES256")

__all__ = ["PageError", "authorize", "exchange", "introspect", "issuer", "request_of", "revoke", "userinfo"]


def issuer(ctx: Context) -> str:
    return ctx.rp.public_url.rstrip("/")


@dataclass(frozen=True, kw_only=True)
class SignInNeeded:
    """The person signs in on the hosted page, then comes back to the same request: nobody is signed in, or the
    request asks for a fresher or stronger sign-in, or for another person's (`fresh_after` then says when the
    fresh sign-in was asked for: the request comes back carrying it)."""

    login_hint: str | None
    fresh_after: int | None = None


@dataclass(frozen=True, kw_only=True)
class Redirect:
    """Send the person's browser back to the client with the response's parameters (the code, or the error):
    in the redirect URI's query (`location`), or, for form_post, in a form the page posts to `redirect_uri`."""

    redirect_uri: str
    parameters: Mapping[str, str]
    response_mode: authorization.ResponseMode

    @property
    def location(self) -> str:
        return authorization.response_uri(self.redirect_uri, self.parameters)


def _response(ctx: Context, redirect_uri: str, mode: authorization.ResponseMode, **parameters: str | None) -> Redirect:
    answer = {name: value for name, value in {**parameters, "iss": issuer(ctx)}.items() if value is not None}
    return Redirect(redirect_uri=redirect_uri, parameters=answer, response_mode=mode)


async def request_of(ctx: Context, parameters: Parameters) -> AuthorizationRequest | Redirect:
    """Read an authorization request: the request, or the error redirect to its client.

    Raises:
        PageError: unknown client or redirect URI (also a parameter given twice: until the request is read, its
            redirect URI is not known good).
    """
    try:
        values = authorization.single_values(parameters)
    except InvalidRequest as exc:
        raise PageError(exc) from exc
    client = await oidc_clients.get(ctx, values["client_id"]) if "client_id" in values else None
    client, redirect_uri = authorization.redirect_target(client, values)
    try:
        return authorization.read_request(client, redirect_uri, values)
    except (InvalidRequest, AuthorizationError) as exc:
        mode = authorization.response_mode_of(values)
        return error_redirect(ctx, redirect_uri, values.get("state"), exc, mode)


def error_redirect(
    ctx: Context, redirect_uri: str, state: str | None, error: PasskeyError, mode: authorization.ResponseMode
) -> Redirect:
    return _response(ctx, redirect_uri, mode, error=error.code, error_description=error.message, state=state)


async def authorize(
    ctx: Context,
    client: Client,
    request: AuthorizationRequest,
    current: SignedIn | None,
    decision: consent.Decision | None = None,
) -> Redirect | SignInNeeded | consent.ConsentNeeded:
    """Answer an authorization request: a code for the signed-in person, at once; or a sign-in first (or
    login_required for prompt=none); or, for a client that is not first-party, the person's consent first (see
    `consent.settle`; `decision` is what its page posted back)."""

    def refuse(error: PasskeyError) -> Redirect:
        return error_redirect(ctx, request.redirect_uri, request.state, error, request.response_mode)

    try:
        hinted = await _hinted_user(ctx, request.id_token_hint) if request.id_token_hint else None
    except InvalidRequest as exc:
        return refuse(exc)
    login_hint = request.login_hint or (hinted.username if hinted is not None else None)
    if current is not None and current.user.disabled_at is not None:  # its sessions end as it is disabled
        return refuse(AccountDisabled())
    if current is None or current.session.sid is None:
        if request.prompt_none:
            return refuse(LoginRequired())
        return SignInNeeded(login_hint=login_hint)
    session = current.session
    proven = await assurance_of(ctx, session)
    now = ctx.clock()
    passkey_at = session.authenticated_at
    after = authorization.fresh_sign_in_after(
        request, now=int(now.timestamp()), window=int(FRESH_SIGN_IN_WINDOW.total_seconds())
    )
    fresh = after is not None and passkey_at is not None and passkey_at.timestamp() >= after
    other_person = hinted is not None and hinted.id != current.user.id
    stale = request.max_age is not None and (
        passkey_at is None or now - passkey_at > timedelta(seconds=request.max_age)
    )
    acr_met = authorization.acr_met(proven.acr, request.acr_values)
    if (request.prompt_login or stale or other_person or not acr_met) and not fresh:
        if request.prompt_none:
            return refuse(LoginRequired("A new sign-in is needed (max_age, acr_values or id_token_hint)."))
        return SignInNeeded(login_hint=login_hint, fresh_after=int(now.timestamp()))
    if other_person:
        return refuse(LoginRequired("The person signed in is not the one id_token_hint names."))
    if not acr_met:
        return refuse(UnmetAuthenticationRequirements())
    try:
        asked = await consent.settle(ctx, client, current, request, decision)
    except (ConsentRequired, AccessDenied) as exc:
        return refuse(exc)
    if asked is not None:
        return asked
    async with audited(ctx, client, "oidc.authorize") as audit:
        audit.user_id = current.user.id
        audit.detail.update({"client_id": request.client.client_id, "scope": " ".join(request.scope)})
        code = secrets.token_urlsafe(32)
        await ctx.storage.authorization_codes.add(
            AuthorizationCode(
                code_hash=digest(code),
                client_id=request.client.client_id,
                user_id=current.user.id,
                redirect_uri=request.redirect_uri,
                scope=" ".join(request.scope),
                nonce=request.nonce,
                code_challenge=request.code_challenge,
                sid=session.sid or "",
                auth_time=session.authenticated_at or session.created_at,
                amr=proven.amr,
                acr=proven.acr,
                created_at=now,
                expires_at=now + CODE_LIFETIME,
            )
        )
    return _response(ctx, request.redirect_uri, request.response_mode, code=code, state=request.state)


async def _hinted_user(ctx: Context, id_token_hint: str) -> User | None:
    """The person an ID token Passgate issued names (expired tokens too: a hint, not a credential); None if they no
    longer exist.

    Raises:
        InvalidRequest: not an ID token signed by a published key, or another issuer's.
    """
    published = KeySet.import_key_set(await keys.jwks(ctx))  # type: ignore[arg-type]
    try:
        decoded = jwt.decode(id_token_hint, published, algorithms=VERIFIED_ALGORITHMS)
    except (JoseError, ValueError) as exc:
        raise InvalidRequest("id_token_hint is not an ID token Passgate issued.") from exc
    claims = decoded.claims
    if decoded.header.get("typ") != "JWT" or claims.get("iss") != issuer(ctx) or not isinstance(claims.get("sub"), str):
        raise InvalidRequest("id_token_hint is not an ID token Passgate issued.")
    return await ctx.storage.users.get(claims["sub"])


async def exchange(
    ctx: Context, client: Client, *, client_id: str, client_secret: str | None, form: Mapping[str, str]
) -> dict[str, Any]:
    """The token endpoint's answer for an authorization code (RFC 6749 section 4.1.3, RFC 7636 section 4.6).

    The code is taken first, whatever follows: a failed exchange uses it up too.

    Raises:
        RateLimited: too many exchanges from this address or for this client.
        InvalidClient: client authentication failed.
        UnsupportedGrantType: not authorization_code.
        InvalidRequest: code or code_verifier missing.
        InvalidGrant: the code is unknown, expired, another client's, used before (which revokes the access
            token its first exchange issued), its redirect_uri differs, the verifier does not match, or its
            session has ended.
    """
    async with audited(ctx, client, "oidc.token") as audit:
        audit.detail["client_id"] = client_id[:64]
        await ratelimit.ceremony(ctx, client, "oidc-token", account=f"client:{client_id}")
        registered = await oidc_clients.authenticate(ctx, client_id, client_secret)
        if form.get("grant_type") == "refresh_token":
            return await _refresh(ctx, registered.client_id, form, audit)
        if form.get("grant_type") != "authorization_code":
            raise UnsupportedGrantType()
        if "code" not in form:
            raise InvalidRequest("code is missing.")
        now = ctx.clock()
        taken = await ctx.storage.authorization_codes.take(digest(form["code"]), now)
        if taken is None:
            raise InvalidGrant()
        code = taken.code
        audit.user_id = code.user_id
        if not taken.first:
            audit.detail.update({"reuse": True, "revoked_jti": code.access_token_jti})
            raise InvalidGrant("The authorization code was used before: what it issued is revoked.")
        if code.client_id != registered.client_id or now >= code.expires_at:
            raise InvalidGrant()
        if form.get("redirect_uri") != code.redirect_uri:
            raise InvalidGrant("redirect_uri differs from the authorization request's.")
        if "code_verifier" not in form:
            raise InvalidRequest("code_verifier is missing.")
        if not authorization.verifier_matches(form["code_verifier"], code.code_challenge):
            raise InvalidGrant("code_verifier does not match the code_challenge.")
        if not await _session_lasts(ctx, code.sid):
            raise InvalidGrant("The session that authorized this code has ended.")
        jti = secrets.token_urlsafe(16)
        tokens = await _tokens(ctx, code, jti)
        await ctx.storage.authorization_codes.record_issued(code.code_hash, jti)
        session = await ctx.storage.sessions.by_sid(code.sid)
        if session is not None:
            await backchannel.recorded(ctx, session, code.client_id)
        if "offline_access" in code.scope.split():
            tokens["refresh_token"] = await _first_refresh_token(ctx, code, jti)
        audit.detail.update({"jti": jti, "sid": code.sid, "scope": code.scope})
        return tokens


async def _session_lasts(ctx: Context, sid: str) -> bool:
    session = await ctx.storage.sessions.by_sid(sid)
    now = ctx.clock()
    return session is not None and now < session.expires_at and now < session.last_seen_at + ctx.rp.session_idle


async def _tokens(
    ctx: Context, code: AuthorizationCode | RefreshToken, jti: str, scope: str | None = None
) -> dict[str, Any]:
    """The access token and, with the openid scope, the ID token, for a code's grant or a refresh token's (whose
    ID token keeps the sign-in's `auth_time`, `sid`, `amr` and `acr`, and has no nonce: OIDC Core section 12.2)."""
    scope = code.scope if scope is None else scope
    now = ctx.clock().replace(microsecond=0)
    common: dict[str, Any] = {
        "iss": issuer(ctx),
        "sub": code.user_id,
        "iat": int(now.timestamp()),
        "auth_time": int(code.auth_time.timestamp()),
        "sid": code.sid,
        "amr": list(code.amr),
    }
    if code.acr is not None:
        common["acr"] = code.acr
    access_claims = {
        **common,
        "aud": code.client_id,
        "client_id": code.client_id,
        "scope": scope,
        "jti": jti,
        "exp": int((now + ACCESS_TOKEN_LIFETIME).timestamp()),
    }
    id_claims = {
        **common,
        "aud": code.client_id,
        "azp": code.client_id,
        "exp": int((now + ID_TOKEN_LIFETIME).timestamp()),
    }
    if isinstance(code, AuthorizationCode) and code.nonce is not None:
        id_claims["nonce"] = code.nonce
    answer = {
        "access_token": await keys.sign(ctx, access_claims, typ=ACCESS_TOKEN_TYP, alg=SIGNING_ALGORITHM),
        "token_type": "Bearer",
        "expires_in": int(ACCESS_TOKEN_LIFETIME.total_seconds()),
        "scope": scope,
    }
    if "openid" in scope.split():
        answer["id_token"] = await keys.sign(ctx, id_claims, typ="JWT", alg=SIGNING_ALGORITHM)
    return answer


async def verify_access_token(ctx: Context, token: str) -> dict[str, Any]:
    """The claims of an access token Passgate signed, checked against the published keys.

    Raises:
        InvalidToken: malformed, not signed by a published key, not an access token, another issuer's, expired.
    """
    return await _verified(ctx, token, typ=ACCESS_TOKEN_TYP, algorithms=VERIFIED_ALGORITHMS)


async def _verified(ctx: Context, token: str, *, typ: str, algorithms: Sequence[str]) -> dict[str, Any]:
    """The claims of a token of type `typ` Passgate signed: a published key's signature, our `iss`, a `sub`,
    `jti` and `sid`, and not expired.

    Raises:
        InvalidToken: anything else.
    """
    published = KeySet.import_key_set(await keys.jwks(ctx))  # type: ignore[arg-type]
    try:
        decoded = jwt.decode(token, published, algorithms=list(algorithms))
    except (JoseError, ValueError) as exc:
        raise InvalidToken() from exc
    if decoded.header.get("typ") != typ:
        raise InvalidToken()
    registry = jwt.JWTClaimsRegistry(
        now=int(ctx.clock().timestamp()),
        iss={"essential": True, "value": issuer(ctx)},
        sub={"essential": True},
        jti={"essential": True},
        sid={"essential": True},
        exp={"essential": True},
    )
    try:
        registry.validate(decoded.claims)
    except JoseError as exc:
        raise InvalidToken() from exc
    return dict(decoded.claims)


async def userinfo(ctx: Context, token: str) -> dict[str, Any]:
    """The signed-in person's claims for the access token's scopes.

    Raises:
        InvalidToken: the token is refused (verify_access_token) or no longer live (`_access_token_live`), or
            its user is gone.
    """
    claims = await verify_access_token(ctx, token)
    if not await _access_token_live(ctx, claims):
        raise InvalidToken()
    user = await ctx.storage.users.get(str(claims["sub"]))
    if user is None or user.disabled_at is not None:
        raise InvalidToken()
    scope = str(claims.get("scope", "")).split()
    answer: dict[str, Any] = {"sub": user.id}
    if "profile" in scope:
        answer.update({"preferred_username": user.username, "name": user.display_name})
    if "email" in scope and user.email:
        answer.update({"email": user.email, "email_verified": user.email_verified_at is not None})
    return answer


# Refresh tokens, revocation (RFC 7009) and introspection (RFC 7662).
#
# A refresh token is the point of offline_access: it outlives the browser session that signed in. What ends it:
# its idle expiry (REFRESH_TOKEN_IDLE unused) or its family's absolute one (REFRESH_TOKEN_LIFETIME); the client
# revoking it; a rotated token of its family presented again; the user's deletion; the client's removal. Access
# tokens a refresh issued follow their family, not the session; the one the code exchange issued follows the
# session, as every code exchange's does.

REFRESH_REFUSED = "The refresh token is invalid, expired or revoked."


async def _first_refresh_token(ctx: Context, code: AuthorizationCode, jti: str) -> str:
    now = ctx.clock()
    value = secrets.token_urlsafe(32)
    await ctx.storage.refresh_tokens.add(
        RefreshToken(
            token_hash=digest(value),
            family_id=secrets.token_urlsafe(16),
            client_id=code.client_id,
            user_id=code.user_id,
            sid=code.sid,
            scope=code.scope,
            auth_time=code.auth_time,
            amr=code.amr,
            acr=code.acr,
            generation=0,
            access_token_jti=jti,
            created_at=now,
            expires_at=now + REFRESH_TOKEN_IDLE,
            family_expires_at=now + REFRESH_TOKEN_LIFETIME,
        )
    )
    return value


def _narrowed(granted: str, asked: str | None) -> str:
    """The scope of a refresh's access token: the refresh token's, or fewer (RFC 6749 section 6)."""
    if asked is None:
        return granted
    wanted = set(asked.split())
    if not wanted <= set(granted.split()):
        raise InvalidScope("A refresh may narrow the scope, never widen it.")
    return " ".join(s for s in granted.split() if s in wanted)


async def _refresh(ctx: Context, client_id: str, form: Mapping[str, str], audit: Audit) -> dict[str, Any]:
    """grant_type=refresh_token (RFC 6749 section 6): the token rotated, new access and ID tokens.

    Raises:
        InvalidRequest: refresh_token missing.
        InvalidScope: the scope asked for is wider than the refresh token's.
        InvalidGrant: the token is unknown, another client's, expired, revoked, its user is gone, or it was used
            before (which revokes its whole family and the access tokens it issued).
    """
    audit.type = "oidc.refresh"
    if "refresh_token" not in form:
        raise InvalidRequest("refresh_token is missing.")
    now = ctx.clock()
    token_hash = digest(form["refresh_token"])
    current = await ctx.storage.refresh_tokens.get(token_hash)
    if current is None or current.client_id != client_id:
        raise InvalidGrant(REFRESH_REFUSED)
    audit.user_id = current.user_id
    audit.detail["family_id"] = current.family_id
    owner = await ctx.storage.users.get(current.user_id)
    if owner is not None:
        refuse_disabled(owner)  # disabling revoked the tokens too; this tells the client why
    if current.revoked:
        raise InvalidGrant(REFRESH_REFUSED)
    if current.used_at is None:  # a used one goes straight to rotate, which revokes its family
        if now >= current.expires_at:
            raise InvalidGrant(REFRESH_REFUSED)
        if owner is None:
            raise InvalidGrant(REFRESH_REFUSED)
    scope = _narrowed(current.scope, form.get("scope"))
    value, jti = secrets.token_urlsafe(32), secrets.token_urlsafe(16)
    replacement = dataclasses.replace(
        current,
        token_hash=digest(value),
        generation=current.generation + 1,
        access_token_jti=jti,
        created_at=now,
        expires_at=min(now + REFRESH_TOKEN_IDLE, current.family_expires_at),
        used_at=None,
    )
    taken = await ctx.storage.refresh_tokens.rotate(token_hash, replacement, now)
    if taken is None:
        raise InvalidGrant(REFRESH_REFUSED)
    if not taken.first:
        audit.detail["reuse"] = True
        raise InvalidGrant("The refresh token was used before: its family is revoked.")
    tokens = await _tokens(ctx, current, jti, scope)
    tokens["refresh_token"] = value
    audit.detail.update({"jti": jti, "sid": current.sid, "scope": scope, "generation": replacement.generation})
    return tokens


async def _access_token_live(ctx: Context, claims: Mapping[str, Any]) -> bool:
    """False once the access token was revoked (by RFC 7009, by its code presented again, by its refresh
    family's revocation), or, unless a refresh issued it, once its session has ended."""
    jti = str(claims["jti"])
    if await ctx.storage.authorization_codes.revoked(jti) or await ctx.storage.refresh_tokens.access_token_revoked(jti):
        return False
    issued_with = await ctx.storage.refresh_tokens.by_access_token(jti)
    if issued_with is not None and issued_with.revoked:
        return False
    if issued_with is not None and issued_with.generation > 0:
        return True
    return await _session_lasts(ctx, str(claims["sid"]))


async def _confidential_client(ctx: Context, client: Client, client_id: str, client_secret: str | None) -> str:
    await ratelimit.ceremony(ctx, client, "oidc-token", account=f"client:{client_id}")
    registered = await oidc_clients.authenticate(ctx, client_id, client_secret)
    if registered.public:
        raise InvalidClient("Only confidential clients may use this endpoint.")
    return registered.client_id


async def _session_token_claims(ctx: Context, token: str) -> dict[str, Any] | None:
    try:
        return await _verified(ctx, token, typ=session_tokens.TYP, algorithms=[session_tokens.ALGORITHM])
    except InvalidToken:
        return None


async def _introspected_session_token(ctx: Context, client_id: str, claims: Mapping[str, Any]) -> dict[str, Any]:
    """A session token is active while its session lasts, and only a first-party client (a backend of this site,
    which session tokens are for) may learn so."""
    client = await oidc_clients.get(ctx, client_id)
    if client is None or not client.first_party or not await _session_lasts(ctx, str(claims["sid"])):
        return {"active": False}
    if await ctx.storage.users.get(str(claims["sub"])) is None:
        return {"active": False}
    answer = {"active": True, "token_type": "session_token"}
    answer.update({name: claims[name] for name in ("iss", "sub", "aud", "sid", "iat", "exp") if name in claims})
    return answer


async def _access_claims(ctx: Context, token: str) -> dict[str, Any] | None:
    try:
        return await verify_access_token(ctx, token)
    except InvalidToken:
        return None


async def revoke(
    ctx: Context, client: Client, *, client_id: str, client_secret: str | None, form: Mapping[str, str]
) -> None:
    """RFC 7009: revoke a refresh token (its whole family, and the access tokens it issued) or an access token.
    A token that is unknown, malformed or another client's is left alone, and answered the same (section 2.2).
    token_type_hint is not needed: a refresh token is looked up by its hash, anything else read as an access
    token.

    Raises:
        RateLimited: too many requests from this address or for this client.
        InvalidClient: client authentication failed, or the client is public.
        InvalidRequest: token missing.
    """
    async with audited(ctx, client, "oidc.revoke") as audit:
        audit.detail["client_id"] = client_id[:64]
        registered = await _confidential_client(ctx, client, client_id, client_secret)
        if "token" not in form:
            raise InvalidRequest("token is missing.")
        refresh = await ctx.storage.refresh_tokens.get(digest(form["token"]))
        if refresh is not None and refresh.client_id == registered:
            await ctx.storage.refresh_tokens.revoke_family(refresh.family_id)
            audit.user_id = refresh.user_id
            audit.detail.update({"token_type": "refresh_token", "family_id": refresh.family_id})
            return
        claims = await _access_claims(ctx, form["token"])
        if claims is not None and claims.get("client_id") == registered:
            expires_at = ctx.clock() + ACCESS_TOKEN_LIFETIME  # no later than the token's own expiry
            await ctx.storage.refresh_tokens.revoke_access_token(str(claims["jti"]), expires_at)
            audit.user_id = str(claims["sub"])
            audit.detail.update({"token_type": "access_token", "jti": claims["jti"]})


async def introspect(
    ctx: Context, client: Client, *, client_id: str, client_secret: str | None, form: Mapping[str, str]
) -> dict[str, Any]:
    """RFC 7662: what a live access or refresh token of the calling client says, or a live session token
    (`POST /auth/session/token`) to a first-party client (a backend of the site); `{"active": false}` for
    anything else (unknown, expired, revoked, another client's, its session ended, its user gone).

    Raises:
        RateLimited: too many requests from this address or for this client.
        InvalidClient: client authentication failed, or the client is public.
        InvalidRequest: token missing.
    """
    registered = await _confidential_client(ctx, client, client_id, client_secret)
    if "token" not in form:
        raise InvalidRequest("token is missing.")
    inactive: dict[str, Any] = {"active": False}
    now = ctx.clock()
    refresh = await ctx.storage.refresh_tokens.get(digest(form["token"]))
    if refresh is not None:
        live = refresh.used_at is None and not refresh.revoked and now < refresh.expires_at
        if not live or refresh.client_id != registered or await ctx.storage.users.get(refresh.user_id) is None:
            return inactive
        return {
            "active": True,
            "token_type": "refresh_token",
            "iss": issuer(ctx),
            "sub": refresh.user_id,
            "aud": refresh.client_id,
            "client_id": refresh.client_id,
            "scope": refresh.scope,
            "sid": refresh.sid,
            "iat": int(refresh.created_at.timestamp()),
            "exp": int(refresh.expires_at.timestamp()),
        }
    session_token = await _session_token_claims(ctx, form["token"])
    if session_token is not None:
        return await _introspected_session_token(ctx, registered, session_token)
    claims = await _access_claims(ctx, form["token"])
    if claims is None or claims.get("client_id") != registered or not await _access_token_live(ctx, claims):
        return inactive
    if await ctx.storage.users.get(str(claims["sub"])) is None:
        return inactive
    answer = {"active": True, "token_type": "Bearer"}
    answer.update({name: claims[name] for name in ("iss", "sub", "aud", "client_id", "scope", "exp", "iat", "sid")})
    return answer
