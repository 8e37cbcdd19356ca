"""GET /metrics: never open by default, the token's or its own port's; the numbers move with the traffic, by route
template and by ceremony outcome; several workers' counts add up."""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from passgate.core.mds import MetadataBlob
from passgate.testing import SoftwareAuthenticator
from tests.mailbox import SmtpServer
from tests.services import PassgateProcess, free_port, passgate_command
from tests.web.conftest import ORIGIN, Server, login_options, sign_up

TOKEN = "metrics-token-for-the-tests"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


@pytest.fixture
def metered(make_server: Callable[..., Server]) -> Server:
    return make_server(metrics_token=TOKEN)


async def test_metrics_are_not_served_on_the_main_listener_without_a_token_setting(server: Server) -> None:
    async with server.client() as client:
        for headers in ({}, {"Authorization": f"Bearer {TOKEN}"}):
            response = await client.get("/metrics", headers=headers)
            assert response.status_code == 404
            assert "passgate_" not in response.text


async def test_metrics_need_the_token_when_it_is_set(metered: Server) -> None:
    async with metered.client() as client:
        for authorization in ("", f"Bearer {TOKEN}x", f"Basic {TOKEN}", f"Bearer {TOKEN[:-1]}", TOKEN):
            refused = await client.get("/metrics", headers={"Authorization": authorization} if authorization else {})
            assert refused.status_code == 401, authorization
            assert refused.json()["error"] == "invalid_token" and "passgate_" not in refused.text
        assert "passgate_requests_total" in {name for name, _ in await scrape(client)}


async def test_a_refused_sign_in_counts_once_under_its_code(metered: Server) -> None:
    authenticator = SoftwareAuthenticator()
    async with metered.client() as client:
        await sign_up(client, authenticator, "ann")
        await client.post("/auth/logout")
        before = await scrape(client)
        options = await login_options(client)
        metered.clock.advance(hours=1)  # past the challenge's lifetime
        refused = await client.post("/auth/passkey/login/complete", json=authenticator.get(options, origin=ORIGIN))
        assert refused.status_code == 400
        code = refused.json()["error"]
        after = await scrape(client)
    failures = "passgate_ceremonies_total"
    assert (
        value(after, failures, type="sign_in", outcome="failure", code=code)
        - value(before, failures, type="sign_in", outcome="failure", code=code)
        == 1
    )
    assert value(after, failures, type="sign_in", outcome="success", code="none") == value(
        before, failures, type="sign_in", outcome="success", code="none"
    )
    assert value(after, failures, type="passkey.register", outcome="success", code="none") >= 1
    # The ceremony endpoints (on their lean path) are labelled by their route like every other.
    requests = "passgate_requests_total"
    for route, status in (("/auth/passkey/login/begin", "200"), ("/auth/passkey/login/complete", "400")):
        counted = value(after, requests, method="POST", route=route, status=status)
        assert counted - value(before, requests, method="POST", route=route, status=status) == 1, route


async def test_requests_are_labelled_by_route_template_never_by_raw_path(metered: Server) -> None:
    async with metered.client() as client:
        before = await scrape(client)
        for credential_id in ("AAAA", "BBBB", "CCCC"):
            assert (await client.delete(f"/auth/passkeys/{credential_id}")).status_code == 401
        for path in ("/nothing-here", "/auth/nothing/ZZZZ", "/wp-login.php"):
            assert (await client.get(path)).status_code == 404
        response = await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    after = parse(response.text)
    route = "/auth/passkeys/{credential_id}"
    requests = "passgate_requests_total"
    assert (
        value(after, requests, method="DELETE", route=route, status="401")
        - value(before, requests, method="DELETE", route=route, status="401")
        == 3
    )
    assert (
        value(after, requests, method="GET", route="unmatched", status="404")
        - value(before, requests, method="GET", route="unmatched", status="404")
        == 3
    )
    assert value(after, "passgate_request_duration_seconds_count", method="DELETE", route=route) >= 3
    for raw in ("AAAA", "BBBB", "nothing-here", "ZZZZ", "wp-login"):
        assert raw not in response.text


async def test_rate_limit_refusals_are_counted(make_server: Callable[..., Server]) -> None:
    server = make_server(metrics_token=TOKEN, rate_limit_per_ip=2)
    async with server.client() as client:
        before = await scrape(client)
        answers = [(await client.post("/auth/passkey/login/begin")).status_code for _ in range(3)]
        assert answers == [200, 200, 429]
        after = await scrape(client)
    name = "passgate_rate_limit_refusals_total"
    assert value(after, name, limit="login-begin-ip") - value(before, name, limit="login-begin-ip") == 1


async def test_mail_sent_and_failed_are_counted(make_server: Callable[..., Server], smtp: SmtpServer) -> None:
    smtp.mailbox.refuse = 1  # the first attempt fails, the retry goes through
    server = make_server(metrics_token=TOKEN, **smtp.settings)
    async with server.client() as client:
        await sign_up(client, SoftwareAuthenticator(), "bo")
        before = await scrape(client)
        assert (await client.post("/auth/email", json={"email": "bo@example.com"})).status_code == 202
        await eventually(lambda: server.rows("SELECT 1 FROM mail_outbox WHERE last_error IS NOT NULL"))
        server.clock.advance(seconds=31)
        server.app.state.ctx.mail_ready.set()
        await smtp.mailbox.received("bo@example.com")
        await eventually(lambda: server.rows("SELECT count(*) FROM mail_outbox") == [(0,)])
        after = await scrape(client)
    sent, failed = "passgate_mail_sent_total", "passgate_mail_failed_total"
    assert value(after, sent, kind="message") - value(before, sent, kind="message") == 1
    assert (
        value(after, failed, kind="message", outcome="retried")
        - value(before, failed, kind="message", outcome="retried")
        == 1
    )


