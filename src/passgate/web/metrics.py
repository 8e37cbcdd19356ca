"""GET /metrics: the Prometheus text format, never open by default.

On the main listener it answers only with `metrics_token` set, and only to `Authorization: Bearer <that token>`
(401 otherwise); without it, 404, as for any path that is not there. `metrics_port` opens a second listener
(`serve_metrics`) that serves /metrics alone, with no token: for a port only the monitoring network reaches.

The gauges that need the database (sessions active) or the file system (the FIDO metadata's age) are refreshed
by `refresh_forever` in every process, and before a scrape of the main listener: never per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.exposition import ThreadingWSGIServer
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from passgate import metrics
from passgate.config import Settings
from passgate.core.errors import InvalidToken
from passgate.service.context import Context
from passgate.web.health import Probe

log = logging.getLogger("passgate")
router = APIRouter(tags=["operations"])

REFRESH_SECONDS = 30.0


async def refresh_gauges(ctx: Context, probe: Probe, settings: Settings) -> None:
    """Set the sessions-active and metadata-age gauges from the database and the metadata file."""
    try:
        active = await probe.active_sessions(ctx.clock(), ctx.rp.session_idle)
        if active is not None:
            metrics.SESSIONS_ACTIVE.set(active)
    except (SQLAlchemyError, OSError, TimeoutError):
        pass  # the database is away: /readyz says so; the gauge keeps its last value
    if settings.mds_file and ctx.metadata.current is None:
        metrics.MDS_AGE.set(math.inf)  # configured, and no good BLOB yet: as old as can be, so alerts fire
    elif settings.mds_file:
        # `passgate mds refresh` (and the server's daily refresh) writes the file only with a BLOB that verified.
        with contextlib.suppress(OSError):
            metrics.MDS_AGE.set(max(0.0, time.time() - Path(settings.mds_file).stat().st_mtime))


async def refresh_forever(ctx: Context, probe: Probe, settings: Settings) -> None:
    while True:
        try:
            await refresh_gauges(ctx, probe, settings)
        except Exception:  # a failed refresh must not stop the next one
            log.exception("refreshing the metrics' gauges failed")
        await asyncio.sleep(REFRESH_SECONDS)


def exposition() -> bytes:
    return generate_latest(metrics.registry())


@router.get("/metrics", include_in_schema=False)
async def scrape(request: Request) -> Response:
    """The metrics, for the metrics token only (401 invalid_token); 404 when no token is set, as for any path that
    is not there."""
    settings: Settings = request.app.state.settings
    if not settings.metrics_token:
        raise HTTPException(status_code=404, detail="Not Found")
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    given = token.strip().encode() if scheme.lower() == "bearer" else b""
    if not hmac.compare_digest(given, settings.metrics_token.encode()):
        raise InvalidToken("/metrics needs the metrics token (Authorization: Bearer).")
    await refresh_gauges(request.app.state.ctx, request.app.state.probe, settings)
    return Response(exposition(), media_type=CONTENT_TYPE_LATEST)


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def _metrics_only(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    if environ.get("PATH_INFO") != "/metrics":
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"Not Found\n"]
    # A registry per scrape: with several workers, their files are read as they are now.
    start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
    return [exposition()]


class MetricsListener:
    """The second listener (`metrics_port`): /metrics alone, in a thread of the process that starts it (the
    supervisor, with several workers: it reads the workers' files)."""

    def __init__(self, host: str, port: int) -> None:
        self._server = make_server(host, port, _metrics_only, ThreadingWSGIServer, handler_class=_Quiet)
        self._thread = threading.Thread(target=self._server.serve_forever, name="passgate-metrics", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def prepare_multiprocess_dir(directory: Path) -> None:
    """Empty `directory` of an earlier run's files and name it for the workers about to start."""
    directory.mkdir(parents=True, exist_ok=True)
    for leftover in directory.glob("*.db"):
        leftover.unlink()
    os.environ[metrics.MULTIPROC_VARIABLE] = str(directory)
