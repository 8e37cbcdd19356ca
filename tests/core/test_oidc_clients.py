"""OpenID Connect clients: which settings a client may have, and which redirect URIs match."""

from __future__ import annotations

import base64
import dataclasses
import secrets

import pytest

from passgate.core.errors import InvalidClient, InvalidClientMetadata
from passgate.core.oidc_clients import (
    OidcClient,
    authenticate_client,
    canonical_scopes,
    check_client,
    generate_client_id,
    generate_secret,
    hash_secret,
    post_logout_redirect_uri_matches,
    redirect_uri_matches,
)

SECRET = "s" * 43
WEB = OidcClient(
    client_id="shop",
    name="Shop",
    secret_hash=hash_secret(SECRET),
    redirect_uris=("https://shop.example/callback", "https://shop.example/cb?tenant=1", "http://localhost:3000/cb"),
    post_logout_redirect_uris=("https://shop.example/",),
)
NATIVE = OidcClient(
    client_id="app",
    name="App",
    secret_hash=None,
    redirect_uris=(
        "http://127.0.0.1/callback",
        "http://[::1]/callback",
        "http://localhost/cb",
        "http://127.0.0.1:8080/fixed",
        "com.example.app:/callback",
    ),
)


@pytest.mark.parametrize(
    "uri",
    [
        "https://shop.example/callback",
        "https://shop.example/cb?tenant=1",
        "http://localhost:3000/cb",
    ],
)
def test_a_registered_uri_matches_itself(uri: str) -> None:
    assert redirect_uri_matches(WEB, uri)


@pytest.mark.parametrize(
    "uri",
    [
        "https://shop.example/callback/",  # trailing slash
        "https://shop.example/callbac",  # prefix
        "https://shop.example/callback/../evil",
        "https://shop.example/callbackx",  # suffix
        "https://shop.example/callback?x=1",  # a query added
        "https://shop.example/cb?tenant=2",  # a query changed
        "https://shop.example/cb",  # a query dropped
        "https://shop.example/callback#x",  # a fragment
        "https://SHOP.example/callback",  # case
        "HTTPS://shop.example/callback",
        "https://shop.example/Callback",
        "https://shop.example:443/callback",  # the default port spelt out
        "https://shop.example.evil.example/callback",
        "https://evil.example/callback",
        "https://shop.example@evil.example/callback",  # userinfo
        "https://evil.example/https://shop.example/callback",
        "http://shop.example/callback",  # downgrade
        "https://shop.example/callback ",
        " https://shop.example/callback",
        "https://shop.example/%63allback",  # percent-encoded
        "http://localhost:3001/cb",  # a confidential client's loopback URI matches exactly, port included
        "http://localhost/cb",
        "",
    ],
)
def test_nothing_but_the_registered_string_matches_for_a_confidential_client(uri: str) -> None:
    assert not redirect_uri_matches(WEB, uri)


@pytest.mark.parametrize(
    "uri",
    [
        "http://127.0.0.1/callback",
        "http://127.0.0.1:51004/callback",
        "http://127.0.0.1:1/callback",
        "http://127.0.0.1:65535/callback",
        "http://[::1]:8765/callback",
        "http://[::1]/callback",
        "http://localhost:49152/cb",
        "http://127.0.0.1:9/fixed",  # a registered port is not kept to either
        "http://127.0.0.1/fixed",
        "com.example.app:/callback",
    ],
)
def test_a_public_client_gets_any_loopback_port(uri: str) -> None:
    assert redirect_uri_matches(NATIVE, uri)


