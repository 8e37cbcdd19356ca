"""A site's own look: the brand settings, the pages and emails that use them, the favicon and the error pages."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from email.message import EmailMessage
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest
from fastapi import Request

from passgate.config import ConfigError, load_settings
from passgate.testing import SoftwareAuthenticator
from passgate.web.csp import content_security_policy
from tests.mailbox import SmtpServer, text_of
from tests.web.conftest import ORIGIN, Server, sign_up

BRAND = {
    "rp_name": "Acme Shop",
    "brand_color": "#aa3300",
    "brand_text_color": "#fff",
    "brand_background": "#fdf6ee",
    "brand_logo_url": "https://cdn.acme.example/logo.svg",
    "powered_by": False,
}
PAGE = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
STYLE = re.compile(r"<style>(.*?)</style>", re.S)


class ShownText(HTMLParser):
    """What a page shows or reads out: its text (title included) and shown attributes, not scripts or ids."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.words: list[str] = []
        self._hidden = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._hidden = tag in ("script", "style")
        shown = ("title", "alt", "aria-label", "placeholder", "label", "content")
        self.words += [value for name, value in attrs if name in shown and value]

    def handle_endtag(self, tag: str) -> None:
        self._hidden = False

    def handle_data(self, data: str) -> None:
        if not self._hidden and data.strip():
            self.words.append(data.strip())


def shown(html: str) -> str:
    parser = ShownText()
    parser.feed(html)
    return " ".join(parser.words)


def settings_with(**values: Any) -> Any:
    return load_settings({"rp_id": "localhost", "origins": ["http://localhost:8000"], **values})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("brand_color", "red"),
        ("brand_color", "#12"),
        ("brand_color", "#1234567"),
        ("brand_text_color", "#fff;}</style><script>"),
        ("brand_color_dark", "rgb(1,2,3)"),
        ("brand_background", "#ggg"),
        ("brand_logo_url", "http://cdn.example/logo.png"),
        ("brand_logo_url", "javascript:alert(1)"),
        ("brand_logo_url", "/static/../config.toml"),
        ("brand_logo_url", "/uploads/logo.png"),
        ("brand_logo_url", 'https://cdn.example/logo".png'),
        ("brand_favicon_url", "https://cdn.example/icon one.png"),
        ("brand_favicon_url", "data:image/png;base64,AAAA"),
        ("rp_name", "   "),
        ("rp_name", "x" * 65),
    ],
)
def test_brand_settings_are_checked(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        settings_with(**{name: value})


def test_good_brand_settings_are_taken_from_the_file_and_the_environment() -> None:
    settings = load_settings(
        {"rp_id": "localhost", "brand_logo_url": "/static/logo.svg"},
        environ={"PASSGATE_BRAND_COLOR": "#AA3300", "PASSGATE_POWERED_BY": "off", "PASSGATE_RP_NAME": "Acme"},
    )
    assert (settings.brand_color, settings.powered_by, settings.brand.logo_url) == (
        "#AA3300",
        False,
        "/static/logo.svg",
    )
    assert settings.sender == "Acme <noreply@localhost>"  # no mail_from: the site's own name
    assert settings_with(mail_from="Shop <shop@example.com>").sender == "Shop <shop@example.com>"
    with pytest.raises(ConfigError, match="powered_by must be true or false"):
        settings_with(powered_by="maybe")


async def test_pages_carry_the_colours_as_custom_properties_allowed_by_their_hash(
    make_server: Callable[..., Server],
) -> None:
    server = make_server(**BRAND, brand_color_dark="#ff8855")
    async with server.client() as browser:
        page = await browser.get("/signin", headers=PAGE)
    assert page.status_code == 200
    [css] = STYLE.findall(page.text)
    assert css == (
        ":root{--brand-color:#aa3300;--brand-text-color:#fff;--brand-color-dark:#ff8855;--brand-background:#fdf6ee}"
    )
    policy = page.headers["content-security-policy"]
    digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
    assert f"style-src 'self' 'sha256-{digest}';" in policy
    assert "img-src 'self' data: https://cdn.acme.example;" in policy
    assert '<img class="brand-logo" src="https://cdn.acme.example/logo.svg" alt=""' in page.text
    assert "<title>Sign in · Acme Shop</title>" in page.text


async def test_a_colour_without_its_dark_variant_is_used_in_dark_mode_too(make_server: Callable[..., Server]) -> None:
    async with make_server(brand_color="#036").client() as browser:
        page = await browser.get("/signup")
    [css] = STYLE.findall(page.text)
    assert css == ":root{--brand-color:#036;--brand-color-dark:#036;--brand-text-color-dark:#ffffff}"


async def test_without_brand_settings_there_is_no_inline_style_and_the_powered_by_line_shows(server: Server) -> None:
    async with server.client() as browser:
        page = await browser.get("/signin")
    assert STYLE.findall(page.text) == []
    assert "style-src 'self';" in page.headers["content-security-policy"]
    assert "Sign-in powered by Passgate" in shown(page.text)


async def test_a_rebranded_site_never_says_passgate_to_its_users(make_server: Callable[..., Server]) -> None:
    server = make_server(**BRAND)
    async with server.client() as browser:
        pages = [await browser.get(path, headers=PAGE) for path in ("/signin", "/signup", "/recover", "/nowhere")]
        await sign_up(browser, SoftwareAuthenticator(), "wile")
        pages.append(await browser.get("/account", headers=PAGE))
        pages.append(await browser.get("/account?lang=ja", headers=PAGE))
    for page in pages:
        assert "Acme Shop" in shown(page.text), page.url
        assert "passgate" not in shown(page.text).lower(), page.url


async def test_emails_carry_the_brand_and_never_passgate(make_server: Callable[..., Server], smtp: SmtpServer) -> None:
    server = make_server(**{**smtp.settings, **BRAND, "mail_from": "", "brand_logo_url": "/static/acme.svg"})
    async with server.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), "wile")
        assert (await browser.post("/auth/email", json={"email": "wile@example.com"})).status_code == 202
        [message] = await smtp.mailbox.received("wile@example.com")
    html = html_of(message)
    words = " ".join([message["From"], message["Subject"], text_of(message), html])
    assert "passgate" not in words.lower()
    assert message["From"] == "Acme Shop <noreply@localhost>"
    assert message["Subject"].startswith("Acme Shop: ")
    assert "background:#aa3300;color:#fff" in html  # the link's button, in the brand's colours
    assert f'<img src="{ORIGIN}/static/acme.svg"' in html  # a path under /static, made absolute for the mail
    [link] = re.findall(r"http://localhost:8000/email/verify\?token=[\w-]+", text_of(message))
    assert f'href="{link}"' in html
    assert ">Acme Shop</p>" in html
    assert "background:#fdf6ee;" in html


