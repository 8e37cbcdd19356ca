"""Mail through the queue: answers before delivery, retries, durability; sign-in link requests as queue jobs;
limits and content of verification mail."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from passgate.service import mail_queue
from passgate.store.base import Storage
from passgate.testing import SoftwareAuthenticator
from tests.mailbox import SmtpServer, text_of
from tests.web.conftest import ORIGIN, Server, sign_up


async def eventually(condition: Callable[[], object], timeout: float = 10.0) -> None:
    """Wait, letting the server's worker run, until `condition()` holds."""
    for _ in range(int(timeout / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the condition did not hold in time")


def error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == code


async def verify(client: httpx.AsyncClient, smtp: SmtpServer, address: str) -> None:
    token = (await smtp.mailbox.newest_link(address, "/email/verify")).split("token=")[1]
    assert (await client.post("/auth/email/verify", json={"token": token})).status_code == 200


async def test_requests_are_answered_before_the_mail_server_has_the_message(
    make_server: Callable[..., Server], smtp: SmtpServer
) -> None:
    smtp.mailbox.delay = 1.5  # a slow relay: the old synchronous send made every known address this much slower
    server = make_server(**smtp.settings)
    async with server.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), "amy")
        assert (await browser.post("/auth/email", json={"email": "amy@example.com"})).status_code == 202
        assert smtp.mailbox.to("amy@example.com") == []
        await verify(browser, smtp, "amy@example.com")
    async with server.client() as asker:
        known = await asker.post("/auth/recovery/email", json={"email": "amy@example.com"})
        assert known.status_code == 202
        assert len(smtp.mailbox.to("amy@example.com")) == 1  # answered; the sign-in link is not there yet
        assert await smtp.mailbox.newest_link("amy@example.com", "/recover/email", count=2)


async def test_mail_the_server_refused_is_delivered_by_a_retry(
    make_server: Callable[..., Server], smtp: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    smtp.mailbox.refuse = 1
    server = make_server(**smtp.settings)
    async with server.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), "bo")
        with caplog.at_level(logging.WARNING, logger="passgate.mail"):
            assert (await browser.post("/auth/email", json={"email": "bo@example.com"})).status_code == 202
            await eventually(lambda: server.rows("SELECT 1 FROM mail_outbox WHERE last_error IS NOT NULL"))
        [(attempts, status, last_error)] = server.rows("SELECT attempts, status, last_error FROM mail_outbox")
        assert (attempts, status) == (1, "queued") and "451" in last_error
        assert smtp.mailbox.to("bo@example.com") == []
        server.clock.advance(seconds=31)  # past the first retry's wait
        server.app.state.ctx.mail_ready.set()  # the next poll, now rather than in a few seconds
        await verify(browser, smtp, "bo@example.com")
    assert server.rows("SELECT count(*) FROM mail_outbox") == [(0,)]
    logged = caplog.text
    assert "retrying in 30 s" in logged and "verify?token" not in logged and "Someone asked" not in logged


async def test_mail_queued_by_a_process_that_stopped_is_sent_after_the_restart(
    make_server: Callable[..., Server], smtp: SmtpServer, tmp_path: Path
) -> None:
    node = tmp_path / "node"
    stopped = make_server(directory=node, lifespan=False, secret_key="the same key", **smtp.settings)
    async with stopped.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), "cy")
        assert (await browser.post("/auth/email", json={"email": "cy@example.com"})).status_code == 202
    await stopped.stop()  # before its worker sent anything
    assert smtp.mailbox.to("cy@example.com") == []
    [(recipient, status, body)] = stopped.rows("SELECT recipient, status, body FROM mail_outbox")
    assert (recipient, status) == ("cy@example.com", "queued")
    restarted = make_server(directory=node, secret_key="the same key", **smtp.settings)
    async with restarted.client() as browser:
        link = await smtp.mailbox.newest_link("cy@example.com", "/email/verify")
        assert (await browser.post("/auth/email/verify", json={"token": link.split("token=")[1]})).status_code == 200
    assert link.split("token=")[1].encode() not in body and b"/email/verify" not in body  # sealed at rest


