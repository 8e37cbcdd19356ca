"""Languages: complete catalogs, no untranslated text in the templates, how a request's language is chosen, the
pages and the emails in it."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import httpx
import jinja2
import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from jinja2 import nodes

from passgate import i18n
from passgate.config import ConfigError, load_settings, validate
from passgate.service.email_links import LinkRequest
from passgate.store.base import Event
from passgate.testing import SoftwareAuthenticator
from passgate.web import pages
from tests.mailbox import SmtpServer, text_of
from tests.web.conftest import Server, sign_up
from tests.web.test_oidc_consent import CLIENTS, start

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ROOT / "src" / "passgate"
TEMPLATES = SOURCES / "web" / "templates"
# As `make messages` extracts them: the default gettext keywords, and the browser client's t(), tn(), translated().
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None, "t": None, "tn": (1, 2), "translated": None}
# Attributes whose values a person sees or hears.
SHOWN_ATTRIBUTES = frozenset({"title", "alt", "placeholder", "aria-label", "label"})
LETTER = re.compile(r"[^\W\d_]")
PLACEHOLDERS = re.compile(r"%\((\w+)\)s|\{(\w+)\}")


def extracted() -> dict[str, tuple[str, ...]]:
    """Every message the code, the templates and the browser client use (as babel.cfg says where they are):
    its id (the singular for a plural) -> all its ids."""
    with (ROOT / "babel.cfg").open() as config:
        method_map, options_map = parse_mapping_cfg(config)

    def under_sources(path: str) -> bool:
        directory = (ROOT / path).resolve()
        return directory in SOURCES.parents or directory == SOURCES or SOURCES in directory.parents

    found: dict[str, tuple[str, ...]] = {}
    for _, _, message, *_ in extract_from_dir(
        ROOT, method_map, options_map, keywords=KEYWORDS, directory_filter=under_sources
    ):
        ids = (message,) if isinstance(message, str) else tuple(part for part in message if part)
        if ids and ids[0]:
            found[ids[0]] = ids
    return found


def lacking(catalog: Catalog, messages: dict[str, tuple[str, ...]]) -> list[str]:
    """The messages `catalog` has no usable translation for: missing, empty, fuzzy, or with other placeholders."""
    wrong: list[str] = []
    for key, ids in messages.items():
        entry = catalog.get(key if len(ids) == 1 else ids)
        if entry is None:
            entry = catalog.get(key)
        strings = (entry.string,) if entry is not None and isinstance(entry.string, str) else ()
        if entry is not None and not isinstance(entry.string, str):
            strings = tuple(entry.string)
        if entry is None or entry.fuzzy or not strings or not all(strings):
            wrong.append(key)
        elif any(placeholders(string) != placeholders(ids[-1]) for string in strings[1:] or strings):
            wrong.append(key)
    return wrong


def placeholders(text: str) -> set[str]:
    return {percent or brace for percent, brace in PLACEHOLDERS.findall(text)}


def test_messages_are_found_in_the_code_the_templates_and_the_browser_client() -> None:
    messages = extracted()
    assert "Sign in with a passkey" in messages  # templates and passgate-elements.js
    assert "That username is already taken. Choose another one, or sign in if it is yours." in messages  # ui.js
    assert "Passkey “{name}” removed." in messages  # account.js
    assert "A passkey was removed from your account" in messages  # an email (service.account)
    assert "Renamed a passkey" in messages  # the activity list (web.pages)
    assert messages["{count} unused backup code left."] == (
        "{count} unused backup code left.",
        "{count} unused backup codes left.",
    )


@pytest.mark.parametrize("language", list(i18n.LANGUAGES))
def test_every_catalog_translates_every_message(language: str) -> None:
    assert lacking(i18n.catalog(language), extracted()) == []


def test_a_catalog_without_a_message_or_with_a_broken_one_is_found_lacking() -> None:
    messages = extracted()
    catalog = Catalog(locale="de")
    for message in i18n.catalog("de"):
        if message.id:
            catalog.add(message.id, message.string, flags=message.flags)
    assert lacking(catalog, messages) == []
    catalog.delete("Remove passkey")
    catalog["Save"].string = ""
    catalog["Allow %(name)s?"].string = "%(nom)s erlauben?"
    catalog["Display name"].flags.add("fuzzy")
    assert sorted(lacking(catalog, messages)) == ["Allow %(name)s?", "Display name", "Remove passkey", "Save"]


class ShownText(HTMLParser):
    """The words a piece of HTML shows a person: its text and shown attributes (not scripts or styles)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.words: list[str] = []
        self._skipping = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._skipping = tag in ("script", "style")
        self.words += [value for name, value in attrs if name in SHOWN_ATTRIBUTES and value and "{{" not in value]

    def handle_endtag(self, tag: str) -> None:
        self._skipping = False

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.words.append(data)


