"""The conformance transport binding itself: off by default, refused for a production-looking site, and both
ceremonies through its four endpoints (in process, and over a real socket)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from passgate.config import ConfigError, load_settings
from passgate.core.encoding import b64url_decode
from passgate.testing import SoftwareAuthenticator
from tests.conformance.conftest import Tool, ok
from tests.services import PassgateProcess, free_port, passgate_command
from tests.web.conftest import Server


async def test_the_endpoints_are_not_served_by_default(server: Server) -> None:
    async with server.client() as http:
        response = await http.post("/attestation/options", json={"username": "a", "displayName": "a"})
    assert response.status_code == 404


def test_a_production_looking_site_refuses_the_profile_unless_forced() -> None:
    site = {"rp_id": "example.com", "origins": ["https://login.example.com"], "conformance": True}
    with pytest.raises(ConfigError, match=r"conformance = true .* https://login\.example\.com looks like a production"):
        load_settings(site)
    assert load_settings({**site, "conformance_force": True}).conformance is True
    assert load_settings({"conformance": "true"}).conformance is True  # as an environment variable says it
    with pytest.raises(ConfigError, match="conformance must be true or false"):
        load_settings({"conformance": "maybe"})
    with pytest.raises(ConfigError, match="conformance_force needs conformance"):
        load_settings({"conformance_force": True})


async def test_registration_then_sign_in_through_the_four_endpoints(tool: Tool, conformance_server: Server) -> None:
    authenticator = SoftwareAuthenticator()
    registered = await tool.register(authenticator, username="alice", attestation="direct")
    assert ok(registered), registered.text
    assert conformance_server.rows("SELECT username FROM users") == [("alice",)]
    options = await tool.assertion_options("alice", userVerification="required")
    assert options["userVerification"] == "required"
    [allowed] = options["allowCredentials"]
    assert b64url_decode(allowed["id"]) == authenticator.credentials[0].credential_id
    signed_in = await tool.sign_in(authenticator, "alice")
    assert ok(signed_in), signed_in.text
    assert conformance_server.rows("SELECT sign_count FROM credentials") == [(1,)]


async def test_a_refusal_is_a_failed_envelope_with_the_error_code(tool: Tool) -> None:
    response = await tool.post("/attestation/options", {"displayName": "no username"})
    assert response.status_code == 400
    assert response.json() == {"status": "failed", "errorMessage": "username is required.", "error": "invalid_request"}


async def test_the_request_user_verification_is_honoured_at_the_result(tool: Tool) -> None:
    authenticator = SoftwareAuthenticator(user_verified=False)
    selection = {"userVerification": "required"}
    refused = await tool.register(authenticator, username="bob", authenticatorSelection=selection)
    assert not ok(refused) and refused.json()["error"] == "user_not_verified"
    assert tool.last_options["authenticatorSelection"]["userVerification"] == "required"
    accepted = await tool.register(
        authenticator, username="bob", authenticatorSelection={"userVerification": "preferred"}
    )
    assert ok(accepted), accepted.text


def test_both_ceremonies_over_a_real_socket(tmp_path: Path) -> None:
    port = free_port()
    origin = f"http://localhost:{port}"
    command = passgate_command(port, database_url=f"sqlite:///{tmp_path}/passgate.db", origin=origin)
    process = PassgateProcess(
        port=port, command=command, log=tmp_path / "server.log", environment={"PASSGATE_CONFORMANCE": "true"}
    )
    process.start()
    try:
        authenticator = SoftwareAuthenticator()
        with httpx.Client(base_url=f"http://localhost:{port}") as http:
            options = http.post("/attestation/options", json={"username": "carol", "displayName": "Carol"}).json()
            assert options["status"] == "ok"
            credential = authenticator.create(options, origin=origin)
            del credential["rawId"]
            result = http.post("/attestation/result", json=credential)
            assert result.json() == {"status": "ok", "errorMessage": ""}, result.text
            options = http.post("/assertion/options", json={"username": "carol"}).json()
            result = http.post("/assertion/result", json=authenticator.get(options, origin=origin))
            assert result.json() == {"status": "ok", "errorMessage": ""}, result.text
    finally:
        process.stop()


async def test_rs1_and_es256k_keys_only_where_the_policy_lists_them(tool: Tool, tool_with_models: Tool) -> None:
    default = await tool.attestation_options()
    assert not {-65535, -47} & {p["alg"] for p in default["pubKeyCredParams"]}
    listed = await tool_with_models.attestation_options()
    assert {-65535, -47} <= {p["alg"] for p in listed["pubKeyCredParams"]}
    for algorithm in (-65535, -47):
        authenticator = SoftwareAuthenticator(algorithm=algorithm)
        registered = await tool_with_models.register(authenticator, username=f"alg{-algorithm}")
        assert ok(registered), registered.text
        assert ok(await tool_with_models.sign_in(authenticator, f"alg{-algorithm}"))


async def test_the_profile_reads_strict_base64url_only(tool: Tool) -> None:
    authenticator = SoftwareAuthenticator()
    options = await tool.attestation_options("padded")
    credential = authenticator.create(options, origin=tool.origin)
    credential["response"]["clientDataJSON"] += "=" * (-len(credential["response"]["clientDataJSON"]) % 4 or 4)
    refused = await tool.post("/attestation/result", credential)
    assert refused.json() == {
        "status": "failed",
        "errorMessage": "clientDataJSON is not base64url.",
        "error": "malformed_response",
    }


def test_the_documented_configuration_loads(tmp_path: Path) -> None:
    docs = (Path(__file__).parents[2] / "docs" / "conformance.md").read_text()
    example = docs.split("```toml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "conformance-statements").mkdir()
    config = tmp_path / "passgate.toml"
    config.write_text(example.replace('"conformance-statements"', f'"{tmp_path / "conformance-statements"}"'))
    settings = load_settings(config_file=config)
    assert settings.conformance and settings.rate_limit_per_ip == 0
    assert {-65535, -47} <= set(settings.effective_policy().allowed_algorithms)


async def test_a_taken_username_is_refused_to_another_client(tool: Tool, conformance_server: Server) -> None:
    assert ok(await tool.register(SoftwareAuthenticator(), username="dave"))
    async with conformance_server.client() as other:
        response = await other.post("/attestation/options", json={"username": "Dave", "displayName": "Dave"})
    assert response.status_code == 409 and response.json()["error"] == "username_taken"
    again = await tool.attestation_options("Dave")  # the signed-in owner, whatever the case: another passkey
    assert len(again["excludeCredentials"]) == 1