async def test_sessions_active_counts_unexpired_sessions(metered: Server) -> None:
    async with metered.client() as ann, metered.client() as bo:
        await sign_up(ann, SoftwareAuthenticator(), "ann")
        await sign_up(bo, SoftwareAuthenticator(), "bo")
        assert value(await scrape(ann), "passgate_sessions_active") == 2
        await bo.post("/auth/logout")
        assert value(await scrape(ann), "passgate_sessions_active") == 1
        metered.clock.advance(days=30)  # past every session's absolute end
        assert value(await scrape(ann), "passgate_sessions_active") == 0


async def test_metadata_age_is_the_time_since_the_last_good_refresh(
    make_server: Callable[..., Server], tmp_path: Path
) -> None:
    blob = tmp_path / "mds.jwt"
    server = make_server(metrics_token=TOKEN, mds_file=str(blob))  # nothing stored yet
    async with server.client() as client:
        assert value(await scrape(client), "passgate_mds_age_seconds") == math.inf  # never refreshed
        blob.write_text("the verified BLOB")
        refreshed = time.time() - 3 * 3600
        os.utime(blob, (refreshed, refreshed))
        server.app.state.ctx.metadata.current = MetadataBlob(number=7, next_update=date(2027, 1, 1), entries={})
        age = value(await scrape(client), "passgate_mds_age_seconds")
    assert 3 * 3600 <= age < 3 * 3600 + 600


async def eventually(condition: Callable[[], object], timeout: float = 10.0) -> None:
    import asyncio

    for _ in range(int(timeout / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the condition did not hold in time")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Callable[..., PassgateProcess]]:
    started: list[PassgateProcess] = []

    def start(*, workers: int = 1, **environment: str) -> PassgateProcess:
        port = free_port()
        command = passgate_command(
            port,
            database_url=f"sqlite:///{tmp_path / 'passgate.db'}",
            origin=f"http://localhost:{port}",
            workers=workers,
            log_level="info",
        )
        process = PassgateProcess(
            port=port,
            command=command,
            log=tmp_path / f"server-{len(started)}.log",
            environment={"PASSGATE_LOG_FORMAT": "json", "PASSGATE_OUTBOX_DIR": str(tmp_path / "outbox"), **environment},
        )
        started.append(process)
        process.start()
        return process

    yield start
    for process in started:
        process.stop()


def served_by(log: Path, route: str) -> set[int]:
    """The processes that wrote an access line for `route`."""
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    return {line["process"] for line in lines if line.get("route") == route}


def test_with_two_workers_a_scrape_adds_up_the_requests_both_served(
    served: Callable[..., PassgateProcess],
) -> None:
    server = served(workers=2, PASSGATE_METRICS_TOKEN=TOKEN)
    requests = 60
    for _ in range(requests):  # a connection each, so that both workers take some
        with httpx.Client(base_url=server.url) as client:
            assert client.get("/healthz").status_code == 200
    time.sleep(0.5)  # the access lines are written once each answer is sent
    assert len(served_by(server.log, "/healthz")) == 2, "both workers served"
    totals = set()
    for _ in range(6):  # any worker may answer the scrape: each adds up both
        with httpx.Client(base_url=server.url) as client:
            response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 200
        totals.add(value(parse(response.text), "passgate_requests_total", method="GET", route="/healthz", status="200"))
    assert totals == {requests}
    assert len(served_by(server.log, "/metrics")) == 2, "both workers answered a scrape"


def test_the_metrics_port_serves_metrics_alone_and_the_main_listener_none(
    served: Callable[..., PassgateProcess],
) -> None:
    for workers in (1, 2):
        metrics_port = free_port()
        server = served(workers=workers, PASSGATE_METRICS_PORT=str(metrics_port))
        with httpx.Client(base_url=server.url) as client:
            assert client.get("/healthz").status_code == 200
            assert client.get("/metrics").status_code == 404
        listener = f"http://127.0.0.1:{metrics_port}"
        for _ in range(50):  # a worker's lines reach the files once its answer is sent
            samples = parse(httpx.get(f"{listener}/metrics").text)
            if value(samples, "passgate_requests_total", method="GET", route="/healthz", status="200") == 1:
                break
            time.sleep(0.1)
        assert value(samples, "passgate_requests_total", method="GET", route="/healthz", status="200") == 1
        for path in ("/", "/healthz", "/auth/session", "/metrics/x"):
            assert httpx.get(f"{listener}{path}").status_code == 404
        server.stop()
        assert server.process is not None and server.process.returncode == 0


def test_settings_of_the_metrics_are_checked() -> None:
    from passgate.config import ConfigError, load_settings

    for flags, message in (
        ({"metrics_token": "short"}, "metrics_token"),
        ({"metrics_port": 70000}, "metrics_port"),
        ({"metrics_port": 8000, "port": 8000}, "metrics_port"),
        ({"log_format": "xml"}, "log_format"),
        ({"graceful_shutdown_seconds": 0}, "graceful_shutdown_seconds"),
    ):
        with pytest.raises(ConfigError, match=message):
            load_settings(flags)