def untranslated(source: str) -> list[str]:
    """The literal words a template shows outside {% trans %} and _(): in its HTML text and shown attributes, and
    in string constants it prints. A `page` block is the page's name for the scripts (`<body data-page>`)."""
    environment = jinja2.Environment(extensions=["jinja2.ext.i18n"], autoescape=True)
    # The template's own HTML, every Jinja construct (and all of a {% trans %} block) replaced by a mark.
    html: list[str] = []
    skipping: str | None = None  # the tag that ends what is left out: endtrans, endblock
    tokens = [token for token in environment.lex(source) if token[1] != "whitespace"]
    for position, (_, kind, value) in enumerate(tokens):
        following = tokens[position + 1][2] if position + 1 < len(tokens) else ""
        if kind == "block_begin" and skipping is None and following in ("trans", "block"):
            after = tokens[position + 2][2] if position + 2 < len(tokens) else ""
            if following == "trans" or after == "page":
                skipping = "end" + following
        elif kind == "name" and value == skipping:
            skipping = None
        if kind == "data" and skipping is None:
            html.append(value)
        elif not html or html[-1] != "\0":
            html.append("\0")
    parser = ShownText()
    parser.feed("".join(html))
    parser.close()
    found = [word.replace("\0", " ").strip() for word in parser.words if re.search(r"[^\W\d_]", word)]
    for output in environment.parse(source).find_all(nodes.Output):
        for constant in output.nodes:
            if isinstance(constant, nodes.Const) and isinstance(constant.value, str) and LETTER.search(constant.value):
                found.append(constant.value)
    return found


@pytest.mark.parametrize("template", sorted(path.name for path in TEMPLATES.glob("*.html")))
def test_templates_hold_no_untranslated_text(template: str) -> None:
    assert untranslated((TEMPLATES / template).read_text()) == []


def test_the_check_finds_untranslated_text() -> None:
    assert untranslated("<p>Hello</p>") == ["Hello"]
    assert untranslated('<img alt="A cat" src="/cat.png">') == ["A cat"]
    assert untranslated("<p>{{ 'Hello' }}</p>") == ["Hello"]
    assert untranslated("<p>{% trans %}Hello{% endtrans %} · {{ _('World') }} {{ name }}</p>") == []
    assert untranslated('<p class="hint" id="x" data-page="signin">, (2)</p>') == []
    assert untranslated("{% block page %}account{% endblock %}<p title=\"{{ _('Hi') }}\" hidden>·</p>") == []
    assert untranslated("{% block title %}Your account{% endblock %}") == ["Your account"]


def test_the_browser_client_gets_the_messages_of_its_own_files() -> None:
    messages = i18n.client_messages("de")
    assert messages["Passkey “{name}” removed."] == "Passkey „{name}“ entfernt."
    assert messages["{count} unused backup code left."] == [
        "{count} unbenutzter Backup-Code übrig.",
        "{count} unbenutzte Backup-Codes übrig.",
    ]
    assert "Your account" not in messages  # only the templates use it
    assert i18n.client_messages("en") == {}  # the client's own text is English


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("de-DE,de;q=0.9,en;q=0.8", "de"),
        ("en;q=0.5, fr-CA", "fr"),
        ("pt-BR, es;q=0.3", "es"),
        ("ja", "ja"),
        ("pt-BR, zh;q=0.9", "it"),  # none of Passgate's: the default
        ("de;q=0, fr;q=0.1", "fr"),  # q=0: not wanted
        ("", "it"),
        (None, "it"),
        ("*", "it"),
    ],
)
def test_accept_language_picks_the_best_of_passgates_languages(header: str | None, expected: str) -> None:
    assert i18n.negotiate(chosen=(), accept=header, default="it") == expected


def test_a_chosen_language_wins_over_accept_language_and_an_unknown_one_is_passed_over() -> None:
    assert i18n.negotiate(chosen=("ES", "fr"), accept="de", default="en") == "es"
    assert i18n.negotiate(chosen=("klingon", "fr"), accept="de", default="en") == "fr"
    assert i18n.negotiate(chosen=(None, ""), accept="de", default="en") == "de"


