"""CORS: the configured origins get exactly the headers they need, preflights answered; every other origin none."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest

from passgate.config import ConfigError, load_settings
from passgate.testing import SoftwareAuthenticator
from tests.web.conftest import ORIGIN, Server, sign_up

SHOP = "http://localhost:5173"  # a page of another origin, same rp id
OTHER = "http://localhost:9999"  # a page nobody configured


def cors_headers(response: httpx.Response) -> dict[str, str]:
    return {
        name.lower(): value for name, value in response.headers.items() if name.lower().startswith("access-control-")
    }


@pytest.fixture
def shop_server(make_server: Callable[..., Server]) -> Server:
    return make_server(origins=[ORIGIN, SHOP], cors_origins=[SHOP])


async def test_a_preflight_from_a_configured_origin_is_answered_with_credentials(shop_server: Server) -> None:
    async with shop_server.client() as client:
        response = await client.options(
            "/auth/passkey/register/begin",
            headers={
                "Origin": SHOP,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )
    assert response.status_code == 204
    assert cors_headers(response) == {
        "access-control-allow-origin": SHOP,
        "access-control-allow-credentials": "true",
        "access-control-allow-methods": "GET, POST, PATCH, DELETE",
        "access-control-allow-headers": "Content-Type, Authorization, Passgate-Ceremony",
        "access-control-max-age": "600",
    }
    assert response.headers["vary"] == "Origin"


async def test_a_configured_origins_requests_are_readable_with_the_persons_cookies(shop_server: Server) -> None:
    authenticator = SoftwareAuthenticator()
    async with shop_server.client() as client:
        await sign_up(client, authenticator, "ada")
        response = await client.get("/auth/session", headers={"Origin": SHOP})
    assert response.status_code == 200
    assert response.json()["user"]["username"] == "ada"
    assert cors_headers(response) == {
        "access-control-allow-origin": SHOP,
        "access-control-allow-credentials": "true",
        "access-control-expose-headers": "Passgate-Ceremony, Retry-After",
    }
    assert "Origin" in response.headers["vary"]


async def test_refusals_carry_the_headers_too_so_the_page_can_read_why(shop_server: Server) -> None:
    async with shop_server.client() as client:
        response = await client.get("/auth/account", headers={"Origin": SHOP})
    assert response.status_code == 401
    assert response.json()["error"] == "not_signed_in"
    assert cors_headers(response)["access-control-allow-origin"] == SHOP


@pytest.mark.parametrize("origin", [OTHER, "null", "http://localhost:51730", "http://localhost:517", SHOP.upper()])
async def test_every_other_origin_gets_no_cors_header(shop_server: Server, origin: str) -> None:
    async with shop_server.client() as client:
        preflight = await client.options(
            "/auth/passkey/register/begin", headers={"Origin": origin, "Access-Control-Request-Method": "POST"}
        )
        simple = await client.get("/auth/session", headers={"Origin": origin})
    assert preflight.status_code != 204  # not answered: the route has no OPTIONS
    assert cors_headers(preflight) == {}
    assert cors_headers(simple) == {}


async def test_the_sites_own_origin_and_requests_without_an_origin_get_no_cors_header(shop_server: Server) -> None:
    async with shop_server.client() as client:
        same_origin = await client.get("/auth/session", headers={"Origin": ORIGIN})
        no_origin = await client.get("/static/passgate.js", headers={"Origin": ""})
    assert cors_headers(same_origin) == {}
    assert cors_headers(no_origin) == {}


async def test_without_cors_origins_no_origin_gets_cors_headers(make_server: Callable[..., Server]) -> None:
    server = make_server(origins=[ORIGIN, SHOP])  # an allowed origin, but not a CORS one
    async with server.client() as client:
        response = await client.get("/static/passgate-elements.js", headers={"Origin": SHOP})
    assert response.status_code == 200
    assert cors_headers(response) == {}


async def test_the_browser_client_loads_as_a_module_on_a_configured_origins_page(shop_server: Server) -> None:
    async with shop_server.client() as client:
        response = await client.get("/static/passgate-elements.js", headers={"Origin": SHOP})
    assert response.status_code == 200
    assert cors_headers(response)["access-control-allow-origin"] == SHOP


@pytest.mark.parametrize(
    ("origins", "message"),
    [
        (["*"], "never \\*"),
        (["http://localhost:5173/app"], "no path"),
        (["http://LOCALHOST:5173"], "lower case"),
        (["http://localhost:5174"], "must also be one of the origins"),
    ],
)
def test_cors_origins_must_be_exact_allowed_origins(origins: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings({"rp_id": "localhost", "origins": [ORIGIN, SHOP], "cors_origins": origins})


async def test_an_apps_origins_may_read_answers_without_credentials(make_server: Callable[..., Server]) -> None:
    app_origin = "http://shop.localhost:3000"
    server = make_server(apps=[{"app_id": "shop", "name": "Shop", "origins": [app_origin]}])
    async with server.client() as client:
        for _ in range(100):  # the server's start-up stores the file's apps
            if await server.app.state.ctx.storage.apps.get("shop") is not None:
                break
            await asyncio.sleep(0.02)
        preflight = await client.options(
            "/api/v1/passkeys/login/begin",
            headers={"Origin": app_origin, "Access-Control-Request-Method": "POST"},
        )
        answer = await client.post(
            "/api/v1/passkeys/login/begin", json={"appId": "shop"}, headers={"Origin": app_origin}
        )
        other = await client.post("/api/v1/passkeys/login/begin", json={"appId": "shop"}, headers={"Origin": OTHER})
    assert preflight.status_code == 204
    assert cors_headers(preflight)["access-control-allow-origin"] == app_origin
    assert "access-control-allow-credentials" not in cors_headers(preflight)  # never the person's cookies
    assert answer.status_code == 200, answer.text
    assert cors_headers(answer) == {
        "access-control-allow-origin": app_origin,
        "access-control-expose-headers": "Passgate-Ceremony, Retry-After",
    }
    assert cors_headers(other) == {}
