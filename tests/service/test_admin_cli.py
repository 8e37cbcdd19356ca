"""`passgate admin keys`, `passgate users list|show|disable|enable|delete` and `passgate sessions end` through the
command's entry point (in this process: the installed command runs the same `main`), on a SQLite database whose
accounts were made through the services."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from passgate.cli import main
from passgate.service import sessions
from passgate.store.factory import open_storage
from passgate.store.migrate import upgrade
from tests.service.test_admin import context, passkey, person

SECRET = "s" * 43


@dataclass(frozen=True)
class Done:
    returncode: int
    stdout: str
    stderr: str


class Command:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.database_url = f"sqlite:///{directory}/passgate.db"

    def run(self, *arguments: str) -> Done:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main([*arguments, "--database-url", self.database_url])
        return Done(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())

    def json(self, *arguments: str) -> object:
        done = self.run(*arguments, "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def rows(self, query: str) -> list[tuple[object, ...]]:
        engine = sa.create_engine(f"sqlite:///{self.directory}/passgate.db")
        try:
            with engine.connect() as connection:
                return [tuple(row) for row in connection.execute(sa.text(query))]
        finally:
            engine.dispose()


@pytest.fixture
def command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Command:
    for name in [name for name in os.environ if name.startswith("PASSGATE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("PASSGATE_SECRET_KEY", SECRET)
    found = Command(tmp_path)
    upgrade(found.database_url)
    asyncio.run(_accounts(found.database_url))
    return found


async def _accounts(database_url: str) -> None:
    storage, close = open_storage(database_url)
    try:
        for user_id, name in (("ada-id", "ada"), ("bob-id", "bob")):
            await storage.users.create_with_credential(person(user_id, name), passkey(name.encode() * 4, user_id))
            for _ in range(2):
                _token, session = sessions.new_session(context(storage), user_id, credential_id=name.encode() * 4)
                await storage.sessions.create(session)
    finally:
        await close()


def test_admin_keys_are_printed_once_listed_and_revoked(command: Command) -> None:
    added = command.run("admin", "keys", "add", "crm", "--scope", "users:read", "--scope", "events:read")
    assert added.returncode == 0, added.stderr
    assert added.stdout.startswith("pga_") and "not shown again" in added.stderr
    [stored] = command.rows("SELECT name, key_hash, scopes FROM admin_keys")
    assert stored[0] == "crm" and added.stdout.strip() not in str(stored)  # only its hash is kept
    again = command.run("admin", "keys", "add", "crm", "--scope", "users:read")
    assert again.returncode == 2 and "in use" in again.stderr
    table = command.run("admin", "keys", "list").stdout.splitlines()
    assert table[0].split() == ["NAME", "SCOPES", "CREATED", "REVOKED"] and table[1].split()[:3] == [
        "crm",
        "users:read",
        "events:read",
    ]
    assert command.run("admin", "keys", "revoke", "crm").returncode == 0
    assert command.json("admin", "keys", "list")["revokedAt"] is not None  # type: ignore[index]


def test_users_are_listed_shown_disabled_enabled_and_deleted(command: Command) -> None:
    table = command.run("users", "list").stdout.splitlines()
    assert table[0].split() == ["ID", "USERNAME", "EMAIL", "CREATED", "DISABLED"]
    assert [line.split()[1] for line in table[1:]] == ["ada", "bob"]
    found = command.run("users", "list", "--search", "BOB@example", "--json").stdout.splitlines()
    assert [json.loads(line)["username"] for line in found] == ["bob"]
    shown = command.json("users", "show", "ada")
    assert isinstance(shown, dict) and len(shown["passkeys"]) == 1 and len(shown["sessions"]) == 2
    assert "passkeys (1):" in command.run("users", "show", "ada-id").stdout  # by id too, as a table

    assert command.json("users", "disable", "ada") == {
        "userId": "ada-id",
        "username": "ada",
        "disabled": True,
        "sessionsEnded": 2,
    }
    assert command.rows("SELECT disabled_at IS NOT NULL FROM users WHERE id = 'ada-id'") == [(1,)]
    assert command.rows("SELECT count(*) FROM sessions WHERE user_id = 'ada-id'") == [(0,)]
    assert command.run("users", "enable", "ada").stdout.strip() == "passgate: enabled 'ada'"
    assert command.rows("SELECT disabled_at FROM users WHERE id = 'ada-id'") == [(None,)]

    refused = command.run("users", "delete", "ada")
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert command.run("users", "delete", "ada", "--yes").returncode == 0
    assert command.rows("SELECT id FROM users") == [("bob-id",)]
    details = command.rows("SELECT type, user_id, detail FROM events WHERE type LIKE 'admin.user.%' ORDER BY id")
    assert [row[0] for row in details] == ["admin.user.disable", "admin.user.enable", "admin.user.delete"]
    assert all(json.loads(str(row[2]))["admin_key"] == "cli" for row in details)
    assert all(row[1] != "ada-id" and str(row[1]).startswith("anon_") for row in details)


def test_sessions_end_one_or_all(command: Command) -> None:
    shown = command.json("users", "show", "bob")
    assert isinstance(shown, dict)
    first = shown["sessions"][0]["sid"]
    assert command.json("sessions", "end", "bob", "--session", first) == {"userId": "bob-id", "sessionsEnded": 1}
    assert command.run("sessions", "end", "bob", "--session", first).returncode == 1
    assert command.run("sessions", "end", "bob").stdout.strip() == "passgate: ended 1 session(s) of 'bob'"
    assert command.rows("SELECT count(*) FROM sessions WHERE user_id = 'bob-id'") == [(0,)]
    types = command.rows("SELECT type, outcome, reason FROM events WHERE type LIKE 'admin.s%' ORDER BY id")
    assert types == [
        ("admin.session.end", "success", None),
        ("admin.session.end", "failure", "not_found"),
        ("admin.sign_out", "success", None),
    ]


def test_ending_sessions_needs_the_servers_secret_key(command: Command, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PASSGATE_SECRET_KEY")
    done = command.run("sessions", "end", "bob")
    assert done.returncode == 2 and "secret_key" in done.stderr
    assert command.rows("SELECT count(*) FROM sessions WHERE user_id = 'bob-id'") == [(2,)]