def test_the_default_language_must_be_one_passgate_has() -> None:
    assert load_settings({"default_language": "ja"}).default_language == "ja"
    with pytest.raises(ConfigError, match="default_language must be one of en, de, fr, es, ja, not 'pt'"):
        validate(load_settings({"default_language": "pt"}))


def test_moments_and_numbers_are_written_as_the_language_writes_them() -> None:
    moment = datetime(2026, 3, 1, 14, 5, tzinfo=UTC)
    assert i18n.format_moment(moment, "en") == "Mar 1, 2026, 2:05\u202fPM UTC"
    assert i18n.format_moment(moment, "de") == "01.03.2026, 14:05 UTC"
    assert i18n.format_moment(moment, "ja") == "2026/03/01 14:05 UTC"
    assert i18n.format_number(12345, "de") == "12.345"
    assert i18n.format_number(12345, "fr") == "12\u202f345"


def html_lang(page: httpx.Response) -> str:
    match = re.search(r'<html lang="([^"]+)"', page.text)
    assert match, page.text[:200]
    return match.group(1)


async def test_a_page_is_in_the_accept_language_then_the_chosen_one_is_kept_by_the_cookie(server: Server) -> None:
    async with server.client() as browser:
        german = await browser.get("/signin", headers={"Accept-Language": "de-DE,de;q=0.9"})
        assert html_lang(german) == "de" and "Mit Passkey anmelden" in german.text
        assert german.headers["content-language"] == "de"
        assert "lang" not in browser.cookies  # negotiated, not chosen: nothing to remember

        chosen = await browser.get("/signup?lang=ja", headers={"Accept-Language": "de"})
        assert html_lang(chosen) == "ja" and "パスキーを作成" in chosen.text
        assert browser.cookies["lang"] == "ja"
        kept = await browser.get("/recover", headers={"Accept-Language": "de"})
        assert html_lang(kept) == "ja" and "パスキーをなくしましたか\uff1f" in kept.text

        unknown = await browser.get("/recover?lang=xx", headers={"Accept-Language": "de"})
        assert html_lang(unknown) == "ja" and browser.cookies["lang"] == "ja"


async def test_without_a_language_the_configured_default_is_used(make_server: Callable[..., Server]) -> None:
    server = make_server(default_language="es")
    async with server.client() as browser:
        page = await browser.get("/signin", headers={"Accept-Language": "pt-BR"})
        assert html_lang(page) == "es" and "Iniciar sesión con una llave de acceso" in page.text
        english = await browser.get("/signin", headers={"Accept-Language": "en-GB"})
        assert html_lang(english) == "en" and "Sign in with a passkey" in english.text


async def test_the_switcher_keeps_the_pages_other_parameters(server: Server) -> None:
    async with server.client() as browser:
        page = await browser.get("/recover/email?token=abc&lang=fr")
    assert '<form id="language-form" class="language-switcher" method="get" action="/recover/email">' in page.text
    assert '<input type="hidden" name="token" value="abc">' in page.text
    assert '<input type="hidden" name="lang"' not in page.text
    assert '<option value="fr" lang="fr" selected>Français</option>' in page.text
    assert '<script type="application/json" id="passgate-messages">' in page.text


async def test_the_account_page_writes_dates_counts_and_activity_in_its_language(server: Server) -> None:
    async with server.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), "amy")
        assert (await browser.post("/auth/recovery/codes")).status_code == 200
        page = await browser.get("/account?lang=de")
    text = re.sub(r"\s+", " ", page.text)
    assert "01.01.2026, 12:00 UTC" in text  # the test clock's moment
    assert "10 unbenutzte Backup-Codes übrig." in text
    assert "Ihr Konto mit einem Passkey erstellt" in text
    assert "Neue Backup-Codes erstellt" in text


