"""Every refusal of the JSON API: the right code, and nothing changed (no account, count or session)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from passgate.core.encoding import b64url_decode, b64url_encode
from passgate.service import sealing
from passgate.testing import SoftwareAuthenticator
from tests.web.conftest import ORIGIN, Server, login_options, sign_up


async def refused(server: Server, response: httpx.Response, status: int, code: str, before: dict[str, Any]) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == code and body["message"]
    assert "passgate_session" not in response.headers.get("set-cookie", "")
    assert server.snapshot() == before


async def registration_response(
    client: httpx.AsyncClient, authenticator: SoftwareAuthenticator, username: str = "zed", **kwargs: Any
) -> dict[str, Any]:
    begin = await client.post("/auth/passkey/register/begin", json={"username": username})
    assert begin.status_code == 200
    return authenticator.create(begin.json(), origin=kwargs.pop("origin", ORIGIN), **kwargs)


async def signed_up(
    server: Server, client: httpx.AsyncClient, **options: Any
) -> tuple[SoftwareAuthenticator, dict[str, Any]]:
    authenticator = SoftwareAuthenticator(**options)
    result = await sign_up(client, authenticator, "yara")
    await client.post("/auth/logout")
    return authenticator, result


# Registration


async def test_replayed_registration(server: Server, browser: httpx.AsyncClient) -> None:
    response = await registration_response(browser, SoftwareAuthenticator())
    assert (await browser.post("/auth/passkey/register/complete", json=response)).status_code == 200
    await browser.post("/auth/logout")
    before = server.snapshot()
    again = await browser.post("/auth/passkey/register/complete", json=response)
    await refused(server, again, 400, "challenge_not_found", before)


async def test_expired_registration_challenge(server: Server, browser: httpx.AsyncClient) -> None:
    response = await registration_response(browser, SoftwareAuthenticator())
    server.clock.advance(minutes=5, seconds=1)
    before = server.snapshot()
    await refused(
        server, await browser.post("/auth/passkey/register/complete", json=response), 400, "challenge_expired", before
    )


async def test_challenge_from_another_browser(server: Server, browser: httpx.AsyncClient) -> None:
    response = await registration_response(browser, SoftwareAuthenticator())
    before = server.snapshot()
    async with server.client() as attacker:
        await refused(
            server,
            await attacker.post("/auth/passkey/register/complete", json=response),
            400,
            "challenge_mismatch",
            before,
        )


async def test_a_challenge_is_single_use_even_when_refused(server: Server, browser: httpx.AsyncClient) -> None:
    response = await registration_response(browser, SoftwareAuthenticator())
    async with server.client() as attacker:
        await attacker.post("/auth/passkey/register/complete", json=response)
    before = server.snapshot()
    await refused(
        server, await browser.post("/auth/passkey/register/complete", json=response), 400, "challenge_not_found", before
    )


async def test_challenges_spent_in_the_database_are_single_use_too(make_server: Callable[..., Server]) -> None:
    """With several processes on one SQLite file (workers > 1) a challenge is spent in the database, not in the
    process's memory: a replayed sign-up, a response tried again after its refusal and a replayed sign-in are all
    refused, and the used challenges are kept there, by digest, till they would have expired."""
    server = make_server(workers=2, secret_key="k" * 43)
    async with server.client() as browser:
        response = await registration_response(browser, SoftwareAuthenticator())
        assert (await browser.post("/auth/passkey/register/complete", json=response)).status_code == 200
        await browser.post("/auth/logout")
        before = server.snapshot()
        again = await browser.post("/auth/passkey/register/complete", json=response)
        await refused(server, again, 400, "challenge_not_found", before)

        refused_once = await registration_response(browser, SoftwareAuthenticator(), username="yan")
        async with server.client() as attacker:
            mismatch = await attacker.post("/auth/passkey/register/complete", json=refused_once)
            assert mismatch.json()["error"] == "challenge_mismatch"
        again = await browser.post("/auth/passkey/register/complete", json=refused_once)
        await refused(server, again, 400, "challenge_not_found", before)

        authenticator, _ = await signed_up(server, browser)
        signing_in = await assertion(browser, authenticator)
        assert (await browser.post("/auth/passkey/login/complete", json=signing_in)).status_code == 200
        await browser.post("/auth/logout")
        before = server.snapshot()
        again = await browser.post("/auth/passkey/login/complete", json=signing_in)
        await refused(server, again, 400, "challenge_not_found", before)

        # A sign-in's challenge is marked with the sign-in; one refused, even after it verified, is spent too.
        signing_in = await assertion(browser, authenticator)
        async with server.client() as attacker:
            mismatch = await attacker.post("/auth/passkey/login/complete", json=signing_in)
            assert mismatch.json()["error"] == "challenge_mismatch"
        before = server.snapshot()
        again = await browser.post("/auth/passkey/login/complete", json=signing_in)
        await refused(server, again, 400, "challenge_not_found", before)

        # Adding a passkey, signed in, spends its challenge on its own.
        signing_in = await assertion(browser, authenticator)
        assert (await browser.post("/auth/passkey/login/complete", json=signing_in)).status_code == 200
        begin = await browser.post("/auth/passkey/register/begin", json={})
        adding = SoftwareAuthenticator().create(begin.json(), origin=ORIGIN)
        assert (await browser.post("/auth/passkey/register/complete", json=adding)).status_code == 200
        before = server.snapshot()
        again = await browser.post("/auth/passkey/register/complete", json=adding)
        await refused(server, again, 400, "challenge_not_found", before)
    # Sign-up, the refused one, yara's sign-up, three sign-ins and the added passkey: seven spent, none stored as a
    # pending challenge.
    assert server.rows("SELECT count(*) FROM used_challenges") == [(7,)]
    assert server.rows("SELECT count(*) FROM challenges") == [(0,)]


@pytest.mark.parametrize(
    ("override", "code"),
    [
        ({"origin": "http://evil.localhost:8000"}, "origin_mismatch"),
        ({"rp_id": "example.com"}, "rp_id_mismatch"),
        ({"cross_origin": True, "top_origin": "https://evil.example"}, "cross_origin_not_allowed"),
    ],
)
async def test_registration_for_another_site(
    server: Server, browser: httpx.AsyncClient, override: dict[str, Any], code: str
) -> None:
    response = await registration_response(browser, SoftwareAuthenticator(), **override)
    before = server.snapshot()
    await refused(server, await browser.post("/auth/passkey/register/complete", json=response), 400, code, before)


async def test_registration_without_user_presence(server: Server, browser: httpx.AsyncClient) -> None:
    response = await registration_response(browser, SoftwareAuthenticator(user_present=False))
    before = server.snapshot()
    await refused(
        server, await browser.post("/auth/passkey/register/complete", json=response), 400, "user_not_present", before
    )


async def test_registration_without_required_user_verification(make_server: Callable[..., Server]) -> None:
    server = make_server(user_verification="required")
    async with server.client() as browser:
        response = await registration_response(browser, SoftwareAuthenticator(user_verified=False))
        before = server.snapshot()
        await refused(
            server,
            await browser.post("/auth/passkey/register/complete", json=response),
            400,
            "user_not_verified",
            before,
        )


async def test_registration_with_a_tampered_self_attestation(server: Server, browser: httpx.AsyncClient) -> None:
    response = await registration_response(browser, SoftwareAuthenticator(attestation="packed"))
    # Change the signed client data after the fact: the attestation signature no longer matches.
    client_data = json.loads(b64url_decode(response["response"]["clientDataJSON"]))
    client_data["extra"] = "tampered"
    response["response"]["clientDataJSON"] = b64url_encode(json.dumps(client_data).encode())
    before = server.snapshot()
    await refused(
        server, await browser.post("/auth/passkey/register/complete", json=response), 400, "attestation_invalid", before
    )


async def test_username_taken(server: Server, browser: httpx.AsyncClient) -> None:
    await sign_up(browser, SoftwareAuthenticator(), "Kim")
    async with server.client() as other:
        before = server.snapshot()
        response = await other.post("/auth/passkey/register/begin", json={"username": "kim"})
        await refused(server, response, 409, "username_taken", before)


async def test_concurrent_sign_ups_for_one_username_create_one_account(server: Server) -> None:
    async with server.client() as first, server.client() as second:
        one = await registration_response(first, SoftwareAuthenticator(), username="lee")
        two = await registration_response(second, SoftwareAuthenticator(), username="lee")
        assert (await first.post("/auth/passkey/register/complete", json=one)).status_code == 200
        before = server.snapshot()
        await refused(
            server, await second.post("/auth/passkey/register/complete", json=two), 409, "username_taken", before
        )
    assert server.rows("SELECT count(*) FROM users") == [(1,)]
    assert server.rows("SELECT count(*) FROM credentials") == [(1,)]


async def test_adding_a_passkey_to_another_users_account(server: Server, browser: httpx.AsyncClient) -> None:
    await sign_up(browser, SoftwareAuthenticator(), "mia")
    before = server.snapshot()
    response = await browser.post("/auth/passkey/register/begin", json={"userId": "someone-else"})
    await refused(server, response, 403, "forbidden", before)


async def test_creating_an_account_while_signed_in(server: Server, browser: httpx.AsyncClient) -> None:
    await sign_up(browser, SoftwareAuthenticator(), "nia")
    before = server.snapshot()
    response = await browser.post("/auth/passkey/register/begin", json={"username": "second-account"})
    await refused(server, response, 409, "already_signed_in", before)


async def test_a_credential_id_that_differs_from_the_attested_one(server: Server, browser: httpx.AsyncClient) -> None:
    authenticator = SoftwareAuthenticator()
    result = await sign_up(browser, authenticator, "ned")
    begin = await browser.post("/auth/passkey/register/begin", json={"userId": result["user"]["id"]})
    response = authenticator.create(begin.json(), origin=ORIGIN)
    response["id"] = response["rawId"] = result["credentialId"]
    before = server.snapshot()
    await refused(
        server, await browser.post("/auth/passkey/register/complete", json=response), 400, "malformed_response", before
    )


async def test_registering_the_same_passkey_twice(server: Server, browser: httpx.AsyncClient) -> None:
    # With attestation "none" nothing signs the client data: the same attestation object can be sent again
    # with the client data of a new challenge. The credential id is then one the server already has.
    authenticator = SoftwareAuthenticator()
    first = await browser.post("/auth/passkey/register/begin", json={"username": "ora"})
    registration = authenticator.create(first.json(), origin=ORIGIN)
    assert (await browser.post("/auth/passkey/register/complete", json=registration)).status_code == 200
    begin = await browser.post("/auth/passkey/register/begin", json={})
    client_data = json.loads(b64url_decode(registration["response"]["clientDataJSON"]))
    client_data["challenge"] = begin.json()["challenge"]
    registration["response"]["clientDataJSON"] = b64url_encode(json.dumps(client_data).encode())
    before = server.snapshot()
    again = await browser.post("/auth/passkey/register/complete", json=registration)
    await refused(server, again, 409, "credential_exists", before)


# Sign-in


async def assertion(client: httpx.AsyncClient, authenticator: SoftwareAuthenticator, **kwargs: Any) -> dict[str, Any]:
    options = await login_options(client)
    return authenticator.get(options, origin=kwargs.pop("origin", ORIGIN), **kwargs)


async def test_replayed_assertion(server: Server, browser: httpx.AsyncClient) -> None:
    authenticator, _ = await signed_up(server, browser)
    response = await assertion(browser, authenticator)
    assert (await browser.post("/auth/passkey/login/complete", json=response)).status_code == 200
    await browser.post("/auth/logout")
    before = server.snapshot()
    await refused(
        server, await browser.post("/auth/passkey/login/complete", json=response), 400, "challenge_not_found", before
    )


@pytest.mark.parametrize("forgery", ["altered", "sealed under another secret"])
async def test_a_challenge_the_server_did_not_seal_is_unknown(
    server: Server, browser: httpx.AsyncClient, forgery: str
) -> None:
    """The challenge carries the ceremony's state sealed: changing one byte of it, or sealing a state of one's own
    choosing under another key, gives a challenge the server never issued."""
    authenticator, _ = await signed_up(server, browser)
    options = await login_options(browser)
    challenge = bytearray(b64url_decode(options["challenge"]))
    if forgery == "altered":
        challenge[-1] ^= 1
    else:
        state = b'["authentication",null,null]'
        plaintext = b"\0" * 16 + hashlib.sha256(b"any").digest() + (2**62).to_bytes(8, "big") + state
        challenge = bytearray(sealing.seal(b"k" * 32, purpose=sealing.CHALLENGES, bound_to=b"", plaintext=plaintext))
    response = authenticator.get({**options, "challenge": b64url_encode(bytes(challenge))}, origin=ORIGIN)
    before = server.snapshot()
    await refused(
        server, await browser.post("/auth/passkey/login/complete", json=response), 400, "challenge_not_found", before
    )


async def test_expired_sign_in_challenge(server: Server, browser: httpx.AsyncClient) -> None:
    authenticator, _ = await signed_up(server, browser)
    response = await assertion(browser, authenticator)
    server.clock.advance(minutes=6)
    before = server.snapshot()
    await refused(
        server, await browser.post("/auth/passkey/login/complete", json=response), 400, "challenge_expired", before
    )


async def test_sign_in_challenge_from_another_browser(server: Server, browser: httpx.AsyncClient) -> None:
    authenticator, _ = await signed_up(server, browser)
    response = await assertion(browser, authenticator)
    before = server.snapshot()
    async with server.client() as attacker:
        await refused(
            server,
            await attacker.post("/auth/passkey/login/complete", json=response),
            400,
            "challenge_mismatch",
            before,
        )


async def test_registration_challenge_used_for_sign_in(server: Server, browser: httpx.AsyncClient) -> None:
    authenticator, _ = await signed_up(server, browser)
    begin = await browser.post("/auth/passkey/register/begin", json={"username": "other"})
    options = {"rpId": "localhost", "challenge": begin.json()["challenge"], "allowCredentials": []}
    response = authenticator.get(options, origin=ORIGIN)
    before = server.snapshot()
    await refused(
        server, await browser.post("/auth/passkey/login/complete", json=response), 400, "challenge_mismatch", before
    )


def resigned(
    authenticator: SoftwareAuthenticator,
    response: dict[str, Any],
    *,
    client_data: dict[str, Any] | None = None,
    rp_id: str | None = None,
) -> dict[str, Any]:
    """The assertion with changed client data or rp id hash, genuinely signed again by the passkey's key."""
    body = response["response"]
    raw = b64url_decode(body["clientDataJSON"])
    if client_data:
        raw = json.dumps({**json.loads(raw), **client_data}, separators=(",", ":")).encode()
    auth_data = b64url_decode(body["authenticatorData"])
    if rp_id:
        auth_data = hashlib.sha256(rp_id.encode()).digest() + auth_data[32:]
    signature = authenticator.credentials[0].sign(auth_data + hashlib.sha256(raw).digest())
    body.update(
        clientDataJSON=b64url_encode(raw),
        authenticatorData=b64url_encode(auth_data),
        signature=b64url_encode(signature),
    )
    return response


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"client_data": {"origin": "http://localhost:9999"}}, "origin_mismatch"),
        ({"rp_id": "example.com"}, "rp_id_mismatch"),
        ({"client_data": {"type": "webauthn.create"}}, "type_mismatch"),
        ({"client_data": {"crossOrigin": True, "topOrigin": "https://evil.example"}}, "cross_origin_not_allowed"),
    ],
)
async def test_assertion_for_another_site_or_ceremony(
    server: Server, browser: httpx.AsyncClient, change: dict[str, Any], code: str
) -> None:
    authenticator, _ = await signed_up(server, browser)
    response = resigned(authenticator, await assertion(browser, authenticator), **change)
    before = server.snapshot()
    await refused(server, await browser.post("/auth/passkey/login/complete", json=response), 400, code, before)


