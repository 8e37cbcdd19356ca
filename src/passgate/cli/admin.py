"""`passgate admin keys add|list|revoke`: the admin API's keys; and what the account commands share.

`add NAME --scope SCOPE ...` prints the key (`pga_...`) once: Passgate keeps only its SHA-256. Scopes: users:read,
users:write, sessions:write, events:read, apps:write. `revoke NAME` refuses the key's next request.

The account commands (`passgate users list|show|disable|enable|delete`, `passgate sessions end`) act through
passgate.service.admin as the admin key named `cli`: their events say so.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from passgate.config import Settings
from passgate.core.errors import AdminKeyExists, InvalidRequest
from passgate.service import admin_keys
from passgate.service.admin import Actor
from passgate.service.context import Client, Context
from passgate.store.base import ADMIN_SCOPES, AdminKey
from passgate.store.factory import open_storage
from passgate.store.migrate import upgrade

CLI_KEY = "cli"
ARGUMENTS = ("admin_action", "key_action", "name", "scopes", "json")


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser("admin", help="the admin API: its keys (add, list, revoke)")
    actions = parser.add_subparsers(dest="admin_action", required=True)
    keys = actions.add_parser("keys", help="admin API keys: add (printed once), list, revoke")
    key_actions = keys.add_subparsers(dest="key_action", required=True)
    add = key_actions.add_parser("add", help="a new key with its scopes; prints it once")
    add.add_argument("name", help="the key's name: events of its actions name it")
    add.add_argument("--scope", dest="scopes", action="append", required=True, choices=ADMIN_SCOPES, help="repeatable")
    listing = key_actions.add_parser("list", help="the keys' names and scopes, never the keys")
    listing.add_argument("--json", action="store_true")
    revoke = key_actions.add_parser("revoke", help="revoke the key of this name at once")
    revoke.add_argument("name")
    for each in (add, listing, revoke):
        each.add_argument("--config")
        each.add_argument("--database-url", dest="database_url")


def actor(program: str) -> Actor:
    return Actor(admin_key=CLI_KEY, client=Client(ip=None, user_agent=program))


@asynccontextmanager
async def context(settings: Settings) -> AsyncIterator[Context]:
    """The service context over the configured storage (Redis too, so the sessions ended leave its cache)."""
    from passgate.web.app import relying_party

    storage, close = open_storage(settings.database_url, settings.redis_url)
    try:
        yield Context(rp=relying_party(settings), storage=storage, file_clients=settings.file_clients())
    finally:
        await close()


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Columns padded to their widest cell, headers in capitals."""
    cells = [[("" if value is None else str(value)) for value in row] for row in rows]
    widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(headers)]
    print("  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def run(settings: Settings, arguments: argparse.Namespace) -> int:
    upgrade(settings.database_url)
    return asyncio.run(_keys(settings, arguments))


async def _keys(settings: Settings, arguments: argparse.Namespace) -> int:
    async with context(settings) as ctx:
        if arguments.key_action == "add":
            try:
                key, secret = await admin_keys.add(
                    ctx, actor("passgate admin keys add").client, arguments.name, arguments.scopes
                )
            except (InvalidRequest, AdminKeyExists) as exc:
                print(f"passgate: {exc.message}", file=sys.stderr)
                return 2
            print(secret)
            print(
                f"passgate: admin key {key.name!r} ({' '.join(key.scopes)}): store it now, it is not shown again",
                file=sys.stderr,
            )
            return 0
        if arguments.key_action == "revoke":
            if not await admin_keys.revoke(ctx, actor("passgate admin keys revoke").client, arguments.name):
                print(f"passgate: there is no unrevoked admin key {arguments.name!r}", file=sys.stderr)
                return 1
            print(f"passgate: revoked admin key {arguments.name!r}")
            return 0
        keys = await admin_keys.list_keys(ctx)
    if arguments.json:
        for key in keys:
            print(json.dumps(_key_json(key)))
    else:
        table(
            ("name", "scopes", "created", "revoked"),
            [
                (
                    k.name,
                    " ".join(k.scopes),
                    f"{k.created_at:%Y-%m-%d %H:%M}",
                    f"{k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "",
                )
                for k in keys
            ],
        )
    return 0


def _key_json(key: AdminKey) -> dict[str, Any]:
    return {
        "name": key.name,
        "scopes": list(key.scopes),
        "createdAt": key.created_at.isoformat(),
        "revokedAt": key.revoked_at.isoformat() if key.revoked_at else None,
    }
