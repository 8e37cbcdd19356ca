"""The hosted pages as the server renders them: a rebranded site's name, locked settings, a missing passkey."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

import httpx

from passgate.testing import SoftwareAuthenticator
from tests.web.conftest import Server, sign_up

BRAND = "Acme Shop"
STATIC = Path(__file__).parents[2] / "src" / "passgate" / "web" / "static"
# Attributes whose values a person sees or hears (tooltips, placeholders, alternative text, button labels).
SHOWN_ATTRIBUTES = frozenset({"title", "alt", "placeholder", "aria-label", "value"})
LOCKED_REASON = (
    "You signed in with a backup code or an email link, not a passkey: create a passkey first, then you can "
    "change these settings."
)


class Page(HTMLParser):
    """What a page shows a person: its text (hidden parts too, since scripts reveal them) and shown attributes."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.texts: list[str] = []
        self.body: dict[str, str | None] = {}
        self.elements: dict[str, dict[str, str | None]] = {}
        self._skipping = 0
        self.feed(html)
        self.close()

    @property
    def text(self) -> str:
        return re.sub(r"\s+", " ", " ".join(self.texts))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag in ("script", "style"):
            self._skipping += 1
        if tag == "body":
            self.body = attributes
        if attributes.get("id"):
            self.elements[str(attributes["id"])] = {"tag": tag, **attributes}
        self.texts += [value for name, value in attrs if name in SHOWN_ATTRIBUTES and value]

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skipping -= 1

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.texts.append(data)


async def page(client: httpx.AsyncClient, path: str) -> Page:
    response = await client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return Page(response.text)


def without_comments(source: str) -> str:
    source = re.sub(r"/\*.*?\*/", "", source, flags=re.DOTALL)
    return re.sub(r"(^|\s)//.*$", "", source, flags=re.MULTILINE)


async def test_a_rebranded_site_shows_only_its_own_name(make_server: Callable[..., Server]) -> None:
    server = make_server(rp_name=BRAND, powered_by=False)  # the "powered by" line is the one allowed mention
    pages: dict[str, Page] = {}
    async with server.client() as browser:
        for path in ("/signin", "/signup", "/recover", "/email/verify?token=abc", "/recover/email?token=abc"):
            pages[path] = await page(browser, path)
        await sign_up(browser, SoftwareAuthenticator(), "wile")
        pages["/account"] = await page(browser, "/account")
        codes = (await browser.post("/auth/recovery/codes")).json()["codes"]
        [only] = (await browser.get("/auth/passkeys")).json()["passkeys"]
        assert (await browser.delete(f"/auth/passkeys/{only['id']}")).status_code == 200
        pages["/account, no passkey left"] = await page(browser, "/account")
    async with server.client() as recovering:
        signed_in = await recovering.post("/auth/recovery/codes/sign-in", json={"username": "wile", "code": codes[0]})
        assert signed_in.status_code == 200, signed_in.text
        pages["/account, recovery session"] = await page(recovering, "/account")

    for path, shown in pages.items():
        assert "passgate" not in shown.text.lower(), (path, shown.text)
        assert BRAND in shown.text, path
        # pages.js names the site in its sentences from here.
        assert shown.body.get("data-rp-name") == BRAND, path


def test_the_pages_scripts_name_no_product_in_what_they_say() -> None:
    for name in ("ui.js", "pages.js", "account.js", "passgate.js"):
        # The header name is protocol, never shown to a person.
        code = without_comments((STATIC / name).read_text()).replace('"Passgate-Ceremony"', "")
        assert "Passgate" not in code, f"{name} shows the product's name instead of the site's"


async def test_a_recovery_session_locks_the_changes_that_need_a_passkey(server: Server) -> None:
    async with server.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), "hedy")
        codes = (await browser.post("/auth/recovery/codes")).json()["codes"]
        normal = await page(browser, "/account")
    async with server.client() as recovering:
        await recovering.post("/auth/recovery/codes/sign-in", json={"username": "hedy", "code": codes[0]})
        locked = await page(recovering, "/account")

    for control in ("generate-codes", "email-save"):
        assert "disabled" in locked.elements[control], control
        assert "disabled" not in normal.elements[control], control
    assert "readonly" in locked.elements["email-input"]
    for reason in ("passkeys-locked", "codes-locked", "email-locked"):
        assert reason in locked.elements and reason not in normal.elements
    assert LOCKED_REASON in locked.text and LOCKED_REASON not in normal.text
    assert locked.elements["add-passkey"]["tag"] == "button"  # where the reasons' "create a passkey" leads


