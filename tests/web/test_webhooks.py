"""Webhooks end to end: ceremonies on a Passgate app (real SQLite, its delivery worker running) reach a real
receiver on loopback that verifies every signature with the standardwebhooks library.

The app's clock is the test's: a retry is due when the test moves the clock past it, so nothing here sleeps
through a schedule.
"""

from __future__ import annotations

import asyncio
import base64
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY

from passgate.core.webhooks import EVENT_TYPES
from passgate.service import admin, admin_keys, webhooks
from passgate.service.admin import Actor
from passgate.service.context import Client
from passgate.testing import SoftwareAuthenticator
from tests.web.conftest import ORIGIN, Server, login_options, sign_up
from tests.web.test_account_api import account, add_passkey
from tests.web.test_passwords import imported, password_login
from tests.webhook_receiver import Receiver

IDS = {"user_id", "credential_id", "session_id", "code", "method", "reason", "aaguid", "status"}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def hooked(make_server: Callable[..., Server], receiver: Receiver) -> Callable[..., Awaitable[Server]]:
    """A started server whose configuration file subscribes the receiver to every event (loopback allowed)."""

    async def make(**flags: Any) -> Server:
        server = make_server(
            webhooks=[{"url": receiver.url(), "events": ["*"], "secret": receiver.secret}],
            webhooks_allow_private=True,
            webhook_retry_seconds=flags.pop("webhook_retry_seconds", [0.05, 0.05, 0.05, 0.05]),
            **flags,
        )
        server.clock.now = datetime.now(UTC)  # the receiver checks the signature's timestamp by its own clock
        async with server.client():  # starts its lifespan, which stores the file's endpoint
            for _ in range(500):
                if server.rows("SELECT id FROM webhook_endpoints"):
                    return server
                await asyncio.sleep(0.01)
        raise AssertionError("the server did not start")

    return make


@pytest.fixture
async def server(hooked: Callable[..., Awaitable[Server]]) -> Server:
    return await hooked()


ACTOR = Actor(admin_key="ops", client=Client(ip="127.0.0.1", user_agent="test"))


async def sign_in(client: Any, authenticator: SoftwareAuthenticator) -> Any:
    options = await login_options(client)
    return await client.post("/auth/passkey/login/complete", json=authenticator.get(options, origin=ORIGIN))


def tampered(assertion: dict[str, Any]) -> dict[str, Any]:
    signature = bytearray(base64.urlsafe_b64decode(assertion["response"]["signature"] + "=="))
    signature[-1] ^= 1
    assertion["response"]["signature"] = base64.urlsafe_b64encode(bytes(signature)).rstrip(b"=").decode()
    return assertion


async def settle(server: Server, receiver: Receiver, count: int) -> None:
    """Move the clock on (retries fall due) until `count` requests have come."""
    for _ in range(1500):
        if len(receiver.received) >= count:
            return
        server.clock.advance(seconds=0.5)
        server.app.state.ctx.webhooks_ready.set()
        await asyncio.sleep(0.02)
    raise AssertionError(f"{len(receiver.received)} of {count} arrived: {receiver.types()}")


def delivered_so_far() -> tuple[float, float]:
    """The deliveries counted and the lag histogram's count, as a scrape would report them."""
    delivered = REGISTRY.get_sample_value("passgate_webhook_deliveries_total", {"outcome": "delivered"}) or 0.0
    lags = REGISTRY.get_sample_value("passgate_webhook_delivery_lag_seconds_count") or 0.0
    return delivered, lags


