"""ASGI middleware (plain ASGI: no per-request task or stream, unlike BaseHTTPMiddleware)."""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from passgate import metrics
from passgate.core import cors
from passgate.core.cors import CorsOrigins
from passgate.logs import ACCESS_LOGGER


class SecurityHeaders:
    """Adds the security headers to every HTTP response that does not set them itself."""

    def __init__(self, app: ASGIApp, headers: Mapping[str, str]) -> None:
        self.app = app
        self.headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(name, value) for name, value in self.headers if name not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class Cors:
    """CORS for the origins `origins()` names (see core.cors): preflights from them are answered here, their other
    requests' responses gain the headers they need; every other origin's requests pass by untouched. Every
    response varies by Origin, so that a cache never hands one origin's answer to another."""

    def __init__(self, app: ASGIApp, origins: Callable[[], Awaitable[CorsOrigins]]) -> None:
        self.app = app
        self.origins = origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Headers(scope=scope)
        answer = None
        if "origin" in request:
            answer = cors.decide(
                await self.origins(),
                origin=request["origin"],
                method=scope["method"],
                request_method=request.get("access-control-request-method"),
            )
        extra = [(b"vary", b"Origin")]
        if answer is not None:
            extra += [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in answer.headers]
        if answer is not None and answer.preflight:
            await send({"type": "http.response.start", "status": 204, "headers": extra})
            await send({"type": "http.response.body", "body": b""})
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


_REQUEST_ID = re.compile(rb"[A-Za-z0-9._-]{1,128}")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})  # any other is "other"
access_log = logging.getLogger(ACCESS_LOGGER)


def request_id_of(scope: Scope) -> str:
    """The request's X-Request-Id when it is a sane token (1 to 128 of A-Z a-z 0-9 . _ -), else a new one."""
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            return value.decode("ascii") if _REQUEST_ID.fullmatch(value) else secrets.token_hex(16)
    return secrets.token_hex(16)


class RequestLog:
    """A request id (X-Request-Id, taken or made, returned on the response and kept as `request.state.request_id`),
    the request counted and timed by route template, and with `access_log` an access line.

    The route is the template that matched (`/auth/passkeys/{credential_id}`), never the raw path: metric labels
    stay few and log lines carry no ids or tokens from URLs. A request no route matched is `metrics.UNMATCHED_ROUTE`.
    """

    def __init__(self, app: ASGIApp, *, access_log: bool) -> None:
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = request_id_of(scope)
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        status = 500  # what the server answers an application that fails before it starts its response

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode("ascii"))]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or metrics.UNMATCHED_ROUTE
            method = scope["method"] if scope["method"] in _METHODS else "other"
            metrics.REQUEST_DURATION.labels(method, template).observe(elapsed)
            metrics.REQUESTS.labels(method, template, str(status)).inc()
            if self.access_log:
                access_log.info(
                    "%s %s %d",
                    method,
                    template,
                    status,
                    extra={
                        "request_id": request_id,
                        "method": method,
                        "route": template,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 3),
                        "user_id": state.get("user_id"),
                        "client_ip": (scope.get("client") or (None,))[0],
                    },
                )