async def test_assertion_without_user_presence(server: Server, browser: httpx.AsyncClient) -> None:
    authenticator, _ = await signed_up(server, browser)
    authenticator.user_present = False
    response = await assertion(browser, authenticator)
    before = server.snapshot()
    await refused(
        server, await browser.post("/auth/passkey/login/complete", json=response), 400, "user_not_present", before
    )


async def test_assertion_without_required_user_verification(make_server: Callable[..., Server]) -> None:
    server = make_server(user_verification="required")
    async with server.client() as browser:
        authenticator, _ = await signed_up(server, browser)
        authenticator.user_verified = False
        response = await assertion(browser, authenticator)
        before = server.snapshot()
        await refused(
            server, await browser.post("/auth/passkey/login/complete", json=response), 400, "user_not_verified", before
        )


async def test_tampered_signature(server: Server, browser: httpx.AsyncClient) -> None:
    authenticator, _ = await signed_up(server, browser)
    response = await assertion(browser, authenticator)
    signature = bytearray(b64url_decode(response["response"]["signature"]))
    signature[-1] ^= 0x01
    response["response"]["signature"] = b64url_encode(bytes(signature))
    before = server.snapshot()
    await refused(
        server, await browser.post("/auth/passkey/login/complete", json=response), 400, "bad_signature", before
    )


