"""Sign people in with Passgate: the OpenID Connect authorization code flow with PKCE S256, for a web app's server.

    login = PassgateLogin(issuer="https://id.example", client_id="shop", client_secret="...",
                          redirect_uri="https://shop.example/auth/callback")
    url, pending = login.begin(next_path="/orders")        # keep pending.to_session() in the session, redirect
    signed_in = login.complete(request_query, pending)      # at the redirect URI: checks, exchange, ID token

``begin`` draws a fresh state, nonce and PKCE verifier; the caller keeps them in the person's session (they are
secrets of this one sign-in) and gives them back to ``complete``, which checks the answer in this order: a sign-in
is pending and its ``state`` matches (constant time); the RFC 9207 ``iss`` is the issuer (required when discovery
says the issuer sends it); no ``error``; then the code is exchanged (``client_secret_basic``, or ``none`` for a
public client), the ID token verified with ``PassgateVerifier`` (signature, ``iss``, ``aud`` the client_id, ``typ``
JWT or none, lifetime), its ``nonce`` compared, and userinfo read with the access token (its ``sub`` must be the
ID token's). ``abegin``/``acomplete`` do the same from async code. ``logout_url`` is the issuer's end-session URL
when discovery advertises one. The adapters (``login_starlette``, ``login_flask``, ``login_django``) are thin.

:raises LoginError: (from ``complete``) the callback is refused; see ``passgate_client.errors``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import secrets
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import httpx

from .errors import (
    AuthorizationDenied,
    IssuerMismatch,
    IssuerUnreachable,
    LoginError,
    NonceMismatch,
    PassgateError,
    StateMismatch,
    TokenExchangeFailed,
    WrongAudience,
)
from .user import PassgateUser
from .verifier import TYP_ID, PassgateVerifier

# Where a pending sign-in and the signed-in person live in the adapters' sessions.
PENDING_KEY = "passgate_login"
USER_KEY = "passgate_user"


def safe_next(value: object, default: str = "/") -> str:
    """``value`` when it is a path of this site (``/orders?id=1``), else ``default``: never a redirect elsewhere.

    ``//evil.example``, ``/\\evil.example``, ``https://evil.example`` and anything with control characters are
    refused, as browsers read them as another site.
    """
    if not isinstance(value, str) or not value.startswith("/") or value.startswith("//"):
        return default
    if "\\" in value or any(ord(c) < 0x21 or ord(c) == 0x7F for c in value):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return default
    return value


@dataclass(frozen=True, kw_only=True)
class PendingLogin:
    """The secrets of one sign-in under way, kept in the person's session between ``begin`` and ``complete``."""

    state: str
    nonce: str
    code_verifier: str
    next_path: str

    @classmethod
    def new(cls, next_path: str) -> PendingLogin:
        return cls(
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            code_verifier=secrets.token_urlsafe(48),  # 64 characters, within RFC 7636's 43 to 128
            next_path=safe_next(next_path),
        )

    @property
    def code_challenge(self) -> str:
        digest = hashlib.sha256(self.code_verifier.encode("ascii")).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def to_session(self) -> dict[str, str]:
        return {"state": self.state, "nonce": self.nonce, "code_verifier": self.code_verifier, "next": self.next_path}

    @classmethod
    def from_session(cls, data: object) -> PendingLogin | None:
        """The pending sign-in a session holds, or None (none was begun, or the session was tampered with)."""
        if not isinstance(data, Mapping):
            return None
        values = [data.get(name) for name in ("state", "nonce", "code_verifier", "next")]
        strings = [value for value in values if isinstance(value, str) and value]
        if len(strings) != len(values):
            return None
        state, nonce, code_verifier, next_path = strings
        return cls(state=state, nonce=nonce, code_verifier=code_verifier, next_path=safe_next(next_path))