def html_of(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    assert part is not None
    return str(part.get_content())


async def test_a_browser_gets_an_error_page_in_its_language_and_the_sites_look(
    make_server: Callable[..., Server],
) -> None:
    async with make_server(**BRAND).client() as browser:
        missing = await browser.get("/no/such/page", headers={**PAGE, "Accept-Language": "de"})
        wrong_method = await browser.post("/signin", headers=PAGE)
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
    assert '<html lang="de">' in missing.text
    assert "Seite nicht gefunden" in shown(missing.text)
    assert "Fehler 404" in shown(missing.text)
    assert STYLE.findall(missing.text) == [
        ":root{--brand-color:#aa3300;--brand-text-color:#fff;--brand-background:#fdf6ee;"
        "--brand-color-dark:#aa3300;--brand-text-color-dark:#fff}"
    ]
    assert wrong_method.status_code == 405
    assert "This request could not be handled" in shown(wrong_method.text)


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/auth/no-such-route", 404, "not_found"),
        ("GET", "/admin/v1/no-such-route", 404, "not_found"),
        ("GET", "/api/v1/no-such-route", 404, "not_found"),
        ("GET", "/.well-known/no-such-document", 404, "not_found"),
        ("GET", "/oauth2/token", 405, "method_not_allowed"),
        ("GET", "/auth/account", 401, "not_signed_in"),
    ],
)
async def test_api_routes_answer_json_even_to_a_browser(
    browser: httpx.AsyncClient, method: str, path: str, status: int, code: str
) -> None:
    response = await browser.request(method, path, headers=PAGE)
    assert response.status_code == status, response.text
    assert response.json()["error"] == code


async def test_a_program_asking_for_a_page_path_gets_json(browser: httpx.AsyncClient) -> None:
    response = await browser.get("/no/such/page", headers={"Accept": "application/json"})
    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "message": "Not Found"}


async def test_the_error_page_shows_who_is_signed_in(browser: httpx.AsyncClient) -> None:
    await sign_up(browser, SoftwareAuthenticator(), "wile")
    missing = await browser.get("/no/such/page", headers=PAGE)
    assert missing.status_code == 404
    assert '<a id="nav-user" href="/account">wile</a>' in missing.text


async def test_a_failure_on_a_page_is_an_error_page_and_on_the_api_plain_text(server: Server) -> None:
    async def broken(request: Request) -> None:
        raise RuntimeError("a bug")

    server.app.add_api_route("/broken", broken)
    server.app.add_api_route("/auth/broken", broken)
    transport = httpx.ASGITransport(app=server.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=ORIGIN) as client:
        page = await client.get("/broken", headers={**PAGE, "Accept-Language": "fr"})
        api = await client.get("/auth/broken", headers=PAGE)
    assert page.status_code == 500
    assert "Une erreur s'est produite" in shown(page.text)
    assert "a bug" not in page.text
    assert (api.status_code, api.text) == (500, "Internal Server Error")


async def test_the_favicon_is_a_key_in_the_brand_colour_or_the_configured_one(
    make_server: Callable[..., Server],
) -> None:
    async with make_server(brand_color="#aa3300").client() as browser:
        icon = await browser.get("/favicon.ico")
        page = await browser.get("/signin")
    assert icon.status_code == 200
    assert icon.headers["content-type"] == "image/svg+xml"
    assert 'stroke="#aa3300"' in icon.text
    assert "passgate" not in icon.text.lower()
    assert '<link rel="icon" href="/favicon.svg">' in page.text
    assert (await browser_get(make_server(), "/favicon.svg")).text.count('stroke="#2450c8"') == 1

    configured = make_server(brand_favicon_url="https://cdn.acme.example/icon.png")
    moved = await browser_get(configured, "/favicon.ico")
    assert (moved.status_code, moved.headers["location"]) == (302, "https://cdn.acme.example/icon.png")
    page = await browser_get(configured, "/signin")
    assert '<link rel="icon" href="https://cdn.acme.example/icon.png">' in page.text
    assert "img-src 'self' data: https://cdn.acme.example;" in page.headers["content-security-policy"]


async def browser_get(server: Server, path: str) -> httpx.Response:
    async with server.client() as browser:
        return await browser.get(path)


def test_a_page_whose_form_goes_elsewhere_keeps_the_brands_styles_and_images() -> None:
    brand = settings_with(**BRAND).brand
    policy = content_security_policy(brand, form_action="https://partner.example")
    assert "form-action 'self' https://partner.example;" in policy
    assert "style-src 'self' 'sha256-" in policy
    assert "img-src 'self' data: https://cdn.acme.example;" in policy