async def test_every_event_type_arrives_signed_with_ids_only(server: Server, receiver: Receiver) -> None:
    counted = delivered_so_far()
    phone, laptop = SoftwareAuthenticator(), SoftwareAuthenticator()
    async with server.client() as browser, server.client() as other, server.client() as third:
        await sign_up(browser, phone, "noor")  # user.created, passkey.created
        assert (await sign_in(other, phone)).status_code == 200  # signin.succeeded
        options = await login_options(third)
        refused = await third.post("/auth/passkey/login/complete", json=tampered(phone.get(options, origin=ORIGIN)))
        assert refused.status_code == 400  # signin.failed
        phone.sign_count = 0  # a copy of the passkey with an older counter: passkey.clone_suspected
        await sign_in(third, phone)
        assert (await add_passkey(browser, laptop)).status_code == 200  # passkey.created
        passkeys = (await account(browser))["passkeys"]
        laptop_id = next(p["id"] for p in passkeys if p["id"] != passkeys[0]["id"])
        assert (await browser.patch(f"/auth/passkeys/{laptop_id}", json={"nickname": "Laptop"})).status_code == 200
        codes = (await browser.post("/auth/recovery/codes")).json()["codes"]
        assert (await browser.delete(f"/auth/passkeys/{laptop_id}")).status_code == 200  # passkey.removed
        assert (await browser.post("/auth/logout")).status_code in (200, 204)  # session.ended
    async with server.client() as recovering:
        used = await recovering.post("/auth/recovery/codes/sign-in", json={"username": "noor", "code": codes[0]})
        assert used.status_code == 200  # recovery.used
    ctx = server.app.state.ctx
    [user_id] = [row[0] for row in server.rows("SELECT id FROM users")]
    # An administrator disables the account (ending its open sessions) and deletes it; a metadata refresh.
    open_sessions = len(server.rows("SELECT token_hash FROM sessions"))
    assert open_sessions >= 1
    assert (await admin.disable(ctx, ACTOR, user_id)).sessions == open_sessions  # user.disabled, session.ended
    await admin.delete(ctx, ACTOR, user_id)  # user.deleted
    expected = 14 + open_sessions
    changed = webhooks.mds_status_changed(ctx, "00000000-0000-0000-0000-000000000001", "REVOKED", blob_number=7)
    assert await webhooks.queue(ctx, changed) == 1
    assert await webhooks.queue(ctx, changed) == 0  # another node noticing the same change queues nothing
    await settle(server, receiver, expected)
    await asyncio.sleep(0.2)  # nothing more is on its way
    assert set(receiver.types()) == set(EVENT_TYPES)
    assert all(r.verified is not None for r in receiver.received)  # standardwebhooks verified each signature
    assert len({r.message_id for r in receiver.received}) == len(receiver.received)  # once each
    for payload in receiver.payloads():
        assert set(payload) == {"type", "timestamp", "data"} and set(payload["data"]) <= IDS
        assert payload["data"].get("user_id", user_id) == user_id
        assert "noor" not in str(payload)  # ids, never a person's data
    by_type = Counter(receiver.types())
    assert (
        by_type["passkey.created"] == 2 and by_type["session.ended"] == 1 + open_sessions
    )  # sign-out, then the disabling
    for _ in range(500):  # the worker records each delivery once the receiver has answered
        if server.rows("SELECT count(*) FROM webhook_outbox WHERE status = 'delivered'") == [(expected,)]:
            break
        await asyncio.sleep(0.01)
    assert server.rows("SELECT count(*) FROM webhook_outbox WHERE status = 'delivered'") == [(expected,)]
    assert delivered_so_far() == (counted[0] + expected, counted[1] + expected)  # the metrics moved with the deliveries


async def test_a_receiver_down_for_a_while_gets_everything_once_back(server: Server, receiver: Receiver) -> None:
    receiver.stop()
    for number in range(3):
        async with server.client() as newcomer:
            await sign_up(newcomer, SoftwareAuthenticator(), f"user{number}")
    # Each delivery fails while the receiver is down, and waits for its retry, for as long as it stays down.
    for _ in range(500):
        failed = server.rows("SELECT last_error FROM webhook_outbox WHERE attempts >= 2 AND claimed_by IS NULL")
        if len(failed) == 6:
            break
        server.clock.advance(seconds=0.02)
        await asyncio.sleep(0.01)
    assert len(failed) == 6 and all("ConnectError" in error for (error,) in failed), failed
    assert server.rows("SELECT DISTINCT status FROM webhook_outbox") == [("queued",)]
    receiver.start()
    await settle(server, receiver, 6)
    await asyncio.sleep(0.2)
    ids = Counter(r.message_id for r in receiver.received)
    assert len(ids) == 6 and all(r.verified is not None for r in receiver.received)
    assert Counter(receiver.types()) == {"user.created": 3, "passkey.created": 3}


async def test_server_errors_are_retried_and_retry_after_is_honoured(server: Server, receiver: Receiver) -> None:
    receiver.answers.extend([(500, {}), (503, {"Retry-After": "120"})])
    ctx = server.app.state.ctx
    started = server.clock.now
    await webhooks.queue(ctx, webhooks.user_disabled(ctx, "u1"))
    await settle(server, receiver, 2)  # the 500 is retried on the schedule (0.05 s, +-20%)
    for _ in range(200):
        [(next_attempt_at, last_status)] = server.rows("SELECT next_attempt_at, last_status FROM webhook_outbox")
        if last_status == 503:
            break
        await asyncio.sleep(0.01)
    wait = datetime.fromisoformat(next_attempt_at).replace(tzinfo=UTC) - started
    assert last_status == 503 and wait.total_seconds() >= 120  # as Retry-After asked, not the schedule's 0.05 s
    server.clock.advance(seconds=60)
    server.app.state.ctx.webhooks_ready.set()
    await asyncio.sleep(0.2)
    assert len(receiver.received) == 2  # not yet due
    server.clock.now = started + timedelta(seconds=121)
    await settle(server, receiver, 3)
    assert len({r.message_id for r in receiver.received}) == 1  # three attempts, one webhook-id
    for _ in range(200):
        if server.rows("SELECT status, attempts, last_status FROM webhook_outbox") == [("delivered", 3, 200)]:
            break
        await asyncio.sleep(0.01)
    assert server.rows("SELECT status, attempts, last_status FROM webhook_outbox") == [("delivered", 3, 200)]