async def test_an_account_without_a_passkey_gets_an_urgent_banner(server: Server) -> None:
    async with server.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), "mary")
        with_passkey = await page(browser, "/account")
        assert (await browser.post("/auth/recovery/codes")).status_code == 200
        [only] = (await browser.get("/auth/passkeys")).json()["passkeys"]
        assert (await browser.delete(f"/auth/passkeys/{only['id']}")).status_code == 200
        without = await page(browser, "/account")

    banner = without.elements["no-passkey-banner"]
    assert "hidden" not in banner and banner["role"] == "alert" and "urgent" in str(banner["class"]).split()
    assert without.elements["no-passkey-add"]["tag"] == "button"
    assert "hidden" in with_passkey.elements["no-passkey-banner"]  # shown by account.js once the last one goes


async def test_next_goes_from_the_sign_in_page_to_the_sign_up_page_and_back(server: Server) -> None:
    authorize = "/oauth2/authorize?client_id=shop&scope=openid"
    async with server.client() as browser:
        signin = Page((await browser.get("/signin", params={"next": authorize})).text)
        assert (
            signin.elements["signup-link"]["href"]
            == "/signup?next=%2Foauth2%2Fauthorize%3Fclient_id%3Dshop%26scope%3Dopenid"
        )
        signup = Page((await browser.get(str(signin.elements["signup-link"]["href"]))).text)
        assert signup.elements["signup-form"]["data-next"] == authorize
        assert signup.elements["signin-link"]["href"] == signin.elements["signup-link"]["href"].replace(
            "signup", "signin", 1
        )
        for foreign in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
            page = Page((await browser.get("/signup", params={"next": foreign})).text)
            assert "data-next" not in page.elements["signup-form"] and page.elements["signin-link"]["href"] == "/signin"
        await sign_up(browser, SoftwareAuthenticator(), "ada")
        signed_in = await browser.get("/signup", params={"next": authorize})
        assert signed_in.status_code == 303 and signed_in.headers["location"] == authorize
        assert (await browser.get("/signup", params={"next": "//evil.example/"})).headers["location"] == "/account"


async def test_the_sign_in_page_asks_for_a_password_only_where_passwords_sign_in(
    make_server: Callable[..., Server],
) -> None:
    async with make_server(passwords="migrate").client() as browser:
        migrating = await page(browser, "/signin")
    async with make_server().client() as browser:
        off = await page(browser, "/signin")

    assert migrating.elements["signin-form"]["data-passwords"] == "migrate"
    assert migrating.elements["username"]["autocomplete"] == "username webauthn"
    field = migrating.elements["password"]
    assert field["type"] == "password" and field["autocomplete"] == "current-password"
    assert "hidden" in migrating.elements["password-step"]  # until the server says this username may have one
    assert migrating.elements["continue-button"]["type"] == "submit"
    assert migrating.elements["signin-button"]["type"] == "button"  # a passkey sign-in stays one click away
    assert "hidden" in migrating.elements["upgrade-step"]
    assert "nothing to remember" in migrating.text

    assert "data-passwords" not in off.elements["signin-form"]
    for absent in ("password", "password-step", "password-button", "continue-button", "upgrade-step"):
        assert absent not in off.elements, absent
    assert off.elements["signin-button"]["type"] == "submit"
    # Only the site-wide footer speaks of passwords (that passkeys replace them).
    assert off.text.lower().count("password") == 1


def give_password(server: Server, username: str) -> None:
    """Store a password hash for an account, as an import would (the page only looks at whether there is one)."""
    with sqlite3.connect(server.database) as connection:
        connection.execute(
            "INSERT INTO passwords (user_id, hash, created_at, updated_at) "
            "SELECT id, '$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$aGFzaA', '2026-01-01 12:00:00', "
            "'2026-01-01 12:00:00' FROM users WHERE username = ?",
            (username,),
        )


