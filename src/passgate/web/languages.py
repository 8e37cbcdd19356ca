"""The language of a request: the `lang` parameter (remembered in the `lang` cookie), then that cookie, then
Accept-Language, then the configured `default_language`. And the pages' templates, one environment per language.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from pathlib import Path

import jinja2
from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from passgate import i18n
from passgate.config import Settings

LANGUAGE_COOKIE = "lang"
LANGUAGE_COOKIE_DAYS = 365
TEMPLATES = Path(__file__).with_name("templates")


def language_of(request: Request) -> str:
    """The request's language, among i18n.LANGUAGES (cached on the request)."""
    if "passgate_language" not in request.scope:
        request.scope["passgate_language"] = i18n.negotiate(
            chosen=(request.query_params.get("lang"), request.cookies.get(LANGUAGE_COOKIE)),
            accept=request.headers.get("accept-language"),
            default=_settings(request).default_language,
        )
    language: str = request.scope["passgate_language"]
    return language


def remember_choice(request: Request, response: Response) -> None:
    """A page asked for with a `lang` Passgate has keeps that language in the cookie, for the next pages (and the
    mail their requests cause)."""
    chosen = i18n.supported(request.query_params.get("lang"))
    if chosen is not None and chosen != request.cookies.get(LANGUAGE_COOKIE):
        response.set_cookie(
            LANGUAGE_COOKIE,
            chosen,
            max_age=LANGUAGE_COOKIE_DAYS * 24 * 3600,
            path="/",
            httponly=True,
            secure=_settings(request).secure_cookies,
            samesite="lax",
        )


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings  # as web.context.settings_of, which imports this module
    return settings


@cache
def templates_for(language: str) -> Jinja2Templates:
    """The pages' templates, translating into `language` ({% trans %} and _()), with its number and date formats."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        extensions=["jinja2.ext.i18n"],
    )
    # Whitespace inside {% trans %} is collapsed, so a message wrapped over lines has one id in the catalogs.
    environment.policies["ext.i18n.trimmed"] = True
    environment.install_gettext_translations(i18n.translator(language), newstyle=True)  # type: ignore[attr-defined]
    environment.filters["number"] = lambda value: i18n.format_number(value, language)
    environment.filters["moment"] = lambda moment: _moment(moment, language)
    environment.globals["language"] = language
    environment.globals["languages"] = i18n.LANGUAGES
    environment.globals["client_messages"] = i18n.client_messages(language)
    return Jinja2Templates(env=environment)


def _moment(moment: datetime, language: str) -> str:
    return i18n.format_moment(moment, language)
