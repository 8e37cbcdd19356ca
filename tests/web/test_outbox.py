"""The outbox (no SMTP server, as `make run`): the real `passgate serve` logs each message and writes whole links."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from passgate.testing import SoftwareAuthenticator
from tests.services import PassgateProcess, free_port, passgate_command

LINK = re.compile(rb"http://\S+/email/verify\?token=([A-Za-z0-9_-]+)")


@pytest.fixture
def outbox_server(tmp_path: Path) -> Iterator[tuple[PassgateProcess, str]]:
    port = free_port()
    origin = f"http://localhost:{port}"
    command = passgate_command(port, database_url=f"sqlite:///{tmp_path}/passgate.db", origin=origin, log_level="info")
    process = PassgateProcess(
        port=port,
        command=command,
        log=tmp_path / "server.log",
        environment={"PASSGATE_OUTBOX_DIR": str(tmp_path / "outbox")},
    )
    process.start()
    yield process, origin
    process.stop()


async def test_outbox_mail_is_logged_and_written_with_whole_links(
    outbox_server: tuple[PassgateProcess, str], tmp_path: Path
) -> None:
    process, origin = outbox_server
    async with httpx.AsyncClient(base_url=process.url, headers={"Origin": origin}, timeout=10) as browser:
        begin = await browser.post("/auth/passkey/register/begin", json={"username": "ola", "displayName": "Ola"})
        created = await browser.post(
            "/auth/passkey/register/complete", json=SoftwareAuthenticator().create(begin.json(), origin=origin)
        )
        assert created.status_code == 200, created.text
        assert (await browser.post("/auth/email", json={"email": "ola@example.com"})).status_code == 202
        outbox = tmp_path / "outbox"
        for _ in range(500):
            if list(outbox.glob("*.eml")) and b"/email/verify?token=" in process.log.read_bytes():
                break
            await asyncio.sleep(0.02)
        [eml] = outbox.glob("*.eml")
        # The raw file, as bytes: the whole link on one line, not folded by quoted-printable.
        # The text part's line (the HTML alternative after it carries the same link).
        line = next(line for line in eml.read_bytes().splitlines() if b"/email/verify" in line)
        written = LINK.search(line)
        assert written is not None and len(written.group(1)) == 43, line  # 32 random bytes, base64url
        link = written.group(0).decode()
        assert link in process.log.read_text(), process.log_tail()  # logged, decoded, in full
        verified = await browser.post("/auth/email/verify", json={"token": written.group(1).decode()})
        assert verified.status_code == 200, verified.text
