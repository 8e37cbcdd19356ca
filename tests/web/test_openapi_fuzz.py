"""Schemathesis against /openapi.json: whatever the requests, no 5xx and every error in the JSON error shape."""

from __future__ import annotations

import asyncio
import atexit
import shutil
import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings

from passgate.config import load_settings
from passgate.store.migrate import upgrade
from passgate.web import create_app
from tests.web.conftest import ORIGIN


def build_app() -> object:
    # Built at import, as schemathesis needs the schema at collection: a fresh directory, removed at exit.
    directory = Path(tempfile.mkdtemp(prefix="passgate-openapi-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    url = f"sqlite:///{directory}/fuzz.db"
    upgrade(url)
    return create_app(
        load_settings(
            {
                "database_url": url,
                "origins": [ORIGIN],
                "rate_limit_per_ip": 0,
                "rate_limit_per_account": 0,
                "outbox_dir": str(directory / "outbox"),
            }
        )
    )


APP = build_app()
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.parametrize()
@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case: schemathesis.Case) -> None:
    response = case.call(headers={"Origin": ORIGIN})
    assert response.status_code < 500, (case.method, case.path, response.status_code, response.text[:500])
    if response.status_code >= 400 and response.headers.get("content-type", [""])[0].startswith("application/json"):
        body = response.json()
        assert set(body) == {"error", "message"}, body


def test_the_schema_lists_the_api() -> None:
    paths = set(asyncio.run(_paths()))
    assert {"/auth/passkey/login/begin", "/auth/account", "/auth/recovery/codes/sign-in"} <= paths


async def _paths() -> list[str]:
    import httpx

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=APP), base_url=ORIGIN) as client:  # type: ignore[arg-type]
        return list((await client.get("/openapi.json")).json()["paths"])
