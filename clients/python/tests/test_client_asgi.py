"""The FastAPI dependency and the Starlette backend, through httpx's ASGI transport, with keys from a real issuer."""

# No `from __future__ import annotations`: FastAPI reads the dependencies from annotations naming local variables.
from typing import Annotated

import httpx
from fastapi import Depends, FastAPI
from starlette.applications import Starlette
from starlette.authentication import requires
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from conftest import AUDIENCE, Clock, Issuer
from passgate_client import PassgateUser, PassgateVerifier
from passgate_client.fastapi import current_user
from passgate_client.starlette import PassgateBackend, PassgateStarletteUser, on_auth_error


def fastapi_app(verifier: PassgateVerifier) -> FastAPI:
    app = FastAPI()

    user_dependency = Depends(current_user(verifier))
    strong_user_dependency = Depends(current_user(verifier, require_acr="phrh", max_age=300))

    @app.get("/me")
    async def me(user: Annotated[PassgateUser, user_dependency]) -> dict[str, object]:
        return {"sub": user.sub, "acr": user.acr}

    @app.post("/payouts")
    async def payout(user: Annotated[PassgateUser, strong_user_dependency]) -> dict[str, object]:
        return {"sub": user.sub}

    return app


def client(app: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app.test")  # type: ignore[arg-type]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_fastapi_dependency_gives_the_user(issuer: Issuer, clock: Clock) -> None:
    async with client(fastapi_app(PassgateVerifier(issuer.url, AUDIENCE, clock=clock))) as app:
        answer = await app.get("/me", headers=bearer(issuer.token()))

    assert answer.status_code == 200
    assert answer.json() == {"sub": "user-1", "acr": "phr"}


def test_fastapi_dependency_declares_the_bearer_scheme(issuer: Issuer, clock: Clock) -> None:
    schema = fastapi_app(PassgateVerifier(issuer.url, AUDIENCE, clock=clock)).openapi()

    assert schema["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "A Passgate token",
    }
    assert schema["paths"]["/me"]["get"]["security"] == [{"HTTPBearer": []}]


async def test_fastapi_without_a_token_is_a_401_bearer_challenge(issuer: Issuer, clock: Clock) -> None:
    async with client(fastapi_app(PassgateVerifier(issuer.url, AUDIENCE, clock=clock))) as app:
        missing = await app.get("/me")
        basic = await app.get("/me", headers={"Authorization": "Basic dXNlcjpwYXNz"})

    for answer in (missing, basic):
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"] == "Bearer"
        assert answer.json()["detail"]["error"] == "missing_token"
    assert issuer.requests == {}


async def test_fastapi_refused_token_is_a_401_invalid_token(issuer: Issuer, clock: Clock) -> None:
    async with client(fastapi_app(PassgateVerifier(issuer.url, AUDIENCE, clock=clock))) as app:
        expired = await app.get("/me", headers=bearer(issuer.token(exp=int(clock.now) - 600)))
        garbage = await app.get("/me", headers=bearer("not-a-token"))

    assert expired.status_code == 401
    assert expired.headers["www-authenticate"] == 'Bearer error="invalid_token", error_description="expired"'
    assert expired.json()["detail"]["error"] == "expired"
    assert garbage.status_code == 401
    assert garbage.headers["www-authenticate"].startswith('Bearer error="invalid_token"')


async def test_fastapi_weak_or_old_sign_in_is_a_403_insufficient_user_authentication(
    issuer: Issuer, clock: Clock
) -> None:
    now = int(clock.now)
    async with client(fastapi_app(PassgateVerifier(issuer.url, AUDIENCE, clock=clock))) as app:
        weak = await app.post("/payouts", headers=bearer(issuer.token(acr="phr")))
        old = await app.post("/payouts", headers=bearer(issuer.token(acr="phrh", auth_time=now - 3600)))
        strong = await app.post("/payouts", headers=bearer(issuer.token(acr="phrh", auth_time=now - 60)))

    assert weak.status_code == 403
    assert weak.headers["www-authenticate"] == (
        'Bearer error="insufficient_user_authentication", error_description="insufficient_acr", acr_values="phrh"'
    )
    assert old.status_code == 403
    assert old.headers["www-authenticate"] == (
        'Bearer error="insufficient_user_authentication", error_description="too_old", max_age="300"'
    )
    assert strong.status_code == 200


async def test_fastapi_issuer_unreachable_is_a_503(issuer: Issuer, clock: Clock) -> None:
    token = issuer.token()
    issuer.stop()
    async with client(fastapi_app(PassgateVerifier(issuer.url, AUDIENCE, clock=clock))) as app:
        answer = await app.get("/me", headers=bearer(token))

    assert answer.status_code == 503
    assert answer.json()["detail"]["error"] == "issuer_unreachable"


def starlette_app(verifier: PassgateVerifier) -> Starlette:
    @requires("authenticated")
    async def me(request: Request) -> JSONResponse:
        user = request.user
        assert isinstance(user, PassgateStarletteUser)
        return JSONResponse({"sub": user.sub, "name": user.display_name, "scopes": request.auth.scopes})

    async def public(request: Request) -> JSONResponse:
        return JSONResponse({"authenticated": request.user.is_authenticated})

    backend = PassgateBackend(verifier)
    return Starlette(
        routes=[Route("/me", me), Route("/public", public)],
        middleware=[Middleware(AuthenticationMiddleware, backend=backend, on_error=on_auth_error)],
    )


async def test_starlette_backend_gives_request_user(issuer: Issuer, clock: Clock) -> None:
    async with client(starlette_app(PassgateVerifier(issuer.url, AUDIENCE, clock=clock))) as app:
        me = await app.get("/me", headers=bearer(issuer.token(scope="orders")))
        anonymous = await app.get("/public")
        refused = await app.get("/public", headers=bearer(issuer.token(aud="https://other.example")))

    assert me.status_code == 200
    assert me.json() == {"sub": "user-1", "name": "user-1", "scopes": ["authenticated", "orders"]}
    assert anonymous.json() == {"authenticated": False}
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == 'Bearer error="invalid_token", error_description="wrong_audience"'


async def test_starlette_backend_refuses_a_weak_sign_in_with_403(issuer: Issuer, clock: Clock) -> None:
    verifier = PassgateVerifier(issuer.url, AUDIENCE, clock=clock, require_acr="phrh")
    async with client(starlette_app(verifier)) as app:
        weak = await app.get("/me", headers=bearer(issuer.token(acr="phr")))

    assert weak.status_code == 403
    assert 'error="insufficient_user_authentication"' in weak.headers["www-authenticate"]
    assert weak.json()["error"] == "insufficient_acr"
