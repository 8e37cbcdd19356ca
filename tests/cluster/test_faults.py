"""Faults under load: Redis away, PostgreSQL restarted, a node killed. Nothing acknowledged is lost."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx

from passgate.testing import SoftwareAuthenticator
from tests.cluster.conftest import ORIGIN, Cluster, Node, browser, sign_up
from tests.services import PostgresServer, RedisServer


async def sign_in(client: httpx.AsyncClient, node: Node, authenticator: SoftwareAuthenticator) -> httpx.Response:
    begin = await client.post(f"{node.url}/auth/passkey/login/begin")
    if begin.status_code != 200:
        return begin
    return await client.post(
        f"{node.url}/auth/passkey/login/complete", json=authenticator.get(begin.json(), origin=ORIGIN)
    )


async def until_ok(attempt: Callable[[], object], tries: int = 50) -> httpx.Response:
    """Retry a request the way a client would after a 503, a bounded number of times."""
    response: httpx.Response | None = None
    for _ in range(tries):
        response = await attempt()  # type: ignore[misc]
        if response.status_code == 200:
            return response
        await asyncio.sleep(0.1)
    assert response is not None
    return response


async def restart_midway(postgres: PostgresServer, done: asyncio.Event) -> None:
    """Under load: PostgreSQL stopped half a second in, started again half a second later; then `done` is set.
    PostgreSQL is running again when this returns, even if it is cancelled (the next tests need it)."""
    await asyncio.sleep(0.5)
    await asyncio.to_thread(postgres.halt, "fast")
    try:
        await asyncio.sleep(0.5)
    finally:
        await asyncio.shield(asyncio.to_thread(postgres.resume))
    await asyncio.sleep(0.5)
    done.set()


async def sign_up_load(
    nodes: list[Node], prefix: str, *, count: int = 1000, until: asyncio.Event | None = None, concurrency: int = 6
) -> dict[str, int | str]:
    """Sign up users across the nodes (user n goes to node n % len(nodes)) until `count` are done or `until`
    is set; returns each username's HTTP status, or the transport error when its node was unreachable."""
    outcomes: dict[str, int | str] = {}
    numbers = iter(range(count))

    async def worker() -> None:
        for number in numbers:
            if until is not None and until.is_set():
                return
            username = f"{prefix}{number}"
            node = nodes[number % len(nodes)]
            try:
                async with browser() as client:  # a new visitor each time
                    response = await sign_up(client, node, node, username)
            except httpx.TransportError as exc:
                outcomes[username] = type(exc).__name__
                continue
            outcomes[username] = response.status_code
            assert response.status_code in (200, 503), f"{username}: {response.status_code} {response.text}"
            if response.status_code == 503:
                assert response.json()["error"] == "storage_unavailable"

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return outcomes


def acknowledged(outcomes: dict[str, int | str]) -> set[str]:
    return {username for username, status in outcomes.items() if status == 200}


def stored_accounts(group: Cluster) -> set[str]:
    """Accounts with their passkey."""
    return {
        row[0] for row in group.rows("SELECT DISTINCT u.username FROM users u JOIN credentials c ON c.user_id = u.id")
    }


def assert_no_half_written_accounts(group: Cluster) -> None:
    orphans = group.rows(
        "SELECT count(*) FROM users u WHERE NOT EXISTS (SELECT 1 FROM credentials c WHERE c.user_id = u.id)"
    )
    assert orphans == [(0,)]