async def test_a_node_with_another_secret_key_leaves_the_mail_to_one_that_can_read_it(
    make_server: Callable[..., Server], smtp: SmtpServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    node = tmp_path / "node"
    stopped = make_server(directory=node, lifespan=False, secret_key="right", **smtp.settings)
    async with stopped.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), "di")
        assert (await browser.post("/auth/email", json={"email": "di@example.com"})).status_code == 202
    await stopped.stop()
    wrong = make_server(directory=node, secret_key="wrong", **smtp.settings)
    with caplog.at_level(logging.WARNING, logger="passgate.mail"):
        async with wrong.client():
            await eventually(lambda: wrong.rows("SELECT attempts FROM mail_outbox") == [(1,)])
            await eventually(lambda: wrong.rows("SELECT last_error FROM mail_outbox") != [(None,)])
    await wrong.stop()
    assert "sealed under another secret_key" in caplog.text
    assert wrong.rows("SELECT status, last_error FROM mail_outbox") == [("queued", "sealed under another secret_key")]
    right = make_server(directory=node, secret_key="right", **smtp.settings)
    right.clock.advance(seconds=31)
    async with right.client() as browser:
        await verify(browser, smtp, "di@example.com")


async def test_mail_refused_at_every_attempt_is_kept_as_failed(
    mail_server: Server, smtp: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    smtp.mailbox.refuse = 1000
    async with mail_server.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), "ev")
        with caplog.at_level(logging.WARNING, logger="passgate.mail"):
            assert (await browser.post("/auth/email", json={"email": "ev@example.com"})).status_code == 202
            for attempt in range(1, 10):
                await eventually(lambda n=attempt: smtp.mailbox.refused == n)
                await eventually(lambda: mail_server.rows("SELECT claimed_by FROM mail_outbox") == [(None,)])
                mail_server.clock.advance(hours=9)  # past the longest wait between attempts
                mail_server.app.state.ctx.mail_ready.set()
    [(attempts, status)] = mail_server.rows("SELECT attempts, status FROM mail_outbox")
    assert (attempts, status) == (9, "failed")
    assert "failed 9 times, kept as failed" in caplog.text and "verify?token" not in caplog.text
    assert smtp.mailbox.refused == 9 and smtp.mailbox.to("ev@example.com") == []


async def test_passgate_mail_flush_sends_what_a_stopped_node_queued(
    make_server: Callable[..., Server], smtp: SmtpServer, tmp_path: Path
) -> None:
    stopped = make_server(lifespan=False, secret_key="the key", **smtp.settings)
    async with stopped.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), "fi")
        assert (await browser.post("/auth/email", json={"email": "fi@example.com"})).status_code == 202
    await stopped.stop()
    command = [sys.executable, "-m", "passgate", "mail"]
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PASSGATE_")},
        "PASSGATE_DATABASE_URL": f"sqlite:///{stopped.database}",
        **{f"PASSGATE_{name.upper()}": str(value) for name, value in smtp.settings.items()},
    }

    def run(action: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command, action], capture_output=True, text=True, env={**environment, **extra}, check=False
        )

    listed = run("list")
    assert listed.returncode == 0 and "fi@example.com" in listed.stdout and "attempts 0" in listed.stdout
    refused = run("flush")  # without the server's secret key, nothing could be read
    assert refused.returncode == 2 and "secret_key" in refused.stderr
    flushed = run("flush", PASSGATE_SECRET_KEY="the key")
    assert flushed.returncode == 0 and "1 sent" in flushed.stdout, flushed.stderr
    assert len(smtp.mailbox.to("fi@example.com")) == 1
    assert stopped.rows("SELECT count(*) FROM mail_outbox") == [(0,)]


