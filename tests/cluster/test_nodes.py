"""Many stateless nodes on one PostgreSQL and one Redis behave as one server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from passgate.testing import SoftwareAuthenticator
from tests.cluster.conftest import ORIGIN, Cluster, browser, sign_up


async def test_a_ceremony_begun_on_one_node_completes_on_another(cluster: Callable[[int], Cluster]) -> None:
    group = cluster(2)
    first, second = group.nodes
    authenticator = SoftwareAuthenticator()
    async with browser() as client:
        response = await sign_up(client, first, second, "ada", authenticator)
        assert response.status_code == 200, response.text
        # The session issued by the second node is valid on the first.
        assert (await client.get(f"{first.url}/auth/session")).json()["user"]["username"] == "ada"
        begin = await client.post(f"{second.url}/auth/passkey/login/begin")
        assertion = authenticator.get(begin.json(), origin=ORIGIN)
        complete = await client.post(f"{first.url}/auth/passkey/login/complete", json=assertion)
        assert complete.status_code == 200, complete.text
        assert (await client.get(f"{second.url}/auth/session")).status_code == 200
        # Signing out on one node ends the session everywhere.
        assert (await client.post(f"{first.url}/auth/logout")).status_code == 200
        assert (await client.get(f"{second.url}/auth/session")).status_code == 401


async def test_a_challenge_taken_on_one_node_cannot_be_replayed_on_another(cluster: Callable[[int], Cluster]) -> None:
    group = cluster(2)
    first, second = group.nodes
    authenticator = SoftwareAuthenticator()
    async with browser() as client:
        assert (await sign_up(client, first, first, "bea", authenticator)).status_code == 200
        await client.post(f"{first.url}/auth/logout")
        for _ in range(5):
            begin = await client.post(f"{first.url}/auth/passkey/login/begin")
            assertion = authenticator.get(begin.json(), origin=ORIGIN)
            results = await asyncio.gather(
                *(
                    client.post(f"{node.url}/auth/passkey/login/complete", json=assertion)
                    for node in (first, second, first, second)
                )
            )
            statuses = sorted(r.status_code for r in results)
            assert statuses == [200, 400, 400, 400], [r.text for r in results]
            assert {r.json()["error"] for r in results if r.status_code == 400} == {"challenge_not_found"}


async def test_simultaneous_sign_ups_for_one_username_create_one_account(cluster: Callable[[int], Cluster]) -> None:
    group = cluster(2)
    clients = [browser() for _ in range(6)]
    try:
        results = await asyncio.gather(
            *(sign_up(client, group.nodes[i % 2], group.nodes[(i + 1) % 2], "cleo") for i, client in enumerate(clients))
        )
    finally:
        await asyncio.gather(*(client.aclose() for client in clients))
    assert sorted(r.status_code for r in results) == [200, 409, 409, 409, 409, 409]
    assert group.rows("SELECT count(*) FROM users") == [(1,)]
    assert group.rows("SELECT count(*) FROM credentials") == [(1,)]


async def test_simultaneous_sign_ins_keep_the_counter_consistent(cluster: Callable[[int], Cluster]) -> None:
    group = cluster(2)
    authenticator = SoftwareAuthenticator(sign_count=0)
    async with browser() as owner:
        assert (await sign_up(owner, group.nodes[0], group.nodes[1], "dora", authenticator)).status_code == 200
    clients = [browser() for _ in range(8)]
    try:
        assertions = []
        for index, client in enumerate(clients):
            begin = await client.post(f"{group.nodes[index % 2].url}/auth/passkey/login/begin")
            assertions.append(authenticator.get(begin.json(), origin=ORIGIN))  # counts 1..8
        results: list[httpx.Response] = await asyncio.gather(
            *(
                client.post(f"{group.nodes[(index + 1) % 2].url}/auth/passkey/login/complete", json=assertion)
                for index, (client, assertion) in enumerate(zip(clients, assertions, strict=True))
            )
        )
    finally:
        await asyncio.gather(*(client.aclose() for client in clients))
    accepted = [index + 1 for index, r in enumerate(results) if r.status_code == 200]
    refused = {r.json()["error"] for r in results if r.status_code != 200}
    assert accepted, [r.text for r in results]
    assert refused <= {"sign_count_regression"}
    # The highest count always wins; the stored counter is it, whatever order the writes landed in.
    assert 8 in accepted
    assert group.rows("SELECT sign_count FROM credentials") == [(8,)]
    refusals = group.rows("SELECT count(*) FROM events WHERE reason = 'sign_count_regression'")
    assert refusals == [(8 - len(accepted),)]


def worker_processes(node_pid: int, expected: int) -> list[str]:
    """The server's child processes, once `expected` of them run (bounded wait: workers start after the socket)."""
    children: list[str] = []
    for _ in range(100):
        children = [
            pid
            for pid in Path(f"/proc/{node_pid}/task/{node_pid}/children").read_text().split()
            if "resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")
        ]
        if len(children) >= expected:
            break
        time.sleep(0.1)
    return children


async def test_one_node_with_several_workers(cluster: Callable[..., Cluster]) -> None:
    group = cluster(1, workers=2)
    [node] = group.nodes
    assert node.process is not None
    assert len(worker_processes(node.process.pid, 2)) == 2
    authenticators = [SoftwareAuthenticator() for _ in range(6)]
    clients = [browser() for _ in authenticators]
    try:
        results = await asyncio.gather(
            *(
                sign_up(client, node, node, f"worker{index}", authenticator)
                for index, (client, authenticator) in enumerate(zip(clients, authenticators, strict=True))
            )
        )
        assert {r.status_code for r in results} == {200}
        # Sessions and challenges are shared, whichever worker answers.
        for client in clients:
            assert (await client.get(f"{node.url}/auth/session")).status_code == 200
    finally:
        await asyncio.gather(*(client.aclose() for client in clients))
    assert group.rows("SELECT count(*) FROM users") == [(6,)]
