"""OpenID Connect clients: what a client is, which settings it may have, and which redirect URIs it may use.

Redirect URIs (RFC 6749 section 3.1.2, RFC 8252 for native apps, RFC 9700 section 2.1):

- absolute, printable ASCII, no fragment, no userinfo (`https://good.example@evil.example/`), no backslash;
- `https://` for every client;
- `http://` only on the loopback interface: `127.0.0.1`, `[::1]` or `localhost` (RFC 8252 section 7.3);
- a private-use scheme named after a reverse domain, `com.example.app:/callback` (RFC 8252 section 7.1), for
  public clients only: that is how a native app receives its redirect, and a native app is a public client.
  There is no authority after the scheme, so a single slash follows it, as RFC 8252 says.

A requested redirect URI matches a registered one only when both are the same string. The one exception is
RFC 8252's loopback redirect, for public clients only: a native app listens on whatever port the operating system
gives it, so `http://127.0.0.1/cb` (or `[::1]`, `localhost`) registered matches `http://127.0.0.1:<any port>/cb`,
the rest of the URI still compared exactly. A confidential client is a web server with a fixed address, so its
loopback URIs (a developer's `http://localhost:3000/cb`) match exactly, port included.

Client secrets Passgate generates carry 256 random bits, so a leaked hash cannot be searched for its secret: an
unkeyed SHA-256 is enough and no slow hash is needed. Secrets written in the configuration file must be at least
`MIN_SECRET_LENGTH` characters for the same reason.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from passgate.core.errors import InvalidClient, InvalidClientMetadata

ClientSource = Literal["file", "cli"]

SCOPES = ("openid", "profile", "email", "offline_access")  # in this order wherever they are listed
DEFAULT_SCOPES = ("openid", "profile", "email")
MIN_SECRET_LENGTH = 32
SECRET_BYTES = 32
MAX_URI_LENGTH = 2048
MAX_URIS = 20
MAX_NAME_LENGTH = 100

CLIENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._~-]{0,63}")  # RFC 3986 unreserved: safe in URLs and in Basic auth
# The loopback authority with an optional port, up to where the path, query or fragment begins (or the end):
# `http://127.0.0.1@evil.example/` and `http://127.0.0.1.evil.example/` do not match.
_LOOPBACK = re.compile(r"http://(127\.0\.0\.1|\[::1\]|localhost)(?::([1-9][0-9]{0,4}))?(?=[/?#]|$)")
# A host name or IP literal and an optional port, then the path or query (or the end): no user information.
_HOST_AND_PORT = r"([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[1-9][0-9]{0,4})?(?=[/?]|$)"
_HTTPS = re.compile("https://" + _HOST_AND_PORT)
_HTTP = re.compile("http://" + _HOST_AND_PORT)
_PRIVATE_USE = re.compile(r"[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)+:/(?!/)")
_PRINTABLE = re.compile(r"[!-~]+")  # printable ASCII, no space


@dataclass(frozen=True, kw_only=True)
class OidcClient:
    """A registered client. `secret_hash` is None for a public client (an SPA or a native app)."""

    client_id: str
    name: str
    secret_hash: bytes | None = field(repr=False)
    redirect_uris: tuple[str, ...]
    post_logout_redirect_uris: tuple[str, ...] = ()
    backchannel_logout_uri: str | None = None
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    first_party: bool = False  # no consent screen
    created_at: datetime | None = None  # None for clients read from the configuration file
    source: ClientSource = "cli"

    @property
    def public(self) -> bool:
        return self.secret_hash is None


def hash_secret(secret: str) -> bytes:
    """The at-rest form of a client secret (see the module docstring for why SHA-256 suffices)."""
    return hashlib.sha256(secret.encode()).digest()


def generate_secret(random: Callable[[int], bytes]) -> str:
    """A new client secret: 32 random bytes, base64url without padding (43 characters)."""
    return base64.urlsafe_b64encode(random(SECRET_BYTES)).rstrip(b"=").decode()


def generate_client_id(random: Callable[[int], bytes]) -> str:
    return base64.urlsafe_b64encode(random(16)).rstrip(b"=").decode().lstrip("-_") or "client"


# Compared with when there is no secret to compare with (an unknown client, a public client): the same work
# is done whatever the outcome. The hash of a fixed string nobody can present (it is not valid UTF-8 text).
_DECOY_HASH = hashlib.sha256(b"\xff passgate: no client secret").digest()


def authenticate_client(client: OidcClient | None, secret: str | None) -> OidcClient:
    """The client, if `secret` is what it must present: its secret, or nothing for a public client.

    The same hash and comparison run for an unknown client, a wrong secret and a public client presenting a
    secret, and each raises the same error, so the answer tells none of them apart.

    Raises:
        InvalidClient: an unknown client, a wrong or missing secret, or a public client presenting one.
    """
    expected = client.secret_hash if client is not None and client.secret_hash is not None else _DECOY_HASH
    matches = hmac.compare_digest(hash_secret(secret or ""), expected)
    if client is None:
        raise InvalidClient()
    if client.public:
        if secret is not None:
            raise InvalidClient()
        return client
    if secret is None or not matches:
        raise InvalidClient()
    return client


def redirect_uri_matches(client: OidcClient, uri: str) -> bool:
    """True if `uri` is one of the client's redirect URIs (see the module docstring for the loopback rule)."""
    if uri in client.redirect_uris:
        return True
    if not client.public:
        return False
    requested = _without_loopback_port(uri)
    return requested is not None and any(
        _without_loopback_port(registered) == requested for registered in client.redirect_uris
    )


