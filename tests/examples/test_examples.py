"""The example apps in examples/, each a real process beside a real `passgate serve`, driven in Chromium.

A new person opens the example, is sent to Passgate's sign-in page, creates an account with the virtual
authenticator's passkey and comes back signed in (the code flow of passgate-client's login routes); the protected
page is refused before and served after. Then they sign out of the example and of Passgate, and sign in again with
the same passkey, coming back to the page they asked for.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from passgate.config import load_settings
from tests.browser.conftest import SERVER_START_SECONDS, Server, Tab
from tests.services import PassgateProcess, ServerFailed, free_port, passgate_command, wait_for_port

pytestmark = pytest.mark.browser

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SECRET = "a-long-random-client-secret-for-the-example-app"


def example_command(name: str, port: int) -> list[str]:
    """How examples/README.md runs each example, on 127.0.0.1:port."""
    if name == "fastapi":
        app_dir = str(EXAMPLES / "fastapi_app")
        return [sys.executable, "-m", "uvicorn", "--app-dir", app_dir, "main:app", "--port", str(port)]
    if name == "flask":
        app = str(EXAMPLES / "flask_app" / "app.py")
        return [sys.executable, "-m", "flask", "--app", app, "run", "--host", "127.0.0.1", "--port", str(port)]
    manage = str(EXAMPLES / "django_app" / "manage.py")
    return [sys.executable, manage, "runserver", "--noreload", f"127.0.0.1:{port}"]


@dataclass(frozen=True, kw_only=True)
class Example:
    name: str
    url: str
    log: Path


@dataclass(frozen=True, kw_only=True)
class Running:
    server: Server
    example: Example


@pytest.fixture(params=["fastapi", "flask", "django"])
def running(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Running]:
    """`passgate serve` with the example registered as a first-party client, and the example app, started together."""
    name: str = request.param
    example_port, passgate_port = free_port(), free_port()
    example_url, issuer = f"http://localhost:{example_port}", f"http://localhost:{passgate_port}"
    client_id = f"{name}-example"
    config = tmp_path / "passgate.toml"
    config.write_text(
        "[[oidc.clients]]\n"
        f'client_id = "{client_id}"\n'
        f'client_secret = "{SECRET}"\n'
        f'redirect_uris = ["{example_url}/auth/callback"]\n'
        f'post_logout_redirect_uris = ["{example_url}/"]\n'
        "first_party = true\n"
    )
    example_log = tmp_path / f"{name}.log"
    environment = {
        **os.environ,
        "PASSGATE_ISSUER": issuer,
        "PASSGATE_CLIENT_ID": client_id,
        "PASSGATE_CLIENT_SECRET": SECRET,
        "APP_URL": example_url,
        "PYTHONUNBUFFERED": "1",
    }
    with example_log.open("ab") as log:
        app = subprocess.Popen(
            example_command(name, example_port), stdout=log, stderr=subprocess.STDOUT, env=environment
        )
    command = passgate_command(passgate_port, database_url=f"sqlite:///{tmp_path}/passgate.db", origin=issuer)
    passgate = PassgateProcess(
        port=passgate_port, log=tmp_path / "server.log", command=[*command, "--config", str(config)]
    )
    try:
        try:
            passgate.start(timeout=SERVER_START_SECONDS)
            wait_for_port(example_port, timeout=SERVER_START_SECONDS)
        except (ServerFailed, TimeoutError) as exc:
            pytest.fail(f"{exc}\n{name} example's log:\n{example_log.read_text(errors='replace')[-3000:]}")
        yield Running(
            server=Server(url=issuer, process=passgate.process, log=passgate.log),
            example=Example(name=name, url=example_url, log=example_log),
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


@pytest.fixture
def example(running: Running) -> Example:
    return running.example


def text_of(tab: Tab, selector: str) -> str | None:
    return tab.page.locator(selector).text_content()


def back_at(tab: Tab, example: Example, path: str) -> None:
    try:
        tab.page.wait_for_url(example.url + path)
    except PlaywrightTimeoutError:
        pytest.fail(
            f"still at {tab.page.url}, not {example.url}{path}\n{tab.page.content()[:2000]}\n"
            f"example's log:\n{example.log.read_text(errors='replace')[-3000:]}\n"
            f"Passgate's log:\n{tab.server.log.read_text(errors='replace')[-3000:]}"
        )


def sign_up_from_the_example(tab: Tab, example: Example) -> None:
    """Sign in on the example, which sends a new person to Passgate's sign-in page: create an account there."""
    page = tab.page
    page.goto(example.url + "/")
    page.click("#sign-in")
    page.wait_for_url(f"{tab.server.url}/signin?**")
    page.click("#signup-link")
    page.fill("#username", "ada")
    page.fill("#display-name", "Ada Lovelace")
    page.click("#signup-button")
    back_at(tab, example, "/")  # the sign-up page follows the authorization request it was sent from


def sign_in_with_the_passkey(tab: Tab, example: Example) -> None:
    """From the example's protected page: Sign in, then Passgate's sign-in page with the passkey."""
    tab.authenticator.set_presence(False)  # the sign-in page's autofill request waits
    tab.forget_calls()
    assert tab.page.goto(example.url + "/protected").status == 401
    tab.page.click("#sign-in")
    tab.page.wait_for_url(f"{tab.server.url}/signin?**")
    tab.wait_until(lambda: len(tab.calls("called", mediation="conditional")) == 1, what="the autofill request")
    tab.authenticator.set_presence(True)
    # With presence back, the pending autofill request may sign in before the click lands: either way it is the
    # passkey that signs the person in on this page.
    try:
        tab.page.click("#signin-button", timeout=5000)
    except PlaywrightTimeoutError:
        assert tab.page.url.startswith(example.url)
    back_at(tab, example, "/protected")


def test_the_shipped_configuration_registers_each_example_where_it_runs() -> None:
    settings = load_settings({"database_url": "sqlite:///:memory:"}, config_file=EXAMPLES / "passgate.toml")
    clients = {client["client_id"]: client for client in settings.oidc_clients}

    for name, port in (("fastapi", 8001), ("flask", 8002), ("django", 8003)):
        client = clients[f"{name}-example"]
        assert client["redirect_uris"] == [f"http://localhost:{port}/auth/callback"]
        assert client["post_logout_redirect_uris"] == [f"http://localhost:{port}/"]
        assert client["first_party"] is True


def test_example_app_signs_in_and_out_with_passgate(tab: Tab, example: Example) -> None:
    page = tab.page
    refused = page.goto(example.url + "/protected")
    assert refused is not None and refused.status == 401
    assert page.locator("#protected-for").count() == 0

    sign_up_from_the_example(tab, example)
    assert text_of(tab, "#signed-in-as") == "Signed in as ada"
    served = page.goto(example.url + "/protected")
    assert served is not None and served.status == 200
    assert text_of(tab, "#protected-for") == "Only for ada"

    page.goto(example.url + "/")
    page.click("#sign-out")
    back_at(tab, example, "/")
    assert page.locator("#sign-in").is_visible() and page.locator("#signed-in-as").count() == 0
    after = page.goto(example.url + "/protected")
    assert after is not None and after.status == 401

    # The example signed out through Passgate's end_session_endpoint: Passgate's session ended too, so the next
    # sign-in is a passkey ceremony.
    assert tab.session_status() == 401
    sign_in_with_the_passkey(tab, example)
    assert text_of(tab, "#protected-for") == "Only for ada"
    page.goto(example.url + "/")
    assert text_of(tab, "#signed-in-as") == "Signed in as ada"
