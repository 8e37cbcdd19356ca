"""create_app: the ASGI application for one Passgate node."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from redis.exceptions import RedisError
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, ProgrammingError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response

import passgate
from passgate import i18n, logs, metrics
from passgate.config import Settings
from passgate.core.brand import Brand
from passgate.core.errors import InvalidRequest, PasskeyError, RateLimited, StorageUnavailable
from passgate.core.mds import GLOBALSIGN_ROOT_R3, MetadataCache
from passgate.service import apps as app_passkeys
from passgate.service import conformance as conformance_service
from passgate.service import cors, housekeeping, mail_queue, webhooks
from passgate.service.context import Context, RelyingParty, WebhookOptions, utcnow
from passgate.service.mail import Mailer, MailLook, OutboxMailer, SmtpMailer
from passgate.store.base import Storage
from passgate.store.factory import open_storage
from passgate.web import (
    account_api,
    admin_api,
    api,
    app_api,
    conformance,
    error_pages,
    favicon,
    health,
    hosts,
    oidc,
    pages,
    wellknown,
)
from passgate.web import metrics as metrics_web
from passgate.web.csp import content_security_policy
from passgate.web.errors import error_response, status_for
from passgate.web.languages import templates_for
from passgate.web.middleware import Cors, RequestLog, SecurityHeaders

log = logging.getLogger("passgate")

STATIC = Path(__file__).with_name("static")
# How long a stopping node waits for its mail worker to finish the message it is sending (SMTP's timeout is 10 s),
# and its webhook worker the deliveries in flight (at least three webhook timeouts).
MAIL_STOP_SECONDS = 15.0

SECURITY_HEADERS = {
    "Content-Security-Policy": content_security_policy(Brand(name="")),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def relying_party(settings: Settings) -> RelyingParty:
    return RelyingParty(
        rp_id=settings.rp_id,
        rp_name=settings.rp_name,
        origins=settings.ceremony_origins,
        policy=settings.effective_policy(),
        challenge_ttl=timedelta(seconds=settings.challenge_timeout_seconds),
        session_idle=timedelta(minutes=settings.session_idle_minutes),
        session_absolute=timedelta(hours=settings.session_absolute_hours),
        step_up_window=timedelta(minutes=settings.step_up_minutes),
        magic_link_ttl=timedelta(minutes=settings.magic_link_minutes),
        public_url=settings.link_base,
        cors_origins=settings.cors_origins,
        rate_limit_per_ip=settings.rate_limit_per_ip,
        rate_limit_per_account=settings.rate_limit_per_account,
        secret_key=hashlib.sha256(settings.secret_key.encode()).digest(),
        session_token_audience=settings.session_token_audience or settings.link_base,
        passwords="migrate" if settings.passwords == "migrate" else "off",
    )


def webhook_options(settings: Settings) -> WebhookOptions:
    return WebhookOptions(
        allow_private=settings.webhooks_allow_private,
        timeout_seconds=float(settings.webhook_timeout_seconds),
        retry_seconds=settings.webhook_retry_seconds,
    )


def mailer(settings: Settings) -> Mailer:
    look = MailLook(brand=settings.brand, base_url=settings.link_base)
    if not settings.smtp_host:
        return OutboxMailer(directory=Path(settings.outbox_dir), sender=settings.sender, look=look)
    return SmtpMailer(
        host=settings.smtp_host,
        port=settings.smtp_port,
        security=settings.smtp_security,
        username=settings.smtp_username,
        password=settings.smtp_password,
        sender=settings.sender,
        look=look,
    )


def create_app(
    settings: Settings, *, storage: Storage | None = None, clock: Callable[[], datetime] = utcnow
) -> FastAPI:
    """The Passgate application. Without `storage`, it opens `settings.database_url` (already migrated)."""
    for language in i18n.LANGUAGES:
        templates_for(language)  # the catalogs are read now: a broken one stops start-up, not a request
    close_storage = None
    if storage is None:
        storage, close_storage = open_storage(
            settings.database_url,
            settings.redis_url,
            pool_size=settings.database_pool_size,
            single_process=settings.workers == 1 and settings.database_url.startswith("sqlite"),
        )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Here, not at import: uvicorn configures its loggers before it starts.
        logs.install(settings.log_level, settings.log_format)
        await app_passkeys.keep_file_apps(app.state.ctx, settings.file_apps())
        await webhooks.keep_file_endpoints(app.state.ctx, settings.file_webhooks())
        stopping = asyncio.Event()
        # Every node runs one of each: it sends what this node queues at once, and what others left, by polling.
        mail = asyncio.create_task(mail_queue.run_forever(app.state.ctx, stopping=stopping))
        hooks = asyncio.create_task(webhooks.run_forever(app.state.ctx, stopping=stopping))
        tasks = [
            asyncio.create_task(
                housekeeping.run_forever(app.state.ctx, mds_url=settings.mds_url, mds_file=settings.mds_file)
            ),
            asyncio.create_task(metrics_web.refresh_forever(app.state.ctx, settings)),
        ]
        yield
        stopping.set()  # what is being sent is finished, the rest of a batch handed back
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.shield(asyncio.gather(mail, hooks)),
                max(MAIL_STOP_SECONDS, 3 * settings.webhook_timeout_seconds),
            )
        for task in [*tasks, mail, hooks]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await app.state.probe.close()
        if close_storage is not None:
            await close_storage()

    app = FastAPI(
        title="Passgate",
        version=passgate.__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        description="Passkey (WebAuthn) sign-in: registration and authentication ceremonies, sessions.",
    )
    app.state.settings = settings
    app.state.close_storage = close_storage
    # The probe watches the storage this application opened; one handed in is its owner's to watch.
    opened = close_storage is not None
    app.state.probe = health.Probe(settings.database_url if opened else None, settings.redis_url if opened else "")
    app.state.ctx = Context(
        rp=relying_party(settings),
        storage=storage,
        mailer=mailer(settings),
        clock=clock,
        file_clients=settings.file_clients(),
        metadata=MetadataCache(trust_anchor_pem=settings.mds_root or GLOBALSIGN_ROOT_R3),
        webhooks=webhook_options(settings),
    )
    if settings.mds_file:
        housekeeping.load_metadata(app.state.ctx, Path(settings.mds_file))
    if settings.mds_statements_dir:
        conformance_service.load_statements(app.state.ctx, Path(settings.mds_statements_dir))
    if settings.conformance:
        app.include_router(conformance.router)
    app.include_router(api.router)
    app.router.routes[:0] = api.lean_routes()  # the ceremonies first, on the lean path
    app.include_router(app_api.router)
    app.include_router(admin_api.router)
    app.include_router(account_api.router)
    app.include_router(wellknown.router)
    app.include_router(oidc.router)
    app.include_router(health.router)
    app.include_router(metrics_web.router)
    app.include_router(pages.router, dependencies=[Depends(hosts.on_site_host)])
    app.include_router(favicon.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(hosts.OtherHost)
    async def other_host(_request: Request, exc: hosts.OtherHost) -> Response:
        return RedirectResponse(exc.location, status_code=307)

    async def answer(request: Request, error: PasskeyError) -> Response:
        if error_pages.wants_page(request):
            headers = {"Retry-After": str(error.retry_after)} if isinstance(error, RateLimited) else None
            return await error_pages.error_page(request, status_for(error), headers)
        return error_response(error)

    @app.exception_handler(PasskeyError)
    async def passkey_error(request: Request, exc: PasskeyError) -> Response:
        return await answer(request, exc)

    @app.exception_handler(DBAPIError)
    @app.exception_handler(RedisError)
    @app.exception_handler(OSError)
    async def storage_unavailable(request: Request, exc: Exception) -> Response:
        metrics.STORAGE_ERRORS.labels(type(exc).__name__).inc()
        if isinstance(exc, IntegrityError | DataError | ProgrammingError):
            raise exc  # a bug, not an outage: let it be a 500 with its traceback in the log
        # Connection refused, server shutting down, connection lost: the request changed nothing; retry later.
        log.warning("storage unavailable: %s", type(exc).__name__)
        return await answer(request, StorageUnavailable())

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        return await answer(request, InvalidRequest(str(exc.errors()[0].get("msg", "Invalid request."))))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if error_pages.wants_page(request):
            return await error_pages.error_page(request, exc.status_code, dict(exc.headers or {}))
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(
            {"error": code, "message": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(Exception)
    async def server_error(request: Request, _exc: Exception) -> Response:
        # Starlette logs the exception and its traceback after this answer is sent.
        if error_pages.wants_page(request):
            return await error_pages.error_page(request, 500)
        return PlainTextResponse("Internal Server Error", status_code=500)

    headers = {**SECURITY_HEADERS, "Content-Security-Policy": content_security_policy(settings.brand)}
    if settings.secure_cookies:
        headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    app.add_middleware(SecurityHeaders, headers=headers)
    # Outside the routes: preflights are answered before anything else runs, and error responses carry the headers.
    app.add_middleware(Cors, origins=lambda: cors.allowed_origins(app.state.ctx))
    # Outermost of all: every answer, preflights included, is counted, timed and carries its request id. With
    # JSON logs it writes the access lines (uvicorn's own access log then is off).
    app.add_middleware(RequestLog, access_log=settings.log_format == "json")

    return app


SETTINGS_VARIABLE = "PASSGATE_SETTINGS_JSON"


def app_from_environment() -> FastAPI:
    """The application factory each worker process calls (`passgate serve --workers N`)."""
    import os

    from passgate.config import from_json

    return create_app(from_json(os.environ[SETTINGS_VARIABLE]))
