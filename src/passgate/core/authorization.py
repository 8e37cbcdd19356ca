"""The OpenID Connect authorization code flow's pure parts: reading an authorization request, and PKCE.

authlib supplies the RFC 7636 pieces (the verifier and challenge patterns, the S256 transform) and the URL
building; the ladder of checks is here, in the order a request is judged:

1. the client and its redirect URI. Until both are known good nothing may be sent to the redirect URI, so these
   failures are shown to the person (`PageError`), never redirected;
2. everything else, whose failures go back to the client at its redirect URI (`read_request`).
"""

from __future__ import annotations

import hmac
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc7636.challenge import (
    CODE_CHALLENGE_PATTERN,
    CODE_VERIFIER_PATTERN,
    create_s256_code_challenge,
)

from passgate.core.assurance import ACR_VALUES, PHR, PHRH
from passgate.core.errors import (
    AuthorizationError,
    InvalidClient,
    InvalidRequest,
    InvalidScope,
    PasskeyError,
    RegistrationNotSupported,
    RequestNotSupported,
    RequestUriNotSupported,
    UnsupportedResponseType,
)
from passgate.core.oidc_clients import OidcClient, redirect_uri_matches

# offline_access, like every scope, is granted to a client that is not first-party only once the person consented
# to it (OIDC Core section 11): on the consent page, now or before (`consent_needed`).
SUPPORTED_SCOPES = ("openid", "profile", "email", "offline_access")
# Request objects and client metadata in the request: refused with the errors OpenID Connect Core 3.1.2.6 names
# for a provider without them, before any other check, as the rest of the request may be inside the object.
FEATURES_NOT_SUPPORTED: dict[str, type[AuthorizationError]] = {
    "request": RequestNotSupported,
    "request_uri": RequestUriNotSupported,
    "registration": RegistrationNotSupported,
}
PROMPTS_SUPPORTED = ("none", "login", "consent")
# Added by Passgate itself to the request a person comes back to from the hosted sign-in page: the time (Unix
# seconds) a fresh sign-in was asked for. A sign-in at or after it is the fresh one, so the request goes on instead of
# asking again. It need not be secret nor signed: whoever builds a request could leave out prompt=login or max_age
# as well, the answer only goes to the client's own redirect URI, and the ID token's auth_time is the true time of
# the passkey's use, which a client asking for max_age checks. Only recent values count (`fresh_sign_in_after`).
LOGIN_AFTER = "passgate_login_after"

ResponseMode = Literal["query", "form_post"]
MAX_NONCE = 512  # what storage keeps with the code
Parameters = Iterable[tuple[str, str]]


class PageError(Exception):
    """An authorization request whose client or redirect URI is not known good: shown, never redirected."""

    def __init__(self, error: PasskeyError) -> None:
        super().__init__(error.message)
        self.error = error


@dataclass(frozen=True, kw_only=True)
class AuthorizationRequest:
    client: OidcClient
    redirect_uri: str
    state: str | None
    scope: tuple[str, ...]  # what is granted: the asked-for scopes the client may have and Passgate knows
    nonce: str | None
    code_challenge: str  # S256
    prompt_none: bool
    login_hint: str | None
    response_mode: ResponseMode = "query"
    prompt_login: bool = False
    max_age: int | None = None  # seconds
    acr_values: tuple[str, ...] = ()  # the asked-for values Passgate knows, in the client's order of preference
    id_token_hint: str | None = None
    login_after: int | None = None  # LOGIN_AFTER, when present and well formed
    prompt_consent: bool = False


def single_values(parameters: Parameters) -> dict[str, str]:
    """The parameters by name; empty values count as absent (RFC 6749 section 3.1).

    Raises:
        InvalidRequest: a parameter is given twice.
    """
    values: dict[str, str] = {}
    for name, value in parameters:
        if not value:
            continue
        if name in values:
            raise InvalidRequest(f"{name} is given more than once.")
        values[name] = value
    return values


def redirect_target(client: OidcClient | None, values: Mapping[str, str]) -> tuple[OidcClient, str]:
    """The client and the redirect URI errors may go to.

    Raises:
        PageError: unknown client, or a redirect URI missing or not registered for it (exactly, or RFC 8252
            loopback for a public client).
    """
    if client is None:
        raise PageError(InvalidClient("This application is not known to Passgate."))
    redirect_uri = values.get("redirect_uri")
    if redirect_uri is None:
        raise PageError(InvalidRequest("The application did not say where to send you back (redirect_uri)."))
    if not redirect_uri_matches(client, redirect_uri):
        raise PageError(InvalidRequest("The application asked to send you back to an address it has not registered."))
    return client, redirect_uri


