"""The hosted pages' `return_to`: back to a page of an allowed origin once signed in, never to any other."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from passgate.testing import SoftwareAuthenticator
from tests.web.conftest import ORIGIN, Server, sign_up
from tests.web.test_pages import Page

SHOP = "http://localhost:5173"
CART = SHOP + "/cart?item=42"

FOREIGN = [
    "https://evil.example/",
    "http://localhost:5174/cart",  # another port of the same host: another origin
    "https://localhost:5173/cart",  # another scheme
    "http://localhost:5173@evil.example/",
    "http://localhost:5173\\@evil.example/",
    "http://localhost:51730/",
    "javascript:alert(1)//http://localhost:5173",
    "//localhost:5173/cart",
    "http://localhost:5173/\ncart",
]


@pytest.fixture
def shop_server(make_server: Callable[..., Server]) -> Server:
    return make_server(origins=[ORIGIN, SHOP], cors_origins=[SHOP])


@pytest.mark.parametrize("page", ["/signin", "/signup"])
async def test_return_to_a_page_of_a_cors_origin_is_where_the_page_goes_on_to(shop_server: Server, page: str) -> None:
    async with shop_server.client() as browser:
        shown = Page((await browser.get(page, params={"return_to": CART})).text)
    assert shown.elements[page.strip("/") + "-form"]["data-next"] == CART


@pytest.mark.parametrize("foreign", FOREIGN)
async def test_return_to_anywhere_else_is_refused_and_the_person_goes_to_the_account_page(
    shop_server: Server, foreign: str
) -> None:
    async with shop_server.client() as browser:
        for page in ("/signin", "/signup"):
            shown = Page((await browser.get(page, params={"return_to": foreign})).text)
            assert "data-next" not in shown.elements[page.strip("/") + "-form"], (page, foreign)
        await sign_up(browser, SoftwareAuthenticator(), "ada")
        for page in ("/signin", "/signup"):
            signed_in = await browser.get(page, params={"return_to": foreign})
            assert signed_in.status_code == 303 and signed_in.headers["location"] == "/account", (page, foreign)


async def test_a_signed_in_person_goes_straight_back_to_an_allowed_page(shop_server: Server) -> None:
    async with shop_server.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), "ada")
        for page in ("/signin", "/signup"):
            answer = await browser.get(page, params={"return_to": CART})
            assert answer.status_code == 303 and answer.headers["location"] == CART


async def test_an_origin_that_is_allowed_but_not_for_cors_is_a_place_to_return_to(
    make_server: Callable[..., Server],
) -> None:
    server = make_server(origins=[ORIGIN, SHOP])
    async with server.client() as browser:
        shown = Page((await browser.get("/signin", params={"next": CART})).text)
    assert shown.elements["signin-form"]["data-next"] == CART
