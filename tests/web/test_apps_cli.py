"""`passgate apps ...` against a server's database: the key it prints once works on the API, and stops working
once revoked."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import httpx

from tests.web.conftest import Server


def passgate(server: Server, *arguments: str) -> subprocess.CompletedProcess[str]:
    environment = {name: value for name, value in os.environ.items() if not name.startswith("PASSGATE_")}
    command = [sys.executable, "-m", "passgate", "apps", *arguments, "--database-url", f"sqlite:///{server.database}"]
    return subprocess.run(command, capture_output=True, text=True, env=environment, timeout=120, check=False)


async def registrations(server: Server, secret: str) -> int:
    transport = httpx.ASGITransport(app=server.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost:8000") as api:
        response = await api.post(
            "/api/v1/registrations",
            json={"userId": "u1", "username": "ada"},
            headers={"Authorization": f"Bearer {secret}"},
        )
    return response.status_code


def printed(output: str, name: str) -> str:
    found = re.search(rf"^{name}: (\S+)$", output, re.MULTILINE)
    assert found, output
    return found.group(1)


async def test_apps_are_added_keys_rotated_and_revoked_from_the_command_line(server: Server) -> None:
    added = passgate(server, "add", "Shop", "--origin", "http://shop.localhost:3000")
    assert added.returncode == 0, added.stderr
    app_id, first_key, first = (printed(added.stdout, n) for n in ("app_id", "key_id", "api_key"))
    assert first.startswith("pg_sk_") and "not shown again" in added.stderr
    assert first.encode() not in server.database.read_bytes()  # kept only as its hash

    second = passgate(server, "keys", "add", app_id)
    assert second.returncode == 0, second.stderr
    rotated = printed(second.stdout, "api_key")
    assert await registrations(server, first) == 200 and await registrations(server, rotated) == 200

    revoked = passgate(server, "keys", "revoke", app_id, first_key)
    assert revoked.returncode == 0, revoked.stderr
    assert await registrations(server, first) == 401
    assert await registrations(server, rotated) == 200

    listing = passgate(server, "list")
    assert app_id in listing.stdout and "revoked" in listing.stdout and first not in listing.stdout
    assert rotated not in listing.stdout

    assert passgate(server, "remove", app_id).returncode == 0
    assert await registrations(server, rotated) == 401
    assert passgate(server, "remove", app_id).returncode == 1


def test_an_origin_that_does_not_fit_the_rp_id_is_refused(server: Server) -> None:
    refused = passgate(server, "add", "Shop", "--origin", "https://shop.example")
    assert refused.returncode == 2 and "neither" in refused.stderr
    assert passgate(server, "list").stdout == ""
