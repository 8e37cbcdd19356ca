"""Reading requests: the Origin check, body limits, JSON only, and schema validation."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from passgate.config import Settings
from passgate.core.encoding import load_json
from passgate.core.errors import BodyTooLarge, InvalidRequest, OriginNotAllowed, UnsupportedMediaType
from passgate.web.context import by_headers
from passgate.web.hosts import hostname

Model = TypeVar("Model", bound=BaseModel)


def check_origin(request: Request, settings: Settings) -> None:
    """State-changing requests must come from a page of one of the configured origins (CSRF defence).

    Raises:
        OriginNotAllowed: the Origin header is missing or not allowed.
    """
    origin = request.headers.get("origin")
    if origin is None or origin.rstrip("/") not in settings.allowed_origins:
        raise OriginNotAllowed(_other_host_message(request, settings, origin))


def _other_host_message(request: Request, settings: Settings, origin: str | None) -> str | None:
    """Why a page of this very server is refused: it was opened under a name that is not the site's."""
    if origin is None or hostname(origin) != hostname(request.headers.get("host")):
        return None  # no Origin, or another site's page: the default message
    site = " or ".join(settings.allowed_origins)
    return f"This page was opened at {origin}, but passkeys here work only on {site}."


async def read_json(request: Request, settings: Settings) -> Any | None:
    """The request's JSON body, or None when it has none.

    Raises:
        BodyTooLarge, UnsupportedMediaType, InvalidRequest (not UTF-8 JSON, or nested too deeply).
    """
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > settings.max_body_bytes):
        raise BodyTooLarge()
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > settings.max_body_bytes:
            raise BodyTooLarge()
    if not body.strip():
        return None
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise UnsupportedMediaType()
    return load_json(bytes(body), what="The request body", error=InvalidRequest)


def check_origin_unless_by_headers(request: Request, settings: Settings) -> None:
    """The CSRF defence where there is something ambient to defend: a request carrying cookies needs an allowed
    Origin (check_origin). A native request (no Origin, no cookies) and one authenticated by a bearer token (whose
    cookies are then ignored) carry nothing a page of another site could borrow: only who holds the token can send
    it, so they need none.

    Raises:
        OriginNotAllowed: as check_origin, for a request that reads cookies.
    """
    if not by_headers(request):
        check_origin(request, settings)


async def state_changing_body(request: Request) -> Any | None:
    """The body of a state-changing request, after the Origin check (check_origin_unless_by_headers). Raises as
    that and read_json."""
    settings: Settings = request.app.state.settings
    check_origin_unless_by_headers(request, settings)
    return await read_json(request, settings)


def validate(model: type[Model], data: Any | None) -> Model:
    """Raises InvalidRequest naming the first field that does not fit the schema."""
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise InvalidRequest(f"{where}: {first['msg']}") from exc


def request_body(model: type[BaseModel], description: str) -> dict[str, Any]:
    """OpenAPI `requestBody` for a route that reads its body through `read_json`."""
    return {
        "requestBody": {
            "required": False,
            "description": description,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }
