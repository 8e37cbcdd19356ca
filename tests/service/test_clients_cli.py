"""`passgate clients` through the installed command, on a SQLite database of its own."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from passgate.config import load_settings
from passgate.core.errors import InvalidClient
from passgate.core.oidc_clients import OidcClient
from passgate.service import oidc_clients
from passgate.service.context import Context
from passgate.store.factory import open_storage
from passgate.store.memory import memory_storage
from passgate.web.app import relying_party

FILE = """
[[oidc.clients]]
client_id = "shop"
client_secret = "a long random secret, 32 characters or more"
redirect_uris = ["https://shop.example/callback"]
"""
PASSGATE = Path(sys.executable).parent / "passgate"


class Clients:
    def __init__(self, directory: Path) -> None:
        self.config = directory / "passgate.toml"
        self.config.write_text(FILE)
        self.database_url = f"sqlite:///{directory}/passgate.db"
        self.environment = {key: value for key, value in os.environ.items() if not key.startswith("PASSGATE_")}

    def run(self, *arguments: str) -> subprocess.CompletedProcess[str]:
        command = [str(PASSGATE), "clients", *arguments, "--config", str(self.config)]
        command += ["--database-url", self.database_url]
        return subprocess.run(command, env=self.environment, capture_output=True, text=True, check=False, timeout=60)

    async def authenticate(self, client_id: str, secret: str | None) -> OidcClient:
        settings = load_settings({"database_url": self.database_url}, {}, self.config)
        storage, close = open_storage(settings.database_url)
        ctx = Context(rp=relying_party(settings), storage=storage, file_clients=settings.file_clients())
        try:
            return await oidc_clients.authenticate(ctx, client_id, secret)
        finally:
            await close()


@pytest.fixture
def clients(tmp_path: Path) -> Clients:
    return Clients(tmp_path)


async def test_add_list_authenticate_remove(clients: Clients) -> None:
    added = clients.run(
        "add",
        "Blog",
        "--redirect-uri",
        "https://blog.example/callback",
        "--redirect-uri",
        "https://blog.example/other",
        "--post-logout-redirect-uri",
        "https://blog.example/",
        "--backchannel-logout-uri",
        "https://blog.example/logout",
        "--scope",
        "openid",
        "--scope",
        "offline_access",
        "--first-party",
    )
    assert added.returncode == 0, added.stderr
    shown = re.fullmatch(r"client_id: (\S+)\nclient_secret: (\S+)\n", added.stdout)
    assert shown is not None, added.stdout
    client_id, secret = shown.groups()
    assert "not shown again" in added.stderr

    client = await clients.authenticate(client_id, secret)
    assert client.name == "Blog" and client.first_party and client.scopes == ("openid", "offline_access")
    assert client.redirect_uris == ("https://blog.example/callback", "https://blog.example/other")
    assert client.post_logout_redirect_uris == ("https://blog.example/",)
    assert client.backchannel_logout_uri == "https://blog.example/logout"
    with pytest.raises(InvalidClient):
        await clients.authenticate(client_id, secret[::-1])

    listed = clients.run("list")
    assert listed.returncode == 0, listed.stderr
    assert re.search(r"^shop  'shop'  confidential  \(configuration file\)$", listed.stdout, re.M), listed.stdout
    assert re.search(rf"^{re.escape(client_id)}  'Blog'  confidential, first-party  \(added ", listed.stdout, re.M)
    assert "redirect_uri: https://blog.example/other" in listed.stdout
    assert secret not in listed.stdout + listed.stderr and "secret" not in listed.stdout

    refused = clients.run("remove", "shop")
    assert refused.returncode == 2 and "configuration file" in refused.stderr
    removed = clients.run("remove", client_id)
    assert removed.returncode == 0, removed.stderr
    assert client_id not in clients.run("list").stdout
    assert clients.run("remove", client_id).returncode == 1
    with pytest.raises(InvalidClient):
        await clients.authenticate(client_id, secret)
    assert (await clients.authenticate("shop", "a long random secret, 32 characters or more")).source == "file"


async def test_a_public_client_gets_no_secret(clients: Clients) -> None:
    added = clients.run("add", "App", "--redirect-uri", "http://127.0.0.1/cb", "--public", "--client-id", "app")
    assert added.returncode == 0, added.stderr
    assert added.stdout == "client_id: app\n"
    client = await clients.authenticate("app", None)
    assert client.public and oidc_clients.redirect_uri_allowed(client, "http://127.0.0.1:50123/cb")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("--redirect-uri", "http://blog.example/cb"), "redirect_uris: 'http://blog.example/cb' must use https"),
        (("--redirect-uri", "https://blog.example/cb", "--scope", "email"), "scopes: 'openid' is required"),
        (("--redirect-uri", "https://blog.example/cb", "--client-id", "shop"), "configuration file has a client"),
    ],
)
def test_refused_settings_add_nothing(clients: Clients, arguments: tuple[str, ...], message: str) -> None:
    refused = clients.run("add", "Blog", *arguments)
    assert refused.returncode == 2 and message in refused.stderr, refused.stderr
    assert refused.stdout == ""
    assert clients.run("list").stdout.count("\n") == 3  # the file client only: its line, scopes, redirect URI


async def test_removing_a_client_forgets_the_consents_given_to_it() -> None:
    """A client added later with the same client_id is another application: it asks for consent again."""
    ctx = Context(rp=relying_party(load_settings({})), storage=memory_storage())
    await oidc_clients.add(ctx, name="Partner", redirect_uris=["https://partner.example/cb"], client_id="partner")
    await ctx.storage.consents.grant("u1", "partner", ["openid"], ctx.clock())
    await ctx.storage.consents.grant("u1", "other", ["openid"], ctx.clock())
    assert await oidc_clients.remove(ctx, "partner") == "removed"
    assert await ctx.storage.consents.get("u1", "partner") is None
    assert await ctx.storage.consents.get("u1", "other") is not None