async def test_410_disables_the_endpoint_until_enabled(server: Server, receiver: Receiver) -> None:
    receiver.answers.append((410, {}))
    ctx = server.app.state.ctx
    await webhooks.queue(ctx, webhooks.user_disabled(ctx, "u1"))
    await receiver.wait_for(1)
    for _ in range(200):
        [(enabled, reason)] = server.rows("SELECT enabled, disabled_reason FROM webhook_endpoints")
        if not enabled:
            break
        await asyncio.sleep(0.01)
    assert not enabled and reason.startswith("410 Gone")
    async with server.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), "gone")  # nothing is queued for a disabled endpoint
    server.clock.advance(seconds=5)
    ctx.webhooks_ready.set()
    await asyncio.sleep(0.3)
    assert len(receiver.received) == 1 and server.rows("SELECT count(*) FROM webhook_outbox") == [(1,)]
    [endpoint] = await webhooks.list_endpoints(ctx)
    assert endpoint.disabled_reason == reason
    await webhooks.enable_endpoint(ctx, endpoint.id)
    await settle(server, receiver, 2)  # the delivery the 410 answered, again, with its webhook-id
    assert receiver.received[0].message_id == receiver.received[1].message_id
    assert receiver.received[1].verified is not None


async def test_a_delivery_is_given_up_after_its_schedule(
    hooked: Callable[..., Awaitable[Server]], receiver: Receiver
) -> None:
    server = await hooked(webhook_retry_seconds=[0.05, 0.05])
    receiver.answers.extend([(500, {})] * 10)
    async with server.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), "lost")
    await settle(server, receiver, 6)  # two events, three attempts each
    for _ in range(200):
        failed = server.rows("SELECT status, attempts, last_error FROM webhook_outbox WHERE status = 'failed'")
        if len(failed) == 2:
            break
        await asyncio.sleep(0.02)
    assert [(status, attempts) for status, attempts, _ in failed] == [("failed", 3), ("failed", 3)]
    assert all(error.startswith("given up: HTTP 500") for _, _, error in failed)
    ctx = server.app.state.ctx
    [endpoint] = await webhooks.list_endpoints(ctx)
    [first, *_] = await webhooks.deliveries(ctx, endpoint.id)
    receiver.answers.clear()  # the receiver is fine again
    again = await webhooks.redeliver(ctx, first.id)
    assert again.status == "queued" and again.attempts == 0
    await settle(server, receiver, 7)
    assert receiver.received[-1].message_id == first.message_id  # one more request, with the same id
    for _ in range(200):
        found = await ctx.storage.webhooks.get_delivery(first.id)
        if found is not None and found.status == "delivered":
            break
        await asyncio.sleep(0.01)
    assert found is not None and found.status == "delivered" and found.attempts == 1


async def test_stored_endpoints_sign_with_both_secrets_while_rotating(server: Server, receiver: Receiver) -> None:
    ctx = server.app.state.ctx
    [file_endpoint] = await webhooks.list_endpoints(ctx)
    await webhooks.disable_endpoint(ctx, file_endpoint.id, "this test uses its own endpoint")
    added = await webhooks.add_endpoint(ctx, receiver.url("/stored"), ["passkey.*"])
    new_secret = await webhooks.rotate_secret(ctx, added.endpoint.id)
    receiver.secret = new_secret  # the receiver moved to the new secret; the old one still signs too
    async with server.client() as browser:
        await sign_up(browser, SoftwareAuthenticator(), "rota")
    [request] = await receiver.wait_for(1)
    assert request.path == "/stored" and request.type == "passkey.created"  # passkey.*: no user.created
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    receiver.secret = added.secret
    from standardwebhooks import Webhook

    assert Webhook(added.secret).verify(request.body, request.headers)["type"] == "passkey.created"


