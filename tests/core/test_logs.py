from __future__ import annotations

import logging

from passgate.logs import RedactTokens, redact


def test_tokens_are_redacted_from_access_log_lines() -> None:
    assert redact("GET /email/verify?token=abc_DEF-123 HTTP/1.1") == "GET /email/verify?token=[redacted] HTTP/1.1"
    assert redact("/recover/email?x=1&token=s3cret&y=2") == "/recover/email?x=1&token=[redacted]&y=2"
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/email/verify?token=s3cret", "1.1", 200),
        None,
    )
    assert RedactTokens().filter(record)
    assert "s3cret" not in record.getMessage() and "token=[redacted]" in record.getMessage()
