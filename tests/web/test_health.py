"""GET /healthz and /readyz: up, and ready only while the database answers at the migrations' head and Redis
answers PING; storage errors seen meanwhile are counted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import httpx
import pytest

from passgate.config import load_settings
from passgate.store.migrate import upgrade
from passgate.web import create_app
from tests.services import TEST_SECRET_KEY, PostgresServer, RedisServer
from tests.web.conftest import ORIGIN, Server
from tests.web.test_metrics import TOKEN, scrape, value


async def readiness(client: httpx.AsyncClient) -> tuple[int, dict[str, object]]:
    response = await client.get("/readyz")
    return response.status_code, response.json()


async def becomes(client: httpx.AsyncClient, status: int, tries: int = 100) -> dict[str, object]:
    """The readiness answer once it has the status (a restarted server takes a moment to accept connections)."""
    for _ in range(tries):
        code, body = await readiness(client)
        if code == status:
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"/readyz did not answer {status}: {code} {body}")


async def test_healthz_and_readyz_answer_ok_when_all_is_well(server: Server) -> None:
    async with server.client() as client:
        health = await client.get("/healthz")
        assert (health.status_code, health.json()) == (200, {"status": "ok"})
        assert await readiness(client) == (200, {"status": "ok"})


async def test_readyz_fails_while_the_database_is_behind_the_migrations(server: Server) -> None:
    [(head,)] = server.rows("SELECT version_num FROM alembic_version")
    async with server.client() as client:
        server.rows("UPDATE alembic_version SET version_num = '0001'")
        assert await readiness(client) == (503, {"status": "unavailable", "failing": ["migrations"]})
        server.rows("DELETE FROM alembic_version")
        assert await readiness(client) == (503, {"status": "unavailable", "failing": ["migrations"]})
        server.rows("INSERT INTO alembic_version (version_num) VALUES (?)", head)
        assert await readiness(client) == (200, {"status": "ok"})
        assert (await client.get("/healthz")).status_code == 200  # the process itself is up all along


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[PostgresServer]:
    """A server of this module's own: it is stopped and started again."""
    server = PostgresServer.start()
    yield server
    server.stop()


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    server = RedisServer.start()
    yield server
    server.stop()


@asynccontextmanager
async def served(database_url: str, redis_url: str = "") -> AsyncIterator[httpx.AsyncClient]:
    upgrade(database_url)
    settings = load_settings(
        {
            "database_url": database_url,
            "redis_url": redis_url,
            "origins": [ORIGIN],
            "secret_key": TEST_SECRET_KEY,
            "metrics_token": TOKEN,
        }
    )
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ORIGIN, headers={"Origin": ORIGIN}) as c,
    ):
        yield c


async def test_readyz_fails_while_postgresql_is_stopped_and_recovers_when_it_is_back(
    private_postgres: PostgresServer,
) -> None:
    async with served(private_postgres.create_database("readiness")) as client:
        assert await becomes(client, 200) == {"status": "ok"}
        errors = "passgate_storage_errors_total"
        before = await scrape(client)
        private_postgres.halt()
        try:
            assert await becomes(client, 503) == {"status": "unavailable", "failing": ["database"]}
            # A request that needs the database is refused as the outage it is, and counted.
            refused = await client.post("/auth/passkey/register/begin", json={"username": "ann"})
            assert refused.status_code == 503 and refused.json()["error"] == "storage_unavailable"
            assert (await client.get("/healthz")).status_code == 200
        finally:
            private_postgres.resume()
        assert await becomes(client, 200) == {"status": "ok"}
        after = await scrape(client)
    counted = sum(v for (name, _), v in after.items() if name == errors) - sum(
        v for (name, _), v in before.items() if name == errors
    )
    assert counted >= 1
    assert value(after, "passgate_requests_total", method="GET", route="/readyz", status="503") >= 1


async def test_readyz_fails_while_redis_is_stopped_and_recovers_when_it_is_back(
    private_postgres: PostgresServer, private_redis: RedisServer
) -> None:
    async with served(private_postgres.create_database("readiness_redis"), private_redis.url) as client:
        assert await becomes(client, 200) == {"status": "ok"}
        private_redis.halt()
        try:
            assert await becomes(client, 503) == {"status": "unavailable", "failing": ["redis"]}
        finally:
            private_redis.resume()
        assert await becomes(client, 200) == {"status": "ok"}