@pytest.mark.parametrize(
    "uri",
    [
        "http://127.0.0.1@evil.example/callback",  # userinfo: the host is evil.example
        "http://127.0.0.1:80@evil.example/callback",
        "http://127.0.0.1.evil.example/callback",
        "http://127.0.0.1:8080.evil.example/callback",
        "http://127.0.0.1:/callback",  # an empty port
        "http://127.0.0.1:0/callback",
        "http://127.0.0.1:080/callback",
        "http://127.0.0.1:123456/callback",
        "http://127.0.0.1:8080/callback/",
        "http://127.0.0.1:8080/callback?x=1",
        "http://127.0.0.1:8080/callback#x",
        "http://127.0.0.1:8080/callbackx",
        "http://127.0.0.1:8080/callbac",
        "http://127.0.0.2:8080/callback",  # another loopback address was not registered
        "http://[::1]:8080/cb",  # localhost was registered with /cb, not [::1]
        "http://[0:0:0:0:0:0:0:1]:8080/callback",
        "http://[::1]@evil.example/callback",
        "http://localhost:8080/callback",  # /callback is registered for 127.0.0.1 and [::1] only
        "http://LOCALHOST:8080/cb",
        "http://localhost.evil.example/cb",
        "https://127.0.0.1/callback",
        "http://127.0.0.1:8080\\@evil.example/callback",
        "com.example.app:/callback/",
        "com.example.app://callback",
        "com.example.evil:/callback",
    ],
)
def test_loopback_ports_are_the_only_leeway(uri: str) -> None:
    assert not redirect_uri_matches(NATIVE, uri)


def test_post_logout_redirect_uris_match_exactly() -> None:
    assert post_logout_redirect_uri_matches(WEB, "https://shop.example/")
    for uri in ("https://shop.example", "https://shop.example/?x", "https://shop.example/callback", "https://evil/"):
        assert not post_logout_redirect_uri_matches(WEB, uri)
    loopback = dataclasses.replace(NATIVE, post_logout_redirect_uris=("http://127.0.0.1/bye",))
    assert post_logout_redirect_uri_matches(loopback, "http://127.0.0.1/bye")
    assert not post_logout_redirect_uri_matches(loopback, "http://127.0.0.1:8080/bye")


def test_good_clients_pass() -> None:
    check_client(WEB)
    check_client(NATIVE)
    check_client(dataclasses.replace(WEB, backchannel_logout_uri="http://shop.internal:8080/logout"))


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"client_id": ""}, "client_id", "1 to 64"),
        ({"client_id": "a" * 65}, "client_id", "1 to 64"),
        ({"client_id": "shop:1"}, "client_id", "letters"),
        ({"client_id": "-shop"}, "client_id", "starting"),
        ({"client_id": "shöp"}, "client_id", "letters"),
        ({"name": " "}, "name", "printable"),
        ({"name": "Shop\n"}, "name", "printable"),
        ({"redirect_uris": ()}, "redirect_uris", "at least one"),
        ({"redirect_uris": ("/callback",)}, "redirect_uris", "reverse-domain"),
        ({"redirect_uris": ("shop.example/callback",)}, "redirect_uris", "reverse-domain"),
        ({"redirect_uris": ("https://shop.example/cb#x",)}, "redirect_uris", "fragment"),
        ({"redirect_uris": ("https://shop.example/cb#",)}, "redirect_uris", "fragment"),
        ({"redirect_uris": ("http://shop.example/cb",)}, "redirect_uris", "must use https"),
        ({"redirect_uris": ("http://127.0.0.1@evil.example/cb",)}, "redirect_uris", "must use https"),
        ({"redirect_uris": ("https://user@shop.example/cb",)}, "redirect_uris", "user information"),
        ({"redirect_uris": ("https:///cb",)}, "redirect_uris", "host"),
        ({"redirect_uris": ("https://shop.example\\@evil/cb",)}, "redirect_uris", "backslash"),
        ({"redirect_uris": ("https://shop.example/a b",)}, "redirect_uris", "printable"),
        ({"redirect_uris": ("https://shop.example/" + "a" * 2048,)}, "redirect_uris", "2048"),
        ({"redirect_uris": ("javascript:alert(1)",)}, "redirect_uris", "reverse-domain"),
        ({"redirect_uris": ("data:text/html,x",)}, "redirect_uris", "reverse-domain"),
        ({"redirect_uris": ("com.example.app:/cb",)}, "redirect_uris", "public clients"),  # WEB is confidential
        ({"redirect_uris": tuple(f"https://shop.example/{n}" for n in range(21))}, "redirect_uris", "at most"),
        ({"post_logout_redirect_uris": ("http://shop.example/",)}, "post_logout_redirect_uris", "https"),
        ({"backchannel_logout_uri": "https://shop.example/logout#x"}, "backchannel_logout_uri", "fragment"),
        ({"backchannel_logout_uri": "ftp://shop.example/logout"}, "backchannel_logout_uri", "https"),
        ({"backchannel_logout_uri": "http://u@shop.example/logout"}, "backchannel_logout_uri", "user information"),
        ({"scopes": ("profile", "email")}, "scopes", "'openid' is required"),
        ({"scopes": ("openid", "phone")}, "scopes", "unknown scope 'phone'"),
    ],
)
def test_bad_settings_are_refused_naming_the_field(changes: dict[str, object], field: str, message: str) -> None:
    with pytest.raises(InvalidClientMetadata, match=message) as refused:
        check_client(dataclasses.replace(WEB, **changes))  # type: ignore[arg-type]
    assert refused.value.field == field and refused.value.code == "invalid_client_metadata"


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("com.example.app://callback", "reverse-domain"),  # RFC 8252 7.1: a single slash, no authority
        ("myapp:/callback", "reverse-domain"),  # not a reverse domain name
        ("Com.Example.App:/callback", "reverse-domain"),
        ("com.example.app:callback", "reverse-domain"),
    ],
)
def test_private_use_schemes_are_reverse_domain_names(uri: str, message: str) -> None:
    with pytest.raises(InvalidClientMetadata, match=message):
        check_client(dataclasses.replace(NATIVE, redirect_uris=(uri,)))


