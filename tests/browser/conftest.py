"""Fixtures for the browser tests: a real Passgate server, Debian's Chromium, and its virtual authenticator.

Every test gets its own server (fresh SQLite database) and its own browser context; the browser itself is
shared by the session because launching Chromium is the slow part.

The `server` fixture runs `passgate serve` in a subprocess. `serve_in_process` runs the same application in
a thread of the test process instead, with a clock the test can move forward (step-up windows, expiry)
without waiting.
"""

from __future__ import annotations

import base64
import contextlib
import http.server
import logging
import queue
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import uvicorn
from playwright.sync_api import Browser, BrowserContext, CDPSession, Page, Playwright, expect, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.services import PassgateProcess, ServerFailed, free_port, passgate_command

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SERVER_START_SECONDS = 20

# A platform authenticator (like Touch ID or Windows Hello) that makes discoverable credentials and
# verifies its user; automaticPresenceSimulation stands in for the person touching it.
PLATFORM_AUTHENTICATOR = {
    "protocol": "ctap2",
    "transport": "internal",
    "hasResidentKey": True,
    "hasUserVerification": True,
    "isUserVerified": True,
    "automaticPresenceSimulation": True,
}

# A roaming authenticator (a USB security key). Chromium routes a ceremony to whichever virtual
# authenticator can serve it, so this one can sit beside the platform authenticator as a second device.
SECURITY_KEY = {**PLATFORM_AUTHENTICATOR, "transport": "usb"}

# Spies on navigator.credentials without changing it: every create()/get() is passed through
# unchanged, and its mediation and outcome are reported to the test (window.__recordWebAuthn is an
# exposed Python function, so the record survives the page navigating away).
RECORD_WEBAUTHN_CALLS = """
(() => {
  if (!window.isSecureContext || !navigator.credentials) return;
  let next = 0;
  for (const method of ["create", "get"]) {
    const original = navigator.credentials[method].bind(navigator.credentials);
    navigator.credentials[method] = (options = {}) => {
      const call = { call: `${performance.timeOrigin}-${next++}`, method, mediation: options.mediation ?? "optional" };
      window.__recordWebAuthn({ ...call, event: "called" });
      const promise = original(options);
      promise.then(
        () => window.__recordWebAuthn({ ...call, event: "resolved" }),
        (error) => window.__recordWebAuthn({ ...call, event: "rejected", error: error?.name ?? String(error) }),
      );
      return promise;
    };
  }
})();
"""

# Assertions wait as long as actions do (10 s): on a busy machine a page may need more than Playwright's 5 s.
expect.set_options(timeout=10_000)


@dataclass(frozen=True, kw_only=True)
class Server:
    url: str
    """The origin pages are visited at: http://localhost:<port> (rp id `localhost`)."""
    process: subprocess.Popen[bytes] | None
    """None when the server runs in the test's own process (serve_in_process)."""
    log: Path


@dataclass
class Clock:
    """The server's clock in serve_in_process: real time, plus however far the test has moved it on."""

    offset: timedelta = field(default_factory=timedelta)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta)


@dataclass(frozen=True, kw_only=True)
class VirtualAuthenticator:
    """One of Chromium's virtual authenticators, driven over the DevTools protocol."""

    cdp: CDPSession
    authenticator_id: str

    def credentials(self) -> list[dict[str, Any]]:
        result = self.cdp.send("WebAuthn.getCredentials", {"authenticatorId": self.authenticator_id})
        credentials: list[dict[str, Any]] = result["credentials"]
        return credentials

    def credential_ids(self) -> list[str]:
        """The credential ids, base64url as the server and the page write them (CDP gives plain base64)."""
        return [b64_to_b64url(credential["credentialId"]) for credential in self.credentials()]

    def set_user_verified(self, verified: bool) -> None:
        self.cdp.send(
            "WebAuthn.setUserVerified", {"authenticatorId": self.authenticator_id, "isUserVerified": verified}
        )

    def set_presence(self, present: bool) -> None:
        """Whether the simulated person touches the authenticator when asked; False leaves requests pending."""
        self.cdp.send(
            "WebAuthn.setAutomaticPresenceSimulation",
            {"authenticatorId": self.authenticator_id, "enabled": present},
        )

    def remove(self) -> None:
        self.cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": self.authenticator_id})