@dataclass(frozen=True, kw_only=True)
class ProviderMetadata:
    """What the issuer's discovery document says this flow needs."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    userinfo_endpoint: str | None
    end_session_endpoint: str | None
    sends_iss: bool  # authorization_response_iss_parameter_supported (RFC 9207)

    @classmethod
    def from_document(cls, document: object, *, expected_issuer: str) -> ProviderMetadata:
        """:raises IssuerUnreachable: the document is not the expected issuer's, or lacks an endpoint."""
        if not isinstance(document, Mapping) or document.get("issuer") != expected_issuer:
            raise IssuerUnreachable(f"the discovery document is not that of {expected_issuer}")
        endpoints = {}
        for name in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint", "end_session_endpoint"):
            value = document.get(name)
            endpoints[name] = value if isinstance(value, str) and value else None
        authorization_endpoint, token_endpoint = endpoints["authorization_endpoint"], endpoints["token_endpoint"]
        if authorization_endpoint is None or token_endpoint is None:
            raise IssuerUnreachable("the discovery document names no authorization or token endpoint")
        return cls(
            issuer=expected_issuer,
            authorization_endpoint=authorization_endpoint,
            token_endpoint=token_endpoint,
            userinfo_endpoint=endpoints["userinfo_endpoint"],
            end_session_endpoint=endpoints["end_session_endpoint"],
            sends_iss=document.get("authorization_response_iss_parameter_supported") is True,
        )


@dataclass(frozen=True, kw_only=True)
class SignedIn:
    """A sign-in that came back and was proven: the ID token's user, userinfo's claims, and the tokens."""

    user: PassgateUser
    userinfo: Mapping[str, Any]
    id_token: str
    access_token: str
    access_token_expires_at: int
    refresh_token: str | None
    scope: tuple[str, ...]
    next_path: str

    @property
    def sub(self) -> str:
        return self.user.sub

    def session_user(self) -> SessionUser:
        return SessionUser.from_sign_in(self)


@dataclass(frozen=True, kw_only=True)
class SessionUser:
    """Who is signed in to the app, as the adapters keep it in the session (no access or refresh token: an app that
    calls APIs with them keeps them server-side itself, from ``SignedIn``)."""

    sub: str
    preferred_username: str | None
    name: str | None
    email: str | None
    id_token: str  # the logout hint

    @classmethod
    def from_sign_in(cls, signed_in: SignedIn) -> SessionUser:
        claims = signed_in.userinfo
        return cls(
            sub=signed_in.sub,
            preferred_username=_str(claims.get("preferred_username")),
            name=_str(claims.get("name")),
            email=_str(claims.get("email")),
            id_token=signed_in.id_token,
        )

    @property
    def display_name(self) -> str:
        return self.preferred_username or self.name or self.sub

    def to_session(self) -> dict[str, str | None]:
        return {
            "sub": self.sub,
            "preferred_username": self.preferred_username,
            "name": self.name,
            "email": self.email,
            "id_token": self.id_token,
        }

    @classmethod
    def from_session(cls, data: object) -> SessionUser | None:
        if not isinstance(data, Mapping) or not isinstance(data.get("sub"), str):
            return None
        if not isinstance(data.get("id_token"), str):
            return None
        return cls(
            sub=data["sub"],
            preferred_username=_str(data.get("preferred_username")),
            name=_str(data.get("name")),
            email=_str(data.get("email")),
            id_token=data["id_token"],
        )