async def test_the_account_page_offers_to_remove_a_password_once_there_is_a_passkey(
    make_server: Callable[..., Server],
) -> None:
    server = make_server(passwords="migrate")
    async with server.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), "grace")
        without_password = await page(browser, "/account")
        give_password(server, "grace")
        with_passkey = await page(browser, "/account")
        codes = (await browser.post("/auth/recovery/codes")).json()["codes"]
        [only] = (await browser.get("/auth/passkeys")).json()["passkeys"]
        assert (await browser.delete(f"/auth/passkeys/{only['id']}")).status_code == 200
        no_passkey = await page(browser, "/account")
    async with server.client() as recovering:
        await recovering.post("/auth/recovery/codes/sign-in", json={"username": "grace", "code": codes[0]})
        locked = await page(recovering, "/account")

    assert "password-section" not in without_password.elements
    assert "hidden" not in with_passkey.elements["password-remove-offer"]
    assert "hidden" in with_passkey.elements["password-needs-passkey"]
    assert with_passkey.elements["remove-password"]["tag"] == "button"
    assert "disabled" not in with_passkey.elements["remove-password"]
    assert "hidden" in no_passkey.elements["password-remove-offer"]
    assert "hidden" not in no_passkey.elements["password-needs-passkey"]
    assert "add a passkey first" in no_passkey.text
    assert "You can still sign in with your password for now." in no_passkey.text  # not "you will need a code"
    assert "disabled" in locked.elements["remove-password"] and "password-locked" in locked.elements
    assert "password-banner" not in with_passkey.elements  # only in a password session


async def test_the_account_page_has_no_password_section_while_passwords_are_off(server: Server) -> None:
    async with server.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), "ada")
        give_password(server, "ada")
        shown = await page(browser, "/account")
    assert "password-section" not in shown.elements


async def test_the_account_page_is_in_sections_and_shows_more_activity_on_request(server: Server) -> None:
    async with server.client() as browser:
        answer = await sign_up(browser, SoftwareAuthenticator(), "ada")
        credential_id = answer["credentialId"]
        for number in range(25):  # more than the page shows at first
            renamed = await browser.patch(f"/auth/passkeys/{credential_id}", json={"nickname": f"Laptop {number}"})
            assert renamed.status_code == 200
        first = await browser.get("/account")
        more = await browser.get("/account?activity=more")

    sections = re.findall(r'<section id="([\w-]+)" class="account-section"', first.text)
    assert sections == ["passkeys-section", "ways-back-section", "profile-section", "apps-section", "activity-section"]
    assert first.text.count('<li class="event') == 20
    assert 'id="activity-more" href="/account?activity=more#activity-title"' in first.text
    assert more.text.count('<li class="event') == 26  # the sign-up and every renaming
    assert 'id="activity-more"' not in more.text


async def test_every_page_starts_with_a_skip_link_and_marks_the_current_page(server: Server) -> None:
    async with server.client() as browser:
        for path in ("/signin", "/signup", "/recover"):
            page = (await browser.get(path, headers={"Accept-Language": "de"})).text
            assert page.index('class="skip-link" href="#main"') < page.index('class="site-header"')
            assert ">Zum Inhalt springen</a>" in page and '<main id="main"' in page
            current = re.findall(r'<a href="(/[a-z]+)" aria-current="page"', page)
            assert current == ([path] if path in ("/signin", "/signup") else [])


async def test_signed_in_pages_have_sign_out_in_the_header_and_the_nudge_adds_a_passkey(server: Server) -> None:
    async with server.client() as browser:
        signed_out = await page(browser, "/signin")
        await sign_up(browser, SoftwareAuthenticator(), "ada")
        account = (await browser.get("/account")).text
        verify = (await browser.get("/email/verify")).text

    assert "signout-button" not in signed_out.elements
    for html in (account, verify):
        header = html[html.index('<header class="site-header">') : html.index("</header>")]
        assert '<button id="signout-button" type="button"' in header
        assert html.count('id="signout-button"') == 1  # one sign-out: the header's
    shown = Page(account)
    # One passkey: the nudge asks for a second, and its button starts the same ceremony as the others.
    assert shown.elements["nudge-add"]["tag"] == "button"
    assert "add-passkey" in str(shown.elements["nudge-add"]["class"]).split()
    nudge = account[
        account.index('id="second-passkey-nudge"') : account.index("</section>", account.index("nudge-title"))
    ]
    assert 'id="nudge-add"' in nudge
