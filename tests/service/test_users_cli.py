"""`passgate users import` and `passgate users stats` through the installed command, on a SQLite database of
their own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PASSGATE = Path(sys.executable).parent / "passgate"
VECTORS = Path(__file__).parent.parent / "vectors" / "imports"


class Users:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.database_url = f"sqlite:///{directory}/passgate.db"
        self.environment = {key: value for key, value in os.environ.items() if not key.startswith("PASSGATE_")}

    def run(self, *arguments: str) -> subprocess.CompletedProcess[str]:
        command = [str(PASSGATE), "users", *arguments, "--database-url", self.database_url]
        return subprocess.run(
            command, env=self.environment, cwd=self.directory, capture_output=True, text=True, check=False, timeout=120
        )

    def stats(self) -> dict[str, object]:
        shown = self.run("stats", "--json")
        assert shown.returncode == 0, shown.stderr
        return dict(json.loads(shown.stdout))


@pytest.fixture
def users(tmp_path: Path) -> Users:
    return Users(tmp_path)


def test_import_reports_each_line_and_exits_1_when_some_were_refused(users: Users) -> None:
    done = users.run("import", str(VECTORS / "malformed.jsonl"))
    assert done.returncode == 1, done.stderr
    shown = done.stdout.splitlines()
    assert shown[0] == "line 1: imported ok1"
    assert shown[1].startswith("line 2: refused (emial): Unknown field emial.")
    assert any(row.startswith("line 3: refused (password):") for row in shown)
    assert any(row.startswith("line 8: refused OK1 (username):") and "line 1" in row for row in shown)
    assert not any(row.startswith("line 4:") for row in shown)  # blank
    assert shown[-1] == "passgate: 2 imported, 0 skipped, 6 refused"
    assert users.stats()["accounts"] == 2  # the lines that were fine are in


def test_import_again_changes_nothing_and_a_dry_run_writes_nothing(users: Users) -> None:
    accounts = str(VECTORS / "accounts.jsonl")
    dry = users.run("import", accounts, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "passgate: 5 imported, 0 skipped, 0 refused (dry run: nothing was written" in dry.stdout
    assert users.stats()["accounts"] == 0

    first = users.run("import", accounts, "--json")
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert (report["dryRun"], report["imported"], report["skipped"], report["refused"]) == (False, 5, 0, 0)
    assert "5 imported" in first.stderr

    again = users.run("import", accounts, "--json")
    assert again.returncode == 0, again.stderr
    rerun = json.loads(again.stdout)
    assert [(row["line"], row["status"], row["code"]) for row in rerun["lines"]] == [
        (number, "skipped", "already_imported") for number in range(1, 6)
    ]
    assert [row["userId"] for row in rerun["lines"]] == [row["userId"] for row in report["lines"]]
    assert users.stats()["accounts"] == 5


def test_an_unreadable_file_exits_2(users: Users) -> None:
    missing = users.run("import", str(users.directory / "nothing.jsonl"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    directory = users.run("import", str(users.directory))
    assert directory.returncode == 2 and "cannot read" in directory.stderr
    assert users.run("import").returncode == 2  # no file: bad usage


def test_stats_count_accounts_passwords_and_schemes(users: Users) -> None:
    empty = users.run("stats")
    assert empty.returncode == 0, empty.stderr
    assert "accounts: 0" in empty.stdout and "password hashes by scheme: none" in empty.stdout
    assert users.run("import", str(VECTORS / "accounts.jsonl")).returncode == 0
    shown = users.run("stats")
    assert shown.stdout.splitlines() == [
        "accounts: 5",
        "with a password: 3",
        "depending on a password (no passkey): 2",
        "moved (made a passkey after a password sign-in): 0",
        "password hashes by scheme:",
        "  argon2id: 1",
        "  bcrypt: 2",
    ]
    assert users.stats() == {
        "accounts": 5,
        "withPassword": 3,
        "passwordOnly": 2,
        "upgraded": 0,
        "schemes": {"argon2id": 1, "bcrypt": 2},
    }
