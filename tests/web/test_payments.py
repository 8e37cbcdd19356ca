"""The payments policy's transaction confirmation: an assertion bound to a server-side summary."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

import httpx
import pytest

from passgate.core.encoding import b64url_decode
from passgate.testing import SoftwareAuthenticator
from tests.web.conftest import ORIGIN, Server, login_options, sign_up

TRANSACTION = {"payee": "Bakery Ltd", "amount": "12.50", "currency": "EUR", "reference": "order 42"}


@pytest.fixture
def shop(make_server: Callable[..., Server]) -> Server:
    return make_server(policy="payments")


async def begin(client: httpx.AsyncClient, transaction: dict[str, str] = TRANSACTION) -> httpx.Response:
    return await client.post("/auth/payments/confirm/begin", json={"transaction": transaction})


async def test_a_confirmation_commits_to_the_transaction(shop: Server) -> None:
    async with shop.client() as client:
        authenticator = SoftwareAuthenticator()
        await sign_up(client, authenticator, "payer")
        options = (await begin(client)).json()
        assert options["userVerification"] == "required"
        assert [c["id"] for c in options["allowCredentials"]] == [
            p["id"] for p in (await client.get("/auth/passkeys")).json()["passkeys"]
        ]
        confirmed = await client.post("/auth/payments/confirm/complete", json=authenticator.get(options, origin=ORIGIN))
        assert confirmed.status_code == 200, confirmed.text
        canonical = json.dumps(TRANSACTION, sort_keys=True, separators=(",", ":")).encode()
        assert confirmed.json() == {
            "confirmed": True,
            "transaction": TRANSACTION,
            "transactionHash": hashlib.sha256(canonical).hexdigest(),
        }
        [(detail,)] = shop.rows("SELECT detail FROM events WHERE type = 'payment.confirm'")
        assert json.loads(detail)["transaction"] == TRANSACTION
        assert len(b64url_decode(options["challenge"])) == 32


async def test_confirmations_need_user_verification(shop: Server) -> None:
    async with shop.client() as client:
        authenticator = SoftwareAuthenticator()
        await sign_up(client, authenticator, "payer2")
        authenticator.user_verified = False
        options = (await begin(client)).json()
        refused = await client.post("/auth/payments/confirm/complete", json=authenticator.get(options, origin=ORIGIN))
        assert refused.status_code == 400 and refused.json()["error"] == "user_not_verified"
        assert shop.rows("SELECT outcome, reason FROM events WHERE type = 'payment.confirm'") == [
            ("failure", "user_not_verified")
        ]


async def test_confirmations_refuse_a_changed_backup_eligibility(shop: Server) -> None:
    async with shop.client() as client:
        authenticator = SoftwareAuthenticator(backup_eligible=True, backed_up=True)
        await sign_up(client, authenticator, "payer4")
        authenticator.backup_eligible = authenticator.backed_up = False
        options = (await begin(client)).json()
        refused = await client.post("/auth/payments/confirm/complete", json=authenticator.get(options, origin=ORIGIN))
        assert refused.status_code == 400 and refused.json()["error"] == "backup_eligibility_changed"
        assert shop.rows("SELECT outcome, reason FROM events WHERE type = 'payment.confirm'") == [
            ("failure", "backup_eligibility_changed")
        ]


async def test_confirmation_and_sign_in_challenges_do_not_mix(shop: Server) -> None:
    async with shop.client() as client:
        authenticator = SoftwareAuthenticator()
        await sign_up(client, authenticator, "payer3")
        confirmation = authenticator.get((await begin(client)).json(), origin=ORIGIN)
        as_sign_in = await client.post("/auth/passkey/login/complete", json=confirmation)
        assert as_sign_in.json()["error"] == "challenge_mismatch"
        sign_in = authenticator.get(await login_options(client), origin=ORIGIN)
        as_confirmation = await client.post("/auth/payments/confirm/complete", json=sign_in)
        assert as_confirmation.json()["error"] == "challenge_mismatch"
        options = (await begin(client)).json()
        response = authenticator.get(options, origin=ORIGIN)
        assert (await client.post("/auth/payments/confirm/complete", json=response)).status_code == 200
        replay = await client.post("/auth/payments/confirm/complete", json=response)
        assert replay.json()["error"] == "challenge_not_found"


async def test_confirmations_need_the_payments_policy_and_a_sign_in(server: Server, shop: Server) -> None:
    async with server.client() as client:
        await sign_up(client, SoftwareAuthenticator(), "consumer")
        refused = await begin(client)
        assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
    async with shop.client() as anonymous:
        assert (await begin(anonymous)).json()["error"] == "not_signed_in"
        async with shop.client() as signed_in:
            await sign_up(signed_in, SoftwareAuthenticator(), "payer4")
            bad = await begin(signed_in, {"payee": "x", "amount": "1"})
            assert bad.status_code == 400 and bad.json()["error"] == "invalid_request"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount": "-1e9 or not a number"}, "transaction.amount"),
        ({"amount": "12.505"}, "transaction.amount"),
        ({"amount": "1.5", "currency": "JPY"}, "transaction.amount"),
        ({"amount": "0.00"}, "transaction.amount"),
        ({"amount": 12.5}, "transaction.amount"),
        ({"amount": 12}, "transaction.amount"),
        ({"currency": "ZZ"}, "transaction.currency"),
        ({"currency": "XTS"}, "transaction.currency"),
        ({"payee": "Bakery\u202e Ltd"}, "transaction.payee"),
        ({"reference": "order\n42"}, "transaction.reference"),
    ],
)
async def test_a_transaction_that_does_not_fit_is_refused(shop: Server, change: dict[str, object], field: str) -> None:
    async with shop.client() as client:
        await sign_up(client, SoftwareAuthenticator(), "payer5")
        before = shop.rows("SELECT count(*) FROM challenges")
        refused = await client.post("/auth/payments/confirm/begin", json={"transaction": {**TRANSACTION, **change}})
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"] == "invalid_request" and refused.json()["message"].startswith(field)
        assert shop.rows("SELECT count(*) FROM challenges") == before


async def test_equal_transactions_commit_to_the_same_summary(shop: Server) -> None:
    async with shop.client() as client:
        authenticator = SoftwareAuthenticator()
        await sign_up(client, authenticator, "payer6")
        confirmed = []
        for amount, payee in (("12.5", "Ba\u0308ckerei"), ("012.50", "Bäckerei "), ("12.50", "Bäckerei")):
            options = (await begin(client, {**TRANSACTION, "amount": amount, "payee": payee})).json()
            response = await client.post(
                "/auth/payments/confirm/complete", json=authenticator.get(options, origin=ORIGIN)
            )
            assert response.status_code == 200, response.text
            confirmed.append(response.json())
    expected = {**TRANSACTION, "payee": "Bäckerei"}
    assert [c["transaction"] for c in confirmed] == [expected] * 3
    canonical = json.dumps(expected, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert {c["transactionHash"] for c in confirmed} == {hashlib.sha256(canonical).hexdigest()}
