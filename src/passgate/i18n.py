"""The languages of the pages, the browser client and the emails: one set of gettext catalogs.

The catalogs are `locale/<language>/LC_MESSAGES/passgate.po`, read with Babel when first used (no compiled .mo files
to keep in step). The pages' templates translate through Jinja2's i18n extension, Python code through `translator`,
and the browser client gets the messages of its own files (`client_messages`) as JSON in the page.

Message ids are the English text. Python and the templates write values as `%(name)s`, the browser client as
`{name}`.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from babel.core import Locale, negotiate_locale
from babel.dates import format_date, format_time, get_datetime_format
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import Translations

LOCALE_DIR = Path(__file__).with_name("locale")
DOMAIN = "passgate"

# Each language by its code (the `lang` of the pages), with its own name for the switcher.
LANGUAGES: dict[str, str] = {
    "en": "English",
    "de": "Deutsch",
    "fr": "Français",
    "es": "Español",
    "ja": "日本語",
}

# Where the browser client's messages come from: the catalog entries found in these files.
CLIENT_SOURCES = re.compile(r"(^|/)static/[^/]+\.js$")

_QUALITY = re.compile(r"^q=([01](?:\.\d{0,3})?)$")


def N_(message: str) -> str:
    """Marks `message` for the catalogs where it is written; it is translated where it is shown."""
    return message


@cache
def catalog(language: str) -> Catalog:
    """The language's catalog as written in its .po file. Raises KeyError for a language Passgate has not."""
    if language not in LANGUAGES:
        raise KeyError(language)
    with (LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po").open("rb") as po:
        return read_po(po, locale=language, domain=DOMAIN)


@cache
def translator(language: str) -> Translations:
    """gettext for `language` (`.gettext`, `.ngettext`), from its catalog. Raises KeyError for an unknown one."""
    compiled = io.BytesIO()
    write_mo(compiled, catalog(language))
    compiled.seek(0)
    return Translations(fp=compiled, domain=DOMAIN)


@cache
def client_messages(language: str) -> dict[str, str | list[str]]:
    """The browser client's messages in `language`: English text -> translation, or the list of plural forms."""
    messages: dict[str, str | list[str]] = {}
    for message in catalog(language):
        if not message.id or message.fuzzy or not message.string or message.string == message.id:
            continue  # English is the client's own text
        if not any(CLIENT_SOURCES.search(path) for path, _ in message.locations):
            continue
        if isinstance(message.id, tuple | list):
            messages[message.id[0]] = list(message.string)
        elif isinstance(message.string, str):
            messages[message.id] = message.string
    return messages


def accept_language(header: str | None) -> list[str]:
    """The languages of an Accept-Language header (RFC 9110 section 12.5.4), most wanted first; q=0 left out."""
    weighted: list[tuple[float, int, str]] = []
    for position, item in enumerate((header or "").split(",")[:32]):
        tag, *parameters = (part.strip() for part in item.split(";"))
        quality = 1.0
        for parameter in parameters:
            match = _QUALITY.match(parameter.replace(" ", ""))
            if match:
                quality = float(match.group(1))
        if tag and tag != "*" and quality > 0:
            weighted.append((-quality, position, tag))
    return [tag for _, _, tag in sorted(weighted)]


def supported(value: str | None) -> str | None:
    """`value` if it names one of LANGUAGES (in any case), else None."""
    wanted = (value or "").strip().lower()
    return wanted if wanted in LANGUAGES else None


def negotiate(*, chosen: Iterable[str | None], accept: str | None, default: str) -> str:
    """The language to use: the first of `chosen` Passgate has (the `lang` parameter, then the cookie), else the
    best match for the Accept-Language header `accept`, else `default`."""
    for value in chosen:
        language = supported(value)
        if language is not None:
            return language
    matched = negotiate_locale(accept_language(accept), list(LANGUAGES), sep="-")
    return matched or default


def format_number(value: float, language: str) -> str:
    return format_decimal(value, locale=language)


def format_moment(moment: datetime, language: str) -> str:
    """A date and time in UTC, as `language` writes them: "Jan 1, 2026, 2:05 PM UTC", "01.01.2026, 14:05 UTC"."""
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    locale = Locale.parse(language)
    pattern = str(get_datetime_format("medium", locale=locale))
    time = format_time(moment, "short", tzinfo=UTC, locale=locale)
    date = format_date(moment, "medium", locale=locale)
    return pattern.replace("{1}", date).replace("{0}", time) + " UTC"