async def test_redis_away_fails_fast_and_service_resumes(
    cluster: Callable[[int], Cluster], redis_server: RedisServer
) -> None:
    group = cluster(2)
    first, second = group.nodes
    authenticator = SoftwareAuthenticator()
    async with browser() as client:
        assert (await sign_up(client, first, second, "fay", authenticator)).status_code == 200
        redis_server.halt()
        try:
            # A begin needs no storage (its challenge carries the ceremony's state); complete counts its attempts.
            begin = await client.post(f"{second.url}/auth/passkey/login/begin")
            assert begin.status_code == 200
            answer = authenticator.get(begin.json(), origin=ORIGIN)
            refused = await client.post(f"{first.url}/auth/passkey/login/complete", json=answer)
            assert refused.status_code == 503
            assert refused.json()["error"] == "storage_unavailable"
            # Sessions are read from the database while the cache is away.
            assert (await client.get(f"{first.url}/auth/session")).status_code == 200
        finally:
            redis_server.resume()
        await client.post(f"{first.url}/auth/logout")
        # No restart: the nodes reconnect by themselves, and the account made before the outage is intact.
        signed_in = await until_ok(lambda: sign_in(client, second, authenticator))
        assert signed_in.status_code == 200, signed_in.text
        assert signed_in.json()["user"]["username"] == "fay"
    assert stored_accounts(group) == {"fay"}


async def test_postgresql_restarted_under_load_loses_nothing_acknowledged(
    cluster: Callable[[int], Cluster], postgres: PostgresServer
) -> None:
    group = cluster(2)

    done = asyncio.Event()

    outcomes, _ = await asyncio.gather(sign_up_load(group.nodes, "pg", until=done), restart_midway(postgres, done))
    statuses = list(outcomes.values())
    assert 200 in statuses and 503 in statuses  # the restart really hit requests in flight
    assert acknowledged(outcomes) <= stored_accounts(group)
    assert_no_half_written_accounts(group)
    # And the cluster serves normally afterwards.
    after = await sign_up_load(group.nodes, "after", count=4)
    assert set(after.values()) == {200}


async def test_sign_ins_across_a_postgresql_restart_are_answered_or_refused_as_unavailable(
    cluster: Callable[[int], Cluster], postgres: PostgresServer
) -> None:
    """The sign-in's statements run on asyncpg itself (store.asyncpg_direct): a connection lost with the restart
    is a 503 storage_unavailable and is discarded, and the nodes sign people in again once it is back."""
    group = cluster(2)
    people = [SoftwareAuthenticator() for _ in range(4)]
    async with browser() as client:
        for number, authenticator in enumerate(people):
            assert (
                await sign_up(client, group.nodes[0], group.nodes[1], f"si{number}", authenticator)
            ).status_code == 200
            await client.post(f"{group.nodes[0].url}/auth/logout")
    done = asyncio.Event()
    statuses: list[int] = []

    async def signing_in(number: int) -> None:
        node, authenticator = group.nodes[number % 2], people[number]
        async with browser() as client:
            while not done.is_set():
                response = await sign_in(client, node, authenticator)
                assert response.status_code in (200, 503), response.text
                if response.status_code == 503:
                    assert response.json()["error"] == "storage_unavailable"
                statuses.append(response.status_code)
                await client.post(f"{node.url}/auth/logout")

    await asyncio.gather(*(signing_in(number) for number in range(len(people))), restart_midway(postgres, done))
    assert 200 in statuses and 503 in statuses
    async with browser() as client:  # every node signs people in again
        for number, node in enumerate(group.nodes):
            signed_in = await until_ok(lambda node=node, number=number: sign_in(client, node, people[number]))
            assert signed_in.status_code == 200, signed_in.text


async def test_a_killed_node_does_not_stop_the_others(cluster: Callable[[int], Cluster]) -> None:
    group = cluster(2)
    doomed, survivor = group.nodes

    done = asyncio.Event()

    async def kill_midway() -> None:
        await asyncio.sleep(0.4)
        await asyncio.to_thread(doomed.kill)
        await asyncio.sleep(0.5)
        done.set()

    outcomes, _ = await asyncio.gather(sign_up_load(group.nodes, "kill", until=done), kill_midway())
    to_doomed = {name: status for name, status in outcomes.items() if int(name[4:]) % 2 == 0}
    to_survivor = {name: status for name, status in outcomes.items() if int(name[4:]) % 2 == 1}
    assert "ConnectError" in to_doomed.values()  # the node really died under load
    assert set(to_survivor.values()) == {200}
    assert acknowledged(outcomes) <= stored_accounts(group)
    assert_no_half_written_accounts(group)
    after = await sign_up_load([survivor], "later", count=4)
    assert set(after.values()) == {200}
