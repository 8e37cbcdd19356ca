"""`passgate webhooks ...`: the webhook endpoints, their delivery logs, and what an operator does about them.

`list` shows every endpoint (the configuration file's and those added here); `add URL` subscribes one and prints
its signing secret once; `deliveries ENDPOINT` is the endpoint's log, newest first; `redeliver ID` sends one
delivery again now, with its webhook-id; `enable ENDPOINT` turns on an endpoint disabled by a 410 Gone (its
queued deliveries then go out); `rotate ENDPOINT` gives a stored endpoint a new secret, requests carrying both
signatures meanwhile. Tables for people, `--json` for scripts.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from passgate.config import Settings
from passgate.core.errors import PasskeyError
from passgate.service import webhooks
from passgate.service.context import Context
from passgate.store.base import WebhookDelivery, WebhookEndpoint
from passgate.store.factory import open_storage
from passgate.store.migrate import upgrade

ARGUMENTS = ("endpoint", "event", "secret", "delivery", "status")
T = TypeVar("T")


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = commands.add_parser("webhooks", help="webhook endpoints: list, add, remove, deliveries, redeliver, enable")
    actions = group.add_subparsers(dest="action", required=True)

    def action(name: str, help_: str, *positional: str) -> argparse.ArgumentParser:
        parser = actions.add_parser(name, help=help_)
        for argument in positional:
            parser.add_argument(argument)
        parser.add_argument("--json", action="store_true", help="JSON instead of a table")
        parser.add_argument("--config")
        parser.add_argument("--database-url", dest="database_url")
        return parser

    action("list", "every endpoint, with its events and state")
    add = action("add", "subscribe a URL to events; prints its signing secret once", "url")
    add.add_argument("--event", action="append", help="an event type, group.* or * (repeatable; default: every event)")
    add.add_argument("--secret", help="a whsec_ secret to sign with (default: a new one)")
    action("remove", "remove a stored endpoint and its deliveries", "endpoint")
    action("enable", "turn a disabled endpoint on again: its queued deliveries go out", "endpoint")
    action("rotate", "a new secret for a stored endpoint; both sign until the next rotation", "endpoint")
    deliveries = action("deliveries", "the endpoint's delivery log, newest first", "endpoint")
    deliveries.add_argument("--limit", type=int, default=50)
    action("redeliver", "send one delivery again now, with the same webhook-id", "delivery")


def run(settings: Settings, arguments: argparse.Namespace, again: Settings) -> int:
    # Secrets are sealed under secret_key: under a random one (unset), no server could sign with them.
    if arguments.action in ("add", "rotate") and settings.secret_key != again.secret_key:
        print(
            "passgate: set secret_key (PASSGATE_SECRET_KEY) as the server has it to add webhook secrets",
            file=sys.stderr,
        )
        return 2
    upgrade(settings.database_url)
    commands: dict[str, Callable[[Context], Awaitable[int]]] = {
        "list": lambda ctx: _list(ctx, arguments.json),
        "add": lambda ctx: _add(ctx, arguments),
        "remove": lambda ctx: _done(webhooks.remove_endpoint(ctx, arguments.endpoint), "removed", arguments.json),
        "enable": lambda ctx: _enable(ctx, arguments.endpoint, arguments.json),
        "rotate": lambda ctx: _rotate(ctx, arguments.endpoint, arguments.json),
        "deliveries": lambda ctx: _deliveries(ctx, arguments.endpoint, arguments.limit, arguments.json),
        "redeliver": lambda ctx: _redeliver(ctx, arguments.delivery, arguments.json),
    }
    try:
        return asyncio.run(_with_context(settings, commands[arguments.action]))
    except PasskeyError as exc:
        print(f"passgate: {exc.message} ({exc.code})", file=sys.stderr)
        return 1


async def _with_context(settings: Settings, command: Callable[[Context], Awaitable[T]]) -> T:
    from passgate.web.app import relying_party, webhook_options

    storage, close = open_storage(settings.database_url)
    try:
        return await command(Context(rp=relying_party(settings), storage=storage, webhooks=webhook_options(settings)))
    finally:
        await close()


def endpoint_row(endpoint: WebhookEndpoint) -> dict[str, Any]:
    return {
        "id": endpoint.id,
        "url": endpoint.url,
        "events": list(endpoint.events),
        "source": endpoint.source,
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
        "disabled_at": endpoint.disabled_at.isoformat(timespec="seconds") if endpoint.disabled_at else None,
        "created_at": endpoint.created_at.isoformat(timespec="seconds"),
    }


def delivery_row(delivery: WebhookDelivery) -> dict[str, Any]:
    row = dataclasses.asdict(delivery)
    for name in ("created_at", "next_attempt_at", "claimed_until", "finished_at"):
        row[name] = row[name].isoformat(timespec="seconds") if row[name] else None
    del row["body"], row["claimed_by"]
    return {**row, "data": json.loads(delivery.body)["data"]}


def _table(rows: Sequence[Sequence[str]], columns: Sequence[str]) -> None:
    widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(columns)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for row in rows:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


async def _list(ctx: Context, as_json: bool) -> int:
    endpoints = await webhooks.list_endpoints(ctx)
    if as_json:
        print(json.dumps([endpoint_row(e) for e in endpoints], indent=2))
        return 0
    rows = [
        (e.id, e.url, " ".join(e.events), e.source, "enabled" if e.enabled else f"disabled: {e.disabled_reason or ''}")
        for e in endpoints
    ]
    _table(rows, ("id", "url", "events", "source", "state"))
    return 0


async def _add(ctx: Context, arguments: argparse.Namespace) -> int:
    added = await webhooks.add_endpoint(ctx, arguments.url, arguments.event or ["*"], secret=arguments.secret)
    if arguments.json:
        print(json.dumps({**endpoint_row(added.endpoint), "secret": added.secret}, indent=2))
    else:
        print(f"Endpoint {added.endpoint.id} receives {' '.join(added.endpoint.events)} at {added.endpoint.url}.")
        print(f"Signing secret (shown once; verify requests with it): {added.secret}")
    return 0


async def _done(work: Awaitable[None], what: str, as_json: bool) -> int:
    await work
    print(json.dumps({"result": what}) if as_json else what)
    return 0


async def _enable(ctx: Context, endpoint_id: str, as_json: bool) -> int:
    endpoint = await webhooks.enable_endpoint(ctx, endpoint_id)
    print(json.dumps(endpoint_row(endpoint), indent=2) if as_json else f"Endpoint {endpoint.id} is enabled.")
    return 0


async def _rotate(ctx: Context, endpoint_id: str, as_json: bool) -> int:
    secret = await webhooks.rotate_secret(ctx, endpoint_id)
    if as_json:
        print(json.dumps({"id": endpoint_id, "secret": secret}))
    else:
        print(f"New signing secret (shown once; the previous one signs too until the next rotation): {secret}")
    return 0


async def _deliveries(ctx: Context, endpoint_id: str, limit: int, as_json: bool) -> int:
    found = await webhooks.deliveries(ctx, endpoint_id, limit=max(1, min(limit, 10_000)))
    if as_json:
        for delivery in found:
            print(json.dumps(delivery_row(delivery)))
        return 0
    rows = [
        (
            str(d.id),
            f"{d.created_at:%Y-%m-%d %H:%M:%S}",
            d.type,
            d.message_id,
            d.status,
            str(d.attempts),
            str(d.last_status or ""),
            d.last_error or "",
        )
        for d in found
    ]
    _table(rows, ("id", "time", "type", "webhook-id", "status", "attempts", "http", "last error"))
    return 0


async def _redeliver(ctx: Context, delivery: str, as_json: bool) -> int:
    if not delivery.isdigit():
        print(f"passgate: {delivery!r} is not a delivery id (a number, from `passgate webhooks deliveries`)")
        return 2
    queued = await webhooks.redeliver(ctx, int(delivery))
    print(json.dumps(delivery_row(queued)) if as_json else f"Delivery {queued.id} is queued to be sent again now.")
    return 0
