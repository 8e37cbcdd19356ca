"""What the background workers (mail and webhook delivery) share: waiting for work between passes."""

from __future__ import annotations

import asyncio


async def wait_for_work(ready: asyncio.Event, stopping: asyncio.Event, timeout: float) -> None:
    """Return when `ready` is set (work was queued on this node), `stopping` is set, or `timeout` seconds passed."""
    woken = asyncio.ensure_future(ready.wait())
    stop = asyncio.ensure_future(stopping.wait())
    try:
        await asyncio.wait((woken, stop), timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        woken.cancel()
        stop.cancel()