async def test_sign_count_regression_is_refused_and_recorded(server: Server, browser: httpx.AsyncClient) -> None:
    authenticator, _ = await signed_up(server, browser, sign_count=0)
    for _ in range(3):
        ok = await browser.post("/auth/passkey/login/complete", json=await assertion(browser, authenticator))
        assert ok.status_code == 200
    await browser.post("/auth/logout")
    assert server.rows("SELECT sign_count FROM credentials") == [(3,)]
    authenticator.sign_count = 1  # a clone that lags behind the original
    response = await assertion(browser, authenticator)
    before = server.snapshot()
    await refused(
        server, await browser.post("/auth/passkey/login/complete", json=response), 400, "sign_count_regression", before
    )
    last = server.rows("SELECT outcome, reason, detail FROM events ORDER BY id DESC LIMIT 1")[0]
    assert last[:2] == ("failure", "sign_count_regression")
    assert json.loads(last[2])["clone_warning"] is True


async def test_a_device_bound_passkey_cannot_turn_synced(server: Server, browser: httpx.AsyncClient) -> None:
    authenticator, _ = await signed_up(server, browser)
    authenticator.backup_eligible = authenticator.backed_up = True  # claims to be synced now
    response = await assertion(browser, authenticator)
    before = server.snapshot()
    await refused(
        server,
        await browser.post("/auth/passkey/login/complete", json=response),
        400,
        "backup_eligibility_changed",
        before,
    )
    last = server.rows("SELECT type, outcome, reason FROM events ORDER BY id DESC LIMIT 1")[0]
    assert last == ("sign_in", "failure", "backup_eligibility_changed")
    assert server.rows("SELECT backup_eligible, backed_up FROM credentials") == [(0, 0)]


