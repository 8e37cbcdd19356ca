"""Passgate's own log lines, beside uvicorn's; and single-use tokens in URLs redacted from access logs."""

from __future__ import annotations

import logging
import re

_TOKEN = re.compile(r"(token=)[^&\s]+")


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


def install(level: str = "info") -> None:
    """Redact the access log, and print the `passgate` loggers' lines at `level` as uvicorn prints its own.

    uvicorn's logging configuration covers its own loggers only: without a handler here, Passgate's lines
    (mail written to the outbox, delivery failures, warnings) went nowhere below WARNING. An application
    that configured logging itself (a handler on `passgate` or on the root logger) keeps its own.
    """
    logging.getLogger("uvicorn.access").addFilter(RedactTokens())
    passgate = logging.getLogger("passgate")
    if passgate.handlers or logging.getLogger().handlers:
        return
    from uvicorn.logging import DefaultFormatter

    handler = logging.StreamHandler()
    handler.setFormatter(DefaultFormatter("%(levelprefix)s %(name)s: %(message)s"))
    passgate.addHandler(handler)
    passgate.setLevel(level.upper())
