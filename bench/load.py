"""Load generators: closed loop (N virtual users back to back) and open loop (a fixed arrival rate).

Latency is that of the whole ceremony, as its user waits for it: from sending begin to the answer to
complete, including the software passkey's signature (tens of microseconds) and any wait in the generator.
In the open loop it is measured from the arrival's *scheduled* time, so time spent waiting for a free browser
or behind a late generator counts (no coordinated omission); an arrival still unfinished when the drain time
runs out counts as an error with infinite latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from bench.browsers import Browser, HttpError
from bench.ceremonies import CeremonyFailed

Ceremony = Callable[[Browser], Awaitable[None]]


@dataclass
class LoadResult:
    """What one load run saw: successful ceremonies, errors by kind, latencies (seconds) and wall time."""

    ok: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def rate(self) -> float:
        """Successful ceremonies per second of wall time."""
        return self.ok / self.elapsed if self.elapsed > 0 else 0.0

    def percentile(self, fraction: float) -> float:
        """Nearest-rank percentile of the latencies in seconds (nan if none)."""
        if not self.latencies:
            return math.nan
        ordered = sorted(self.latencies)
        rank = max(1, math.ceil(fraction * len(ordered)))
        return ordered[rank - 1]


async def _one(ceremony: Ceremony, browser: Browser, timeout: float, result: LoadResult, since: float) -> None:
    """Run one ceremony; record its latency from `since` on success, its kind of failure otherwise."""
    try:
        async with asyncio.timeout(timeout):
            await ceremony(browser)
    except TimeoutError:
        result.errors["timeout"] += 1
    except CeremonyFailed as exc:
        result.errors[str(exc)] += 1
    except HttpError as exc:
        result.errors[f"http: {str(exc).split(':')[0]}"] += 1
    except Exception as exc:  # every failure is a data point of the benchmark, counted by kind
        result.errors[type(exc).__name__] += 1
    else:
        result.ok += 1
        result.latencies.append(time.perf_counter() - since)


async def closed_loop(
    browsers: Sequence[Browser], ceremony: Ceremony, *, seconds: float, max_count: int, timeout: float
) -> LoadResult:
    """Each browser runs ceremonies back to back until `seconds` have passed or `max_count` were started."""
    result = LoadResult()
    budget = [max_count]
    started = time.perf_counter()
    deadline = started + seconds

    async def user(browser: Browser) -> None:
        while time.perf_counter() < deadline and budget[0] > 0:
            budget[0] -= 1
            await _one(ceremony, browser, timeout, result, time.perf_counter())

    async with asyncio.timeout(seconds + timeout + 5), asyncio.TaskGroup() as group:
        for browser in browsers:
            group.create_task(user(browser))
    result.elapsed = time.perf_counter() - started
    return result


async def open_loop(
    browsers: Sequence[Browser],
    ceremony: Ceremony,
    *,
    rate: float,
    seconds: float,
    max_count: int,
    drain: float,
    timeout: float,
) -> LoadResult:
    """Ceremonies arrive every 1/rate s for `seconds`; each takes a free browser (waiting for one if none)."""
    result = LoadResult()
    idle: asyncio.Queue[Browser] = asyncio.Queue()
    for browser in browsers:
        idle.put_nowait(browser)

    async def arrival(scheduled: float) -> None:
        browser = await idle.get()
        try:
            await _one(ceremony, browser, timeout, result, scheduled)
        finally:
            idle.put_nowait(browser)

    count = max(1, min(int(rate * seconds), max_count))
    tasks: list[asyncio.Task[None]] = []
    started = time.perf_counter()
    for number in range(count):
        scheduled = started + number / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(arrival(scheduled)))
    _, pending = await asyncio.wait(tasks, timeout=drain) if tasks else (set(), set())
    for task in pending:
        task.cancel()
    for task in pending:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    if pending:
        result.errors[f"unfinished {drain:g} s after the last arrival"] += len(pending)
        result.latencies.extend([math.inf] * len(pending))
    result.elapsed = time.perf_counter() - started
    return result
