"""The FIDO2 server conformance cases (FIDO Conformance Tools v1.5.2), as data the tests and the docs share.

Each case records what the 2021 tool expects and what Passgate answers; where they differ, the case is a documented
deviation (docs/conformance.md), and the reason is WebAuthn Level 3 or a real authenticator's response.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

import httpx

from tests.conformance.conftest import Models, Tool, ok

Outcome = Literal["ok", "failed"]
Build = Callable[[Tool, Models], Awaitable[httpx.Response]]
# The metadata service cases build a server each: they take other arguments.
AnyBuild = Callable[..., Awaitable[httpx.Response]]


@dataclass(frozen=True)
class Case:
    checks: str  # what the case sends, in short
    tool: Outcome  # what the 2021 tool expects of a server
    passgate: Outcome  # what Passgate answers
    build: AnyBuild
    why: str = ""  # for a deviation: why Passgate answers otherwise

    @property
    def deviation(self) -> bool:
        return self.tool != self.passgate


def passes(checks: str, build: AnyBuild) -> Case:
    return Case(checks=checks, tool="ok", passgate="ok", build=build)


def fails(checks: str, build: AnyBuild) -> Case:
    return Case(checks=checks, tool="failed", passgate="failed", build=build)


def deviates(checks: str, build: Build, *, tool: Outcome, why: str) -> Case:
    return Case(checks=checks, tool=tool, passgate="failed" if tool == "ok" else "ok", build=build, why=why)


async def check(case: Case, code: str | None, tool: Tool, models: Models) -> None:
    """Run a case: Passgate's answer is ok, or failed with `code`, the refusal the case is about."""
    response = await case.build(tool, models)
    if case.passgate == "ok":
        assert ok(response), response.text
    else:
        assert not ok(response), response.text
        assert response.json()["error"] == code, response.text
