"""`passgate events`: read the event log as a table or JSON lines."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime
from typing import Any

from passgate.config import Settings
from passgate.core.encoding import b64url_encode
from passgate.store.base import Event, Storage
from passgate.store.factory import open_storage

COLUMNS = ("time", "type", "outcome", "reason", "user", "credential", "ip")


def list_events(settings: Settings, arguments: argparse.Namespace) -> int:
    try:
        since = _parse_since(arguments.since) if arguments.since else None
    except ValueError:
        print(f"passgate: --since {arguments.since!r} is not an ISO date or time", file=sys.stderr)
        return 2
    rows = asyncio.run(_query(settings, arguments.user, arguments.type, arguments.outcome, since, arguments.limit))
    if arguments.json:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
    else:
        _print_table(rows)
    return 0


def _parse_since(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def _query(
    settings: Settings, user: str | None, type_: str | None, outcome: str | None, since: datetime | None, limit: int
) -> list[dict[str, Any]]:
    storage, close = open_storage(settings.database_url)
    try:
        user_id = await _user_id(storage, user) if user else None
        if user and user_id is None:
            return []
        events = await storage.events.list(
            user_id=user_id, type=type_, outcome=outcome, since=since, limit=max(1, min(limit, 10_000))
        )
        names = {u: await _username(storage, u) for u in {e.user_id for e in events if e.user_id}}
        return [_row(event, names) for event in events]
    finally:
        await close()


async def _user_id(storage: Storage, user: str) -> str | None:
    by_name = await storage.users.by_username(user)
    if by_name is not None:
        return by_name.id
    by_id = await storage.users.get(user)
    return by_id.id if by_id else None


async def _username(storage: Storage, user_id: str) -> str:
    user = await storage.users.get(user_id)
    return user.username if user else user_id


def _row(event: Event, names: dict[str, str]) -> dict[str, Any]:
    return {
        "time": event.created_at.isoformat(timespec="seconds"),
        "type": event.type,
        "outcome": event.outcome,
        "reason": event.reason,
        "user": names.get(event.user_id or "", event.user_id),
        "user_id": event.user_id,
        "credential": b64url_encode(event.credential_id) if event.credential_id else None,
        "ip": event.ip,
        "user_agent": event.user_agent,
        "detail": event.detail,
    }


def _print_table(rows: list[dict[str, Any]]) -> None:
    cells = [[str(row[c] if row[c] is not None else "") for c in COLUMNS] for row in rows]
    for cell in cells:
        cell[5] = cell[5][:16] + ("…" if len(cell[5]) > 16 else "")
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(COLUMNS)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(COLUMNS, widths, strict=True)).rstrip())
    for cell in cells:
        print("  ".join(v.ljust(w) for v, w in zip(cell, widths, strict=True)).rstrip())
