"""Verify a Passgate token offline against the issuer's published keys."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

import httpx
from joserfc import jws, jwt
from joserfc.errors import JoseError

from ._jwks import KeyCache, PublicKey, cache_lifetime, parse_key_set
from .errors import (
    AuthenticationTooOld,
    InsufficientAcr,
    IssuerUnreachable,
    PassgateTokenError,
    TokenExpired,
    TokenNotYetValid,
    UnknownKey,
    UnsupportedAlgorithm,
    WrongAudience,
    WrongIssuer,
    WrongType,
)
from .user import PassgateUser

# Pinned: the header's alg never chooses a verification method outside this table.
ALGORITHMS: dict[str, str] = {"ES256": "EC", "RS256": "RSA"}
# Passgate's authentication context classes, weakest first: a passkey, and a hardware-bound attested passkey.
ACR_ORDER: tuple[str, ...] = ("phr", "phrh")
TYP_SESSION = "session+jwt"
TYP_ACCESS = "at+jwt"
TYP_ID = "JWT"


class PassgateVerifier:
    """Checks Passgate tokens: signature with a published ES256/RS256 key, typ, iss, aud, exp, nbf, iat, acr, age.

    Keys come from ``jwks_uri`` or, without it, from the ``jwks_uri`` of ``{issuer}/.well-known/openid-configuration``.
    The key set is cached for its Cache-Control max-age; an unknown kid fetches it again at most once every
    ``refetch_interval`` seconds; when the issuer cannot be reached the last good set is used.
    Use ``verify`` from sync code and ``averify`` from async code; both share one cache.
    ``typ`` may hold ``None``: a token without a ``typ`` header is then accepted (ID tokens may have none).
    ``transport``/``async_transport`` are httpx's, for the key fetches (an app served in-process, a proxy).
    """

    def __init__(
        self,
        issuer: str,
        audience: str | Collection[str],
        *,
        jwks_uri: str | None = None,
        typ: Collection[str | None] = (TYP_SESSION, TYP_ACCESS),
        leeway: float = 30.0,
        require_acr: str | None = None,
        max_age: float | None = None,
        refetch_interval: float = 30.0,
        default_cache_lifetime: float = 300.0,
        max_cache_lifetime: float = 86400.0,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
        transport: httpx.BaseTransport | None = None,
        async_transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not issuer:
            raise ValueError("issuer is required")
        expected_audience = (audience,) if isinstance(audience, str) else tuple(audience)
        if not expected_audience or not all(expected_audience):
            raise ValueError("audience is required")
        if not typ:
            raise ValueError("at least one token type must be accepted")
        check_acr_name(require_acr)
        self.expected_issuer = issuer
        self.expected_audience = expected_audience
        self.accepted_types = frozenset(None if t is None else _media_type(t) for t in typ)
        self.leeway = leeway
        self.require_acr = require_acr
        self.max_age = max_age
        self.jwks_uri = jwks_uri
        self.discovery_uri = issuer.rstrip("/") + "/.well-known/openid-configuration"
        self._timeout = timeout
        self._clock = clock
        self._transport = transport
        self._async_transport = async_transport
        self._default_lifetime = default_cache_lifetime
        self._max_lifetime = max_cache_lifetime
        self._cache = KeyCache(refetch_interval=refetch_interval)
        self._lock = threading.Lock()

    # -- the two entry points -----------------------------------------------------------------------------------

    def verify(self, token: str, *, require_acr: str | None = None, max_age: float | None = None) -> PassgateUser:
        """The user a token proves, checked from sync code (may fetch the JWKS with a blocking request).

        ``require_acr`` and ``max_age`` add to (never loosen) the verifier's own.

        :raises PassgateTokenError: the token is refused; ``InsufficientAuthentication`` when only acr or age fail.
        :raises IssuerUnreachable: no key set was cached and the issuer could not give one.
        """
        header = self._header(token)
        now = self._clock()
        kid = header["kid"]
        refreshed = not self._cache.is_fresh(now)
        if refreshed:
            self._refresh(now)
        key = self._key(kid)
        if key is None and not refreshed and self._take_forced_fetch(now):
            self._refresh(now)
            key = self._key(kid)
        return self._check(token, header, key, now, require_acr, max_age)

    async def averify(
        self, token: str, *, require_acr: str | None = None, max_age: float | None = None
    ) -> PassgateUser:
        """``verify`` for async code: the JWKS is fetched without blocking the event loop."""
        header = self._header(token)
        now = self._clock()
        kid = header["kid"]
        refreshed = not self._cache.is_fresh(now)
        if refreshed:
            await self._arefresh(now)
        key = self._key(kid)
        if key is None and not refreshed and self._take_forced_fetch(now):
            await self._arefresh(now)
            key = self._key(kid)
        return self._check(token, header, key, now, require_acr, max_age)

    # -- the checks, in order -----------------------------------------------------------------------------------

    def _header(self, token: str) -> dict[str, Any]:
        try:
            header = dict(jws.extract_compact(token.encode("ascii")).protected)
        except (JoseError, ValueError, UnicodeError) as error:
            raise PassgateTokenError("the token is not a compact JWS") from error
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in ALGORITHMS:
            raise UnsupportedAlgorithm(f"alg {alg!r} is not ES256 or RS256")
        typ = header.get("typ")
        if typ is not None and not isinstance(typ, str):
            raise WrongType(f"typ {typ!r} is not a string")
        if (None if typ is None else _media_type(typ)) not in self.accepted_types:
            raise WrongType(f"typ {typ!r} is not one of {sorted(map(str, self.accepted_types))}")
        if not isinstance(header.get("kid"), str):
            raise PassgateTokenError("the token names no kid")
        return header

    def _key(self, kid: str) -> PublicKey | None:
        return None if self._cache.keys is None else self._cache.keys.get(kid)

    def _check(
        self,
        token: str,
        header: Mapping[str, Any],
        key: PublicKey | None,
        now: float,
        require_acr: str | None,
        max_age: float | None,
    ) -> PassgateUser:
        alg = header["alg"]
        if key is None:
            raise UnknownKey(f"no published key has kid {header['kid']!r}")
        if key.key_type != ALGORITHMS[alg] or key.get("alg", alg) != alg:
            raise PassgateTokenError(f"key {header['kid']!r} is not a key for {alg}")
        try:
            claims = jwt.decode(token, key, algorithms=[alg]).claims
        except (JoseError, ValueError) as error:
            raise PassgateTokenError("the signature does not verify") from error
        if claims.get("iss") != self.expected_issuer:
            raise WrongIssuer(f"iss {claims.get('iss')!r} is not {self.expected_issuer!r}")
        audiences = claims.get("aud")
        audiences = [audiences] if isinstance(audiences, str) else audiences
        if not isinstance(audiences, list) or not any(a in self.expected_audience for a in audiences):
            raise WrongAudience(f"aud {claims.get('aud')!r} does not name {list(self.expected_audience)}")
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise PassgateTokenError("the token names no sub")
        exp = _number(claims, "exp")
        if exp is None:
            raise PassgateTokenError("the token has no exp")
        if now - self.leeway >= exp:
            raise TokenExpired(f"the token expired at {exp:.0f}")
        nbf = _number(claims, "nbf")
        if nbf is not None and now + self.leeway < nbf:
            raise TokenNotYetValid(f"the token is valid from {nbf:.0f}")
        iat = _number(claims, "iat")
        if iat is not None and now + self.leeway < iat:
            raise TokenNotYetValid(f"the token was issued in the future, at {iat:.0f}")
        self._check_acr(claims.get("acr"), require_acr)
        self._check_age(claims, now, max_age)
        return PassgateUser.from_claims(claims, token_type=header.get("typ") or TYP_ID)

    def _check_acr(self, acr: object, require_acr: str | None) -> None:
        check_acr_name(require_acr)
        for required in (self.require_acr, require_acr):
            if required is not None and _acr_rank(acr) < _acr_rank(required):
                raise InsufficientAcr(f"acr {acr!r} is weaker than {required!r}", required_acr=required)

    def _check_age(self, claims: Mapping[str, Any], now: float, max_age: float | None) -> None:
        for limit in (self.max_age, max_age):
            if limit is None:
                continue
            auth_time = _number(claims, "auth_time")
            if auth_time is None:
                raise AuthenticationTooOld(
                    "the token has no auth_time, so its sign-in may be of any age", max_age=limit
                )
            if now - auth_time > limit + self.leeway:
                raise AuthenticationTooOld(
                    f"the sign-in is {now - auth_time:.0f} s old, more than {limit:.0f} s", max_age=limit
                )

    # -- the key set --------------------------------------------------------------------------------------------

    def _take_forced_fetch(self, now: float) -> bool:
        with self._lock:
            if not self._cache.may_force_fetch(now):
                return False
            self._cache.last_forced_fetch = now
            return True

    def _refresh(self, now: float) -> None:
        try:
            with httpx.Client(timeout=self._timeout, follow_redirects=False, transport=self._transport) as client:
                if self.jwks_uri is None:
                    self.jwks_uri = self._jwks_uri_from(_json(_get(client, self.discovery_uri)))
                self._store(_get(client, self.jwks_uri), now)
        except IssuerUnreachable as error:
            self._keep_stale(now, error)

    async def _arefresh(self, now: float) -> None:
        try:
            async with httpx.AsyncClient(
                timeout=self._timeout, follow_redirects=False, transport=self._async_transport
            ) as client:
                if self.jwks_uri is None:
                    self.jwks_uri = self._jwks_uri_from(_json(await _aget(client, self.discovery_uri)))
                self._store(await _aget(client, self.jwks_uri), now)
        except IssuerUnreachable as error:
            self._keep_stale(now, error)

    def _jwks_uri_from(self, document: Any) -> str:
        if not isinstance(document, dict) or document.get("issuer") != self.expected_issuer:
            raise IssuerUnreachable(f"{self.discovery_uri} is not the discovery document of {self.expected_issuer}")
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not jwks_uri:
            raise IssuerUnreachable(f"{self.discovery_uri} names no jwks_uri")
        return jwks_uri

    def _store(self, response: httpx.Response, now: float) -> None:
        keys = parse_key_set(_json(response))
        lifetime = cache_lifetime(
            response.headers.get("cache-control"),
            default=self._default_lifetime,
            minimum=self._cache.refetch_interval,
            maximum=self._max_lifetime,
        )
        with self._lock:
            self._cache.store(keys, now=now, lifetime=lifetime)

    def _keep_stale(self, now: float, error: IssuerUnreachable) -> None:
        """Go on with the last good set, asking the issuer again after the throttle rather than for every token.

        :raises IssuerUnreachable: there is no last good set.
        """
        if self._cache.keys is None:
            raise error
        with self._lock:
            self._cache.fresh_until = now + self._cache.refetch_interval


def _get(client: httpx.Client, url: str) -> httpx.Response:
    try:
        return client.get(url)
    except httpx.HTTPError as error:
        raise IssuerUnreachable(f"{url}: {error.__class__.__name__}") from error


async def _aget(client: httpx.AsyncClient, url: str) -> httpx.Response:
    try:
        return await client.get(url)
    except httpx.HTTPError as error:
        raise IssuerUnreachable(f"{url}: {error.__class__.__name__}") from error


def _json(response: httpx.Response) -> Any:
    if response.status_code != 200:
        raise IssuerUnreachable(f"{response.url} answered HTTP {response.status_code}")
    try:
        return json.loads(response.content)
    except ValueError as error:
        raise IssuerUnreachable(f"{response.url} did not answer JSON") from error


def _number(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PassgateTokenError(f"{name} is not a number")
    return float(value)


def _media_type(typ: str) -> str:
    # RFC 7515 4.1.9: compared without case, and "application/" may be left out.
    typ = typ.lower()
    return typ.removeprefix("application/") if "/" not in typ.removeprefix("application/") else typ


def _acr_rank(acr: object) -> int:
    return ACR_ORDER.index(acr) + 1 if acr in ACR_ORDER else 0


def check_acr_name(acr: str | None) -> None:
    if acr is not None and acr not in ACR_ORDER:
        raise ValueError(f"require_acr must be one of {ACR_ORDER}, not {acr!r}")
