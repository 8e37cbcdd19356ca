"""The OpenID Connect provider's endpoints: authorization, token, userinfo, revocation, introspection, end-session
and discovery.

A thin edge over passgate.service.oidc: it reads the request (query, form, Basic credentials, bearer token)
and shapes the answers OAuth 2 asks for: redirects with the code or the error, RFC 6749 section 5.2 JSON errors,
RFC 6750 `WWW-Authenticate` challenges.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from passgate.core import authorization
from passgate.core.assurance import ACR_VALUES
from passgate.core.errors import InvalidClient, InvalidRequest, InvalidToken, OriginNotAllowed, PasskeyError
from passgate.service import consent, logout, oidc
from passgate.service.sessions import SignedIn
from passgate.web import pages
from passgate.web.context import bearer_token, clear_session_cookie, client_of, ctx_of, settings_of, signed_in
from passgate.web.csp import content_security_policy
from passgate.web.errors import status_for
from passgate.web.languages import language_of
from passgate.web.requests import check_origin

# Not in /openapi.json: these answer in the shapes OAuth 2 and OpenID Connect define (redirects, RFC 6749
# errors, an HTML page), described by the discovery document instead.
router = APIRouter(include_in_schema=False)
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
FORM = "application/x-www-form-urlencoded"
MAX_FORM = 16 * 1024
# The consent page's form posts the authorization request back with these two fields.
CONSENT_DECISION = "passgate_consent"  # allow or deny
CONSENT_CONFIRMATION = "passgate_confirmation"
CONSENT_FIELDS = (CONSENT_DECISION, CONSENT_CONFIRMATION)


@router.api_route("/oauth2/authorize", methods=["GET", "POST"])
async def authorize(request: Request) -> Response:
    """The authorization endpoint (code flow, PKCE S256, response_mode query or form_post), by GET or by a POSTed
    form."""
    ctx = ctx_of(request)
    try:
        parameters = await _authorization_parameters(request)
        decision = _consent_decision(request, parameters)
        parameters = [(name, value) for name, value in parameters if name not in CONSENT_FIELDS]
        read = await oidc.request_of(ctx, parameters)
    except authorization.PageError as exc:
        response = pages.render(request, "authorize_error.html", error=exc.error)
        response.status_code = status_for(exc.error)
        return response
    if isinstance(read, oidc.Redirect):
        return _back_to_client(request, read)
    outcome = await oidc.authorize(ctx, client_of(request), read, await signed_in(request), decision)
    if isinstance(outcome, consent.ConsentNeeded):
        return await _ask_consent(request, outcome, read, parameters)
    if isinstance(outcome, oidc.SignInNeeded):
        # Back to the same request once signed in, as a GET whatever it came as; when a fresh sign-in is asked
        # for, carrying when it was asked, so that the sign-in made then lets the request go on.
        again = [(name, value) for name, value in parameters if name != authorization.LOGIN_AFTER]
        if outcome.fresh_after is not None:
            again.append((authorization.LOGIN_AFTER, str(outcome.fresh_after)))
        back = {"next": f"{request.url.path}?{urlencode(again)}"}
        if outcome.login_hint:
            back["login_hint"] = outcome.login_hint
        return RedirectResponse(f"/signin?{urlencode(back)}", status_code=303, headers=NO_STORE)
    return _back_to_client(request, outcome)


def _consent_decision(request: Request, parameters: list[tuple[str, str]]) -> consent.Decision | None:
    """What the consent page's form posted, if this is it: only a POST from one of the site's own pages counts.

    Raises:
        PageError: the page's POST came from elsewhere (the pages' Origin check), or its values are not the page's.
    """
    if request.method != "POST" or not any(name in CONSENT_FIELDS for name, _ in parameters):
        return None
    try:
        check_origin(request, settings_of(request))
        values = authorization.single_values((name, value) for name, value in parameters if name in CONSENT_FIELDS)
    except (OriginNotAllowed, InvalidRequest) as exc:
        raise authorization.PageError(exc) from exc
    if values.get(CONSENT_DECISION) not in ("allow", "deny"):
        raise authorization.PageError(InvalidRequest("The consent page's answer is missing."))
    return consent.Decision(
        allow=values[CONSENT_DECISION] == "allow", confirmation=values.get(CONSENT_CONFIRMATION, "")
    )


async def _ask_consent(
    request: Request,
    asked: consent.ConsentNeeded,
    read: authorization.AuthorizationRequest,
    parameters: list[tuple[str, str]],
) -> Response:
    rp_name = settings_of(request).rp_name
    current = await signed_in(request)
    response = pages.render(
        request,
        "consent.html",
        user=current.user if current is not None else None,
        client=asked.client,
        scopes=[pages.scope_words(scope, rp_name, language_of(request)) for scope in asked.scopes],
        parameters=parameters,
        confirmation=asked.confirmation,
        decision_field=CONSENT_DECISION,
        confirmation_field=CONSENT_CONFIRMATION,
    )
    response.headers["Content-Security-Policy"] = _form_action_to(request, read.redirect_uri)
    return response


def _form_action_to(request: Request, uri: str) -> str:
    """The pages' Content-Security-Policy, its form-action letting a form's redirect go on to `uri`'s origin
    (browsers hold the redirect that answers a form to form-action too)."""
    target = urlsplit(uri)
    destination = f"{target.scheme}://{target.netloc}" if target.netloc else f"{target.scheme}:"
    return content_security_policy(settings_of(request).brand, form_action=destination)


def _back_to_client(request: Request, answer: oidc.Redirect) -> Response:
    if answer.response_mode == "query":
        return RedirectResponse(answer.location, status_code=302, headers=NO_STORE)
    # form_post: a page whose script posts the form to the redirect URI; its CSP lets the form go there only.
    response = pages.render(request, "form_post.html", answer=answer)
    target = urlsplit(answer.redirect_uri)
    destination = f"{target.scheme}://{target.netloc}" if target.netloc else f"{target.scheme}:"
    response.headers["Content-Security-Policy"] = (
        f"default-src 'none'; script-src 'self'; form-action {destination}; base-uri 'none'; frame-ancestors 'none'"
    )
    return response


async def _authorization_parameters(request: Request) -> list[tuple[str, str]]:
    if request.method == "GET":
        return request.query_params.multi_items()
    try:
        return await _form_pairs(request)
    except InvalidRequest as exc:
        raise authorization.PageError(exc) from exc


def _oauth_error(error: PasskeyError, *, basic: bool = False) -> JSONResponse:
    headers = dict(NO_STORE)
    if isinstance(error, InvalidClient) and basic:
        headers["WWW-Authenticate"] = 'Basic realm="passgate"'
    return JSONResponse(
        {"error": error.code, "error_description": error.message}, status_code=status_for(error), headers=headers
    )


async def _form_pairs(request: Request) -> list[tuple[str, str]]:
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != FORM:
        raise InvalidRequest(f"The body must be {FORM}.")
    body = await request.body()
    if len(body) > MAX_FORM:
        raise InvalidRequest("The body is too large.")
    try:
        return parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidRequest("The body is not a well-formed form.") from exc


async def _form(request: Request) -> dict[str, str]:
    return authorization.single_values(await _form_pairs(request))


def _client_credentials(request: Request, form: dict[str, str]) -> tuple[str, str | None, bool]:
    """client_id, client_secret and whether they came in Basic (RFC 6749 section 2.3.1)."""
    header = request.headers.get("authorization")
    if header is None:
        if "client_id" not in form:
            raise InvalidClient("Client authentication is missing.")
        return form["client_id"], form.get("client_secret"), False
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or "client_secret" in form:
        raise InvalidClient("Use one client authentication method: Basic, or client_secret in the form.")
    try:
        client_id, separator, secret = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidClient() from exc
    if not separator or form.get("client_id", unquote_plus(client_id)) != unquote_plus(client_id):
        raise InvalidClient()
    return unquote_plus(client_id), unquote_plus(secret), True


@router.post("/oauth2/token")
async def token(request: Request) -> Response:
    """The token endpoint: authorization_code and refresh_token, with client_secret_basic, client_secret_post or
    none."""
    basic = False
    try:
        form = await _form(request)
        client_id, secret, basic = _client_credentials(request, form)
        answer = await oidc.exchange(
            ctx_of(request), client_of(request), client_id=client_id, client_secret=secret, form=form
        )
    except PasskeyError as exc:
        response = _oauth_error(exc, basic=basic)
        if hasattr(exc, "retry_after"):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response
    return JSONResponse(answer, headers=NO_STORE)


async def _client_request(request: Request, use: Any) -> Response:
    """Revocation and introspection: a form and a confidential client's credentials; `use` gives the answer."""
    basic = False
    try:
        form = await _form(request)
        client_id, secret, basic = _client_credentials(request, form)
        answer = await use(ctx_of(request), client_of(request), client_id=client_id, client_secret=secret, form=form)
    except PasskeyError as exc:
        response = _oauth_error(exc, basic=basic)
        if hasattr(exc, "retry_after"):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response
    if answer is None:
        return Response(status_code=200, headers=NO_STORE)
    return JSONResponse(answer, headers=NO_STORE)


