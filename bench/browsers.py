"""Virtual browsers: one keep-alive HTTP/1.1 connection to one node plus the ceremony cookie.

Every POST carries `Origin` (the configured origin) and, between a ceremony's begin and complete, the
`passgate_ceremony` cookie its begin set. Each ceremony is that of a signed-out browser: the session cookie
a completed ceremony sets is dropped (a signed-in browser's register/begin would add a passkey instead of
creating an account).

Two implementations with one interface: `RawBrowser` (a minimal asyncio HTTP/1.1 client: Content-Length or
chunked bodies, keep-alive, reconnect when idle) and `HttpxBrowser` (httpx.AsyncClient, one connection). The raw
one costs the load generator several times less CPU per request (measured: see BENCHMARKS.md), which matters
when generator and servers share two cores.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from bench.settings import ORIGIN

CEREMONY_COOKIE = "passgate_ceremony"
# uvicorn closes a keep-alive connection after 5 s idle; reconnect before reusing one idle this long.
_IDLE_RECONNECT_SECONDS = 4.0
_MAX_HEADER_BYTES = 64 * 1024


class HttpError(Exception):
    """The server's answer could not be read (connection closed, malformed response)."""


@dataclass(frozen=True)
class Reply:
    """A response: status and decoded JSON body (None if the body is empty or not JSON)."""

    status: int
    data: Any


class Browser(Protocol):
    """A virtual browser bound to one node."""

    async def post(self, path: str, payload: Any | None = None) -> Reply:
        """POST `payload` as JSON (no body when None) with Origin and the ceremony cookie."""
        ...

    async def close(self) -> None: ...


def _ceremony_cookie(set_cookie: str) -> tuple[bool, str]:
    """(is it the ceremony cookie, its value; "" when the server deletes it) for one Set-Cookie value."""
    name_value, _, attributes = set_cookie.partition(";")
    name, _, value = name_value.partition("=")
    if name.strip() != CEREMONY_COOKIE:
        return False, ""
    deleted = "max-age=0" in attributes.lower().replace(" ", "")
    return True, "" if deleted else value.strip().strip('"')


class RawBrowser:
    """A browser speaking HTTP/1.1 over asyncio streams: the cheapest client for the load generator."""

    def __init__(self, host: str, port: int) -> None:
        self._host = host
        self._port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._last_used = 0.0
        self._cookie = ""
        self._host_header = f"{host}:{port}"

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._writer is not None and time.monotonic() - self._last_used > _IDLE_RECONNECT_SECONDS:
            await self.close()
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        return self._reader, self._writer

    def _request(self, path: str, body: bytes) -> bytes:
        lines = [
            f"POST {path} HTTP/1.1",
            f"Host: {self._host_header}",
            f"Origin: {ORIGIN}",
            "User-Agent: passgate-bench",
            "Accept: application/json",
            f"Content-Length: {len(body)}",
        ]
        if body:
            lines.append("Content-Type: application/json")
        if self._cookie:
            lines.append(f"Cookie: {CEREMONY_COOKIE}={self._cookie}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    async def post(self, path: str, payload: Any | None = None) -> Reply:
        body = b"" if payload is None else json.dumps(payload, separators=(",", ":")).encode()
        reader, writer = await self._connection()
        try:
            writer.write(self._request(path, body))
            status, headers, content = await _read_response(reader)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            await self.close()
            raise HttpError(f"{type(exc).__name__}: {exc}") from exc
        self._last_used = time.monotonic()
        for name, value in headers:
            if name == "set-cookie":
                found, cookie = _ceremony_cookie(value)
                if found:
                    self._cookie = cookie
            elif name == "connection" and value.lower() == "close":
                await self.close()
        return Reply(status, _json(content))

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, lower-cased headers and body of one HTTP/1.1 response."""
    head = await reader.readuntil(b"\r\n\r\n")
    if len(head) > _MAX_HEADER_BYTES:
        raise ValueError("response head too large")
    status_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
    status = int(status_line.split(" ", 2)[1])
    headers: list[tuple[str, str]] = []
    for line in header_lines:
        name, _, value = line.partition(":")
        headers.append((name.strip().lower(), value.strip()))
    fields = dict(headers)
    if fields.get("transfer-encoding", "").lower() == "chunked":
        return status, headers, await _read_chunked(reader)
    length = int(fields.get("content-length", "0"))
    return status, headers, await reader.readexactly(length) if length else b""


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    for _ in range(100_000):  # bounded: a response of more chunks than this is not one of Passgate's
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")  # no trailers from Passgate: just the final CRLF
            return bytes(body)
        body += await reader.readexactly(size + 2)
        del body[-2:]
    raise ValueError("too many chunks")


def _json(content: bytes) -> Any:
    if not content:
        return None
    try:
        return json.loads(content)
    except ValueError:
        return None


class HttpxBrowser:
    """The same browser over httpx.AsyncClient (one keep-alive connection), for comparison."""

    def __init__(self, host: str, port: int) -> None:
        self._client = httpx.AsyncClient(
            base_url=f"http://{host}:{port}",
            headers={"Origin": ORIGIN, "User-Agent": "passgate-bench"},
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1, keepalive_expiry=4.0),
            timeout=30.0,
        )
        self._cookie = ""

    async def post(self, path: str, payload: Any | None = None) -> Reply:
        headers = {"Cookie": f"{CEREMONY_COOKIE}={self._cookie}"} if self._cookie else {}
        try:
            if payload is None:
                response = await self._client.post(path, headers=headers)
            else:
                response = await self._client.post(path, json=payload, headers=headers)
        except httpx.HTTPError as exc:
            raise HttpError(f"{type(exc).__name__}: {exc}") from exc
        # Cookies are handled here, not by httpx's jar: only the ceremony cookie is kept (see module doc).
        self._client.cookies.clear()
        for value in response.headers.get_list("set-cookie"):
            found, cookie = _ceremony_cookie(value)
            if found:
                self._cookie = cookie
        return Reply(response.status_code, _json(response.content))

    async def close(self) -> None:
        await self._client.aclose()


def open_browser(kind: str, host: str, port: int) -> Browser:
    """A new virtual browser of `kind` ("raw" or "httpx") for the node at host:port (connects lazily)."""
    if kind == "httpx":
        return HttpxBrowser(host, port)
    return RawBrowser(host, port)