async def test_unknown_credential(server: Server, browser: httpx.AsyncClient) -> None:
    await signed_up(server, browser)
    stranger = SoftwareAuthenticator()
    # A passkey made for this site whose registration never completed.
    stranger.create((await browser.post("/auth/passkey/register/begin", json={"username": "x"})).json(), origin=ORIGIN)
    response = await assertion(browser, stranger)
    before = server.snapshot()
    await refused(
        server, await browser.post("/auth/passkey/login/complete", json=response), 401, "unknown_credential", before
    )


async def test_user_handle_of_another_user(server: Server) -> None:
    async with server.client() as alice_browser, server.client() as bob_browser:
        alice = SoftwareAuthenticator()
        await sign_up(alice_browser, alice, "alice")
        bob = SoftwareAuthenticator()
        await sign_up(bob_browser, bob, "bob")
        await alice_browser.post("/auth/logout")
        response = await assertion(alice_browser, alice)
        response["response"]["userHandle"] = b64url_encode(bob.credentials[0].user_handle)
        before = server.snapshot()
        await refused(
            server,
            await alice_browser.post("/auth/passkey/login/complete", json=response),
            401,
            "user_handle_mismatch",
            before,
        )


async def test_username_first_refuses_another_users_passkey(server: Server) -> None:
    async with server.client() as browser:
        mallory = SoftwareAuthenticator()
        await sign_up(browser, mallory, "mallory")
        await browser.post("/auth/logout")
        await sign_up(browser, SoftwareAuthenticator(), "victim")
        await browser.post("/auth/logout")
        options = await login_options(browser, username="victim")
        response = mallory.get(options, origin=ORIGIN, credential_id=mallory.credentials[0].credential_id)
        before = server.snapshot()
        await refused(
            server, await browser.post("/auth/passkey/login/complete", json=response), 401, "unknown_credential", before
        )


