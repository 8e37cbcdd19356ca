"""A conformance-profile server and a client that calls it as the FIDO conformance tools do."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from passgate.testing import SoftwareAuthenticator
from tests.web.conftest import ORIGIN, Server, make_server, server

__all__ = ["make_server", "server"]  # the web tests' fixtures, for these tests too

Mutation = Callable[[dict[str, Any]], Any]
_names = itertools.count(1)


def tool_credential(credential: dict[str, Any]) -> dict[str, Any]:
    """A browser's credential JSON as the tools send it: no rawId, `getClientExtensionResults`."""
    shaped = {key: value for key, value in credential.items() if key not in ("rawId", "clientExtensionResults")}
    shaped["getClientExtensionResults"] = credential.get("clientExtensionResults", {})
    shaped["response"] = {
        key: value
        for key, value in credential["response"].items()
        if key in ("clientDataJSON", "attestationObject", "authenticatorData", "signature", "userHandle")
    }
    return shaped


@dataclass
class Tool:
    """One run of the conformance tool: its own cookie jar, requests shaped as its transport binding says."""

    http: httpx.AsyncClient
    origin: str = ORIGIN
    last_options: dict[str, Any] = field(default_factory=dict)

    async def post(self, path: str, body: Any) -> httpx.Response:
        return await self.http.post(path, json=body)

    async def attestation_options(self, username: str | None = None, **body: Any) -> dict[str, Any]:
        name = username or f"conformance-{next(_names)}"
        response = await self.post("/attestation/options", {"username": name, "displayName": name, **body})
        assert response.status_code == 200, response.text
        self.last_options = response.json()
        return self.last_options

    async def register(
        self,
        authenticator: SoftwareAuthenticator,
        *,
        username: str | None = None,
        mutate: Mutation | None = None,
        **body: Any,
    ) -> httpx.Response:
        """Options, the authenticator's answer (changed by `mutate`, which may return a replacement), result."""
        options = await self.attestation_options(username, **body)
        credential = tool_credential(authenticator.create(options, origin=self.origin))
        if mutate is not None:
            replaced = mutate(credential)
            credential = credential if replaced is None else replaced
        return await self.post("/attestation/result", credential)

    async def assertion_options(self, username: str, **body: Any) -> dict[str, Any]:
        response = await self.post("/assertion/options", {"username": username, **body})
        assert response.status_code == 200, response.text
        self.last_options = response.json()
        return self.last_options

    async def sign_in(
        self,
        authenticator: SoftwareAuthenticator,
        username: str,
        *,
        mutate: Mutation | None = None,
        **body: Any,
    ) -> httpx.Response:
        options = await self.assertion_options(username, **body)
        credential = tool_credential(authenticator.get(options, origin=self.origin))
        if mutate is not None:
            replaced = mutate(credential)
            credential = credential if replaced is None else replaced
        return await self.post("/assertion/result", credential)


def ok(response: httpx.Response) -> bool:
    """The envelope says ok (and a failure is a 4xx or 5xx with a message, as the binding demands)."""
    body = response.json()
    if body["status"] == "ok":
        assert response.status_code == 200 and body["errorMessage"] == "", response.text
        return True
    assert body["status"] == "failed" and body["errorMessage"], response.text
    assert 400 <= response.status_code < 600, response.text
    return False


@pytest.fixture
def conformance_server(make_server: Callable[..., Server]) -> Server:
    return make_server(conformance=True, rate_limit_per_ip=0, rate_limit_per_account=0)


@pytest.fixture
async def tool(conformance_server: Server) -> AsyncIterator[Tool]:
    async with conformance_server.client() as http:
        http.headers.pop("Origin")
        yield Tool(http=http)