def test_a_public_client_has_no_plain_http_back_channel() -> None:
    with pytest.raises(InvalidClientMetadata, match="confidential"):
        check_client(dataclasses.replace(NATIVE, backchannel_logout_uri="http://app.internal/logout"))


def test_scopes_in_their_usual_order_without_repeats() -> None:
    assert canonical_scopes(["email", "openid", "email", "offline_access"]) == ("openid", "email", "offline_access")
    assert canonical_scopes(["phone", "openid"]) == ("openid", "phone")


def test_generated_secrets_and_ids() -> None:
    secret = generate_secret(secrets.token_bytes)
    assert len(base64.urlsafe_b64decode(secret + "=")) == 32 and len(secret) == 43
    assert generate_secret(lambda n: b"\x00" * n) == "A" * 43
    client_id = generate_client_id(secrets.token_bytes)
    check_client(dataclasses.replace(WEB, client_id=client_id))


def test_the_secret_is_kept_as_its_sha256() -> None:
    import hashlib

    assert hash_secret(SECRET) == hashlib.sha256(SECRET.encode()).digest()
    assert "secret_hash" not in repr(WEB)


def test_authentication_with_the_secret() -> None:
    assert authenticate_client(WEB, SECRET) is WEB
    assert authenticate_client(NATIVE, None) is NATIVE


@pytest.mark.parametrize(
    ("client", "secret"),
    [
        (None, SECRET),  # an unknown client
        (None, None),
        (WEB, "s" * 42),  # a wrong secret
        (WEB, ""),
        (WEB, None),  # a confidential client presenting no secret
        (NATIVE, SECRET),  # a public client presenting a secret
        (NATIVE, ""),
    ],
)
def test_every_refusal_is_the_same_answer(client: OidcClient | None, secret: str | None) -> None:
    with pytest.raises(InvalidClient) as refused:
        authenticate_client(client, secret)
    assert type(refused.value) is InvalidClient
    assert (refused.value.code, refused.value.message) == ("invalid_client", "Client authentication failed.")