# Malformed requests


@pytest.mark.parametrize(
    ("path", "content", "headers", "status", "code"),
    [
        ("/auth/passkey/register/begin", b"{not json", {"content-type": "application/json"}, 400, "invalid_request"),
        (
            "/auth/passkey/register/begin",
            b"username=a",
            {"content-type": "application/x-www-form-urlencoded"},
            415,
            "unsupported_media_type",
        ),
        (
            "/auth/passkey/register/begin",
            b'{"username": 5}',
            {"content-type": "application/json"},
            400,
            "invalid_request",
        ),
        (
            "/auth/passkey/register/begin",
            b'{"username": "' + b"a" * 65 + b'"}',
            {"content-type": "application/json"},
            400,
            "invalid_request",
        ),
        (
            "/auth/passkey/register/begin",
            b'{"username": "a\\u0000b"}',
            {"content-type": "application/json"},
            400,
            "invalid_request",
        ),
        (
            "/auth/passkey/login/begin",
            b'{"unexpected": 1}',
            {"content-type": "application/json"},
            400,
            "invalid_request",
        ),
        (
            "/auth/passkey/login/complete",
            b'{"id": "AA", "type": "public-key", "response": {}}',
            {"content-type": "application/json"},
            400,
            "malformed_response",
        ),
        ("/auth/passkey/login/complete", b"[]", {"content-type": "application/json"}, 400, "invalid_request"),
        (
            "/auth/passkey/register/complete",
            b'{"id": "!!", "type": "public-key", "response": {"clientDataJSON": 1}}',
            {"content-type": "application/json"},
            400,
            "malformed_response",
        ),
        (
            "/auth/passkey/login/begin",
            b'{"username": "' + b"x" * 70_000 + b'"}',
            {"content-type": "application/json"},
            413,
            "body_too_large",
        ),
    ],
)
async def test_malformed_requests(
    server: Server,
    browser: httpx.AsyncClient,
    path: str,
    content: bytes,
    headers: dict[str, str],
    status: int,
    code: str,
) -> None:
    before = server.snapshot()
    await refused(server, await browser.post(path, content=content, headers=headers), status, code, before)


