"""Logs: request ids taken or made and returned; JSON lines with the access fields, the route template and the
signed-in user; never a link's token nor a session cookie."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from passgate import logs
from passgate.service import mail_queue
from passgate.testing import SoftwareAuthenticator
from tests.mailbox import SmtpServer
from tests.services import PassgateProcess, free_port, passgate_command
from tests.web.conftest import Server, sign_up
from tests.web.test_mail import verified_account


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """What Passgate's loggers write as JSON while the test runs."""
    written = io.StringIO()
    handler = logging.StreamHandler(written)
    handler.setFormatter(logs.formatter("json"))
    passgate = logging.getLogger("passgate")
    level = passgate.level
    passgate.addHandler(handler)
    passgate.setLevel(logging.INFO)
    yield written
    passgate.removeHandler(handler)
    passgate.setLevel(level)


def parsed(written: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in written.getvalue().splitlines()]


def access_lines(written: io.StringIO) -> list[dict[str, Any]]:
    return [line for line in parsed(written) if line["logger"] == "passgate.access"]


async def test_a_sane_request_id_is_kept_and_any_other_replaced(server: Server) -> None:
    async with server.client() as client:
        kept = await client.get("/healthz", headers={"X-Request-Id": "edge-7f3a.42_b"})
        assert kept.headers["x-request-id"] == "edge-7f3a.42_b"
        made = [(await client.get("/healthz")).headers["x-request-id"] for _ in range(2)]
        assert len(set(made)) == 2 and all(len(rid) == 32 for rid in made)
        for insane in (b"a" * 129, b"two words", b"semi;colon", b"back\\slash", "ünïcode".encode(), b""):
            replaced = (await client.get("/healthz", headers={"X-Request-Id": insane})).headers["x-request-id"]
            assert replaced.encode() != insane and len(replaced) == 32
        longest = "r" * 128
        assert (await client.get("/healthz", headers={"X-Request-Id": longest})).headers["x-request-id"] == longest
        # Error answers carry it too.
        missing = await client.get("/no/such/page", headers={"X-Request-Id": "lost-1"})
        assert missing.status_code == 404 and missing.headers["x-request-id"] == "lost-1"


async def test_json_access_lines_name_the_route_template_and_the_signed_in_user(
    make_server: Callable[..., Server], json_lines: io.StringIO
) -> None:
    server = make_server(log_format="json")
    async with server.client() as client:
        user = (await sign_up(client, SoftwareAuthenticator(), "ann"))["user"]
        credential_id = (await client.get("/auth/passkeys")).json()["passkeys"][0]["id"]
        answer = await client.patch(
            f"/auth/passkeys/{credential_id}", json={"nickname": "Work key"}, headers={"X-Request-Id": "rename-1"}
        )
        assert answer.status_code == 200, answer.text
        await client.post("/auth/logout")
        await client.get("/auth/session", headers={"X-Request-Id": "anonymous-1"})
    [renamed] = [line for line in access_lines(json_lines) if line["request_id"] == "rename-1"]
    assert renamed["route"] == "/auth/passkeys/{credential_id}" and renamed["method"] == "PATCH"
    assert renamed["status"] == 200 and renamed["user_id"] == user["id"] and renamed["client_ip"] == "127.0.0.1"
    assert (
        isinstance(renamed["duration_ms"], float) and renamed["level"] == "info" and renamed["time"].endswith("+00:00")
    )
    [anonymous] = [line for line in access_lines(json_lines) if line["request_id"] == "anonymous-1"]
    assert anonymous["user_id"] is None and anonymous["route"] == "/auth/session"
    assert credential_id not in json_lines.getvalue()  # ids in paths stay out of the log: the template is logged


async def test_json_logs_never_hold_a_sign_in_links_token_or_a_session_cookie(
    make_server: Callable[..., Server], smtp: SmtpServer, json_lines: io.StringIO
) -> None:
    server = make_server(log_format="json", **smtp.settings)
    await verified_account(server, smtp, "bea", "bea@example.com")
    async with server.client() as browser:
        assert (await browser.post("/auth/recovery/email", json={"email": "bea@example.com"})).status_code == 202
        await mail_queue.flush(server.app.state.ctx)
        link = await smtp.mailbox.newest_link("bea@example.com", "/recover/email", count=2)
        token = link.split("token=")[1]
        assert (await browser.get(link.removeprefix("http://localhost:8000"))).status_code == 200
        used = await browser.post("/auth/recovery/email/complete", json={"token": token})
        assert used.status_code == 200, used.text
        cookie = browser.cookies["passgate_session"]
        assert (await browser.get("/auth/account")).status_code == 200
        await browser.post("/auth/logout")
    written = json_lines.getvalue()
    lines = parsed(json_lines)
    assert {"/recover/email", "/auth/recovery/email/complete", "/auth/account"} <= {line.get("route") for line in lines}
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    assert token not in written and cookie not in written
    assert "token=" not in written


def test_passgate_serve_with_json_logs_writes_one_object_per_line(tmp_path: Path) -> None:
    port = free_port()
    command = passgate_command(
        port, database_url=f"sqlite:///{tmp_path / 'passgate.db'}", origin=f"http://localhost:{port}", log_level="info"
    )
    server = PassgateProcess(
        port=port, command=command, log=tmp_path / "server.log", environment={"PASSGATE_LOG_FORMAT": "json"}
    )
    server.start()
    try:
        answer = httpx.get(
            f"{server.url}/recover/email?token=secret-token-value",
            headers={"X-Request-Id": "req-9", "Host": f"localhost:{port}"},  # the site's host: no redirect
        )
        assert answer.headers["x-request-id"] == "req-9"
    finally:
        server.stop()
    assert server.process is not None and server.process.returncode == 0
    # `passgate serve` prints two lines of its own before logging starts; everything logged is JSON.
    written = [line for line in server.log.read_text().splitlines() if not line.startswith("passgate: ")]
    lines = [json.loads(line) for line in written]
    assert {"uvicorn.error", "passgate.access"} <= {line["logger"] for line in lines}
    [access] = [line for line in lines if line.get("request_id") == "req-9"]
    assert access["route"] == "/recover/email" and access["status"] == 200
    assert any(line["message"].startswith("Open http://localhost:") for line in lines)
    assert "secret-token-value" not in server.log.read_text()