@dataclass(kw_only=True)
class Tab:
    """A page of a fresh browser context, pointed at the test's server, with a virtual authenticator."""

    page: Page
    context: BrowserContext
    cdp: CDPSession
    authenticator: VirtualAuthenticator
    server: Server
    webauthn_calls: list[dict[str, Any]] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def goto(self, path: str) -> None:
        self.page.goto(self.server.url + path)

    def wait_for_path(self, path: str) -> None:
        """Wait for the page to reach `path`; on timeout, fail with what the page and the server said."""
        try:
            self.page.wait_for_url(f"**{path}")
        except PlaywrightTimeoutError:
            message = self.page.locator("#message").text_content(timeout=1000)
            pytest.fail(
                f"still at {self.page.url}, not {path}; #message: {message!r}\n"
                f"WebAuthn calls: {self.webauthn_calls}\nserver log:\n{self.server.log.read_text()[-3000:]}"
            )

    def add_authenticator(self, options: dict[str, Any] = PLATFORM_AUTHENTICATOR) -> VirtualAuthenticator:
        result = self.cdp.send("WebAuthn.addVirtualAuthenticator", {"options": options})
        return VirtualAuthenticator(cdp=self.cdp, authenticator_id=result["authenticatorId"])

    def add_security_key(self) -> VirtualAuthenticator:
        """A second device beside the tab's platform authenticator (Chromium allows one platform one per tab)."""
        return self.add_authenticator(SECURITY_KEY)

    def session_status(self) -> int:
        """GET /auth/session with the browser's cookies: 200 signed in, 401 signed out."""
        return self.context.request.get(self.server.url + "/auth/session").status

    def session(self) -> dict[str, Any]:
        response = self.context.request.get(self.server.url + "/auth/session")
        assert response.status == 200, response.text()
        body: dict[str, Any] = response.json()
        return body

    def wait_until(self, predicate: Callable[[], bool], *, what: str, timeout_ms: int = 5000) -> None:
        """Wait for something the page reports through exposed functions.

        Waits with page.wait_for_timeout, not time.sleep: Playwright's sync API delivers the page's
        calls only while one of its own calls is running.
        """
        for _ in range(timeout_ms // 50):
            if predicate():
                return
            self.page.wait_for_timeout(50)
        if not predicate():
            pytest.fail(f"timed out after {timeout_ms} ms waiting for {what}")

    def forget_calls(self) -> None:
        self.webauthn_calls.clear()

    def calls(self, event: str, *, method: str | None = None, mediation: str | None = None) -> list[dict[str, Any]]:
        return [
            call
            for call in self.webauthn_calls
            if call["event"] == event
            and (method is None or call["method"] == method)
            and (mediation is None or call["mediation"] == mediation)
        ]


def sign_up(tab: Tab, username: str, display_name: str) -> None:
    tab.goto("/signup")
    tab.page.fill("#username", username)
    tab.page.fill("#display-name", display_name)
    tab.page.click("#signup-button")
    tab.wait_for_path("/account")


def sign_out(tab: Tab) -> None:
    """Sign out from /account; the page then shows /signin, whose autofill request is left pending.

    Presence goes off first: Chromium's virtual authenticator would otherwise answer /signin's
    conditional request at once and sign the user straight back in (see the autofill test).
    """
    tab.authenticator.set_presence(False)
    tab.page.click("#signout-button")
    tab.page.wait_for_url("**/signin")
    assert tab.session_status() == 401


def b64_to_b64url(text: str) -> str:
    return base64.urlsafe_b64encode(base64.b64decode(text)).rstrip(b"=").decode()


# Screenshots of the pages, written as test artefacts inside the repository (git-ignored).
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"


def screenshot(tab: Tab, name: str) -> None:
    """A full-page screenshot of the tab as it is now, to SCREENSHOTS/`name`.png."""
    SCREENSHOTS.mkdir(exist_ok=True)
    tab.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.fixture
def clock() -> Clock:
    """A clock the test moves; for servers started with serve_in_process."""
    return Clock()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    with passgate_serve(tmp_path, log_level="info") as running:
        yield running


@contextlib.contextmanager
def passgate_serve(tmp_path: Path, *, config: str | None = None, **options: Any) -> Iterator[Server]:
    """`passgate serve` in a subprocess on a fresh SQLite file in `tmp_path`, at http://localhost:<free port>;
    `config` is the text of its configuration file, `options` those of `tests.services.passgate_command`."""
    port = free_port()
    origin = f"http://localhost:{port}"
    command = passgate_command(port, database_url=f"sqlite:///{tmp_path}/passgate.db", origin=origin, **options)
    if config is not None:
        (tmp_path / "passgate.toml").write_text(config)
        command += ["--config", str(tmp_path / "passgate.toml")]
    process = PassgateProcess(port=port, log=tmp_path / "server.log", command=command)
    try:
        process.start(timeout=SERVER_START_SECONDS)
    except ServerFailed as exc:
        process.stop()
        pytest.fail(str(exc))
    try:
        yield Server(url=origin, process=process.process, log=process.log)
    finally:
        process.stop()


class Loopback(http.server.ThreadingHTTPServer):
    """An application's redirect URI on the loopback interface (RFC 8252), a real HTTP server: keeps the URL of
    each GET made to it (`received`) and each form POSTed to it (`posted`), and answers "signed in"."""

    def __init__(self, host: str) -> None:
        super().__init__(("127.0.0.1", 0), _LoopbackHandler)
        self.host = host
        self.received: queue.Queue[str] = queue.Queue()
        self.posted: queue.Queue[dict[str, str]] = queue.Queue()

    @property
    def uri(self) -> str:
        return f"http://{self.host}:{self.server_address[1]}/callback"


class _LoopbackHandler(http.server.BaseHTTPRequestHandler):
    server: Loopback

    def do_GET(self) -> None:
        if self.path == "/favicon.ico":  # the browser's own request, not the application's
            self.send_response(404)
            self.end_headers()
            return
        self.server.received.put(f"http://{self.server.host}:{self.server.server_address[1]}{self.path}")
        self._signed_in()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        self.server.posted.put({name: values[0] for name, values in parse_qs(body).items()})
        self._signed_in()

    def _signed_in(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"signed in")

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def loopback(host: str = "localhost") -> Iterator[Loopback]:
    """A running `Loopback` redirect URI, named `host` in its URI."""
    receiver = Loopback(host)
    thread = threading.Thread(target=receiver.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.shutdown()
        receiver.server_close()


@contextlib.contextmanager
def serve_in_process(tmp_path: Path, clock: Clock, **settings: Any) -> Iterator[Server]:
    """Passgate's application on a fresh, migrated SQLite file, served by uvicorn in a thread of this process.

    `settings` are Passgate settings (e.g. `smtp_host`); the server's clock is `clock`.
    """
    from passgate.config import load_settings
    from passgate.store.migrate import upgrade
    from passgate.web.app import create_app

    database_url = f"sqlite:///{tmp_path}/passgate.db"
    upgrade(database_url)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    origin = f"http://localhost:{port}"
    config = load_settings({"rp_id": "localhost", "origins": [origin], "database_url": database_url, **settings})
    log = tmp_path / "server.log"
    handler = logging.FileHandler(log)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    loggers = [logging.getLogger(name) for name in ("passgate", "uvicorn.error")]
    for logger in loggers:
        logger.addHandler(handler)
    server = uvicorn.Server(
        uvicorn.Config(create_app(config, clock=clock), log_config=None, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + SERVER_START_SECONDS
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                pytest.fail(f"the in-process server did not start:\n{log.read_text()}")
            time.sleep(0.02)
        yield Server(url=origin, process=None, log=log)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()
        for logger in loggers:
            logger.removeHandler(handler)
        handler.close()


# Module scope: Playwright's sync API keeps an event loop running in this thread while it is open, and
# the async tests of other packages need the thread's loop free.
@pytest.fixture(scope="module")
def playwright_driver() -> Iterator[Playwright]:
    with sync_playwright() as instance:
        yield instance


@pytest.fixture(scope="module")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"Debian's Chromium is missing at {CHROMIUM} (apt-get install chromium)")
    browser = playwright_driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@contextlib.contextmanager
def open_tab(browser: Browser, server: Server) -> Iterator[Tab]:
    """A fresh browser context on `server` with one virtual platform authenticator, its WebAuthn calls recorded."""
    context = browser.new_context()
    context.set_default_timeout(10_000)
    calls: list[dict[str, Any]] = []

    def record_webauthn_call(call: dict[str, Any]) -> None:
        calls.append(call)

    context.expose_function("__recordWebAuthn", record_webauthn_call)
    context.add_init_script(RECORD_WEBAUTHN_CALLS)
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    result = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": PLATFORM_AUTHENTICATOR})
    authenticator = VirtualAuthenticator(cdp=cdp, authenticator_id=result["authenticatorId"])
    tab = Tab(page=page, context=context, cdp=cdp, authenticator=authenticator, server=server, webauthn_calls=calls)
    page.on("pageerror", lambda error: tab.page_errors.append(str(error)))
    yield tab
    context.close()
    # An uncaught exception in pages.js is a bug even when the test's own checks passed.
    assert tab.page_errors == [], f"uncaught errors in the page: {tab.page_errors}"


@pytest.fixture
def tab(browser: Browser, server: Server) -> Iterator[Tab]:
    with open_tab(browser, server) as opened:
        yield opened