@pytest.mark.parametrize("origin", [None, "http://evil.example", "http://localhost:8001"])
async def test_state_changing_requests_need_an_allowed_origin(server: Server, origin: str | None) -> None:
    # With cookies (without any, and without an Origin, the request is a native app's: tests/web/test_native_clients)
    headers = {"Origin": origin} if origin else {"Cookie": "passgate_session=x"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=server.app), base_url=ORIGIN) as client:
        before = server.snapshot()
        response = await client.post("/auth/passkey/register/begin", json={"username": "q"}, headers=headers)
        await refused(server, response, 403, "origin_not_allowed", before)
        assert "passgate_ceremony" not in response.headers.get("set-cookie", "")  # no ceremony was begun
        # and the same request from the page's origin does begin one
        allowed = await client.post("/auth/passkey/register/begin", json={"username": "q"}, headers={"Origin": ORIGIN})
        assert allowed.status_code == 200 and "passgate_ceremony" in allowed.headers["set-cookie"]


async def test_failed_verifications_are_recorded_as_events(server: Server, browser: httpx.AsyncClient) -> None:
    response = await registration_response(browser, SoftwareAuthenticator(), origin="http://evil.localhost:8000")
    await browser.post("/auth/passkey/register/complete", json=response)
    rows = server.rows("SELECT type, outcome, reason FROM events")
    assert rows == [("passkey.register", "failure", "origin_mismatch")]


