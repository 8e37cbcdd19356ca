"""A site's look: its name, logo, favicon and colours, checked and turned into CSS custom properties.

Only values that passed these checks ever reach a page or an email: a colour is `#rgb` or `#rrggbb`, a logo or
favicon an https URL or a path under /static, so nothing an operator writes can close a `<style>` block or an
attribute.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

_COLOUR = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})")
_STATIC_PATH = re.compile(r"/static/[A-Za-z0-9._~/-]+")
_URL_UNSAFE = re.compile(r"[\s\"'<>\\()`]")

DEFAULT_COLOR = "#2450c8"  # as style.css: the pages' own accent, when none is configured
DEFAULT_TEXT_COLOR = "#ffffff"
DEFAULT_BACKGROUND = "#f4f5f7"

# The setting -> the custom property it sets, in the order the block writes them.
PROPERTIES = {
    "color": "--brand-color",
    "text_color": "--brand-text-color",
    "color_dark": "--brand-color-dark",
    "background": "--brand-background",
}


def is_colour(value: str) -> bool:
    """`#rgb` or `#rrggbb`."""
    return bool(_COLOUR.fullmatch(value))


def is_asset_url(value: str) -> bool:
    """An https URL with a host, or a path under /static (no quotes, spaces, brackets or backslashes in either)."""
    if _URL_UNSAFE.search(value):
        return False
    if value.startswith("/"):
        return bool(_STATIC_PATH.fullmatch(value)) and "/../" not in value + "/"
    parts = urlsplit(value)
    return parts.scheme == "https" and bool(parts.hostname)


def asset_origin(value: str) -> str | None:
    """The origin an asset URL is loaded from, when not this site's own ("https://cdn.example.com"), else None."""
    if not value or value.startswith("/"):
        return None
    parts = urlsplit(value)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass(frozen=True, kw_only=True)
class Brand:
    """The checked look of a site; an empty string means Passgate's own default."""

    name: str
    logo_url: str = ""
    favicon_url: str = ""
    color: str = ""
    text_color: str = ""
    color_dark: str = ""
    background: str = ""
    powered_by: bool = True

    def absolute(self, url: str, base: str) -> str:
        """`url` as an email needs it: a /static path joined to the site's public URL `base`."""
        return base.rstrip("/") + url if url.startswith("/") else url

    @property
    def accent(self) -> str:
        """The colour of buttons and links in emails (which have no dark mode to follow)."""
        return self.color if is_colour(self.color) else DEFAULT_COLOR

    @property
    def page_background(self) -> str:
        return self.background if is_colour(self.background) else DEFAULT_BACKGROUND

    @property
    def accent_text(self) -> str:
        return self.text_color if is_colour(self.text_color) else DEFAULT_TEXT_COLOR


def css_properties(brand: Brand) -> str:
    """The `:root` rule that sets the configured colours (empty when none is set). A colour without its dark-mode
    variant is used in dark mode too, with its text colour, so a branded button looks the same in both."""
    colours = {name: getattr(brand, name) for name in PROPERTIES if is_colour(getattr(brand, name))}
    declarations = [f"{PROPERTIES[name]}:{value}" for name, value in colours.items()]
    if "color" in colours and "color_dark" not in colours:
        declarations += [f"--brand-color-dark:{brand.color}", f"--brand-text-color-dark:{brand.accent_text}"]
    return ":root{" + ";".join(declarations) + "}" if declarations else ""