def post_logout_redirect_uri_matches(client: OidcClient, uri: str) -> bool:
    """True if `uri` is exactly one of the client's post-logout redirect URIs."""
    return uri in client.post_logout_redirect_uris


def _without_loopback_port(uri: str) -> str | None:
    match = _LOOPBACK.match(uri)
    if match is None or "#" in uri:
        return None
    return f"http://{match.group(1)}{uri[match.end() :]}"


def check_client(client: OidcClient) -> None:
    """Refuse settings a client may not have.

    Raises:
        InvalidClientMetadata: naming the field (client_id, name, redirect_uris, post_logout_redirect_uris,
            backchannel_logout_uri or scopes) and what is wrong with it.
    """
    if not CLIENT_ID.fullmatch(client.client_id):
        raise InvalidClientMetadata(
            "client_id", "use 1 to 64 letters, digits and . _ ~ - (starting with a letter or digit)"
        )
    if not client.name.strip() or len(client.name) > MAX_NAME_LENGTH or not client.name.isprintable():
        raise InvalidClientMetadata("name", f"give a printable name of 1 to {MAX_NAME_LENGTH} characters")
    if not client.redirect_uris:
        raise InvalidClientMetadata("redirect_uris", "a client needs at least one redirect URI")
    _check_uris("redirect_uris", client.redirect_uris, public=client.public)
    _check_uris("post_logout_redirect_uris", client.post_logout_redirect_uris, public=client.public)
    if client.backchannel_logout_uri is not None:
        _check_backchannel_uri(client.backchannel_logout_uri, public=client.public)
    _check_scopes(client.scopes)


def canonical_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """Known scopes in their usual order, unknown ones after (for `check_client` to name)."""
    wanted = list(dict.fromkeys(scopes))
    return tuple(s for s in SCOPES if s in wanted) + tuple(s for s in wanted if s not in SCOPES)


def _check_scopes(scopes: tuple[str, ...]) -> None:
    unknown = [scope for scope in scopes if scope not in SCOPES]
    if unknown:
        raise InvalidClientMetadata("scopes", f"unknown scope {unknown[0]!r}: choose among {' '.join(SCOPES)}")
    if "openid" not in scopes:
        raise InvalidClientMetadata("scopes", "'openid' is required")


def _check_uris(field: str, uris: tuple[str, ...], *, public: bool) -> None:
    if len(uris) > MAX_URIS:
        raise InvalidClientMetadata(field, f"at most {MAX_URIS} URIs")
    for uri in uris:
        _check_uri(field, uri)
        if uri.startswith("https://") or _LOOPBACK.match(uri):
            continue
        if uri.startswith("http://"):
            raise InvalidClientMetadata(
                field, f"{uri!r} must use https (plain http only on 127.0.0.1, [::1] or localhost)"
            )
        if not _PRIVATE_USE.match(uri):
            raise InvalidClientMetadata(
                field,
                f"{uri!r}: use https, loopback http, or a reverse-domain scheme such as com.example.app:/callback",
            )
        if not public:
            raise InvalidClientMetadata(
                field, f"{uri!r}: a private-use scheme is for native apps, which are public clients"
            )


def _check_uri(field: str, uri: str) -> None:
    if not uri or len(uri) > MAX_URI_LENGTH or not _PRINTABLE.fullmatch(uri):
        raise InvalidClientMetadata(field, f"{uri!r} must be printable ASCII without spaces, up to 2048 characters")
    if "#" in uri:
        raise InvalidClientMetadata(field, f"{uri!r} must not contain a fragment (#)")
    if "\\" in uri:
        raise InvalidClientMetadata(field, f"{uri!r} must not contain a backslash")
    if uri.startswith("https://") and not _HTTPS.match(uri):
        raise InvalidClientMetadata(field, f"{uri!r} must name a host (and a port), without user information")


def _check_backchannel_uri(uri: str, *, public: bool) -> None:
    # OpenID Connect Back-Channel Logout 1.0, section 2.2: https, or http for a confidential client.
    field = "backchannel_logout_uri"
    _check_uri(field, uri)
    if uri.startswith("https://"):
        return
    if not uri.startswith("http://") or public:
        raise InvalidClientMetadata(field, f"{uri!r} must use https (http only for a confidential client)")
    if not _HTTP.match(uri):
        raise InvalidClientMetadata(field, f"{uri!r} must name a host (and a port), without user information")
