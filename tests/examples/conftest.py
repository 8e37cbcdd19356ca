"""The browser tests' Chromium, shared by this module's tests, and their tab with its virtual authenticator."""

from tests.browser.conftest import browser, playwright_driver, tab  # noqa: F401 - fixtures
