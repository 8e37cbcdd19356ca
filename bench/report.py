"""The results: one row per measurement, the targets, the printed table and bench/results.json."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from cryptography.hazmat.backends.openssl import backend

from bench.references import References

RESULTS = Path(__file__).with_name("results.json")

# The targets (CPU in one-core OpenSSL ECDSA P-256 verifies, rates as fractions of its verify rate, latencies in
# seconds).
MAX_VERIFIES_PER_SIGN_IN = 10.0  # SQLite, one process, a whole sign-in ceremony
MAX_VERIFIES_PER_SIGN_UP = 15.0
MAX_VERIFIES_SCALED_OUT = 20.0  # PostgreSQL + Redis, two nodes: in the Passgate processes
MAX_VERIFIES_SCALED_OUT_DB = 6.0  # ... and in PostgreSQL and Redis
MAX_WORKERS_OVERHEAD = 0.15  # --workers 2: CPU per ceremony above one process's
MAX_MEMORY_GROWTH = 0.10  # resident set after BENCH_MEMORY_SIGN_INS sign-ins above its size after 1,000
MIN_SIGN_IN_SHARE = 0.12
HALF_LOAD_SHARE = MIN_SIGN_IN_SHARE / 2
MAX_HALF_LOAD_P99 = 0.050
MAX_SCALE_SLOWDOWN = 0.20


@dataclass
class Row:
    """One measurement: a phase of a scenario, or a reference rate (then only `rate` is set)."""

    scenario: str
    phase: str
    rate: float  # successful ceremonies (or reference operations) per second
    ok: int | None = None
    errors: dict[str, int] = field(default_factory=dict)
    seconds: float | None = None
    offered_rate: float | None = None  # open loop: arrivals per second
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    server_cpu_ms: float | None = None  # Passgate processes' CPU per successful ceremony
    db_cpu_ms: float | None = None  # PostgreSQL + Redis CPU per successful ceremony
    generator_cpu_ms: float | None = None  # the load generator's CPU per successful ceremony
    other_cores: float | None = None  # cores busy with processes the benchmark did not start (noise)
    attempts: int = 1  # measurements taken (repeated while others' processes disturbed them); the best is kept
    processes: int | None = None  # Passgate processes (nodes and their workers) during the measurement
    cpu_verifies: float | None = None  # server CPU per ceremony in OpenSSL P-256 verifies
    vs_openssl: float | None = None  # rate / OpenSSL verifies per second
    vs_py_webauthn: float | None = None  # rate / py_webauthn verifies per second
    cpu_vs_reference: float | None = None  # side by side: server CPU per ceremony / SimpleWebAuthn's
    rss_mb: float | None = None  # memory: the server's resident set at the end of the phase
    targets: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


@dataclass
class Target:
    """A target: what is compared, the goal, the measured value, and whether it is met (None: not measured)."""

    name: str
    goal: str
    measured: str
    met: bool | None


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    references: References | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    load_average: dict[str, tuple[float, float, float]] = field(default_factory=dict)

    def find(self, scenario: str, phase: str) -> Row | None:
        for row in self.rows:
            if row.scenario == scenario and row.phase == phase:
                return row
        return None

    def add_target(self, row: Row | None, name: str, goal: str, measured: str, met: bool | None) -> None:
        self.targets.append(Target(name=name, goal=goal, measured=measured, met=met))
        if row is not None:
            row.targets.append(f"{name} {goal}: {_verdict(met)}")


def _verdict(met: bool | None) -> str:
    return "not measured" if met is None else ("met" if met else "NOT MET")


def add_ratios(row: Row, references: References) -> None:
    """Sign-in rows: rate ÷ the reference verify rates, and server CPU per ceremony in OpenSSL verifies."""
    row.vs_openssl = row.rate / references.openssl_verify
    row.vs_py_webauthn = row.rate / references.py_webauthn_verify
    if row.server_cpu_ms is not None:
        row.cpu_verifies = row.server_cpu_ms / 1000 * references.openssl_verify


def _number(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if math.isinf(value):
        return "inf"
    return f"{value:,.{digits}f}"


def _percent(value: float | None) -> str:
    return "" if value is None else f"{value:.1%}"


COLUMNS = (
    "scenario",
    "phase",
    "procs",
    "ok",
    "errors",
    "rate /s",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "server CPU ms/cer",
    "= verifies",
    "db CPU ms/cer",
    "gen CPU ms/cer",
    "other cores",
    "÷ openssl",
    "÷ py_webauthn",
    "CPU ÷ SimpleWebAuthn",
    "RSS MB",
    "targets",
)


def _cells(row: Row) -> list[str]:
    return [
        row.scenario,
        row.phase,
        "" if row.processes is None else str(row.processes),
        "" if row.ok is None else f"{row.ok:,}",
        "" if row.ok is None else f"{row.error_count:,}",
        _number(row.rate),
        _number(row.p50_ms),
        _number(row.p95_ms),
        _number(row.p99_ms),
        _number(row.server_cpu_ms, 2),
        _number(row.cpu_verifies),
        _number(row.db_cpu_ms, 2),
        _number(row.generator_cpu_ms, 2),
        _number(row.other_cores, 2),
        _percent(row.vs_openssl),
        _percent(row.vs_py_webauthn),
        _number(row.cpu_vs_reference, 2),
        _number(row.rss_mb),
        "; ".join(row.targets),
    ]


def table(report: Report) -> str:
    """The one table, Markdown-style (readable in a terminal, pasteable into BENCHMARKS.md)."""
    lines = [_cells(row) for row in report.rows]
    widths = [max(len(header), *(len(line[i]) for line in lines)) for i, header in enumerate(COLUMNS)]
    numeric = set(range(2, 18))

    def render(cells: list[str] | tuple[str, ...]) -> str:
        padded = [
            c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + ":" if i in numeric else "-" * (w + 2)) for i, w in enumerate(widths)) + "|"
    return "\n".join([render(COLUMNS), rule, *(render(line) for line in lines)])


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "packages": _versions(),
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _versions() -> dict[str, str]:
    """Versions of what shapes the server's speed (uvloop and httptools are optional for uvicorn)."""
    found: dict[str, str] = {}
    for name in ("passgate", "uvicorn", "uvloop", "httptools", "starlette", "fastapi", "sqlalchemy", "webauthn"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    found["cryptography's openssl"] = backend.openssl_version_text()
    try:
        cli = subprocess.run(["openssl", "version"], capture_output=True, text=True, check=True, timeout=10)
        found["openssl command"] = cli.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        found["openssl command"] = "not found"
    return found


def write_json(report: Report, path: Path = RESULTS) -> None:
    document = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "settings": report.settings,
        "references_per_second_one_core": asdict(report.references) if report.references else None,
        "rows": [asdict(row) for row in report.rows],
        "targets": [asdict(target) for target in report.targets],
        "timings_seconds": report.timings,
        "load_average": report.load_average,
        "failures": report.failures,
    }
    path.write_text(json.dumps(_finite(document), indent=2) + "\n")


def _finite(value: Any) -> Any:
    """The document with infinite or NaN floats as the strings "inf" / "nan" (JSON has no such numbers)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value
