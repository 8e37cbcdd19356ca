"""Periodic clean-up: challenges of abandoned ceremonies, sessions that have ended, signing keys no longer published,
authorization codes whose tokens have expired, refresh tokens whose family has expired, webhook deliveries
older than the delivery log keeps."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from pathlib import Path

from passgate.core.webhooks import status_changes
from passgate.service import oidc, webhooks
from passgate.service.context import Context

log = logging.getLogger("passgate")
METADATA_REFRESH_SECONDS = 24 * 3600
WEBHOOK_LOG = timedelta(days=30)  # how long delivered and failed webhook deliveries stay in the log


async def purge(ctx: Context) -> tuple[int, int]:
    """Delete expired challenges, ended sessions and links, and keys past `remove_after`; returns how many
    challenges and sessions."""
    now = ctx.clock()
    challenges = await ctx.storage.challenges.purge_expired(now)
    sessions = await ctx.storage.sessions.purge_expired(now, ctx.rp.session_idle)
    await ctx.storage.email_tokens.purge_expired(now)
    await ctx.storage.signing_keys.purge(now)
    # Kept after their exchange until the access token they issued has expired: till then a code presented again
    # must still revoke it.
    await ctx.storage.authorization_codes.purge(now - oidc.ACCESS_TOKEN_LIFETIME)
    # A session lasts session_absolute at most: its clients are kept no longer, ended or not.
    await ctx.storage.session_clients.purge(now - ctx.rp.session_absolute)
    await ctx.storage.refresh_tokens.purge(now)
    await ctx.storage.webhooks.purge(now - WEBHOOK_LOG)
    return challenges, sessions


def load_metadata(ctx: Context, path: Path) -> None:
    """Load the stored, verified BLOB into the context (keeping the current one if it does not verify)."""
    from passgate.cli.mds import load_stored

    blob = load_stored(path, now=ctx.clock())
    if blob is not None:
        ctx.metadata.refresh(blob.jws, now=ctx.clock())


async def refresh_metadata(ctx: Context, url: str, path: Path) -> None:
    """Fetch, verify and store a newer BLOB; the last good one stays in use if anything fails."""
    from passgate.cli.mds import refresh

    status = await asyncio.to_thread(refresh, None, url, path, ctx.clock())
    if status == 0:
        before = {aaguid: entry.latest_status for aaguid, entry in ctx.models().items()}
        load_metadata(ctx, path)
        after = {aaguid: entry.latest_status for aaguid, entry in ctx.models().items()}
        number = ctx.metadata.current.number if ctx.metadata.current else 0
        changed = [
            found
            for aaguid, latest in status_changes(before, after)
            for found in webhooks.mds_status_changed(ctx, aaguid, latest, blob_number=number)
        ]
        if changed:
            await webhooks.queue(ctx, changed)
    else:
        log.warning("FIDO metadata refresh failed; keeping the last good BLOB")


async def run_forever(ctx: Context, interval_seconds: float = 60.0, *, mds_url: str = "", mds_file: str = "") -> None:
    last_refresh = 0.0
    while True:
        try:
            await purge(ctx)
            if mds_url and mds_file and time.monotonic() - last_refresh > METADATA_REFRESH_SECONDS:
                last_refresh = time.monotonic()
                await refresh_metadata(ctx, mds_url, Path(mds_file))
        except Exception:  # a failed clean-up must not stop the next one
            log.exception("housekeeping failed")
        await asyncio.sleep(interval_seconds)
