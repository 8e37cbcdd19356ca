"""The benchmark's knobs, read from BENCH_* environment variables (defaults suit a 2-core machine)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

# The origin every node is configured with; every POST carries it (browsers always send Origin).
ORIGIN = "http://localhost:8000"
RP_ID = "localhost"

# All the scenarios, in the order they run; BENCH_SCENARIOS selects a comma-separated subset.
SCENARIOS = ("sqlite-w1", "sqlite-w2", "pg-redis-2nodes", "simplewebauthn", "memory")


@dataclass(frozen=True, kw_only=True)
class BenchSettings:
    """What one run measures and for how long. Each field is the environment variable BENCH_<FIELD>."""

    seconds: float = 10.0  # length of each measurement
    warmup: float = 1.0  # unmeasured load before each closed-loop measurement
    users: int = 32  # concurrent virtual users (browsers, one keep-alive connection each)
    open_connections: int = 64  # browsers available to the open-loop (fixed arrival rate) runs
    max_ceremonies: int = 200_000  # upper bound on ceremonies in one measurement
    population: int = 256  # at least this many registered users sign in (round robin)
    drain: float = 10.0  # open loop: how long arrivals still in flight may finish after the last one
    ceremony_timeout: float = 30.0  # a ceremony taking longer counts as an error
    client: str = "raw"  # "raw" (asyncio HTTP/1.1) or "httpx"
    reference_seconds: float = 3.0  # length of each reference measurement (openssl, py_webauthn)
    scale: bool = True  # run the 1,000 vs 1,000,000 credentials comparison (PostgreSQL)
    scale_credentials: int = 1_000_000
    scale_small: int = 1_000
    scale_genuine: int = 200  # users registered over HTTP in the scale database (the ones that sign in)
    scale_seconds: float = 20.0  # length of each scale measurement (more samples: its p99 is compared)
    scale_rate: float = 0.0  # fixed sign-in rate of the scale run; 0: half the measured PostgreSQL capacity
    scenarios: str = ",".join(SCENARIOS)
    reference_users: int = 64  # side by side with SimpleWebAuthn: users (passkeys) signing in round robin
    reference_concurrency: int = 16  # side by side with SimpleWebAuthn: concurrent virtual browsers (closed loop)
    reference_rounds: int = 3  # side by side: measurements of each, alternating (summed in the rows)
    retries: int = 2  # repeat a measurement disturbed by other processes at most this many times
    noise: float = 0.3  # a measurement is disturbed when others' processes kept more than this many cores busy
    quiet_wait: float = 10.0  # before each measurement, wait up to this long for other processes to go quiet
    memory_sign_ins: int = 100_000  # memory: the resident set after 1,000 sign-ins, and after this many
    keep_logs: bool = False  # keep the servers' logs and data directory (printed at the end)

    @property
    def scenario_list(self) -> list[str]:
        chosen = [name.strip() for name in self.scenarios.split(",") if name.strip()]
        unknown = set(chosen) - set(SCENARIOS)
        if unknown:
            raise ValueError(f"unknown BENCH_SCENARIOS {sorted(unknown)}; choose among {', '.join(SCENARIOS)}")
        return chosen


def _convert(raw: str, default: object) -> object:
    if isinstance(default, bool):
        return raw.strip().lower() not in ("0", "false", "no", "off", "")
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    return raw


def load(environ: Mapping[str, str] | None = None) -> BenchSettings:
    """Settings from BENCH_* variables (BENCH_SECONDS=5, BENCH_SCALE=0, ...); others keep their defaults.

    Raises:
        ValueError: a value that does not parse, or an out-of-range one.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for field in fields(BenchSettings):
        raw = environ.get(f"BENCH_{field.name.upper()}")
        if raw is not None:
            values[field.name] = _convert(raw, field.default)
    settings = BenchSettings(**values)  # type: ignore[arg-type]
    _validate(settings)
    return settings


def _validate(settings: BenchSettings) -> None:
    if not 0.5 <= settings.seconds <= 600:
        raise ValueError("BENCH_SECONDS must be between 0.5 and 600")
    if not 1 <= settings.users <= 1024 or not 1 <= settings.open_connections <= 1024:
        raise ValueError("BENCH_USERS and BENCH_OPEN_CONNECTIONS must be between 1 and 1024")
    if not 1 <= settings.reference_users <= 100_000 or not 1 <= settings.reference_concurrency <= 1024:
        raise ValueError("BENCH_REFERENCE_USERS and BENCH_REFERENCE_CONCURRENCY must be between 1 and 100000 / 1024")
    if not 1 <= settings.reference_rounds <= 20:
        raise ValueError("BENCH_REFERENCE_ROUNDS must be between 1 and 20")
    if settings.client not in ("raw", "httpx"):
        raise ValueError("BENCH_CLIENT must be 'raw' or 'httpx'")
    if settings.scale_genuine > settings.scale_small or settings.scale_small > settings.scale_credentials:
        raise ValueError("need BENCH_SCALE_GENUINE <= BENCH_SCALE_SMALL <= BENCH_SCALE_CREDENTIALS")
    if settings.memory_sign_ins < 2_000:
        raise ValueError("BENCH_MEMORY_SIGN_INS must be at least 2000")
    settings.scenario_list  # noqa: B018 - raises on an unknown scenario name