@router.post("/oauth2/revoke")
async def revoke(request: Request) -> Response:
    """RFC 7009 token revocation, for confidential clients: 200 whether or not the token was known."""
    return await _client_request(request, oidc.revoke)


@router.post("/oauth2/introspect")
async def introspect(request: Request) -> Response:
    """RFC 7662 token introspection, for confidential clients."""
    return await _client_request(request, oidc.introspect)


def _bearer_challenge(error: PasskeyError) -> Response:
    response = _oauth_error(error)
    response.headers["WWW-Authenticate"] = f'Bearer error="{error.code}"'
    return response


@router.api_route("/oauth2/userinfo", methods=["GET", "POST"])
async def userinfo(request: Request) -> Response:
    """The UserInfo endpoint: the access token in `Authorization: Bearer` (RFC 6750 section 2.1) or, in a POST,
    as the form's `access_token` (section 2.2); one of the two, never both (section 2)."""
    access_token = bearer_token(request)
    if request.method == "POST" and request.headers.get("content-type", "").split(";")[0].strip().lower() == FORM:
        try:
            in_body = (await _form(request)).get("access_token")
        except InvalidRequest as exc:
            return _token_missing(exc.message)
        if in_body is not None and access_token is not None:
            return _token_missing("Send the access token one way: the Authorization header or the form.")
        access_token = access_token or in_body or None
    if access_token is None:
        return _token_missing("The access token is missing.")
    try:
        claims = await oidc.userinfo(ctx_of(request), access_token)
    except InvalidToken as exc:
        return _bearer_challenge(exc)
    return JSONResponse(claims, headers=NO_STORE)