async def test_verification_mail_is_limited_per_account(mail_server: Server, smtp: SmtpServer) -> None:
    async with mail_server.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), "ed")
        for number in range(5):
            assert (await browser.post("/auth/email", json={"email": f"ed{number}@example.com"})).status_code == 202
        error(await browser.post("/auth/email", json={"email": "stranger@example.com"}), 429, "rate_limited")
        assert (await browser.get("/auth/account")).json()["email"] == "ed4@example.com"  # the refusal changed nothing
    assert mail_server.rows("SELECT count(*) FROM email_tokens WHERE email = 'stranger@example.com'") == [(0,)]
    assert mail_server.rows("SELECT count(*) FROM mail_outbox WHERE recipient = 'stranger@example.com'") == [(0,)]


async def test_verification_mail_is_limited_per_address_of_the_requester(mail_server: Server) -> None:
    # Three accounts from one address: the third is refused although it has not sent anything yet.
    for name in ("fay", "gus"):
        async with mail_server.client() as browser:
            await sign_up(browser, SoftwareAuthenticator(), name)
            for number in range(5):
                answer = await browser.post("/auth/email", json={"email": f"{name}{number}@example.com"})
                assert answer.status_code == 202
    async with mail_server.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), "hum")
        error(await browser.post("/auth/email", json={"email": "stranger@example.com"}), 429, "rate_limited")
        assert (await browser.get("/auth/account")).json()["email"] is None


async def test_mail_to_an_unverified_address_carries_nothing_the_requester_chose(
    mail_server: Server, smtp: SmtpServer
) -> None:
    chosen_name, chosen_display = "claim-your-prize", "Win 1000 EUR at evil.example now"
    async with mail_server.client() as browser:
        begin = await browser.post(
            "/auth/passkey/register/begin", json={"username": chosen_name, "displayName": chosen_display}
        )
        options = begin.json()
        created = await browser.post(
            "/auth/passkey/register/complete", json=SoftwareAuthenticator().create(options, origin=ORIGIN)
        )
        assert created.status_code == 200
        assert (await browser.post("/auth/email", json={"email": "victim@example.com"})).status_code == 202
        [message] = await smtp.mailbox.received("victim@example.com")
    text = text_of(message) + message["Subject"] + message["From"]
    assert "/email/verify?token=" in text
    for chosen in (chosen_name, chosen_display, "evil.example", "prize"):
        assert chosen.casefold() not in text.casefold()


class _Recording:
    """One storage concern whose calls are written down as "concern.method"."""

    def __init__(self, concern: str, inner: object, calls: list[str]) -> None:
        self._concern, self._inner, self._calls = concern, inner, calls

    def __getattr__(self, method: str) -> Any:
        attribute = getattr(self._inner, method)

        async def call(*args: Any, **kwargs: Any) -> Any:
            self._calls.append(f"{self._concern}.{method}")
            return await attribute(*args, **kwargs)

        return call


@contextmanager
def storage_work(server: Server) -> Iterator[tuple[list[str], list[str]]]:
    """The storage calls and the SQL statements (their text) the server makes inside the block."""
    calls: list[str] = []
    statements: list[str] = []

    def executed(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    ctx = server.app.state.ctx
    storage = ctx.storage
    recording = {f.name: _Recording(f.name, getattr(storage, f.name), calls) for f in dataclasses.fields(Storage)}
    server.app.state.ctx = dataclasses.replace(ctx, storage=Storage(**recording))
    event.listen(Engine, "before_cursor_execute", executed)
    try:
        yield calls, statements
    finally:
        event.remove(Engine, "before_cursor_execute", executed)
        server.app.state.ctx = ctx


async def verified_account(server: Server, smtp: SmtpServer, username: str, address: str) -> None:
    """An account with a verified address, signed out; mail sent by a worker pass (the server has none)."""
    async with server.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), username)
        assert (await browser.post("/auth/email", json={"email": address})).status_code == 202
        await mail_queue.flush(server.app.state.ctx)
        await verify(browser, smtp, address)
        await browser.post("/auth/logout")
    await mail_queue.flush(server.app.state.ctx)  # nothing of this is left in the outbox


