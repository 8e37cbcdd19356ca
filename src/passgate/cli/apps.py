"""`passgate apps`: register apps of the passkey API, list and remove them, and add or revoke their API keys."""

from __future__ import annotations

import argparse
import asyncio
import sys

from passgate.config import Settings
from passgate.core.errors import InvalidRequest, NotFound
from passgate.service import apps
from passgate.service.context import Context
from passgate.store.factory import open_storage
from passgate.store.migrate import upgrade


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("apps", help="apps of the passkey API: add, list, remove, keys add|revoke")
    actions = parser.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="add an app; prints its id and, once, an API key")
    add.add_argument("name", help="the app's name, shown by the browser when a passkey is created")
    add.add_argument("--origin", dest="app_origins", action="append", required=True, metavar="ORIGIN")
    add.add_argument("--rp-id", dest="app_rp_id", metavar="DOMAIN", help="default: the server's rp_id")
    add.add_argument("--policy", dest="app_policy", default="", metavar="PRESET", help="default: the server's policy")
    listing = actions.add_parser("list", help="the apps and their keys' ids, never the keys")
    remove = actions.add_parser("remove", help="remove an app with its keys, users and passkeys")
    remove.add_argument("app_id")
    keys = actions.add_parser("keys", help="add or revoke an app's API keys (several work at once: rotate)")
    keys.add_argument("key_action", choices=["add", "revoke"])
    keys.add_argument("app_id")
    keys.add_argument("key_id", nargs="?", help="revoke: the key's id (from `passgate apps list`)")
    for each in (add, listing, remove, keys):
        each.add_argument("--config")
        each.add_argument("--database-url", dest="database_url")


# The arguments that are not settings.
ARGUMENTS = ("name", "app_origins", "app_rp_id", "app_policy", "app_id", "key_action", "key_id")


def run(settings: Settings, arguments: argparse.Namespace) -> int:
    upgrade(settings.database_url)
    return asyncio.run(_run(settings, arguments))


async def _run(settings: Settings, arguments: argparse.Namespace) -> int:
    from passgate.web.app import relying_party

    storage, close = open_storage(settings.database_url)
    ctx = Context(rp=relying_party(settings), storage=storage)
    try:
        await apps.keep_file_apps(ctx, settings.file_apps())
        if arguments.action == "add":
            return await _add(ctx, arguments)
        if arguments.action == "remove":
            return await _remove(ctx, arguments.app_id)
        if arguments.action == "keys":
            return await _keys(ctx, arguments)
        return await _list(ctx)
    finally:
        await close()


async def _add(ctx: Context, arguments: argparse.Namespace) -> int:
    try:
        app, key, secret = await apps.add(
            ctx,
            name=arguments.name,
            origins=arguments.app_origins,
            rp_id=arguments.app_rp_id,
            policy=arguments.app_policy,
        )
    except InvalidRequest as exc:
        print(f"passgate: {exc.message}", file=sys.stderr)
        return 2
    print(f"app_id: {app.app_id}")
    _print_key(key.key_id, secret)
    return 0


def _print_key(key_id: str, secret: str) -> None:
    print(f"key_id: {key_id}")
    print(f"api_key: {secret}")
    print("Store the API key now: it is not shown again (Passgate keeps only its hash).", file=sys.stderr)


async def _list(ctx: Context) -> int:
    for app in await ctx.storage.apps.list_apps():
        print(f"{app.app_id}  {app.name!r}  rp_id {app.rp_id}  policy {app.policy or 'of the server'}")
        for origin in app.origins:
            print(f"    origin: {origin}")
        for key in await ctx.storage.apps.list_keys(app.app_id):
            state = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "active"
            print(f"    key: {key.key_id}  added {key.created_at:%Y-%m-%d %H:%M}  {state}")
    return 0


async def _remove(ctx: Context, app_id: str) -> int:
    if not await ctx.storage.apps.remove(app_id):
        print(f"passgate: there is no app {app_id!r}", file=sys.stderr)
        return 1
    print(f"passgate: removed app {app_id!r} with its keys, users and passkeys")
    return 0


async def _keys(ctx: Context, arguments: argparse.Namespace) -> int:
    if arguments.key_action == "add":
        try:
            key, secret = await apps.add_key(ctx, arguments.app_id)
        except NotFound:
            print(f"passgate: there is no app {arguments.app_id!r}", file=sys.stderr)
            return 1
        _print_key(key.key_id, secret)
        return 0
    if not arguments.key_id:
        print("passgate: name the key to revoke: passgate apps keys revoke APP_ID KEY_ID", file=sys.stderr)
        return 2
    if not await apps.revoke_key(ctx, arguments.app_id, arguments.key_id):
        print(f"passgate: app {arguments.app_id!r} has no active key {arguments.key_id!r}", file=sys.stderr)
        return 1
    print(f"passgate: revoked key {arguments.key_id!r}: requests with it are refused from now on")
    return 0