class PassgateLogin:
    """The code flow of one client: ``begin`` builds the authorization URL, ``complete`` checks the callback.

    A confidential client (``client_secret`` given) authenticates with ``client_secret_basic``; a public one sends
    its ``client_id`` only. ``transport``/``async_transport`` are httpx's, for every request to the issuer.
    """

    def __init__(
        self,
        *,
        issuer: str,
        client_id: str,
        redirect_uri: str,
        client_secret: str | None = None,
        post_logout_redirect_uri: str | None = None,
        scope: Collection[str] = ("openid", "profile"),
        timeout: float = 5.0,
        leeway: float = 30.0,
        metadata_lifetime: float = 300.0,
        clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not issuer or not client_id or not redirect_uri:
            raise ValueError("issuer, client_id and redirect_uri are required")
        scope = scope.split() if isinstance(scope, str) else scope
        if "openid" not in scope:
            raise ValueError("scope must include openid")
        self.issuer = issuer
        self.client_id = client_id
        self.redirect_uri = redirect_uri
        self.post_logout_redirect_uri = post_logout_redirect_uri
        self.scope = tuple(scope)
        self._client_secret = client_secret
        self._timeout = timeout
        self._clock = clock
        self._transport = transport
        self._async_transport = async_transport
        self._metadata_lifetime = metadata_lifetime
        self._metadata: ProviderMetadata | None = None
        self._metadata_until = 0.0
        self._lock = threading.Lock()
        # ID tokens are typ JWT (or have no typ), for this client only.
        self.verifier = PassgateVerifier(
            issuer,
            client_id,
            typ=(TYP_ID, None),
            leeway=leeway,
            timeout=timeout,
            clock=clock,
            transport=transport,
            async_transport=async_transport,
        )

    @property
    def discovery_uri(self) -> str:
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"

    # -- sync ---------------------------------------------------------------------------------------------------

    def metadata(self) -> ProviderMetadata:
        """The issuer's discovery document, cached for ``metadata_lifetime`` seconds.

        :raises IssuerUnreachable: it could not be had.
        """
        cached = self._cached_metadata()
        if cached is not None:
            return cached
        with self._http() as client:
            return self._keep_metadata(_json_of(_send(client.get, self.discovery_uri)))

    def begin(self, next_path: str = "/", **extra: str) -> tuple[str, PendingLogin]:
        """A new sign-in: the authorization URL to send the person to, and what to keep in their session.

        ``extra`` are more authorization parameters (``prompt="login"``, ``login_hint=...``, ``max_age="0"``).
        """
        pending = PendingLogin.new(next_path)
        return self.authorization_url(self.metadata(), pending, **extra), pending

    def complete(self, parameters: Mapping[str, str], pending: PendingLogin | None) -> SignedIn:
        """Check the authorization response the person brought back (the callback's query) and finish the sign-in.

        :raises LoginError: state, iss, error, exchange or nonce refused (``StateMismatch``...).
        :raises PassgateTokenError: the ID token does not verify.
        :raises IssuerUnreachable: the issuer could not be asked.
        """
        metadata = self.metadata()
        pending = self._check_response(parameters, pending, metadata)
        with self._http() as client:
            tokens = _tokens_of(_send(client.post, metadata.token_endpoint, **self._token_request(parameters, pending)))
            user = self.verifier.verify(tokens["id_token"])
            self._check_id_token(user, pending)
            userinfo = self._userinfo_request(metadata, tokens)
            claims = {} if userinfo is None else _json_of(_send(client.get, userinfo[0], headers=userinfo[1]))
        return self._signed_in(tokens, user, claims, pending)

    def after_logout(self, *, id_token_hint: str | None, default: str) -> str:
        """Where to send a person who signed out of the app: Passgate's end-session URL when discovery advertises
        one (and Passgate can be asked), else ``default``. Without an ID token (nobody was signed in to the app)
        there is no Passgate session of the app's to end: ``default``."""
        if not id_token_hint:
            return default
        try:
            return self.logout_url(self.metadata(), id_token_hint=id_token_hint) or default
        except IssuerUnreachable:
            return default  # signed out of the app all the same

    # -- async --------------------------------------------------------------------------------------------------

    async def ametadata(self) -> ProviderMetadata:
        """``metadata`` from async code."""
        cached = self._cached_metadata()
        if cached is not None:
            return cached
        async with self._ahttp() as client:
            return self._keep_metadata(_json_of(await _asend(client.get, self.discovery_uri)))

    async def abegin(self, next_path: str = "/", **extra: str) -> tuple[str, PendingLogin]:
        """``begin`` from async code."""
        pending = PendingLogin.new(next_path)
        return self.authorization_url(await self.ametadata(), pending, **extra), pending

    async def acomplete(self, parameters: Mapping[str, str], pending: PendingLogin | None) -> SignedIn:
        """``complete`` from async code (same checks, same errors)."""
        metadata = await self.ametadata()
        pending = self._check_response(parameters, pending, metadata)
        async with self._ahttp() as client:
            request = self._token_request(parameters, pending)
            tokens = _tokens_of(await _asend(client.post, metadata.token_endpoint, **request))
            user = await self.verifier.averify(tokens["id_token"])
            self._check_id_token(user, pending)
            userinfo = self._userinfo_request(metadata, tokens)
            claims = {} if userinfo is None else _json_of(await _asend(client.get, userinfo[0], headers=userinfo[1]))
        return self._signed_in(tokens, user, claims, pending)

    async def aafter_logout(self, *, id_token_hint: str | None, default: str) -> str:
        """``after_logout`` from async code."""
        if not id_token_hint:
            return default
        try:
            return self.logout_url(await self.ametadata(), id_token_hint=id_token_hint) or default
        except IssuerUnreachable:
            return default

    # -- the pieces both share ----------------------------------------------------------------------------------

    def authorization_url(self, metadata: ProviderMetadata, pending: PendingLogin, **extra: str) -> str:
        parameters = {
            **extra,
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": " ".join(self.scope),
            "state": pending.state,
            "nonce": pending.nonce,
            "code_challenge": pending.code_challenge,
            "code_challenge_method": "S256",
        }
        separator = "&" if "?" in metadata.authorization_endpoint else "?"
        return metadata.authorization_endpoint + separator + urlencode(parameters)

    def logout_url(self, metadata: ProviderMetadata, *, id_token_hint: str | None) -> str | None:
        """The issuer's RP-initiated logout URL, or None when discovery advertises no ``end_session_endpoint`` (the
        app's own session is then all there is to end)."""
        if metadata.end_session_endpoint is None:
            return None
        parameters = {"client_id": self.client_id}
        if id_token_hint:
            parameters["id_token_hint"] = id_token_hint
        if self.post_logout_redirect_uri:
            parameters["post_logout_redirect_uri"] = self.post_logout_redirect_uri
        separator = "&" if "?" in metadata.end_session_endpoint else "?"
        return metadata.end_session_endpoint + separator + urlencode(parameters)

    def _check_response(
        self, parameters: Mapping[str, str], pending: PendingLogin | None, metadata: ProviderMetadata
    ) -> PendingLogin:
        if pending is None:
            raise StateMismatch("no sign-in is pending in this session")
        state = parameters.get("state")
        if not isinstance(state, str) or not hmac.compare_digest(state.encode(), pending.state.encode()):
            raise StateMismatch("the response's state is not that of the sign-in pending in this session")
        iss = parameters.get("iss")
        if iss is None and metadata.sends_iss:
            raise IssuerMismatch("the response has no iss, which the issuer always sends (RFC 9207)")
        if iss is not None and iss != self.issuer:
            raise IssuerMismatch(f"the response comes from {iss!r}, not {self.issuer!r} (RFC 9207)")
        error = parameters.get("error")
        if error is not None:
            description = parameters.get("error_description") or error
            raise AuthorizationDenied(f"the issuer answered {error}: {description}", error=error)
        if not parameters.get("code"):
            raise LoginError("the response has neither a code nor an error")
        return pending

    def _token_request(self, parameters: Mapping[str, str], pending: PendingLogin) -> dict[str, Any]:
        form = {
            "grant_type": "authorization_code",
            "code": parameters["code"],
            "redirect_uri": self.redirect_uri,
            "code_verifier": pending.code_verifier,
        }
        headers = {"Accept": "application/json"}
        if self._client_secret is None:
            form["client_id"] = self.client_id
        else:
            # RFC 6749 section 2.3.1: each part form-urlencoded before the Basic encoding.
            pair = f"{quote(self.client_id, safe='')}:{quote(self._client_secret, safe='')}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
        return {"data": form, "headers": headers}

    def _check_id_token(self, user: PassgateUser, pending: PendingLogin) -> None:
        nonce = user.claims.get("nonce")
        if not isinstance(nonce, str) or not hmac.compare_digest(nonce.encode(), pending.nonce.encode()):
            raise NonceMismatch("the ID token's nonce is not that of this sign-in")
        azp = user.claims.get("azp")
        if azp is not None and azp != self.client_id:
            raise WrongAudience(f"the ID token was issued to {azp!r}, not to {self.client_id!r}")

    def _userinfo_request(
        self, metadata: ProviderMetadata, tokens: Mapping[str, Any]
    ) -> tuple[str, dict[str, str]] | None:
        if metadata.userinfo_endpoint is None:
            return None
        return metadata.userinfo_endpoint, {"Authorization": f"Bearer {tokens['access_token']}"}

    def _signed_in(
        self, tokens: Mapping[str, Any], user: PassgateUser, userinfo: object, pending: PendingLogin
    ) -> SignedIn:
        if not isinstance(userinfo, Mapping):
            raise LoginError("userinfo did not answer a JSON object")
        if userinfo and userinfo.get("sub") != user.sub:
            # OpenID Connect Core 5.3.2: a userinfo answer about someone else must not be used.
            raise LoginError("userinfo's sub is not the ID token's")
        scope = tokens.get("scope")
        expires_in = tokens.get("expires_in")
        lifetime = expires_in if isinstance(expires_in, int) and not isinstance(expires_in, bool) else 0
        refresh_token = tokens.get("refresh_token")
        return SignedIn(
            user=user,
            userinfo=MappingProxyType(dict(userinfo)),
            id_token=tokens["id_token"],
            access_token=tokens["access_token"],
            access_token_expires_at=int(self._clock()) + lifetime,
            refresh_token=refresh_token if isinstance(refresh_token, str) else None,
            scope=tuple(scope.split()) if isinstance(scope, str) else self.scope,
            next_path=pending.next_path,
        )

    def _cached_metadata(self) -> ProviderMetadata | None:
        with self._lock:
            if self._metadata is not None and self._clock() < self._metadata_until:
                return self._metadata
            return None

    def _keep_metadata(self, document: object) -> ProviderMetadata:
        metadata = ProviderMetadata.from_document(document, expected_issuer=self.issuer)
        with self._lock:
            self._metadata = metadata
            self._metadata_until = self._clock() + self._metadata_lifetime
        return metadata

    def _http(self) -> httpx.Client:
        return httpx.Client(timeout=self._timeout, follow_redirects=False, transport=self._transport)

    def _ahttp(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=self._timeout, follow_redirects=False, transport=self._async_transport)


@dataclass(frozen=True, kw_only=True)
class LoginRefusal:
    """What the adapters answer a refused callback: one table from error to status, and a small page."""

    status: int
    code: str
    html: str


def refusal_of(error: PassgateError, *, retry_url: str) -> LoginRefusal:
    """400 for a callback refused (forged, replayed, another issuer's, an error answer), 503 when the issuer could
    not be asked: no verdict on the person."""
    status = 503 if isinstance(error, IssuerUnreachable) else 400
    title = "The sign-in service could not be reached" if status == 503 else "The sign-in did not succeed"
    page = (
        "<!doctype html><meta charset=utf-8><title>Sign-in failed</title>"
        f"<h1>{html.escape(title)}</h1><p id=error-code>{html.escape(error.code)}</p>"
        f'<p><a href="{html.escape(retry_url)}">Try again</a></p>'
    )
    return LoginRefusal(status=status, code=error.code, html=page)


def _send(method: Callable[..., httpx.Response], url: str, **options: Any) -> httpx.Response:
    try:
        return method(url, **options)
    except httpx.HTTPError as error:
        raise IssuerUnreachable(f"{url}: {error.__class__.__name__}") from error


async def _asend(method: Callable[..., Any], url: str, **options: Any) -> httpx.Response:
    try:
        response: httpx.Response = await method(url, **options)
    except httpx.HTTPError as error:
        raise IssuerUnreachable(f"{url}: {error.__class__.__name__}") from error
    return response


def _json_of(response: httpx.Response) -> Any:
    if response.status_code != 200:
        raise IssuerUnreachable(f"{response.url} answered HTTP {response.status_code}")
    try:
        return json.loads(response.content)
    except ValueError as error:
        raise IssuerUnreachable(f"{response.url} did not answer JSON") from error


def _tokens_of(response: httpx.Response) -> dict[str, Any]:
    """The token endpoint's answer: an access token and an ID token, or ``TokenExchangeFailed``."""
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    if response.status_code != 200:
        error = body.get("error") if isinstance(body, dict) and isinstance(body.get("error"), str) else None
        if error is None and response.status_code >= 500:
            raise IssuerUnreachable(f"the token endpoint answered HTTP {response.status_code}")
        raise TokenExchangeFailed(
            f"the token endpoint refused the code: HTTP {response.status_code} {error or ''}".rstrip(), error=error
        )
    if not isinstance(body, dict):
        raise TokenExchangeFailed("the token endpoint did not answer a JSON object", error=None)
    for name in ("access_token", "id_token"):
        if not isinstance(body.get(name), str) or not body[name]:
            raise TokenExchangeFailed(f"the token endpoint's answer has no {name}", error=None)
    return body


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None
