"""Webhooks in the service layer, on real SQLite and PostgreSQL: the outbox shares the fate of the change it
reports, deliveries reach only the addresses allowed, and the CLI shows and acts on endpoints and their logs."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from passgate.cli import main
from passgate.core import webhooks as core
from passgate.core.errors import CredentialExists, InvalidRequest, UsernameTaken, WebhookAddressRefused
from passgate.core.policy import preset
from passgate.service import webhooks
from passgate.service.context import Context, RelyingParty, WebhookOptions
from passgate.store.base import Credential, User
from passgate.store.factory import open_storage
from passgate.store.migrate import upgrade
from tests.services import PostgresServer
from tests.webhook_receiver import Receiver

_databases = itertools.count()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        postgres: PostgresServer = request.getfixturevalue("postgres")
        url = postgres.create_database(f"webhooks_{next(_databases)}")
    else:
        url = f"sqlite:///{tmp_path}/passgate.db"
    upgrade(url)
    return url


RP = RelyingParty(rp_id="localhost", rp_name="Passgate", origins=("http://localhost:8000",), policy=preset("consumer"))


def context(storage: object, *, allow_private: bool = True) -> Context:
    return Context(
        rp=RP,
        storage=storage,  # type: ignore[arg-type]
        webhooks=WebhookOptions(allow_private=allow_private, timeout_seconds=2, retry_seconds=(0.05, 0.05)),
    )


@pytest.fixture
async def ctx(database_url: str) -> AsyncIterator[Context]:
    storage, close = open_storage(database_url)
    yield context(storage)
    await close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


def user(user_id: str = "u1", name: str = "ana") -> User:
    return User(id=user_id, username=name, display_name=name, user_handle=user_id.encode() * 8, created_at=NOW)


def credential(credential_id: bytes = b"c1", user_id: str = "u1") -> Credential:
    return Credential(
        credential_id=credential_id,
        user_id=user_id,
        public_key=b"\xa5key",
        algorithm=-7,
        sign_count=0,
        aaguid="00000000-0000-0000-0000-000000000000",
        attestation_format="none",
        transports=("internal",),
        backup_eligible=True,
        backed_up=False,
        user_verified=True,
        created_at=NOW,
    )


NOW = datetime.now(UTC).replace(microsecond=0)


async def test_a_rolled_back_change_queues_nothing(ctx: Context, receiver: Receiver) -> None:
    await webhooks.add_endpoint(ctx, receiver.url(), ["*"], secret=receiver.secret)
    await ctx.storage.users.create_with_credential(user(), credential(), outbox=webhooks.user_created(ctx, "u1"))
    with pytest.raises(UsernameTaken):  # the account is refused: its events go with it
        await ctx.storage.users.create_with_credential(
            user("u2", "ANA"), credential(b"c2", "u2"), outbox=webhooks.user_created(ctx, "u2", [b"c2"])
        )
    with pytest.raises(CredentialExists):
        await ctx.storage.credentials.add(credential(), outbox=webhooks.passkey_created(ctx, "u1", b"c1"))
    renamed = webhooks.passkey_renamed(ctx, "u1", b"x")
    assert not await ctx.storage.credentials.rename(b"nope", "u1", "x", outbox=renamed)
    ended = webhooks.session_ended(ctx, "u1", b"", "x")
    assert not await ctx.storage.sessions.delete(b"no such session", outbox=ended)
    removal = await ctx.storage.credentials.remove(b"c1", "u1", outbox=webhooks.passkey_removed(ctx, "u1", b"c1"))
    assert removal.outcome == "last_passkey"  # refused: nothing queued
    done = await webhooks.flush(ctx)
    assert done.delivered == 1 and [r.type for r in receiver.received] == ["user.created"]
    assert json.loads(receiver.received[0].body)["data"] == {"user_id": "u1"}


async def test_addresses_that_are_not_public_are_refused(database_url: str, receiver: Receiver) -> None:
    storage, close = open_storage(database_url)
    strict = context(storage, allow_private=False)
    try:
        for url in ("http://10.0.0.7/hooks", "http://[::1]:8080/", "http://169.254.169.254/latest", receiver.url()):
            with pytest.raises(WebhookAddressRefused):
                await webhooks.add_endpoint(strict, url)
        # Stored while allowed (or named by a name that resolves to loopback): each delivery checks again.
        allowed = context(storage)
        added = await webhooks.add_endpoint(allowed, receiver.url().replace("localhost", "127.0.0.1"))
        await storage.webhooks.enqueue(webhooks.user_deleted(strict, "u1"))
        done = await webhooks.flush(strict)
        assert done.retried == 1 and receiver.received == []
        [delivery] = await webhooks.deliveries(strict, added.endpoint.id)
        assert delivery.last_error is not None and delivery.last_error.startswith("address refused: 127.0.0.1")
        signed = core.sign(message_id="msg_1", body="{}", secrets=[receiver.secret], at=datetime.now(UTC))
        with pytest.raises(webhooks.AttemptFailed, match=r"address refused: localhost resolves to 127\.0\.0\.1"):
            await webhooks.post(strict, receiver.url(), signed)
        assert receiver.received == []
    finally:
        await close()


async def test_redirects_are_not_followed(ctx: Context, receiver: Receiver) -> None:
    receiver.answers.append((302, {"Location": "http://10.0.0.7/internal"}))
    signed = core.sign(message_id="msg_1", body='{"type":"x"}', secrets=[receiver.secret], at=datetime.now(UTC))
    with pytest.raises(webhooks.AttemptFailed) as failed:
        await webhooks.post(ctx, receiver.url(), signed)
    assert failed.value.status == 302 and len(receiver.received) == 1  # a failed attempt, nothing followed


async def test_the_outbox_is_claimed_once_and_delivered_in_order_of_due(ctx: Context, receiver: Receiver) -> None:
    added = await webhooks.add_endpoint(ctx, receiver.url(), ["user.*"], secret=receiver.secret)
    other = await webhooks.add_endpoint(ctx, receiver.url("/other"), ["passkey.created"], secret=receiver.secret)
    queued = await webhooks.queue(ctx, [*webhooks.user_created(ctx, "u1", [b"c1"]), *webhooks.user_deleted(ctx, "u1")])
    assert queued == 3  # user.* twice to the first endpoint, passkey.created once to the other
    first = await ctx.storage.webhooks.claim(worker="a", now=ctx.clock(), lease=timedelta(minutes=1), limit=10)
    again = await ctx.storage.webhooks.claim(worker="b", now=ctx.clock(), lease=timedelta(minutes=1), limit=10)
    assert len(first) == 3 and again == []
    later = ctx.clock() + timedelta(minutes=2)  # the lease has run out: another worker takes them
    taken = await ctx.storage.webhooks.claim(worker="b", now=later, lease=timedelta(minutes=1), limit=10)
    assert {d.id for d in taken} == {d.id for d in first} and all(d.attempts == 2 for d in taken)
    assert not await ctx.storage.webhooks.delivered(first[0].id, worker="a", at=later, status=200)  # not a's now
    assert [d.type for d in await webhooks.deliveries(ctx, other.endpoint.id)] == ["passkey.created"]
    assert {d.type for d in await webhooks.deliveries(ctx, added.endpoint.id)} == {"user.created", "user.deleted"}


def test_the_cli_lists_adds_shows_redelivers_and_enables(
    database_url: str, receiver: Receiver, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PASSGATE_SECRET_KEY", "the server's secret key")
    monkeypatch.setenv("PASSGATE_WEBHOOKS_ALLOW_PRIVATE", "true")
    db = ["--database-url", database_url]
    assert main(["webhooks", "add", receiver.url(), "--event", "passkey.*", "--secret", receiver.secret, *db]) == 0
    assert receiver.secret in capsys.readouterr().out  # shown once, at the start
    assert main(["webhooks", "list", "--json", *db]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert listed["url"] == receiver.url() and listed["events"] == ["passkey.*"] and listed["enabled"] is True
    assert "whsec_" not in json.dumps(listed)  # the list never shows a secret
    assert main(["webhooks", "list", *db]) == 0
    assert listed["id"] in capsys.readouterr().out
    asyncio.run(_queue_one_and_disable(database_url, listed["id"]))
    assert main(["webhooks", "deliveries", listed["id"], "--json", *db]) == 0
    [logged] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert logged["type"] == "passkey.created" and logged["status"] == "queued"
    assert logged["data"] == {"user_id": "u1", "credential_id": "YzE"}
    assert main(["webhooks", "redeliver", str(logged["id"]), *db]) == 0
    assert "queued" in capsys.readouterr().out
    assert main(["webhooks", "redeliver", "999", *db]) == 1
    assert "unknown_webhook_delivery" in capsys.readouterr().err
    assert main(["webhooks", "enable", "ep_nope", *db]) == 1
    assert "unknown_webhook_endpoint" in capsys.readouterr().err
    assert main(["webhooks", "enable", listed["id"], "--json", *db]) == 0
    assert json.loads(capsys.readouterr().out)["enabled"] is True
    assert main(["webhooks", "add", "ftp://example.com/", *db]) == 1
    assert "invalid_request" in capsys.readouterr().err
    assert main(["webhooks", "remove", listed["id"], *db]) == 0
    capsys.readouterr()
    assert main(["webhooks", "list", "--json", *db]) == 0
    assert json.loads(capsys.readouterr().out) == []


async def _queue_one_and_disable(database_url: str, endpoint_id: str) -> None:
    from passgate.config import load_settings
    from passgate.web.app import relying_party, webhook_options

    storage, close = open_storage(database_url)
    try:
        settings = load_settings({"database_url": database_url}, {"PASSGATE_SECRET_KEY": "the server's secret key"})
        ctx = Context(rp=relying_party(settings), storage=storage, webhooks=webhook_options(settings))
        await webhooks.queue(ctx, webhooks.passkey_created(ctx, "u1", b"c1"))
        await webhooks.disable_endpoint(ctx, endpoint_id, "an operator")
    finally:
        await close()


def test_the_cli_will_not_seal_a_secret_under_a_random_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PASSGATE_SECRET_KEY", raising=False)
    url = f"sqlite:///{tmp_path}/passgate.db"
    assert main(["webhooks", "add", "https://hooks.example.com/", "--database-url", url]) == 2
    assert "secret_key" in capsys.readouterr().err


def test_addresses_allowed() -> None:
    for address in ("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"):
        assert core.address_allowed(address, allow_private=False)
    unspecified = "0.0.0.0"  # noqa: S104 (an address to refuse, not one to bind)
    refused = ("127.0.0.1", "10.1.2.3", "192.168.0.1", "172.16.0.1", "169.254.169.254", "::1", "fe80::1", "fc00::1")
    for address in (*refused, "100.64.0.1", "::ffff:127.0.0.1", unspecified, "224.0.0.1", "240.0.0.1"):
        assert not core.address_allowed(address, allow_private=False), address
    assert core.address_allowed("127.0.0.1", allow_private=True)
    assert core.address_allowed("10.0.0.1", allow_private=True)
    assert not core.address_allowed(unspecified, allow_private=True)  # never a destination
    assert not core.address_allowed("ff02::1", allow_private=True)


def test_the_retry_schedule() -> None:
    steps = core.RETRY_SECONDS
    assert 2.9 * 86400 < sum(steps) < 3.5 * 86400  # about three days in all
    assert core.retry_delay(1, schedule=steps, jitter=0.5, retry_after=None) == 5.0
    assert core.retry_delay(2, schedule=steps, jitter=0.0, retry_after=None) == 300 * 0.8
    assert core.retry_delay(2, schedule=steps, jitter=0.999999, retry_after=None) == pytest.approx(360, rel=1e-5)
    assert core.retry_delay(1, schedule=steps, jitter=0.5, retry_after=600) == 600  # the endpoint asks for longer
    assert core.retry_delay(3, schedule=steps, jitter=0.5, retry_after=10) == 1800  # but never sooner
    assert core.retry_delay(1, schedule=steps, jitter=0.5, retry_after=10**9) == 86400  # a day at most
    assert core.retry_delay(len(steps) + 1, schedule=steps, jitter=0.5, retry_after=None) is None
    now = datetime(2026, 12, 3, 6, 0, tzinfo=UTC)
    assert core.parse_retry_after("120", now) == 120
    assert core.parse_retry_after("Thu, 03 Dec 2026 06:10:00 GMT", now) == 600
    assert core.parse_retry_after("soon", now) is None and core.parse_retry_after(None, now) is None


def test_subscriptions_secrets_and_signatures() -> None:
    assert core.subscribed(["*"], "user.created") and core.subscribed(["passkey.*"], "passkey.renamed")
    assert not core.subscribed(["passkey.*"], "user.created") and core.subscribed(["user.created"], "user.created")
    for wrong in ([], ["user.made"], ["nope.*"]):
        with pytest.raises(InvalidRequest):
            core.check_event_types(wrong)
    for wrong in ("secret", "whsec_!!!", "whsec_" + "QUJD"):  # not base64, or 3 bytes
        with pytest.raises(InvalidRequest):
            core.check_secret(wrong)
    old, new = core.new_secret(b"o" * 32), core.new_secret(b"n" * 32)
    signed = core.sign(message_id="msg_a", body='{"a":1}', secrets=[new, old], at=datetime.now(UTC))
    from standardwebhooks import Webhook

    for secret in (old, new):  # either secret verifies while the rotation lasts
        assert Webhook(secret).verify(signed.body, dict(signed.headers)) == {"a": 1}
    assert signed.headers["webhook-id"] == "msg_a" and signed.headers["webhook-signature"].count("v1,") == 2
    assert core.status_changes({"a": "FIDO_CERTIFIED", "b": "REVOKED"}, {"a": "REVOKED", "b": "REVOKED", "c": "X"}) == [
        ("a", "REVOKED")
    ]
