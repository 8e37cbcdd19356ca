"""examples/app_api: an app with its own users (its own SQLite table) adds a passkey to one of them through the
app passkey API in Chromium, signs in with it, and verifies the sign-in token on its server; its API key rotates
without a failed request; another app's key sees nothing of its users."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from passgate_client import PasskeyApi, PasskeyApiError
from tests.browser.conftest import SERVER_START_SECONDS, Server, Tab
from tests.services import PassgateProcess, ServerFailed, free_port, passgate_command, wait_for_port

pytestmark = pytest.mark.browser

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "app_api"


@dataclass(frozen=True, kw_only=True)
class Example:
    url: str
    log: Path
    users: Path
    app_id: str
    secret: str
    key_file: Path


def apps_cli(database: str, *arguments: str) -> str:
    environment = {name: value for name, value in os.environ.items() if not name.startswith("PASSGATE_")}
    done = subprocess.run(
        [sys.executable, "-m", "passgate", "apps", *arguments, "--database-url", database],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=True,
    )
    return done.stdout


def printed(output: str, name: str) -> str:
    found = re.search(rf"^{name}: (\S+)$", output, re.MULTILINE)
    assert found, output
    return found.group(1)


@dataclass(frozen=True, kw_only=True)
class Running:
    server: Server
    example: Example
    database: str


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    example_port, passgate_port = free_port(), free_port()
    example_url, passgate_url = f"http://localhost:{example_port}", f"http://localhost:{passgate_port}"
    database = f"sqlite:///{tmp_path}/passgate.db"
    added = apps_cli(database, "add", "App API example", "--origin", example_url)
    app_id, secret = printed(added, "app_id"), printed(added, "api_key")
    users = tmp_path / "example-users.db"
    key_file = tmp_path / "api-key"
    key_file.write_text(secret)
    example_log = tmp_path / "example.log"
    environment = {
        **os.environ,
        "PASSGATE_URL": passgate_url,
        "PASSGATE_APP_ID": app_id,
        "PASSGATE_API_KEY_FILE": str(key_file),
        "APP_DATABASE": str(users),
        "PYTHONUNBUFFERED": "1",
    }
    command = [sys.executable, "-m", "uvicorn", "--app-dir", str(EXAMPLE), "main:app", "--port", str(example_port)]
    with example_log.open("ab") as log:
        app = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=environment)
    passgate = PassgateProcess(
        port=passgate_port,
        log=tmp_path / "server.log",
        command=passgate_command(passgate_port, database_url=database, origin=passgate_url),
    )
    try:
        try:
            passgate.start(timeout=SERVER_START_SECONDS)
            wait_for_port(example_port, timeout=SERVER_START_SECONDS)
        except (ServerFailed, TimeoutError) as exc:
            pytest.fail(f"{exc}\nexample's log:\n{example_log.read_text(errors='replace')[-3000:]}")
        yield Running(
            server=Server(url=passgate_url, process=passgate.process, log=passgate.log),
            example=Example(
                url=example_url, log=example_log, users=users, app_id=app_id, secret=secret, key_file=key_file
            ),
            database=database,
        )
    finally:
        passgate.stop()
        app.terminate()
        try:
            app.wait(timeout=10)
        except subprocess.TimeoutExpired:
            app.kill()
            app.wait()


@pytest.fixture
def server(running: Running) -> Server:
    return running.server


def status_is(tab: Tab, running: Running, text: str) -> None:
    try:
        tab.page.wait_for_function(
            "text => document.getElementById('status')?.textContent === text", arg=text, timeout=10_000
        )
    except Exception:
        pytest.fail(
            f"#status is {tab.page.locator('#status').text_content()!r}, not {text!r}\n"
            f"example's log:\n{running.example.log.read_text(errors='replace')[-3000:]}\n"
            f"Passgate's log:\n{running.server.log.read_text(errors='replace')[-3000:]}"
        )


def test_the_app_adds_a_passkey_to_its_own_user_and_signs_in_with_it(tab: Tab, running: Running) -> None:
    example, page = running.example, tab.page
    page.goto(example.url + "/")
    page.fill("#username", "ada")
    page.fill("#password", "correct horse")
    page.click("#password-sign-in")
    page.wait_for_url(example.url + "/")
    assert page.locator("#signed-in-as").text_content() == "Signed in as ada"
    (user_id,) = sqlite3.connect(example.users).execute("SELECT id FROM users WHERE username = 'ada'").fetchone()

    page.click("#add-passkey")
    status_is(tab, running, "Passkey added")
    assert len(tab.authenticator.credentials()) == 1

    # Rotate: a second key, then the first revoked; the app's server goes on with the new key.
    rotated = printed(apps_cli(running.database, "keys", "add", example.app_id), "api_key")
    old = PasskeyApi(running.server.url, example.secret)
    new = PasskeyApi(running.server.url, rotated)
    assert [p["userId"] for p in old.list_passkeys(str(user_id))] == [str(user_id)]
    assert [p["userId"] for p in new.list_passkeys(str(user_id))] == [str(user_id)]
    listing = apps_cli(running.database, "list")
    first_key = re.findall(r"key: (key_\S+)", listing)[0]
    example.key_file.write_text(rotated)  # the app's server uses the new key from now on
    apps_cli(running.database, "keys", "revoke", example.app_id, first_key)
    with pytest.raises(PasskeyApiError) as revoked:
        old.list_passkeys(str(user_id))
    assert revoked.value.code == "invalid_api_key"

    # Another app's key sees nothing of this app's users.
    other = printed(apps_cli(running.database, "add", "Other", "--origin", "http://other.localhost:1"), "api_key")
    with pytest.raises(PasskeyApiError) as hidden:
        PasskeyApi(running.server.url, other).list_passkeys(str(user_id))
    assert hidden.value.status == 404

    page.click("#sign-out")
    page.wait_for_url(example.url + "/")
    assert page.locator("#signed-in-as").count() == 0
    page.click("#passkey-sign-in")
    page.wait_for_selector("#signed-in-as")
    assert page.locator("#signed-in-as").text_content() == "Signed in as ada"
