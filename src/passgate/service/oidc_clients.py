"""OpenID Connect clients: look-up, client authentication, and what the CLI adds, lists and removes.

Clients come from two places. Those of the configuration file (`[[oidc.clients]]`) are read at start-up, kept
in `Context.file_clients` and never stored: the file is authoritative, so editing it and restarting is how they
change. Those added with `passgate clients add` are stored. A client_id names one client: adding a client with
the id of a file client is refused, and a file client wins over a stored client that has its id.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from passgate.core import oidc_clients as core
from passgate.core.errors import ClientExists
from passgate.core.oidc_clients import OidcClient
from passgate.service.context import Context

RemoveOutcome = Literal["removed", "not_found", "from_file"]


async def get(ctx: Context, client_id: str) -> OidcClient | None:
    """The client with this id: from the configuration file first, then the stored ones."""
    return ctx.file_clients.get(client_id) or await ctx.storage.oidc_clients.get(client_id)


async def authenticate(ctx: Context, client_id: str, secret: str | None) -> OidcClient:
    """The client, if `secret` is its secret (or None, for a public client).

    Raises:
        InvalidClient: the same for an unknown client, a wrong or missing secret and a public client presenting
            a secret; the same look-up, hash and comparison run for each.
    """
    return core.authenticate_client(await get(ctx, client_id), secret)


def redirect_uri_allowed(client: OidcClient, uri: str) -> bool:
    """True if `uri` is one of the client's redirect URIs (exact, or RFC 8252 loopback for a public client)."""
    return core.redirect_uri_matches(client, uri)


def post_logout_redirect_uri_allowed(client: OidcClient, uri: str) -> bool:
    """True if `uri` is exactly one of the client's post-logout redirect URIs."""
    return core.post_logout_redirect_uri_matches(client, uri)


async def add(
    ctx: Context,
    *,
    name: str,
    redirect_uris: Iterable[str],
    post_logout_redirect_uris: Iterable[str] = (),
    backchannel_logout_uri: str | None = None,
    scopes: Iterable[str] = core.DEFAULT_SCOPES,
    public: bool = False,
    first_party: bool = False,
    client_id: str | None = None,
) -> tuple[OidcClient, str | None]:
    """Store a new client; returns it and its secret (None for a public client), which is shown once and kept
    only as its hash. Without `client_id`, one is generated.

    Raises:
        InvalidClientMetadata: a setting is refused (it names the field).
        ClientExists: the id is taken, by a stored client or one of the configuration file.
    """
    secret = None if public else core.generate_secret(ctx.random)
    client = OidcClient(
        client_id=client_id if client_id is not None else core.generate_client_id(ctx.random),
        name=name,
        secret_hash=None if secret is None else core.hash_secret(secret),
        redirect_uris=tuple(redirect_uris),
        post_logout_redirect_uris=tuple(post_logout_redirect_uris),
        backchannel_logout_uri=backchannel_logout_uri,
        scopes=core.canonical_scopes(scopes),
        first_party=first_party,
        created_at=ctx.clock(),
    )
    core.check_client(client)
    if client.client_id in ctx.file_clients:
        raise ClientExists("The configuration file has a client with this client_id.")
    await ctx.storage.oidc_clients.add(client)
    return client, secret


async def list_clients(ctx: Context) -> list[OidcClient]:
    """The configuration file's clients, then the stored ones, oldest first."""
    return [*ctx.file_clients.values(), *await ctx.storage.oidc_clients.list()]


async def remove(ctx: Context, client_id: str) -> RemoveOutcome:
    """Remove a stored client, and the consents people gave it: a client added later with the same client_id
    is another application, and asks again. A file client is not removed ("from_file"): edit the file instead."""
    if client_id in ctx.file_clients:
        return "from_file"
    if not await ctx.storage.oidc_clients.remove(client_id):
        return "not_found"
    await ctx.storage.consents.forget_client(client_id)
    return "removed"
