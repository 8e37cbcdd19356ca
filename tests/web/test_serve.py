"""`passgate serve` as people start it: what it prints last, and a browser that opened it under another name."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.services import PassgateProcess, free_port, passgate_command


@dataclass
class Served:
    process: PassgateProcess
    site: str  # the configured origin, http://localhost:<port>
    bound: str  # the address it listens on, http://127.0.0.1:<port>


def start(directory: Path, workers: int = 1, environment: dict[str, str] | None = None) -> Served:
    port = free_port()
    site = f"http://localhost:{port}"
    command = passgate_command(
        port, database_url=f"sqlite:///{directory}/passgate.db", origin=site, workers=workers, log_level="info"
    )
    process = PassgateProcess(port=port, command=command, log=directory / "server.log", environment=environment or {})
    try:
        process.start()
    except Exception:
        process.stop()
        raise
    return Served(process=process, site=site, bound=f"http://127.0.0.1:{port}")


def lines_once_open(process: PassgateProcess) -> list[str]:
    """The output once it has said where to open the site (or, if it never does, after a minute)."""
    deadline = time.monotonic() + 60
    lines = process.log.read_text().splitlines()
    while not any(line.startswith("Open ") for line in lines) and time.monotonic() < deadline:
        time.sleep(0.1)
        lines = process.log.read_text().splitlines()
    return lines


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    server = start(tmp_path_factory.mktemp("serve"))
    yield server
    server.process.stop()


@pytest.mark.parametrize("workers", [1, 2])
def test_the_last_line_printed_says_which_address_to_open(tmp_path: Path, workers: int) -> None:
    server = start(tmp_path, workers=workers)
    try:
        lines = lines_once_open(server.process)
    finally:
        server.process.stop()
    assert lines[-1] == f"Open {server.site}", lines
    assert any(line.endswith(f"Uvicorn running on {server.bound} (Press CTRL+C to quit)") for line in lines[:-1])
    assert sum(line.endswith("Application startup complete.") for line in lines) == workers


PAGES = ["/signin", "/signup?username=ada&x=%2F%2Fevil.example", "/", "/recover/email?token=t"]


@pytest.mark.parametrize("page", PAGES)
def test_a_page_opened_at_the_bound_address_is_sent_to_the_site(served: Served, page: str) -> None:
    response = httpx.get(served.bound + page)
    assert response.status_code == 307
    assert response.headers["location"] == served.site + page


def test_a_forged_host_is_sent_to_the_site_not_to_the_forger(served: Served) -> None:
    for host in ("evil.example", "evil.example:443", "localhost.evil.example", "[::1]:1"):
        response = httpx.get(served.bound + "/signin?next=1", headers={"Host": host})
        assert response.status_code == 307
        assert response.headers["location"] == served.site + "/signin?next=1"


def test_pages_at_the_site_are_served(served: Served) -> None:
    response = httpx.get(served.bound + "/signin", headers={"Host": served.site.removeprefix("http://")})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize("path", ["/static/passgate.js", "/.well-known/passkey-endpoints", "/openapi.json"])
def test_files_and_documents_are_not_redirected(served: Served, path: str) -> None:
    assert httpx.get(served.bound + path).status_code == 200


def test_the_api_says_why_a_page_at_another_address_is_refused(served: Served) -> None:
    assert httpx.get(served.bound + "/auth/session").json()["error"] == "not_signed_in"  # the API answers in place
    refused = httpx.post(served.bound + "/auth/passkey/login/begin", headers={"Origin": served.bound})
    assert refused.status_code == 403
    assert refused.json() == {
        "error": "origin_not_allowed",
        "message": f"This page was opened at {served.bound}, but passkeys here work only on {served.site}.",
    }


def test_another_site_is_refused_without_naming_it(served: Served) -> None:
    refused = httpx.post(served.bound + "/auth/passkey/login/begin", headers={"Origin": "https://evil.example"})
    assert refused.status_code == 403
    assert refused.json() == {"error": "origin_not_allowed", "message": "Requests from this origin are not allowed."}


@pytest.mark.parametrize(("proxies", "believed"), [("127.0.0.1", True), ("10.0.0.0/8,192.0.2.1", False)])
def test_the_client_address_comes_from_x_forwarded_for_only_behind_a_named_proxy(
    tmp_path: Path, proxies: str, believed: bool
) -> None:
    limits = {"PASSGATE_FORWARDED_ALLOW_IPS": proxies, "PASSGATE_RATE_LIMIT_PER_IP": "2"}
    server = start(tmp_path, environment=limits)
    try:
        with httpx.Client(
            base_url=server.bound, headers={"Origin": server.site, "Host": server.site.removeprefix("http://")}
        ) as client:

            def begin(client_ip: str) -> int:
                response = client.post("/auth/passkey/login/begin", headers={"X-Forwarded-For": client_ip})
                return response.status_code

            statuses = [begin(f"203.0.113.{number}") for number in range(1, 4)]
            assert statuses == ([200, 200, 200] if believed else [200, 200, 429])
            if believed:  # one client is still limited on its own
                assert [begin("198.51.100.7") for _ in range(3)] == [200, 200, 429]
    finally:
        server.process.stop()