def _token_missing(description: str) -> Response:
    response = JSONResponse(
        {"error": "invalid_request", "error_description": description}, status_code=401, headers=NO_STORE
    )
    response.headers["WWW-Authenticate"] = 'Bearer realm="passgate"'
    return response


def _metadata(request: Request) -> dict[str, Any]:
    ctx = ctx_of(request)
    issuer = oidc.issuer(ctx)
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/oauth2/authorize",
        "token_endpoint": f"{issuer}/oauth2/token",
        "userinfo_endpoint": f"{issuer}/oauth2/userinfo",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [oidc.SIGNING_ALGORITHM],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "scopes_supported": list(authorization.SUPPORTED_SCOPES),
        "claims_supported": list(oidc.CLAIMS_SUPPORTED),
        "prompt_values_supported": list(authorization.PROMPTS_SUPPORTED),
        "acr_values_supported": list(ACR_VALUES),
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "authorization_response_iss_parameter_supported": True,
        "end_session_endpoint": f"{issuer}/oauth2/logout",
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        "revocation_endpoint": f"{issuer}/oauth2/revoke",
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "introspection_endpoint": f"{issuer}/oauth2/introspect",
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
    }


@router.api_route("/oauth2/logout", methods=["GET", "POST"])
async def end_session(request: Request) -> Response:
    """The end-session endpoint (RP-Initiated Logout 1.0), by GET or by a POSTed form."""
    ctx = ctx_of(request)
    try:
        pairs = request.query_params.multi_items() if request.method == "GET" else await _form_pairs(request)
        parameters = authorization.single_values(pairs)
        read = await logout.read(ctx, parameters)
    except InvalidRequest as exc:
        refused = pages.render(request, "logout_error.html", error=exc)
        refused.status_code = status_for(exc)
        return refused
    current = await signed_in(request)
    confirmed = parameters.get("confirmation") if request.method == "POST" else None
    if logout.decide(ctx, read, current, confirmed, posted=request.method == "POST") == "ask":
        return _ask_to_sign_out(request, read, parameters, current)
    ended = await logout.sign_out(ctx, client_of(request), read)
    response: Response
    if ended.location is None:
        response = pages.render(request, "logout_done.html")
    else:
        response = RedirectResponse(ended.location, status_code=303, headers=NO_STORE)
    clear_session_cookie(request, response)
    return response


def _ask_to_sign_out(
    request: Request, read: logout.LogoutRequest, parameters: dict[str, str], current: SignedIn | None
) -> Response:
    kept = ("id_token_hint", "client_id", "post_logout_redirect_uri", "state")
    response = pages.render(
        request,
        "logout_confirm.html",
        client=read.client,
        parameters={name: parameters[name] for name in kept if name in parameters},
        confirmation=logout.confirmation(ctx_of(request), current) if current else "",
    )
    if read.post_logout_redirect_uri:
        response.headers["Content-Security-Policy"] = _form_action_to(request, read.post_logout_redirect_uri)
    return response


@router.get("/.well-known/openid-configuration")
async def openid_configuration(request: Request) -> Response:
    """OpenID Connect Discovery: what this provider implements, and where."""
    return JSONResponse(_metadata(request), headers={"Cache-Control": "public, max-age=300"})


@router.get("/.well-known/oauth-authorization-server")
async def authorization_server_metadata(request: Request) -> Response:
    """RFC 8414 authorization server metadata (the same document)."""
    return JSONResponse(_metadata(request), headers={"Cache-Control": "public, max-age=300"})
