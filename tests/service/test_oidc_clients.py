"""OpenID Connect clients as the service sees them: file clients first, authentication, add, list and remove."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from passgate.core.errors import ClientExists, InvalidClient, InvalidClientMetadata
from passgate.core.oidc_clients import OidcClient, hash_secret
from passgate.core.policy import preset
from passgate.service import oidc_clients
from passgate.service.context import Context, RelyingParty
from passgate.store.memory import memory_storage

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
FILE_SECRET = "f" * 40
SHOP = OidcClient(
    client_id="shop",
    name="Shop",
    secret_hash=hash_secret(FILE_SECRET),
    redirect_uris=("https://shop.example/callback",),
    post_logout_redirect_uris=("https://shop.example/",),
    source="file",
)


def context() -> Context:
    rp = RelyingParty(rp_id="localhost", rp_name="Passgate", origins=("http://localhost",), policy=preset("consumer"))
    return Context(rp=rp, storage=memory_storage(), clock=lambda: NOW, file_clients={"shop": SHOP})


async def test_an_added_client_signs_in_with_the_secret_shown_once() -> None:
    ctx = context()
    client, secret = await oidc_clients.add(ctx, name="Blog", redirect_uris=["https://blog.example/cb"])
    assert secret is not None and len(secret) == 43
    assert client.secret_hash == hash_secret(secret) and client.created_at == NOW and client.source == "cli"
    stored = await ctx.storage.oidc_clients.get(client.client_id)
    assert stored == client and secret not in repr(dataclasses.asdict(stored))
    assert await oidc_clients.get(ctx, client.client_id) == client
    assert await oidc_clients.authenticate(ctx, client.client_id, secret) == client
    assert await oidc_clients.authenticate(ctx, "shop", FILE_SECRET) is SHOP


async def test_a_public_client_has_no_secret() -> None:
    ctx = context()
    client, secret = await oidc_clients.add(
        ctx, name="App", redirect_uris=["http://127.0.0.1/cb"], public=True, scopes=["email", "openid"]
    )
    assert secret is None and client.public and client.scopes == ("openid", "email")
    assert await oidc_clients.authenticate(ctx, client.client_id, None) == client
    assert oidc_clients.redirect_uri_allowed(client, "http://127.0.0.1:61000/cb")
    assert not oidc_clients.redirect_uri_allowed(client, "http://127.0.0.1:61000/cb/")


async def test_every_refused_authentication_is_the_same_answer() -> None:
    ctx = context()
    confidential, secret = await oidc_clients.add(ctx, name="Blog", redirect_uris=["https://blog.example/cb"])
    public, _ = await oidc_clients.add(ctx, name="App", redirect_uris=["http://127.0.0.1/cb"], public=True)
    assert secret is not None
    attempts = [
        ("unknown", secret),  # an unknown client
        ("unknown", None),
        (confidential.client_id, secret[:-1] + ("A" if secret[-1] != "A" else "B")),  # a wrong secret
        (confidential.client_id, None),  # no secret
        ("shop", secret),  # another client's secret
        (public.client_id, secret),  # a public client presenting a secret
    ]
    answers = set()
    for client_id, presented in attempts:
        with pytest.raises(InvalidClient) as refused:
            await oidc_clients.authenticate(ctx, client_id, presented)
        answers.add((type(refused.value), refused.value.code, refused.value.message))
    assert answers == {(InvalidClient, "invalid_client", "Client authentication failed.")}


async def test_file_clients_come_first_and_their_ids_are_taken() -> None:
    ctx = context()
    with pytest.raises(ClientExists, match="configuration file"):
        await oidc_clients.add(ctx, name="Shop again", redirect_uris=["https://evil.example/cb"], client_id="shop")
    assert await ctx.storage.oidc_clients.list() == []
    # A stored client that has a file client's id (the file gained it later) is shadowed by the file.
    shadowed = dataclasses.replace(SHOP, redirect_uris=("https://evil.example/cb",), source="cli", created_at=NOW)
    await ctx.storage.oidc_clients.add(shadowed)
    assert await oidc_clients.get(ctx, "shop") is SHOP
    assert not oidc_clients.redirect_uri_allowed(SHOP, "https://evil.example/cb")


async def test_refused_settings_store_nothing() -> None:
    ctx = context()
    with pytest.raises(InvalidClientMetadata) as refused:
        await oidc_clients.add(ctx, name="Blog", redirect_uris=["https://blog.example/cb#frag"])
    assert refused.value.field == "redirect_uris"
    with pytest.raises(InvalidClientMetadata, match="scopes"):
        await oidc_clients.add(ctx, name="Blog", redirect_uris=["https://blog.example/cb"], scopes=["email"])
    assert await ctx.storage.oidc_clients.list() == []


async def test_list_and_remove() -> None:
    ctx = context()
    client, _ = await oidc_clients.add(ctx, name="Blog", redirect_uris=["https://blog.example/cb"], client_id="blog")
    assert await oidc_clients.list_clients(ctx) == [SHOP, client]
    assert await oidc_clients.remove(ctx, "shop") == "from_file"
    assert await oidc_clients.remove(ctx, "nobody") == "not_found"
    assert await oidc_clients.remove(ctx, "blog") == "removed"
    assert await oidc_clients.list_clients(ctx) == [SHOP]
    with pytest.raises(InvalidClient):
        await oidc_clients.authenticate(ctx, "blog", None)


async def test_post_logout_redirect_uris_match_exactly() -> None:
    assert oidc_clients.post_logout_redirect_uri_allowed(SHOP, "https://shop.example/")
    assert not oidc_clients.post_logout_redirect_uri_allowed(SHOP, "https://shop.example/callback")