def without_cookie_values(response: httpx.Response) -> list[tuple[str, str]]:
    """The headers, with the values of the cookies, of the ceremony binding and of the request id (a fresh random
    token each) left out."""
    return [
        (name, "…" if name in ("passgate-ceremony", "x-request-id") else re.sub(r"=[^;]*;", "=…;", value, count=1))
        for name, value in response.headers.items()
    ]


async def test_a_sign_in_link_request_does_the_same_storage_work_for_known_and_unknown_addresses(
    make_server: Callable[..., Server], smtp: SmtpServer
) -> None:
    server = make_server(lifespan=False, **smtp.settings)  # no worker: only the requests' own work is seen
    await verified_account(server, smtp, "amy", "amy@example.com")
    assert server.rows("SELECT count(*) FROM mail_outbox") == [(0,)]
    work = {}
    answers = {}
    for address in ("who@example.com", "AMY@example.com", "nobody@example.org", "amy@example.com"):
        async with server.client() as asker:
            with storage_work(server) as (calls, statements):
                answers[address] = await asker.post("/auth/recovery/email", json={"email": address})
        work[address] = (calls, statements)
    unknown_calls, unknown_statements = work["who@example.com"]
    for calls, statements in work.values():  # the same calls and the same SQL, in the same order
        assert (calls, statements) == (unknown_calls, unknown_statements)
    assert "mail.enqueue" in unknown_calls and any("mail_outbox" in s for s in unknown_statements)
    assert "users.by_email" not in unknown_calls  # the worker looks the address up, later
    assert len({(a.status_code, a.content) for a in answers.values()}) == 1
    assert len({tuple(without_cookie_values(a)) for a in answers.values()}) == 1
    assert answers["amy@example.com"].status_code == 202
    # One job each, alike but for the address; no link made yet, and one event each, naming nobody.
    jobs = server.rows("SELECT kind, recipient, subject, attempts FROM mail_outbox ORDER BY rowid")
    assert jobs == [("sign_in_link", address, "", 0) for address in answers]
    assert server.rows("SELECT count(*) FROM email_tokens WHERE purpose = 'sign_in'") == [(0,)]
    requests = server.rows("SELECT user_id, outcome, detail FROM events WHERE type = 'sign_in_link.request'")
    assert requests == [(None, "success", "{}")] * 4


async def test_the_worker_sends_a_known_address_its_link_bound_to_the_browser_that_asked(
    mail_server: Server, smtp: SmtpServer
) -> None:
    await verified_account(mail_server, smtp, "bea", "Bea@example.com")
    async with mail_server.client() as asker, mail_server.client() as stranger:
        assert (await asker.post("/auth/recovery/email", json={"email": "bea@EXAMPLE.com"})).status_code == 202
        link = await smtp.mailbox.newest_link(
            "Bea@example.com", "/recover/email", count=2
        )  # sent to the address as verified
        token = link.split("token=")[1]
        await eventually(lambda: mail_server.rows("SELECT count(*) FROM mail_outbox") == [(0,)])
        error(await stranger.post("/auth/recovery/email/complete", json={"token": token}), 403, "link_other_browser")
        used = await asker.post("/auth/recovery/email/complete", json={"token": token})
        assert used.status_code == 200 and used.json()["user"]["username"] == "bea"
        error(await asker.post("/auth/recovery/email/complete", json={"token": token}), 400, "invalid_link")
        # The account's activity tells the owner a link was sent, and where it was asked for.
        events = (await asker.get("/auth/events")).json()["events"]
        [sent] = [e for e in events if e["type"] == "sign_in_link.sent"]
        assert sent["outcome"] == "success" and sent["ip"] == "127.0.0.1"
        assert "Sent an email sign-in link to your address" in (await asker.get("/account")).text
    user_id = used.json()["user"]["id"]
    recorded = mail_server.rows("SELECT type, user_id FROM events WHERE type LIKE 'sign_in_link.%' ORDER BY id")
    assert recorded == [("sign_in_link.request", None), ("sign_in_link.sent", user_id)]