def read_request(client: OidcClient, redirect_uri: str, values: Mapping[str, str]) -> AuthorizationRequest:
    """The authorization request, checked in order.

    Raises:
        RequestNotSupported, RequestUriNotSupported, RegistrationNotSupported: a request object or client metadata
            (FEATURES_NOT_SUPPORTED), whatever else the request holds.
        UnsupportedResponseType: response_type is not `code`.
        InvalidRequest: PKCE missing or not S256, a response_mode other than query and form_post, a prompt other
            than none, login and consent (or none with another), a max_age that is not a number of seconds, or a
            nonce too long. The claims parameter is ignored: a claim asked for and not returned is no error
            (OpenID Connect Core 5.5.1), and discovery says claims_parameter_supported false.
        InvalidScope: no `openid` among the scopes.
    """
    for name, refusal in FEATURES_NOT_SUPPORTED.items():
        if name in values:
            raise refusal()
    if values.get("response_type") != "code":
        raise UnsupportedResponseType()
    if response_mode_of(values) != values.get("response_mode", "query"):
        raise InvalidRequest("response_mode must be query or form_post.")
    challenge = values.get("code_challenge")
    if challenge is None:
        raise InvalidRequest("PKCE is required: code_challenge is missing.")
    if values.get("code_challenge_method") != "S256":
        raise InvalidRequest("PKCE must use code_challenge_method=S256.")
    if not CODE_CHALLENGE_PATTERN.match(challenge):
        raise InvalidRequest("code_challenge is malformed.")
    asked = values.get("scope", "").split()
    if "openid" not in asked:
        raise InvalidScope()
    if len(values.get("nonce", "")) > MAX_NONCE:
        raise InvalidRequest(f"nonce is longer than {MAX_NONCE} characters.")
    prompt = values.get("prompt", "").split()
    for value in prompt:
        if value not in PROMPTS_SUPPORTED:
            raise InvalidRequest(f"prompt={value} is not supported.")
    if "none" in prompt and len(prompt) > 1:
        raise InvalidRequest("prompt=none cannot be combined with another value.")
    max_age = values.get("max_age")
    if max_age is not None and not (max_age.isascii() and max_age.isdigit() and len(max_age) <= 12):
        raise InvalidRequest("max_age must be a number of seconds.")
    return AuthorizationRequest(
        client=client,
        redirect_uri=redirect_uri,
        state=values.get("state"),
        scope=tuple(s for s in SUPPORTED_SCOPES if s in asked and (s == "openid" or s in client.scopes)),
        nonce=values.get("nonce"),
        code_challenge=challenge,
        prompt_none="none" in prompt,
        response_mode=response_mode_of(values),
        login_hint=values.get("login_hint"),
        prompt_login="login" in prompt,
        max_age=int(max_age) if max_age is not None else None,
        acr_values=tuple(value for value in values.get("acr_values", "").split() if value in ACR_VALUES),
        id_token_hint=values.get("id_token_hint"),
        login_after=_seconds(values.get(LOGIN_AFTER)),
        prompt_consent="consent" in prompt,
    )


def consent_needed(request: AuthorizationRequest, remembered: Collection[str]) -> bool:
    """True if the person must be asked before the client gets what it asks for: a client that is not
    first-party asks for a scope beyond the `remembered` ones, or says prompt=consent.

    A first-party client is never asked: prompt=consent is then taken as met, the person having nothing to allow
    that the operator did not allow for them (OIDC Core section 3.1.2.1 leaves the asking to the provider).
    """
    if request.client.first_party:
        return False
    return request.prompt_consent or not set(request.scope) <= set(remembered)


def _seconds(value: str | None) -> int | None:
    return int(value) if value is not None and value.isascii() and value.isdigit() and len(value) <= 12 else None


def acr_met(acr: str | None, asked: tuple[str, ...]) -> bool:
    """True if nothing is asked, or the session's `acr` is one of `asked` (phrh meets phr: it is phr and more)."""
    if not asked:
        return True
    return acr is not None and (acr in asked or (acr == PHRH and PHR in asked))


def fresh_sign_in_after(request: AuthorizationRequest, *, now: int, window: int) -> int | None:
    """The time from which a sign-in counts as the fresh one this request came back with: its LOGIN_AFTER, if
    within `window` seconds before `now`; else None (no fresh sign-in has been asked for yet)."""
    at = request.login_after
    return at if at is not None and now - window <= at <= now else None


def response_mode_of(values: Mapping[str, str]) -> ResponseMode:
    """How the response goes back: form_post when asked for (errors too), else the query."""
    return "form_post" if values.get("response_mode") == "form_post" else "query"


def verifier_matches(verifier: str, challenge: str) -> bool:
    """True if `verifier` is well formed and its S256 transform is `challenge` (compared in constant time)."""
    if not CODE_VERIFIER_PATTERN.match(verifier):
        return False
    expected: str = create_s256_code_challenge(verifier)
    return hmac.compare_digest(expected.encode(), challenge.encode())


def response_uri(redirect_uri: str, parameters: Mapping[str, str | None]) -> str:
    """`redirect_uri` with the response's parameters added to its query (those that are None left out)."""
    result: str = add_params_to_uri(redirect_uri, [(k, v) for k, v in parameters.items() if v is not None])
    return result
