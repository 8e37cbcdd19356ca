"""Passgate's own log lines, beside uvicorn's, as text or as JSON objects; single-use tokens in URLs redacted.

`log_format = "json"`: every line, Passgate's and uvicorn's, is one JSON object with time, level, logger and
message; access lines (logger `passgate.access`, written by `web.middleware.AccessLog`) add the request id,
method, route template, status, duration, user id and client address. The raw path and query never appear
(links from emails carry tokens in their query strings), nor do headers or cookies.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

_TOKEN = re.compile(r"(token=)[^&\s]+")

ACCESS_LOGGER = "passgate.access"
# The attributes of an access line's record (LogRecord `extra`), in the order they are written.
ACCESS_FIELDS = ("request_id", "method", "route", "status", "duration_ms", "user_id", "client_ip")
FORMATS = ("text", "json")


def redact(text: str) -> str:
    """The text with the value of every `token=` query parameter replaced."""
    return _TOKEN.sub(r"\1[redacted]", text)


class RedactTokens(logging.Filter):
    """For uvicorn's access log: links from emails carry single-use tokens in their query strings."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(arg) if isinstance(arg, str) else arg for arg in record.args)
        record.msg = redact(str(record.msg))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, the access fields it has,
    and the exception's traceback as `exception`."""

    def __init__(self, *_args: Any, **_options: Any) -> None:  # uvicorn's dictConfig passes fmt and use_colors
        super().__init__()

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
            "process": record.process,
        }
        for name in ACCESS_FIELDS:
            if name in record.__dict__:
                line[name] = record.__dict__[name]
        if record.exc_info:
            line["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(line, default=str)


def formatter(log_format: str) -> logging.Formatter:
    """The formatter of Passgate's lines in `log_format` ("text" or "json")."""
    if log_format == "json":
        return JsonFormatter()
    from uvicorn.logging import DefaultFormatter

    return DefaultFormatter("%(levelprefix)s %(name)s: %(message)s")


def uvicorn_config(log_format: str, level: str) -> dict[str, Any]:
    """uvicorn's `log_config`: its own for text; for JSON, every logger (uvicorn's and Passgate's) written as JSON,
    and uvicorn's access log off (Passgate's access lines replace it)."""
    from uvicorn.config import LOGGING_CONFIG

    if log_format != "json":
        return LOGGING_CONFIG
    handler = {"formatter": "json", "class": "logging.StreamHandler", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {name: {"()": JsonFormatter} for name in ("json", "default", "access")},
        "handlers": {"json": handler},
        "loggers": {
            "uvicorn": {"handlers": ["json"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "passgate": {"handlers": ["json"], "level": level.upper(), "propagate": False},
        },
    }


def install(level: str = "info", log_format: str = "text") -> None:
    """Redact the access log, and print the `passgate` loggers' lines at `level` as uvicorn prints its own.

    uvicorn's logging configuration covers its own loggers only: without a handler here, Passgate's lines
    (mail written to the outbox, delivery failures, warnings) went nowhere below WARNING. An application
    that configured logging itself (a handler on `passgate` or on the root logger) keeps its own; so does
    `passgate serve` with JSON logs, whose uvicorn configuration (`uvicorn_config`) covers `passgate` too.
    """
    logging.getLogger("uvicorn.access").addFilter(RedactTokens())
    passgate = logging.getLogger("passgate")
    if passgate.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(formatter(log_format))
    passgate.addHandler(handler)
    passgate.setLevel(level.upper())
