"""[[oidc.clients]] in the configuration file: read at start-up, refused with a message naming client and field."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from passgate.config import ConfigError, from_json, load_settings, to_json
from passgate.core.oidc_clients import OidcClient

SECRET = "a long random secret, 32 characters or more"
SHOP = f"""
[[oidc.clients]]
client_id = "shop"
client_secret = "{SECRET}"
redirect_uris = ["https://shop.example/callback"]
post_logout_redirect_uris = ["https://shop.example/"]
backchannel_logout_uri = "https://shop.example/backchannel-logout"
scopes = ["openid", "profile", "email", "offline_access"]
first_party = true
"""
APP = """
[[oidc.clients]]
client_id = "app"
name = "The app"
redirect_uris = ["http://127.0.0.1/callback", "com.example.app:/callback"]
"""


def settings_of(tmp_path: Path, text: str) -> dict[str, OidcClient]:
    config = tmp_path / "passgate.toml"
    config.write_text(text)
    return dict(load_settings({}, {}, config).file_clients())


def test_the_file_clients_are_read(tmp_path: Path) -> None:
    clients = settings_of(tmp_path, SHOP + APP)
    shop, app = clients["shop"], clients["app"]
    assert list(clients) == ["shop", "app"]
    assert shop.source == "file" and shop.name == "shop" and not shop.public and shop.first_party
    assert shop.secret_hash == hashlib.sha256(SECRET.encode()).digest()
    assert shop.redirect_uris == ("https://shop.example/callback",)
    assert shop.post_logout_redirect_uris == ("https://shop.example/",)
    assert shop.backchannel_logout_uri == "https://shop.example/backchannel-logout"
    assert shop.scopes == ("openid", "profile", "email", "offline_access")
    assert app.public and app.name == "The app" and not app.first_party
    assert app.scopes == ("openid", "profile", "email")


def test_workers_get_the_same_clients(tmp_path: Path) -> None:
    config = tmp_path / "passgate.toml"
    config.write_text(SHOP + APP)
    settings = load_settings({}, {}, config)
    assert from_json(to_json(settings)).file_clients() == settings.file_clients()


def test_no_clients_without_the_table() -> None:
    assert load_settings({}, {}).file_clients() == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            SHOP.replace("https://shop.example/callback", "http://shop.example/callback"),
            "oidc.clients[1] ('shop'): redirect_uris: 'http://shop.example/callback' must use https",
        ),
        (
            SHOP.replace("https://shop.example/callback", "https://shop.example/callback#top"),
            "oidc.clients[1] ('shop'): redirect_uris: 'https://shop.example/callback#top' must not contain a fragment",
        ),
        (
            APP + SHOP.replace('https://shop.example/"]', 'https://evil.example@shop.example/"]'),
            "oidc.clients[2] ('shop'): post_logout_redirect_uris:",
        ),
        (SHOP.replace(SECRET, "too short"), "oidc.clients[1] ('shop'): client_secret must be at least 32 characters"),
        (
            SHOP.replace("redirect_uris =", "redirect_uri ="),
            "oidc.clients[1] ('shop'): unknown key 'redirect_uri'. Did you mean redirect_uris?",
        ),
        (
            SHOP.replace("first_party = true", 'first_party = "yes"'),
            "oidc.clients[1] ('shop'): first_party must be true or false",
        ),
        (
            SHOP.replace('["https://shop.example/callback"]', '"https://shop.example/callback"'),
            "oidc.clients[1] ('shop'): redirect_uris must be a list of strings",
        ),
        (SHOP.replace('"offline_access"]', '"phone"]'), "oidc.clients[1] ('shop'): scopes: unknown scope 'phone'"),
        (SHOP.replace('["openid", ', "["), "oidc.clients[1] ('shop'): scopes: 'openid' is required"),
        (APP.replace('"app"', '"my app"'), "oidc.clients[1] ('my app'): client_id:"),
        (APP.replace('client_id = "app"', ""), "oidc.clients[1]: client_id is required"),
        (
            SHOP.replace('"https://shop.example/callback"', '"com.example.shop:/callback"'),
            "oidc.clients[1] ('shop'): redirect_uris: 'com.example.shop:/callback': a private-use scheme is for native",
        ),
        (APP + APP, "oidc.clients[2]: client_id 'app' is used by another client"),
        ("[oidc]\nclient = []\n", "oidc: unknown key 'client'"),
        ("oidc = 1\n", "oidc must be a table"),
        ("[oidc]\nclients = [1]\n", "oidc.clients must be a list of tables"),
    ],
)
def test_a_bad_client_is_refused_naming_it_and_the_field(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        settings_of(tmp_path, text)


def test_clients_are_set_in_the_file_only() -> None:
    with pytest.raises(ConfigError, match="Unknown setting PASSGATE_OIDC_CLIENTS"):
        load_settings({}, {"PASSGATE_OIDC_CLIENTS": "shop"})


def test_the_server_refuses_to_start_with_a_bad_client(tmp_path: Path) -> None:
    config = tmp_path / "passgate.toml"
    config.write_text(SHOP.replace(SECRET, "short"))
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PASSGATE_")}
    command = [sys.executable, "-m", "passgate", "serve", "--config", str(config), "--port", "1"]
    refused = subprocess.run(command, env=environment, capture_output=True, text=True, check=False, timeout=60)
    assert refused.returncode == 2
    assert "configuration error: oidc.clients[1] ('shop'): client_secret must be at least 32" in refused.stderr
