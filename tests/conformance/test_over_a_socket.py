"""A selection of the cases against `passgate serve` itself, over a real socket: the profile as the tools meet it,
the statements and the policy read from a configuration file."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.conformance.cases import check
from tests.conformance.conftest import ALL_ALGORITHMS, Models, Tool
from tests.conformance.test_get_assertion import CODES as ASSERTION_CODES
from tests.conformance.test_get_assertion import GROUPS as ASSERTION_GROUPS
from tests.conformance.test_make_credential import CODES as ATTESTATION_CODES
from tests.conformance.test_make_credential import GROUPS as ATTESTATION_GROUPS
from tests.services import PassgateProcess, free_port, passgate_command

SELECTION = [
    ("Server-ServerPublicKeyCredentialCreationOptions-Req-1", "P-1"),
    ("Server-ServerAuthenticatorAttestationResponse-Resp-1", "P-1"),
    ("Server-ServerAuthenticatorAttestationResponse-Resp-1", "F-3"),
    ("Server-ServerAuthenticatorAttestationResponse-Resp-2", "F-10"),
    ("Server-ServerAuthenticatorAttestationResponse-Resp-4", "P-8"),
    ("Server-ServerAuthenticatorAttestationResponse-Resp-5", "P-2"),
    ("Server-ServerAuthenticatorAttestationResponse-Resp-5", "F-10"),
    ("Server-ServerAuthenticatorAttestationResponse-Resp-9", "P-1"),
    ("Server-ServerAuthenticatorAttestationResponse-Resp-A", "P-1"),
    ("Server-ServerAuthenticatorAttestationResponse-Resp-B", "P-1"),
    ("Server-ServerPublicKeyCredentialGetOptionsResponse-Req-1", "P-1"),
    ("Server-ServerAuthenticatorAssertionResponse-Resp-1", "P-1"),
    ("Server-ServerAuthenticatorAssertionResponse-Resp-3", "P-4"),
    ("Server-ServerAuthenticatorAssertionResponse-Resp-3", "F-5"),
]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, models: Models) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("conformance-serve")
    config = directory / "passgate.toml"
    settings = {
        "conformance": True,
        "mds_statements_dir": str(models.statements),
        "rate_limit_per_ip": 0,
        "rate_limit_per_account": 0,
    }
    lines = [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
    config.write_text("\n".join([*lines, "[policy]", f"allowed_algorithms = {json.dumps(ALL_ALGORITHMS)}", ""]))
    port = free_port()
    command = passgate_command(
        port, database_url=f"sqlite:///{directory}/passgate.db", origin=f"http://localhost:{port}"
    )
    process = PassgateProcess(
        port=port, command=command, log=directory / "server.log", environment={"PASSGATE_CONFIG": str(config)}
    )
    process.start()
    try:
        yield f"http://localhost:{port}"
    finally:
        process.stop()


@pytest.fixture
async def socket_tool(served: str) -> AsyncIterator[Tool]:
    async with httpx.AsyncClient(base_url=served) as http:
        yield Tool(http=http, origin=served)


@pytest.mark.parametrize(("group", "case"), SELECTION, ids=[f"{group} {case}" for group, case in SELECTION])
async def test_cases_over_a_socket(socket_tool: Tool, models: Models, group: str, case: str) -> None:
    groups = {**ATTESTATION_GROUPS, **ASSERTION_GROUPS}
    codes = {**ATTESTATION_CODES, **ASSERTION_CODES}
    await check(groups[group][case], codes.get(group, {}).get(case), socket_tool, models)
