"""`passgate keys`: rotate the token signing keys, or list them with their lives."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from passgate.config import Settings
from passgate.service import keys
from passgate.service.context import Context
from passgate.store.base import SigningKey
from passgate.store.factory import open_storage


def rotate(settings: Settings) -> int:
    """A new ES256 and RS256 key, published now and signing one JWKS max-age from now, when the current keys retire."""
    made = asyncio.run(_run(settings, keys.rotate))
    for key in made:
        print(f"passgate: new {key.alg} key {key.kid} signs from {_moment(key.signs_from)}")
    return 0


def show(settings: Settings) -> int:
    """Every key: algorithm, kid, state now, and the moments of its life."""
    now = datetime.now(UTC)
    for key in asyncio.run(_run(settings, keys.list_keys)):
        state = "removed" if key.remove_after is not None and now >= key.remove_after else keys.state(key, now)
        print(
            f"{key.generation:>3}  {key.alg}  {key.kid}  {state:<7}  created {_moment(key.created_at)}"
            f"  signs from {_moment(key.signs_from)}  retired {_moment(key.retired_at)}"
            f"  published until {_moment(key.remove_after)}"
        )
    return 0


def _moment(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S}" if moment is not None else "-"


async def _run(settings: Settings, action: keys.KeysAction) -> list[SigningKey]:
    from passgate.web.app import relying_party

    storage, close = open_storage(settings.database_url)
    try:
        return await action(Context(rp=relying_party(settings), storage=storage))
    finally:
        await close()