async def test_a_job_for_an_unknown_address_is_dropped_by_the_worker_and_nothing_is_sent(
    make_server: Callable[..., Server], smtp: SmtpServer, tmp_path: Path
) -> None:
    node = tmp_path / "node"
    stopped = make_server(directory=node, lifespan=False, secret_key="the key", **smtp.settings)
    async with stopped.client() as asker:
        assert (await asker.post("/auth/recovery/email", json={"email": "who@example.com"})).status_code == 202
    await stopped.stop()
    assert stopped.rows("SELECT kind, recipient FROM mail_outbox") == [("sign_in_link", "who@example.com")]
    restarted = make_server(directory=node, secret_key="the key", **smtp.settings)
    async with restarted.client():  # its worker's first pass claims the job
        await eventually(lambda: restarted.rows("SELECT count(*) FROM mail_outbox") == [(0,)])
    assert smtp.mailbox.messages == []
    assert restarted.rows("SELECT count(*) FROM email_tokens") == [(0,)]
    assert restarted.rows("SELECT type, user_id FROM events WHERE type LIKE 'sign_in_link.%'") == [
        ("sign_in_link.request", None)
    ]


async def test_a_worker_pass_counts_the_dropped_job(make_server: Callable[..., Server], smtp: SmtpServer) -> None:
    server = make_server(lifespan=False, **smtp.settings)
    await verified_account(server, smtp, "cal", "cal@example.com")
    for address in ("cal@example.com", "who@example.com"):
        async with server.client() as asker:
            assert (await asker.post("/auth/recovery/email", json={"email": address})).status_code == 202
    done = await mail_queue.flush(server.app.state.ctx)
    assert (done.sent, done.dropped, done.retried, done.failed) == (1, 1, 0, 0)
    assert [m["To"] for m in smtp.mailbox.messages[-1:]] == ["cal@example.com"]
    assert smtp.mailbox.to("who@example.com") == []
    assert server.rows("SELECT count(*) FROM mail_outbox") == [(0,)]


async def test_a_link_job_the_mail_server_refused_is_retried_as_a_message(
    mail_server: Server, smtp: SmtpServer
) -> None:
    await verified_account(mail_server, smtp, "dan", "dan@example.com")
    smtp.mailbox.refuse = smtp.mailbox.refused + 1
    async with mail_server.client() as asker:
        assert (await asker.post("/auth/recovery/email", json={"email": "dan@example.com"})).status_code == 202
        await eventually(lambda: mail_server.rows("SELECT 1 FROM mail_outbox WHERE last_error IS NOT NULL"))
        [(kind, attempts, status)] = mail_server.rows("SELECT kind, attempts, status FROM mail_outbox")
        assert (kind, attempts, status) == ("message", 1, "queued")  # the job became the message it failed to send
        mail_server.clock.advance(seconds=31)
        mail_server.app.state.ctx.mail_ready.set()
        token = (await smtp.mailbox.newest_link("dan@example.com", "/recover/email", count=2)).split("token=")[1]
        assert (await asker.post("/auth/recovery/email/complete", json={"token": token})).status_code == 200
    # The retry sent the same message: one link was made, and it is used up.
    assert mail_server.rows("SELECT count(*) FROM email_tokens WHERE purpose = 'sign_in'") == [(0,)]


@pytest.fixture
def mail_server(make_server: Callable[..., Server], smtp: SmtpServer) -> Server:
    return make_server(**smtp.settings)
