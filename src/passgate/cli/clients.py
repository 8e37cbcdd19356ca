"""`passgate clients`: add, list and remove OpenID Connect clients (those of the configuration file are listed)."""

from __future__ import annotations

import argparse
import asyncio
import sys

from passgate.config import Settings
from passgate.core.errors import ClientError
from passgate.core.oidc_clients import DEFAULT_SCOPES
from passgate.service import oidc_clients
from passgate.service.context import Context
from passgate.store.factory import open_storage
from passgate.store.migrate import upgrade


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    clients = commands.add_parser("clients", help="OpenID Connect clients: add, list, remove")
    actions = clients.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="add a client; prints its client_id and, once, its secret")
    add.add_argument("name", help="the client's name, shown to people on the consent page")
    add.add_argument("--redirect-uri", dest="redirect_uris", action="append", required=True, metavar="URI")
    add.add_argument(
        "--post-logout-redirect-uri", dest="post_logout_redirect_uris", action="append", default=[], metavar="URI"
    )
    add.add_argument("--backchannel-logout-uri", dest="backchannel_logout_uri", metavar="URI")
    add.add_argument(
        "--scope", dest="scopes", action="append", metavar="SCOPE", help="openid profile email offline_access"
    )
    add.add_argument("--public", action="store_true", help="no secret: an SPA or a native app")
    add.add_argument("--first-party", dest="first_party", action="store_true", help="no consent screen")
    add.add_argument("--client-id", dest="client_id", help="choose the client_id (default: a random one)")
    listing = actions.add_parser("list", help="the clients, never their secrets")
    remove = actions.add_parser("remove", help="remove a client added with `passgate clients add`")
    remove.add_argument("client_id")
    for parser in (add, listing, remove):
        parser.add_argument("--config")
        parser.add_argument("--database-url", dest="database_url")


# The arguments that are not settings.
ARGUMENTS = (
    "name",
    "redirect_uris",
    "post_logout_redirect_uris",
    "backchannel_logout_uri",
    "scopes",
    "public",
    "first_party",
    "client_id",
)


def run(settings: Settings, arguments: argparse.Namespace) -> int:
    upgrade(settings.database_url)
    return asyncio.run(_run(settings, arguments))


async def _run(settings: Settings, arguments: argparse.Namespace) -> int:
    from passgate.web.app import relying_party

    storage, close = open_storage(settings.database_url)
    ctx = Context(rp=relying_party(settings), storage=storage, file_clients=settings.file_clients())
    try:
        if arguments.action == "add":
            return await _add(ctx, arguments)
        if arguments.action == "remove":
            return await _remove(ctx, arguments.client_id)
        return await _list(ctx)
    finally:
        await close()


async def _add(ctx: Context, arguments: argparse.Namespace) -> int:
    try:
        client, secret = await oidc_clients.add(
            ctx,
            name=arguments.name,
            redirect_uris=arguments.redirect_uris,
            post_logout_redirect_uris=arguments.post_logout_redirect_uris,
            backchannel_logout_uri=arguments.backchannel_logout_uri,
            scopes=arguments.scopes or DEFAULT_SCOPES,
            public=arguments.public,
            first_party=arguments.first_party,
            client_id=arguments.client_id,
        )
    except ClientError as exc:
        print(f"passgate: {exc.message}", file=sys.stderr)
        return 2
    print(f"client_id: {client.client_id}")
    if secret is not None:
        print(f"client_secret: {secret}")
        print("Store the secret now: it is not shown again (Passgate keeps only its hash).", file=sys.stderr)
    return 0


async def _list(ctx: Context) -> int:
    for client in await oidc_clients.list_clients(ctx):
        kind = "public" if client.public else "confidential"
        origin = "configuration file" if client.source == "file" else f"added {client.created_at:%Y-%m-%d %H:%M}"
        party = ", first-party" if client.first_party else ""
        print(f"{client.client_id}  {client.name!r}  {kind}{party}  ({origin})")
        print(f"    scopes: {' '.join(client.scopes)}")
        for uri in client.redirect_uris:
            print(f"    redirect_uri: {uri}")
        for uri in client.post_logout_redirect_uris:
            print(f"    post_logout_redirect_uri: {uri}")
        if client.backchannel_logout_uri:
            print(f"    backchannel_logout_uri: {client.backchannel_logout_uri}")
    return 0


async def _remove(ctx: Context, client_id: str) -> int:
    outcome = await oidc_clients.remove(ctx, client_id)
    if outcome == "from_file":
        print(
            f"passgate: {client_id!r} is set in the configuration file ([[oidc.clients]]): remove it there",
            file=sys.stderr,
        )
        return 2
    if outcome == "not_found":
        print(f"passgate: there is no client {client_id!r}", file=sys.stderr)
        return 1
    print(f"passgate: removed client {client_id!r}")
    return 0
