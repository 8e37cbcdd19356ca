"""Logging that keeps secrets out: single-use tokens in URLs are redacted from access logs."""

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


def install() -> None:
    logging.getLogger("uvicorn.access").addFilter(RedactTokens())
