"""The two ceremonies as a browser runs them: begin, the passkey answers the options, complete.

A ceremony returns normally when the server answered 200 with `verified: true` to both requests, and raises
CeremonyFailed otherwise (the message is the error kind counted in the results). Authenticators have no
signature counter (sign_count=None): a user may sign in from two virtual browsers at once, as a synced
passkey may.
"""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass, field
from typing import Any

from bench.browsers import Browser, Reply
from bench.settings import ORIGIN
from passgate.testing import SoftwareAuthenticator

REGISTER_BEGIN = "/auth/passkey/register/begin"
REGISTER_COMPLETE = "/auth/passkey/register/complete"
LOGIN_BEGIN = "/auth/passkey/login/begin"
LOGIN_COMPLETE = "/auth/passkey/login/complete"


class CeremonyFailed(Exception):
    """The server refused a step; str() is a short kind such as 'login/complete 400 challenge_not_found'."""


def _checked(step: str, reply: Reply, *, verified: bool) -> Any:
    if reply.status != 200 or (verified and not (isinstance(reply.data, dict) and reply.data.get("verified"))):
        code = reply.data.get("error") if isinstance(reply.data, dict) else None
        raise CeremonyFailed(f"{step} {reply.status} {code or ''}".strip())
    return reply.data


@dataclass
class Population:
    """Registered users that can sign in: their passkeys (software authenticators), used round robin."""

    authenticators: list[SoftwareAuthenticator] = field(default_factory=list)
    _turn: itertools.count[int] = field(default_factory=itertools.count)

    def __len__(self) -> int:
        return len(self.authenticators)

    def next(self) -> SoftwareAuthenticator:
        return self.authenticators[next(self._turn) % len(self.authenticators)]


@dataclass
class SignUp:
    """Sign-up ceremonies: each a new username, a new passkey and a new challenge; new users join `population`."""

    population: Population
    prefix: str = field(default_factory=lambda: secrets.token_hex(4))
    _numbers: itertools.count[int] = field(default_factory=itertools.count)

    async def __call__(self, browser: Browser) -> None:
        username = f"bench-{self.prefix}-{next(self._numbers)}"
        options = _checked(
            "register/begin",
            await browser.post(REGISTER_BEGIN, {"username": username, "displayName": username}),
            verified=False,
        )
        authenticator = SoftwareAuthenticator(sign_count=None)
        credential = authenticator.create(options, origin=ORIGIN)
        _checked("register/complete", await browser.post(REGISTER_COMPLETE, credential), verified=True)
        self.population.authenticators.append(authenticator)


@dataclass
class SignIn:
    """Discoverable sign-in ceremonies: login/begin with no body, the passkey signs, login/complete."""

    population: Population

    async def __call__(self, browser: Browser) -> None:
        authenticator = self.population.next()
        options = _checked("login/begin", await browser.post(LOGIN_BEGIN), verified=False)
        assertion = authenticator.get(options, origin=ORIGIN)
        _checked("login/complete", await browser.post(LOGIN_COMPLETE, assertion), verified=True)