async def test_emails_are_written_in_the_language_of_the_request_that_caused_them(
    make_server: Callable[..., Server], smtp: SmtpServer
) -> None:
    server = make_server(rp_name="Acme", **smtp.settings)
    async with server.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), "amy")
        browser.cookies.set("lang", "de")
        assert (await browser.post("/auth/email", json={"email": "amy@example.com"})).status_code == 202
        [confirmation] = await smtp.mailbox.received("amy@example.com")
        assert confirmation["Subject"] == "Acme: Bestätigen Sie Ihre E-Mail-Adresse"
        assert "Der Link funktioniert einmal, 24 Stunden lang." in text_of(confirmation)
        token = (await smtp.mailbox.newest_link("amy@example.com", "/email/verify")).split("token=")[1]
        assert (await browser.post("/auth/email/verify", json={"token": token})).status_code == 200
        codes = (await browser.post("/auth/recovery/codes")).json()["codes"]

    async with server.client() as asker:
        asked = await asker.post(
            "/auth/recovery/email", json={"email": "amy@example.com"}, headers={"Accept-Language": "ja,en;q=0.5"}
        )
        assert asked.status_code == 202
        link = (await smtp.mailbox.received("amy@example.com", count=2))[-1]
        assert link["Subject"] == "Acme: サインイン用リンク"
        assert "このリンクは 15 分間、1 回だけ使えます。" in text_of(link)

    async with server.client() as recovering:
        recovering.cookies.set("lang", "fr")
        body = {"username": "amy", "code": codes[0]}
        assert (await recovering.post("/auth/recovery/codes/sign-in", json=body)).status_code == 200
        notice = (await smtp.mailbox.received("amy@example.com", count=3))[-1]
        assert notice["Subject"] == "Acme\u00a0: Un code de secours a été utilisé pour se connecter à votre compte"
        assert text_of(notice).replace("\r\n", "\n").startswith("Bonjour amy,\n\nUn code de secours a été utilisé")


def test_a_sign_in_link_job_queued_before_languages_is_written_in_english() -> None:
    old = LinkRequest.loads('{"browser": "AAAA", "ip": null, "user_agent": null}')
    assert old.language == "en"
    assert LinkRequest.loads(LinkRequest(browser=b"\0", ip=None, user_agent=None, language="ja").dumps()).language == (
        "ja"
    )


def test_what_the_pages_build_in_python_is_in_the_pages_language() -> None:
    chrome = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"
    refused = Event(
        type="passkey.remove",
        outcome="failure",
        reason="last_passkey",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        credential_id=b"\1",
        ip="127.0.0.1",
        user_agent=chrome,
    )
    labels = {"AQ": "Laptop"}
    assert pages.activity_view(refused, labels, "en").text == (
        "Removing a passkey was refused (Laptop): it was the only passkey"
    )
    german = pages.activity_view(refused, labels, "de")
    assert german.text == "Das Entfernen eines Passkeys wurde abgelehnt (Laptop): es war der einzige Passkey"
    assert german.where == "Chrome unter macOS, 127.0.0.1"
    assert pages.activity_view(refused, labels, "ja").where == "macOS の Chrome、127.0.0.1"
    assert pages.scope_words("openid", "Acme", "fr") == "Savoir qui vous êtes sur Acme"
    assert pages.scope_words("profile", "Acme", "es") == "Tu nombre de usuario y tu nombre"
    assert pages.scope_words("payments", "Acme", "de") == "payments"  # a scope with no words is shown as it is


async def test_the_consent_page_is_in_the_persons_language(make_server: Callable[..., Server]) -> None:
    provider = make_server(oidc_clients=CLIENTS, rp_name="Example Bank")
    async with provider.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), "alice")
        browser.cookies.set("lang", "de")
        page, _ = await start(provider, browser, scope="openid profile email")
    assert page.status_code == 200, page.text
    assert html_lang(page) == "de"
    assert "Partner Travel die Nutzung Ihres Kontos bei Example Bank erlauben?" in page.text
    assert "<li>Wissen, wer Sie bei Example Bank sind</li>" in page.text
    assert "<li>Ihre E-Mail-Adresse</li>" in page.text
    assert ">Erlauben</button>" in page.text


async def test_a_page_that_redirects_keeps_the_language_it_was_asked_in(server: Server) -> None:
    async with server.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), "amy")
        redirected = await browser.get("/signup?lang=es")
        assert redirected.status_code == 303 and redirected.headers["location"] == "/account"
        assert html_lang(await browser.get("/account")) == "es"


async def test_a_refused_request_is_explained_in_the_page_language_with_the_servers_words_kept(server: Server) -> None:
    async with server.client() as browser:
        english = await browser.get("/oauth2/authorize?client_id=nobody")
        german = await browser.get("/oauth2/authorize?client_id=nobody&lang=de")
    assert english.status_code == german.status_code == 401
    detail = re.search(r'<p id="authorize-error" data-error="invalid_client">([^<]+)</p>', english.text)
    assert detail, english.text
    assert "Details for the application" not in english.text
    assert "Diese Anwendung ist hier nicht bekannt" in german.text
    assert f'Details für das Team der Anwendung: <span lang="en">{detail.group(1)}</span>' in german.text
