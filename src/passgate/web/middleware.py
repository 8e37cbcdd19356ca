"""ASGI middleware (plain ASGI: no per-request task or stream, unlike BaseHTTPMiddleware)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from passgate.core import cors
from passgate.core.cors import CorsOrigins


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