async def test_an_administrator_subscribes_reads_the_log_redelivers_and_removes(
    server: Server, receiver: Receiver
) -> None:
    ctx = server.app.state.ctx
    [file_endpoint] = await webhooks.list_endpoints(ctx)
    await webhooks.disable_endpoint(ctx, file_endpoint.id, "this test uses its own endpoint")
    _key, secret = await admin_keys.add(ctx, Client(), "integrations", ["apps:write"])
    headers = {"Authorization": f"Bearer {secret}"}
    async with server.client() as operator, server.client() as browser:
        made = await operator.post(
            "/admin/v1/webhooks", headers=headers, json={"url": receiver.url("/crm"), "events": ["user.created"]}
        )
        assert made.status_code == 201, made.text
        endpoint = made.json()
        assert endpoint["source"] == "stored" and endpoint["events"] == ["user.created"]
        receiver.secret = endpoint["secret"]  # shown in this answer only
        listed = (await operator.get("/admin/v1/webhooks", headers=headers)).json()["webhooks"]
        assert {e["id"] for e in listed} == {file_endpoint.id, endpoint["id"]}
        assert all("secret" not in e for e in listed)
        await sign_up(browser, SoftwareAuthenticator(), "vera")
        [first] = await receiver.wait_for(1)
        assert first.path == "/crm" and first.type == "user.created"
        log = f"/admin/v1/webhooks/{endpoint['id']}/deliveries"
        for _ in range(500):  # the worker records the delivery once the receiver has answered
            [delivery] = (await operator.get(log, headers=headers)).json()["deliveries"]
            if delivery["status"] == "delivered":
                break
            await asyncio.sleep(0.01)
        assert delivery["webhookId"] == first.message_id and delivery["lastStatus"] == 200
        again = await operator.post(f"/admin/v1/webhooks/deliveries/{delivery['id']}/redeliver", headers=headers)
        assert again.status_code == 200 and again.json()["status"] == "queued"
        await settle(server, receiver, 2)
        assert receiver.received[1].message_id == first.message_id  # the same id: the receiver deduplicates
        rotated = await operator.post(f"/admin/v1/webhooks/{endpoint['id']}/rotate", headers=headers)
        assert rotated.json()["secret"].startswith("whsec_")
        # The configuration file's endpoint is the file's to change.
        refused = await operator.delete(f"/admin/v1/webhooks/{file_endpoint.id}", headers=headers)
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_request"
        assert (await operator.delete(f"/admin/v1/webhooks/{endpoint['id']}", headers=headers)).status_code == 204
        gone = await operator.get(log, headers=headers)
        assert gone.status_code == 404
    events = server.rows("SELECT type, detail FROM events WHERE type LIKE 'admin.webhook.%' ORDER BY id")
    assert [t for t, _ in events] == [
        "admin.webhook.add",
        "admin.webhook.redeliver",
        "admin.webhook.rotate",
        "admin.webhook.remove",
        "admin.webhook.remove",
    ]
    assert all('"integrations"' in str(detail) for _, detail in events)


async def test_password_sign_ins_while_migrating_are_webhook_events_too(
    hooked: Callable[..., Awaitable[Server]], receiver: Receiver
) -> None:
    server = await hooked(passwords="migrate")
    user = await imported(server, "ines")  # straight into the store: no user.created
    async with server.client() as browser:
        assert (await password_login(browser, "ines", "not the password")).status_code == 401
        assert (await password_login(browser, "ines")).status_code == 200
    received = await receiver.wait_for(2)
    payloads = {p["type"]: p["data"] for p in receiver.payloads()}
    assert payloads["signin.failed"] == {"user_id": user.id, "code": "password_incorrect", "method": "password"}
    succeeded = payloads["signin.succeeded"]
    assert succeeded["method"] == "password" and succeeded["user_id"] == user.id and "credential_id" not in succeeded
    assert len({r.message_id for r in received}) == 2


async def test_sign_ups_and_sign_ins_wake_the_worker_only_when_they_queued_a_delivery(
    make_server: Callable[..., Server], hooked: Callable[..., Awaitable[Server]], receiver: Receiver, monkeypatch: Any
) -> None:
    def counting_wakes(server: Server) -> list[None]:
        """Every time the node's webhook worker is woken (its event set), whoever sets it."""
        ready = server.app.state.ctx.webhooks_ready
        wakes: list[None] = []
        set_ready = ready.set

        def counted() -> None:
            wakes.append(None)
            set_ready()

        monkeypatch.setattr(ready, "set", counted)
        return wakes

    quiet = make_server()  # no endpoint: nothing is queued, so nothing wakes the worker
    async with quiet.client() as browser, quiet.client() as other:
        wakes = counting_wakes(quiet)
        phone = SoftwareAuthenticator()
        await sign_up(browser, phone, "noor")
        assert (await sign_in(other, phone)).status_code == 200
    assert wakes == []
    assert quiet.rows("SELECT id FROM webhook_outbox") == []
    server = await hooked()
    wakes = counting_wakes(server)
    async with server.client() as browser, server.client() as other:
        phone = SoftwareAuthenticator()
        await sign_up(browser, phone, "noor")
        assert len(wakes) == 1
        assert (await sign_in(other, phone)).status_code == 200
        assert len(wakes) == 2
        await settle(server, receiver, 3)
    assert sorted(receiver.types()) == ["passkey.created", "signin.succeeded", "user.created"]
