"""Importing accounts: each all or nothing, a re-run changing nothing, a dry run writing nothing, and imported
passkeys signing in with the user handle of the system they came from."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from passgate.core import errors
from passgate.core.encoding import b64url_decode, b64url_encode
from passgate.core.errors import InvalidImportRecord, PasskeyError, UserHandleTaken
from passgate.core.passwords import verify_password
from passgate.core.policy import Policy
from passgate.service import authentication, imports
from passgate.service.context import Client, Context, RelyingParty, digest
from passgate.store.base import Credential, Storage, User
from passgate.store.factory import open_storage
from passgate.store.memory import memory_storage
from passgate.store.migrate import upgrade
from passgate.testing import SoftwareAuthenticator
from passgate.web.errors import status_for

VECTORS = Path(__file__).parent.parent / "vectors" / "imports"
ACCOUNTS = (VECTORS / "accounts.jsonl").read_text().splitlines()
MALFORMED = (VECTORS / "malformed.jsonl").read_text().splitlines()
PASSWORDS = {"ada": "correct horse battery staple", "grace": "hunter2", "barbara": "Tr0ub4dor&3"}
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
ORIGIN = "http://localhost:8000"
CLI = Client(ip=None, user_agent="passgate users import")


@pytest.fixture(params=["memory", "sqlite"])
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    if request.param == "memory":
        yield memory_storage()
        return
    url = f"sqlite:///{tmp_path}/passgate.db"
    upgrade(url)
    opened, close = open_storage(url)
    yield opened
    await close()


def context(storage: Storage) -> Context:
    rp = RelyingParty(rp_id="localhost", rp_name="Passgate", origins=(ORIGIN,), policy=Policy())
    return Context(rp=rp, storage=storage, clock=lambda: NOW)


async def snapshot(storage: Storage, usernames: list[str]) -> dict[str, Any]:
    """Every stored row of these accounts, and every event."""
    rows: dict[str, Any] = {}
    for name in usernames:
        user = await storage.users.by_username(name)
        if user is not None:
            passkeys = await storage.credentials.list_for_user(user.id)
            rows[name] = (user, passkeys, await storage.passwords.get(user.id))
    rows["events"] = await storage.events.list(limit=1000)
    return rows


def statuses(report: imports.ImportReport) -> list[tuple[int, str, str | None, str | None]]:
    return [(outcome.line, outcome.status, outcome.code, outcome.field) for outcome in report.lines]


async def test_a_file_is_imported_and_a_rerun_changes_nothing(storage: Storage) -> None:
    ctx = context(storage)
    report = await imports.import_accounts(ctx, CLI, ACCOUNTS)
    assert [(o.line, o.status, o.username) for o in report.lines] == [
        (1, "imported", "ada"),
        (2, "imported", "grace"),
        (3, "imported", "alan"),
        (4, "imported", "edsger"),
        (5, "imported", "barbara"),
    ]
    names = ["ada", "grace", "alan", "edsger", "barbara"]
    stored = await snapshot(storage, names)

    ada, ada_passkeys, _ = stored["ada"]
    assert ada.display_name == "Ada Lovelace" and ada.external_id == "1001" and ada_passkeys == []
    assert ada.email == "ada@example.com" and ada.email_verified_at == NOW
    assert ada.created_at == datetime(2019, 3, 4, 5, 6, 7, tzinfo=UTC) and len(ada.user_handle) == 32
    grace, (key,), _ = stored["grace"]
    assert grace.user_handle == b"legacy-user-1002" and grace.display_name == "grace"
    assert key.credential_id == b"grace-key-1" and key.sign_count == 12 and key.transports == ("usb", "nfc")
    assert key.aaguid == "cb69481e-8ff7-4039-93ec-0a2729a154a8" and key.nickname == "YubiKey"
    assert key.created_at == datetime(2023, 1, 2, 1, 4, 5, tzinfo=UTC)
    assert key.last_used_at == datetime(2024, 6, 1, tzinfo=UTC)
    assert (key.created_by, key.attestation_format, key.attested, key.user_verified) == ("import", "none", False, False)
    _, (rsa_key,), alan_password = stored["alan"]
    assert rsa_key.algorithm == -257 and rsa_key.backup_eligible and rsa_key.backed_up and alan_password is None
    edsger, (ed_key,), _ = stored["edsger"]
    assert edsger.external_id == "1004" and ed_key.algorithm == -8
    barbara = stored["barbara"][0]
    assert barbara.email == "barbara@example.com" and barbara.email_verified_at is None

    again = await imports.import_accounts(ctx, CLI, ACCOUNTS)
    assert [(o.status, o.code) for o in again.lines] == [("skipped", "already_imported")] * 5
    assert [o.user_id for o in again.lines] == [o.user_id for o in report.lines]
    assert await snapshot(storage, names) == stored


async def test_a_password_hash_is_stored_as_given(storage: Storage) -> None:
    ctx = context(storage)
    await imports.import_accounts(ctx, CLI, ACCOUNTS)
    for line in ACCOUNTS:
        given = json.loads(line)
        user = await storage.users.by_username(given["username"])
        assert user is not None
        stored = await storage.passwords.get(user.id)
        if "password" not in given:
            assert stored is None
            continue
        assert stored is not None and stored.hash == given["password"]
        assert verify_password(stored.hash, PASSWORDS[user.username])
        assert not verify_password(stored.hash, "wrong")


async def test_each_imported_account_has_one_event_without_the_hash(storage: Storage) -> None:
    await imports.import_accounts(context(storage), CLI, ACCOUNTS)
    events = await storage.events.list(type="user.imported")
    assert len(events) == 5 and all(e.outcome == "success" and e.user_agent == "passgate users import" for e in events)
    by_user = {e.user_id: e.detail for e in events}
    ada = await storage.users.by_username("ada")
    grace = await storage.users.by_username("grace")
    assert ada is not None and grace is not None
    assert by_user[ada.id] == {"external_id": "1001", "passkeys": 0, "password_scheme": "bcrypt"}
    assert by_user[grace.id] == {"external_id": "1002", "passkeys": 1, "password_scheme": "argon2id"}
    hashes = [json.loads(line).get("password") for line in ACCOUNTS]
    assert not any(h and h in json.dumps([e.detail for e in events]) for h in hashes)


async def test_a_dry_run_checks_everything_and_writes_nothing(storage: Storage) -> None:
    ctx = context(storage)
    await storage.users.create_with_credential(signed_up("alan", "u-alan"), passkey("u-alan", b"other"))
    dry = await imports.import_accounts(ctx, CLI, [*ACCOUNTS, *MALFORMED], dry_run=True)
    assert dry.dry_run and dry.count("imported") == 6 and dry.count("refused") == 7
    assert (3, "refused", "username_taken", "username") in statuses(dry)  # the database's alan
    assert [o.user_id for o in dry.lines if o.status == "imported"] == [None] * 6
    assert await snapshot(storage, ["ada", "grace", "edsger", "barbara", "ok1", "ok2"]) == {"events": []}
    assert (await storage.users.stats()).accounts == 1

    real = await imports.import_accounts(ctx, CLI, [*ACCOUNTS, *MALFORMED])
    assert statuses(real) == statuses(dry)  # what the dry run said is what the import did


def signed_up(name: str, user_id: str) -> User:
    return User(id=user_id, username=name, display_name=name, user_handle=user_id.encode(), created_at=NOW)


def passkey(user_id: str, credential_id: bytes) -> Credential:
    return Credential(
        credential_id=credential_id,
        user_id=user_id,
        public_key=b"\xa5",
        algorithm=-7,
        sign_count=0,
        aaguid="00000000-0000-0000-0000-000000000000",
        attestation_format="none",
        transports=(),
        backup_eligible=False,
        backed_up=False,
        user_verified=True,
        created_at=NOW,
    )


async def test_malformed_lines_are_reported_with_their_numbers_and_nothing_of_them_stored(storage: Storage) -> None:
    report = await imports.import_accounts(context(storage), CLI, MALFORMED)
    assert statuses(report) == [
        (1, "imported", None, None),
        (2, "refused", "invalid_import_record", "emial"),
        (3, "refused", "invalid_import_record", "password"),
        # line 4 is blank: passed over
        (5, "refused", "invalid_import_record", None),
        (6, "refused", "invalid_import_record", "passkeys[0].publicKey"),
        (7, "imported", None, None),
        (8, "refused", "invalid_import_record", "username"),
        (9, "refused", "invalid_import_record", "userHandle"),
    ]
    assert "line 1" in str(report.lines[6].reason)
    for name in ("typo", "md5", "badkey", "nohandle"):
        assert await storage.users.by_username(name) is None
    assert await storage.credentials.get(b"badkey-1") is None
    assert await storage.credentials.get(b"nohandle-1") is None
    assert await storage.users.by_external_id("2008") is None
    assert (await storage.users.stats()).accounts == 2


async def test_a_byte_order_mark_before_the_first_line_is_passed_over(storage: Storage) -> None:
    ctx = context(storage)
    as_text = await imports.import_accounts(ctx, CLI, ["\ufeff" + line(username="text")])
    as_bytes = await imports.import_accounts(ctx, CLI, [b"\xef\xbb\xbf" + line(username="bytes").encode()])
    assert statuses(as_text) == statuses(as_bytes) == [(1, "imported", None, None)]


def line(**fields: Any) -> str:
    return json.dumps(fields)


def key_of(account: str) -> dict[str, Any]:
    return json.loads(ACCOUNTS[1] if account == "grace" else ACCOUNTS[2])["passkeys"][0]


async def test_what_clashes_within_the_file_is_refused_naming_the_first_line(storage: Storage) -> None:
    grace = key_of("grace")
    lines = [
        line(username="first", externalId="e1", email="a@example.com", emailVerified=True),
        line(username="FIRST"),
        line(username="second", externalId="e1"),
        line(username="third", userHandle=b64url_encode(b"h1"), passkeys=[grace]),
        line(username="fourth", userHandle=b64url_encode(b"h2"), passkeys=[grace]),
        line(username="fifth", userHandle=b64url_encode(b"h1")),
        line(username="sixth", email="A@example.com", emailVerified=True),
        line(username="seventh", email="a@example.com"),  # unverified: nobody's yet
    ]
    report = await imports.import_accounts(context(storage), CLI, lines)
    assert statuses(report) == [
        (1, "imported", None, None),
        (2, "refused", "invalid_import_record", "username"),
        (3, "refused", "invalid_import_record", "externalId"),
        (4, "imported", None, None),
        (5, "refused", "invalid_import_record", "passkeys[0].credentialId"),
        (6, "refused", "invalid_import_record", "userHandle"),
        (7, "refused", "invalid_import_record", "email"),
        (8, "imported", None, None),
    ]
    reasons = [str(outcome.reason) for outcome in report.lines]
    assert "line 1" in reasons[1] and "line 1" in reasons[2] and "line 4" in reasons[4]


async def test_what_clashes_with_the_database_is_refused(storage: Storage) -> None:
    await storage.users.create_with_credential(signed_up("taken", "u1"), passkey("u1", b"grace-key-1"))
    await storage.users.set_email("u1", "taken@example.com", verified_at=NOW)
    lines = [
        line(username="Taken"),
        line(username="grace", userHandle=b64url_encode(b"h"), passkeys=[key_of("grace")]),
        line(username="handle", userHandle=b64url_encode(b"u1")),
        line(username="mail", email="TAKEN@example.com", emailVerified=True),
    ]
    report = await imports.import_accounts(context(storage), CLI, lines)
    assert statuses(report) == [
        (1, "refused", "username_taken", "username"),
        (2, "refused", "credential_exists", "passkeys[0].credentialId"),
        (3, "refused", "user_handle_taken", "userHandle"),
        (4, "refused", "email_taken", "email"),
    ]
    assert (await storage.users.stats()).accounts == 1


async def test_an_account_renamed_since_is_still_recognised_by_its_external_id(storage: Storage) -> None:
    ctx = context(storage)
    await imports.import_accounts(ctx, CLI, [line(username="ada", externalId="7")])
    report = await imports.import_accounts(ctx, CLI, [line(username="ada-renamed", externalId="7")])
    assert statuses(report) == [(1, "skipped", "already_imported", None)]


async def test_an_imported_passkey_signs_in_with_the_old_systems_user_handle(storage: Storage) -> None:
    ctx = context(storage)
    authenticator = SoftwareAuthenticator()
    options = {
        "rp": {"id": "localhost", "name": "Old system"},
        "user": {"id": b64url_encode(b"legacy-user-0042"), "name": "ada", "displayName": "Ada"},
        "challenge": b64url_encode(b"old system's challenge"),
        "pubKeyCredParams": [{"type": "public-key", "alg": -7}],
    }
    authenticator.create(options, origin=ORIGIN)  # made on the old system
    (held,) = authenticator.credentials
    pem = serialization.load_der_public_key(held.public_key_spki).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    imported = line(
        username="ada",
        userHandle=b64url_encode(b"legacy-user-0042"),
        passkeys=[{"credentialId": b64url_encode(held.credential_id), "publicKey": pem.decode(), "algorithm": -7}],
    )
    (outcome,) = (await imports.import_accounts(ctx, CLI, [imported])).lines
    assert outcome.status == "imported"

    request, browser = await authentication.begin(ctx, Client())  # discoverable: no username
    assert not request.get("allowCredentials")
    assertion = authenticator.get(request, origin=ORIGIN)
    signed_in = await authentication.complete(ctx, Client(browser_token=browser), assertion)

    assert b64url_decode(assertion["response"]["userHandle"]) == b"legacy-user-0042"
    assert signed_in.user.id == outcome.user_id and signed_in.user.user_handle == b"legacy-user-0042"
    session = await storage.sessions.get(digest(signed_in.session_token))
    assert session is not None and session.user_id == outcome.user_id and session.kind == "passkey"
    stored = await storage.credentials.get(held.credential_id)
    assert stored is not None and stored.sign_count == 1 and stored.last_used_at == NOW


async def test_stats_tell_who_still_depends_on_a_password(storage: Storage) -> None:
    ctx = context(storage)
    await imports.import_accounts(ctx, CLI, ACCOUNTS)
    await storage.users.create_with_credential(signed_up("new", "u-new"), passkey("u-new", b"new-key"))
    grace = await storage.users.by_username("grace")
    assert grace is not None
    await storage.credentials.add(dataclasses.replace(passkey(grace.id, b"upgrade-key"), created_by="upgrade"))
    stats = await imports.migration_stats(ctx)
    assert stats == imports.MigrationStats(
        accounts=6, with_password=3, password_only=2, upgraded=1, schemes={"argon2id": 1, "bcrypt": 2}
    )
    assert stats.to_json() == {
        "accounts": 6,
        "withPassword": 3,
        "passwordOnly": 2,
        "upgraded": 1,
        "schemes": {"argon2id": 1, "bcrypt": 2},
    }


def django_pbkdf2(password: str) -> str:
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), b"saltsalt", 1000)
    return f"pbkdf2_sha256$1000$saltsalt${base64.b64encode(digest).decode()}"


def phc_scrypt(password: str, salt: bytes) -> str:
    digest = hashlib.scrypt(password.encode(), salt=salt, n=16, r=8, p=1, dklen=32)
    encoded = (base64.b64encode(part).decode().rstrip("=") for part in (salt, digest))
    return "$scrypt$ln=4,r=8,p=1$" + "$".join(encoded)


async def test_stats_name_every_scheme_however_many_hashes_share_it(storage: Storage) -> None:
    ctx = context(storage)
    lines = [
        line(username="d1", password=django_pbkdf2("one")),
        line(username="d2", password=django_pbkdf2("two")),
        line(username="s1", password=phc_scrypt("one", b"0123456789abcdef")),
        line(username="s2", password=phc_scrypt("two", b"fedcba9876543210")),
    ]
    assert (await imports.import_accounts(ctx, CLI, lines)).count("imported") == 4
    stats = await imports.migration_stats(ctx)
    assert stats.schemes == {"django_pbkdf2_sha256": 2, "scrypt": 2} and stats.password_only == 4
    d2 = await storage.users.by_username("d2")
    assert d2 is not None
    stored = await storage.passwords.get(d2.id)
    assert stored is not None and verify_password(stored.hash, "two")


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (InvalidImportRecord("x", field="email"), 400, "invalid_import_record"),
        (UserHandleTaken(), 409, "user_handle_taken"),
    ],
)
def test_import_refusals_have_a_status_a_code_and_a_place_in_the_tree(
    error: PasskeyError, status: int, code: str
) -> None:
    assert status_for(error) == status and error.code == code
    [entry] = [row for row in (errors.__doc__ or "").splitlines() if f"── {type(error).__name__} " in row]
    assert entry.split("── ")[1].split()[:2] == [type(error).__name__, code]