async def test_ceremonies_are_rate_limited_per_address(make_server: Callable[..., Server]) -> None:
    server = make_server(rate_limit_per_ip=5)
    async with server.client() as client:
        answers = [await client.post("/auth/passkey/login/begin") for _ in range(6)]
    assert [a.status_code for a in answers] == [200] * 5 + [429]
    assert answers[-1].json()["error"] == "rate_limited" and int(answers[-1].headers["retry-after"]) >= 1


async def test_ceremonies_are_rate_limited_per_account(make_server: Callable[..., Server]) -> None:
    server = make_server(rate_limit_per_account=3)
    async with server.client() as one, server.client() as other:
        answers = [
            await client.post("/auth/passkey/login/begin", json={"username": "target"})
            for client in (one, other, one, other)
        ]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert (await one.post("/auth/passkey/login/begin", json={"username": "someone-else"})).status_code == 200


def routes_reading_a_body(app: Any) -> list[tuple[str, str]]:
    """Every (method, path) of the API that may carry a body, path parameters filled in: new routes are covered too."""
    return [
        (method.upper(), re.sub(r"\{[^}]*\}", "AA", path))
        for path, operations in app.openapi()["paths"].items()
        for method in operations
        if method in {"post", "put", "patch", "delete"}
    ]


def nested(depth: int) -> bytes:
    return b'{"k":[' * depth + b"0" + b"]}" * depth


async def test_every_json_endpoint_refuses_deep_nesting(server: Server, browser: httpx.AsyncClient) -> None:
    await sign_up(browser, SoftwareAuthenticator(), "deep")
    routes = routes_reading_a_body(server.app)
    assert ("POST", "/auth/passkey/register/complete") in routes and ("PATCH", "/auth/passkeys/AA") in routes
    headers = {"content-type": "application/json"}
    before = server.snapshot()
    for method, path in routes:
        for body in (b"[" * 5000 + b"]" * 5000, nested(17), b'{"transaction": ' + b"[" * 40 + b"]" * 40 + b"}"):
            response = await browser.request(method, path, content=body, headers=headers)
            assert response.status_code == 400, (method, path, response.text)
            assert response.json() == {"error": "invalid_request", "message": response.json()["message"]}
            assert "nests more than" in response.json()["message"]
    assert server.snapshot() == before


async def test_deeply_nested_client_data(server: Server, browser: httpx.AsyncClient) -> None:
    response = await registration_response(browser, SoftwareAuthenticator())
    client_data = b64url_decode(response["response"]["clientDataJSON"])
    response["response"]["clientDataJSON"] = b64url_encode(
        client_data[:-1] + b',"k":' + b"[" * 3000 + b"]" * 3000 + b"}"
    )
    before = server.snapshot()
    await refused(
        server, await browser.post("/auth/passkey/register/complete", json=response), 400, "malformed_response", before
    )
