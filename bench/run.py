"""The benchmark run: references, then each scenario's measurements, then the targets, the table and the JSON.

Scenarios (BENCH_SCENARIOS selects some):

* ``sqlite-w1`` / ``sqlite-w2``: one node on a SQLite file, ``--workers 1`` / ``--workers 2``. Sign-ups and
  sign-ins in closed loop; for ``--workers 1`` also open-loop sign-ins at the half-load target rate
  (6 % of OpenSSL's one-core P-256 verify rate) and at half the measured sign-in capacity.
* ``pg-redis-2nodes``: two nodes (two processes, two ports) sharing PostgreSQL and Redis; virtual users are
  spread over both.
* ``simplewebauthn``: side by side with a reference server (SimpleWebAuthn on Node, SQLite; bench/simplewebauthn):
  the same closed-loop discoverable sign-ins (BENCH_REFERENCE_USERS users, BENCH_REFERENCE_CONCURRENCY
  browsers) against a fresh SQLite Passgate node and against the reference server seeded with the same
  passkeys, alternating for BENCH_REFERENCE_ROUNDS rounds; Passgate's server CPU per ceremony (over all rounds)
  is reported as a ratio to the reference's.
* ``memory``: one SQLite node (``--workers 1``): its resident set after 1,000 closed-loop sign-ins and after
  BENCH_MEMORY_SIGN_INS (100,000); the target is no growth with traffic (at most +10 %).
* scale (BENCH_SCALE=1): PostgreSQL + Redis, two nodes, open-loop sign-ins at a fixed moderate rate with 1,000
  and then 1,000,000 stored credentials (fillers inserted with SQL; the users signing in registered over HTTP).

Everything started (nodes, PostgreSQL, Redis, temporary files) is stopped or removed at the end, also on
an error or Ctrl-C / SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType

from tests.services import PostgresServer, RedisServer, ServerFailed

from bench import filler, reference_server, references, report, servers
from bench.browsers import Browser, open_browser
from bench.ceremonies import Population, SignIn, SignUp
from bench.load import Ceremony, LoadResult, closed_loop, open_loop
from bench.procstat import TreeCpu, load_average, machine_busy_seconds, rss_bytes
from bench.report import Report, Row
from bench.settings import BenchSettings, load

_STARTED = time.monotonic()


def progress(message: str) -> None:
    """A progress line on stderr (the table goes to stdout)."""
    print(f"[bench {time.monotonic() - _STARTED:6.1f}s] {message}", file=sys.stderr, flush=True)


@dataclass
class Bench:
    """One run's state: settings, what was started (on `stack`), and the report being filled."""

    settings: BenchSettings
    stack: contextlib.ExitStack
    workdir: Path
    report: Report
    postgres: PostgresServer | None = None
    redis: RedisServer | None = None
    databases: int = 0
    pg_sign_in_rate: float | None = None

    def database_services(self) -> tuple[PostgresServer, RedisServer]:
        """PostgreSQL and Redis, started on first use and shared by the scenarios that need them."""
        if self.postgres is None:
            progress("starting PostgreSQL")
            self.postgres = servers.start_postgres(self.stack)
        if self.redis is None:
            progress("starting Redis")
            self.redis = servers.start_redis(self.stack)
        return self.postgres, self.redis

    def new_database(self) -> str:
        postgres, _ = self.database_services()
        self.databases += 1
        return postgres.create_database(f"bench_{self.databases}")

    def db_pids(self) -> list[int]:
        if self.postgres is None or self.redis is None:
            return []
        return [servers.postgres_pid(self.postgres), servers.redis_pid(self.redis)]


@dataclass(frozen=True)
class Load:
    """How to drive one measurement: closed loop with `users` browsers, or open loop at `rate` arrivals/s."""

    users: int
    rate: float | None = None
    warmup: float = 0.0
    max_count: int | None = None
    seconds: float | None = None


@dataclass
class Sample:
    """A load result with the CPU seconds the servers, the databases and the generator used meanwhile."""

    result: LoadResult
    server_cpu: float
    db_cpu: float
    generator_cpu: float
    machine_cpu: float  # every process on the machine, ours included
    processes: int
    offered_rate: float | None = None
    attempts: int = 1

    @property
    def other_cores(self) -> float:
        """Cores kept busy by processes the benchmark did not start (another user's work: noise)."""
        ours = self.server_cpu + self.db_cpu + self.generator_cpu
        elapsed = self.result.elapsed
        return max(0.0, self.machine_cpu - ours) / elapsed if elapsed > 0 else 0.0


def _browsers(kind: str, ports: Sequence[int], count: int) -> list[Browser]:
    """`count` virtual browsers spread round robin over the nodes' ports."""
    return [open_browser(kind, "127.0.0.1", ports[number % len(ports)]) for number in range(count)]


async def _drive(settings: BenchSettings, browsers: Sequence[Browser], ceremony: Ceremony, load_: Load) -> LoadResult:
    seconds = load_.seconds if load_.seconds is not None else settings.seconds
    max_count = load_.max_count if load_.max_count is not None else settings.max_ceremonies
    if load_.rate is None:
        return await closed_loop(
            browsers, ceremony, seconds=seconds, max_count=max_count, timeout=settings.ceremony_timeout
        )
    return await open_loop(
        browsers,
        ceremony,
        rate=load_.rate,
        seconds=seconds,
        max_count=max_count,
        drain=settings.drain,
        timeout=settings.ceremony_timeout,
    )


async def settle(pids: Sequence[int], quiet_wait: float, *, interval: float = 0.5) -> None:
    """Wait until the benchmark's servers are idle (leftover work would skew the next sample) and, for at most
    `quiet_wait` s, until the whole machine is quiet (under 0.35 busy cores), so that others' processes on
    a shared machine disturb the sample less. Bounded: 30 s + `quiet_wait` at most."""
    started = time.monotonic()
    while time.monotonic() - started < 30 + quiet_wait:
        ours, machine = TreeCpu(pids), machine_busy_seconds()
        await asyncio.sleep(interval)
        servers_busy = ours.since() / interval
        machine_busy = (machine_busy_seconds() - machine) / interval
        if servers_busy < 0.1 and (machine_busy < 0.35 or time.monotonic() - started > quiet_wait):
            return


async def _sample_once(
    bench: Bench, ports: Sequence[int], pids: Sequence[int], ceremony: Ceremony, load_: Load
) -> Sample:
    """Warm up (unmeasured), then run the load while reading CPU accounting before and after."""
    settings = bench.settings
    browsers = _browsers(settings.client, ports, load_.users)
    try:
        await settle([*pids, *bench.db_pids()], settings.quiet_wait)
        if load_.warmup > 0:
            warm = Load(users=load_.users, rate=load_.rate, seconds=load_.warmup, max_count=settings.max_ceremonies)
            await _drive(settings, browsers, ceremony, warm)
        server, database = TreeCpu(pids), TreeCpu(bench.db_pids())
        generator, machine = time.process_time(), machine_busy_seconds()
        result = await _drive(settings, browsers, ceremony, load_)
        return Sample(
            result=result,
            server_cpu=server.since(),
            db_cpu=database.since(),
            generator_cpu=time.process_time() - generator,
            machine_cpu=machine_busy_seconds() - machine,
            processes=server.processes(),
            offered_rate=load_.rate,
        )
    finally:
        for browser in browsers:
            await browser.close()


async def sample(bench: Bench, ports: Sequence[int], pids: Sequence[int], ceremony: Ceremony, load_: Load) -> Sample:
    """One measurement; repeated (BENCH_RETRIES times at most) while processes the benchmark did not start kept
    more than BENCH_NOISE cores busy during it. The least disturbed attempt is kept."""
    best: Sample | None = None
    for attempt in range(1, bench.settings.retries + 2):
        taken = await _sample_once(bench, ports, pids, ceremony, load_)
        if best is None or taken.other_cores < best.other_cores:
            best = taken
        best.attempts = attempt
        if taken.other_cores <= bench.settings.noise:
            break
        progress(f"other processes kept {taken.other_cores:.2f} cores busy during the sample (attempt {attempt})")
    assert best is not None
    return best


def row_of(scenario: str, phase: str, taken: Sample, *, with_db: bool) -> Row:
    """A table row from a sample: rate, latency percentiles, errors and CPU per successful ceremony."""
    result = taken.result
    per = 1000 / result.ok if result.ok else float("nan")
    return Row(
        scenario=scenario,
        phase=phase,
        rate=result.rate,
        ok=result.ok,
        errors=dict(result.errors),
        seconds=result.elapsed,
        offered_rate=taken.offered_rate,
        p50_ms=result.percentile(0.50) * 1000,
        p95_ms=result.percentile(0.95) * 1000,
        p99_ms=result.percentile(0.99) * 1000,
        server_cpu_ms=taken.server_cpu * per,
        db_cpu_ms=taken.db_cpu * per if with_db else None,
        generator_cpu_ms=taken.generator_cpu * per,
        other_cores=taken.other_cores,
        attempts=taken.attempts,
        processes=taken.processes,
    )


async def register(bench: Bench, ports: Sequence[int], population: Population, count: int) -> None:
    """Register users over HTTP until the population holds `count` (bounded in time and attempts)."""
    missing = count - len(population)
    if missing <= 0:
        return
    browsers = _browsers(bench.settings.client, ports, min(bench.settings.users, missing))
    try:
        result = await closed_loop(
            browsers, SignUp(population), seconds=300, max_count=missing * 2, timeout=bench.settings.ceremony_timeout
        )
    finally:
        for browser in browsers:
            await browser.close()
    if len(population) < count:
        raise RuntimeError(f"only {len(population)} of {count} users registered: {dict(result.errors)}")


def _record(bench: Bench, row: Row) -> Row:
    if bench.report.references is not None and row.phase.startswith("sign-in"):
        report.add_ratios(row, bench.report.references)
    elif bench.report.references is not None and row.server_cpu_ms is not None:
        row.cpu_verifies = row.server_cpu_ms / 1000 * bench.report.references.openssl_verify
    bench.report.rows.append(row)
    progress(
        f"{row.scenario} / {row.phase}: {row.rate:,.1f}/s, p50 {row.p50_ms:,.1f} ms, p99 {row.p99_ms:,.1f} ms, "
        f"{row.error_count} errors, server CPU {row.server_cpu_ms:,.2f} ms/ceremony, {row.processes} processes"
    )
    return row


async def ceremonies(bench: Bench, scenario: str, nodes: servers.Nodes, *, with_db: bool) -> Population:
    """Closed-loop sign-ups, then closed-loop sign-ins of the users they created (topped up if too few)."""
    population = Population()
    users = bench.settings.users
    warmup = bench.settings.warmup
    signed_up = await sample(bench, nodes.ports, nodes.pids, SignUp(population), Load(users=users, warmup=warmup))
    _record(bench, row_of(scenario, "sign-up", signed_up, with_db=with_db))
    await register(bench, nodes.ports, population, bench.settings.population)
    signed_in = await sample(bench, nodes.ports, nodes.pids, SignIn(population), Load(users=users, warmup=warmup))
    _record(bench, row_of(scenario, "sign-in", signed_in, with_db=with_db))
    return population


async def sqlite_scenario(bench: Bench, workers: int) -> None:
    """One node on a SQLite file; for --workers 1 also the open-loop (fixed arrival rate) latency runs."""
    scenario = f"sqlite --workers {workers}"
    database_url = f"sqlite:///{bench.workdir / f'sqlite-w{workers}.db'}"
    with contextlib.ExitStack() as local:
        progress(f"{scenario}: starting the node")
        nodes = servers.start_nodes(local, bench.workdir, f"sqlite-w{workers}", database_url, workers=workers)
        await asyncio.sleep(1.0 if workers > 1 else 0.0)  # let the workers come up behind the listening socket
        population = await ceremonies(bench, scenario, nodes, with_db=False)
        if workers != 1 or bench.report.references is None:
            return
        capacity = bench.report.rows[-1].rate
        target = report.HALF_LOAD_SHARE * bench.report.references.openssl_verify
        runs = [(capacity / 2, "50% of capacity"), (target, "half-load target: 6% of openssl")]
        for rate, why in runs:
            if rate < 1:
                continue
            load_ = Load(users=bench.settings.open_connections, rate=rate)
            taken = await sample(bench, nodes.ports, nodes.pids, SignIn(population), load_)
            _record(bench, row_of(scenario, f"sign-in, open loop {rate:,.0f}/s ({why})", taken, with_db=False))


async def pg_scenario(bench: Bench) -> None:
    """Two nodes (two processes on two ports) sharing PostgreSQL and Redis."""
    scenario = "pg+redis, 2 nodes"
    database_url = bench.new_database()
    _, redis_server = bench.database_services()
    with contextlib.ExitStack() as local:
        progress(f"{scenario}: starting the nodes")
        nodes = servers.start_nodes(local, bench.workdir, "pg", database_url, count=2, redis_url=redis_server.url)
        await ceremonies(bench, scenario, nodes, with_db=True)
        bench.pg_sign_in_rate = bench.report.rows[-1].rate


async def side_by_side(bench: Bench) -> None:
    """Passgate (SQLite, one process) and the SimpleWebAuthn reference server, driven identically: the same
    users' passkeys, the same discoverable sign-in ceremony, the same closed loop. Both stay up during all
    measurements (each idle while the other is measured)."""
    settings = bench.settings
    users, concurrency = settings.reference_users, settings.reference_concurrency
    scenario = f"side by side, {users} users, {concurrency} concurrent"
    database_url = f"sqlite:///{bench.workdir / 'side-by-side.db'}"
    with contextlib.ExitStack() as local:
        progress(f"{scenario}: starting Passgate, registering {users} users over HTTP")
        passgate = servers.start_nodes(local, bench.workdir, "side-by-side", database_url)
        registered = Population()
        await register(bench, passgate.ports, registered, users)
        population = Population(authenticators=registered.authenticators[:users])
        progress(f"{scenario}: starting the SimpleWebAuthn reference server seeded with the same passkeys")
        reference = reference_server.start(local, bench.workdir, "simplewebauthn", population.authenticators)
        load_ = Load(users=concurrency, warmup=settings.warmup)
        # Alternate the two, round after round, so that both see the same share of any other load on the machine.
        taken: dict[str, list[Sample]] = {"Passgate": [], "SimpleWebAuthn": []}
        for _ in range(settings.reference_rounds):
            for name, nodes in (("Passgate", passgate), ("SimpleWebAuthn", reference)):
                taken[name].append(await sample(bench, nodes.ports, nodes.pids, SignIn(population), load_))
        ours, theirs = (
            _record(bench, row_of(scenario, f"sign-in, {name}", merged(samples), with_db=False))
            for name, samples in taken.items()
        )
        if ours.server_cpu_ms and theirs.server_cpu_ms:
            ours.cpu_vs_reference = ours.server_cpu_ms / theirs.server_cpu_ms
            theirs.cpu_vs_reference = 1.0
            by_round = ", ".join(
                f"{(a.server_cpu / a.result.ok) / (b.server_cpu / b.result.ok):.2f}"
                for a, b in zip(taken["Passgate"], taken["SimpleWebAuthn"], strict=True)
                if a.result.ok and b.result.ok
            )
            ours.note = f"CPU ratio by round: {by_round}"
            progress(
                f"{scenario}: Passgate's server CPU per sign-in is {ours.cpu_vs_reference:.2f}x SimpleWebAuthn's "
                f"(by round: {by_round})"
            )


async def memory_scenario(bench: Bench) -> None:
    """The resident set of one SQLite process after 1,000 sign-ins and after BENCH_MEMORY_SIGN_INS: what grows
    with traffic (caches without bounds, kept challenges, leaks) shows as the difference."""
    scenario = "memory, sqlite --workers 1"
    database_url = f"sqlite:///{bench.workdir / 'memory.db'}"
    with contextlib.ExitStack() as local:
        progress(f"{scenario}: starting the node")
        nodes = servers.start_nodes(local, bench.workdir, "memory", database_url)
        population = Population()
        await register(bench, nodes.ports, population, bench.settings.population)
        [pid] = nodes.pids
        done = 0
        for total in (1_000, bench.settings.memory_sign_ins):
            load_ = Load(users=bench.settings.users, max_count=total - done, seconds=3600)
            taken = await sample(bench, nodes.ports, nodes.pids, SignIn(population), load_)
            done += taken.result.ok + taken.result.error_count
            row = _record(bench, row_of(scenario, f"sign-in, up to {done:,}", taken, with_db=False))
            row.rss_mb = rss_bytes(pid) / 2**20
            progress(f"{scenario}: resident set {row.rss_mb:,.1f} MB after {done:,} sign-ins")


def merged(samples: Sequence[Sample]) -> Sample:
    """Several samples of one server as one: ceremonies, latencies, wall time and CPU summed."""
    result = LoadResult()
    for taken in samples:
        result.ok += taken.result.ok
        result.errors.update(taken.result.errors)
        result.latencies.extend(taken.result.latencies)
        result.elapsed += taken.result.elapsed
    return Sample(
        result=result,
        server_cpu=sum(taken.server_cpu for taken in samples),
        db_cpu=sum(taken.db_cpu for taken in samples),
        generator_cpu=sum(taken.generator_cpu for taken in samples),
        machine_cpu=sum(taken.machine_cpu for taken in samples),
        processes=max(taken.processes for taken in samples),
        attempts=sum(taken.attempts for taken in samples),
    )


async def scale_run(bench: Bench) -> None:
    """Sign-in latency and CPU at a fixed rate with few, then a million, stored credentials (PostgreSQL)."""
    settings = bench.settings
    scenario = "pg+redis scale, 2 nodes"
    database_url = bench.new_database()
    _, redis_server = bench.database_services()
    rate = settings.scale_rate or max(10.0, round((bench.pg_sign_in_rate or 100.0) / 2))
    with contextlib.ExitStack() as local:
        progress(f"{scenario}: starting the nodes, registering {settings.scale_genuine} users over HTTP")
        nodes = servers.start_nodes(local, bench.workdir, "scale", database_url, count=2, redis_url=redis_server.url)
        population = Population()
        await register(bench, nodes.ports, population, settings.scale_genuine)
        key = population.authenticators[0].credentials[0].public_key_cose
        for total in (settings.scale_small, settings.scale_credentials):
            missing = total - filler.count_credentials(database_url)
            progress(f"{scenario}: inserting {missing:,} filler credentials with SQL")
            took = filler.add_fillers(database_url, missing, key)
            bench.report.timings[f"insert {missing} fillers"] = took
            progress(f"{scenario}: {missing:,} fillers inserted, vacuumed and analyzed in {took:.1f} s")
            users, seconds = settings.open_connections, settings.scale_seconds
            load_ = Load(users=users, rate=rate, warmup=settings.warmup, seconds=seconds)
            taken = await sample(bench, nodes.ports, nodes.pids, SignIn(population), load_)
            phase = f"sign-in, open loop {rate:,.0f}/s, {total:,} credentials"
            _record(bench, row_of(scenario, phase, taken, with_db=True))


async def reference_rows(bench: Bench) -> None:
    """Measure the references first, while nothing else runs, and add them as rows."""
    progress("references: openssl speed, py_webauthn, passgate core, cryptography (one core each)")
    await settle([], bench.settings.quiet_wait)
    settings = bench.settings
    measured, other = references.measure(settings.reference_seconds, retries=settings.retries, noise=settings.noise)
    bench.report.references = measured
    phases = {
        "openssl_verify": "openssl ECDSA P-256 verify",
        "py_webauthn_verify": "py_webauthn verify_authentication_response",
        "passgate_core_verify": "passgate.verify_authentication (core)",
        "cryptography_verify": "cryptography ECDSA P-256 verify",
    }
    for name, phase in phases.items():
        row = Row(scenario="reference, 1 core", phase=phase, rate=getattr(measured, name), other_cores=other[name])
        bench.report.rows.append(row)


async def run(bench: Bench) -> None:
    """Every selected scenario in turn; a failing scenario is recorded and the next one still runs."""
    steps: list[tuple[str, Callable[[Bench], Awaitable[None]]]] = [("references", reference_rows)]
    for name in bench.settings.scenario_list:
        if name == "sqlite-w1":
            steps.append((name, lambda b: sqlite_scenario(b, 1)))
        elif name == "sqlite-w2":
            steps.append((name, lambda b: sqlite_scenario(b, 2)))
        elif name == "simplewebauthn":
            steps.append((name, side_by_side))
        elif name == "memory":
            steps.append((name, memory_scenario))
        else:
            steps.append((name, pg_scenario))
    if bench.settings.scale:
        steps.append(("scale", scale_run))
    for name, step in steps:
        started = time.monotonic()
        try:
            await step(bench)
        except Exception as exc:
            progress(f"{name} failed: {exc}")
            if not isinstance(exc, ServerFailed):  # its message already says what happened
                traceback.print_exc(file=sys.stderr)
            bench.report.failures.append(f"{name}: {type(exc).__name__}: {exc}")
        bench.report.timings[name] = time.monotonic() - started


def evaluate_targets(rows: Report) -> None:
    """Compare the measurements with the targets; each target is also noted on its row."""
    refs = rows.references
    if refs is None:
        return
    for scenario, phase in (("sqlite --workers 1", "sign-in"), ("side by side", "sign-in, Passgate")):
        row = next((r for r in rows.rows if r.scenario.startswith(scenario) and r.phase == phase), None)
        if row is not None and row.cpu_verifies is not None:
            met = row.cpu_verifies <= report.MAX_VERIFIES_PER_SIGN_IN
            goal = f"≤ {report.MAX_VERIFIES_PER_SIGN_IN:g} verifies"
            rows.add_target(row, f"CPU/sign-in ({row.scenario})", goal, f"{row.cpu_verifies:.1f}", met)
    sign_up = rows.find("sqlite --workers 1", "sign-up")
    if sign_up is not None and sign_up.cpu_verifies is not None:
        met = sign_up.cpu_verifies <= report.MAX_VERIFIES_PER_SIGN_UP
        goal = f"≤ {report.MAX_VERIFIES_PER_SIGN_UP:g} verifies"
        rows.add_target(sign_up, "CPU/sign-up (sqlite --workers 1)", goal, f"{sign_up.cpu_verifies:.1f}", met)
    _scaled_out_target(rows)
    _workers_target(rows)
    minimum = report.MIN_SIGN_IN_SHARE * refs.openssl_verify
    for workers in (1, 2):
        sqlite = rows.find(f"sqlite --workers {workers}", "sign-in")
        if sqlite is not None:
            name = f"SQLite sign-ins/s (--workers {workers})"
            goal = f"≥ {minimum:,.0f}/s (12% openssl)"
            rows.add_target(sqlite, name, goal, f"{sqlite.rate:,.1f}", sqlite.rate >= minimum)
    for label in ("50% of capacity", "half-load target"):
        half = next((r for r in rows.rows if label in r.phase), None)
        if half is not None and half.p99_ms is not None:
            met = half.p99_ms < report.MAX_HALF_LOAD_P99 * 1000
            name = f"p99 at {'half the measured capacity' if label.startswith('50') else 'half the 12% rate'}"
            rows.add_target(half, name, "< 50 ms", f"{half.p99_ms:,.1f} ms", met)
    _memory_target(rows)
    _scale_target(rows)


def _scaled_out_target(rows: Report) -> None:
    row = rows.find("pg+redis, 2 nodes", "sign-in")
    refs = rows.references
    if row is None or refs is None or row.cpu_verifies is None or row.db_cpu_ms is None:
        return
    db = row.db_cpu_ms / 1000 * refs.openssl_verify
    met = row.cpu_verifies <= report.MAX_VERIFIES_SCALED_OUT and db <= report.MAX_VERIFIES_SCALED_OUT_DB
    goal = f"≤ {report.MAX_VERIFIES_SCALED_OUT:g} verifies + ≤ {report.MAX_VERIFIES_SCALED_OUT_DB:g} in the databases"
    rows.add_target(row, "CPU/sign-in (pg+redis, 2 nodes)", goal, f"{row.cpu_verifies:.1f} + {db:.1f}", met)


def _workers_target(rows: Report) -> None:
    one, two = rows.find("sqlite --workers 1", "sign-in"), rows.find("sqlite --workers 2", "sign-in")
    if one is None or two is None or not one.server_cpu_ms or two.server_cpu_ms is None:
        return
    more = two.server_cpu_ms / one.server_cpu_ms - 1
    goal = f"within +{report.MAX_WORKERS_OVERHEAD:.0%} of one process"
    rows.add_target(two, "CPU/sign-in, --workers 2", goal, f"{more:+.1%}", more <= report.MAX_WORKERS_OVERHEAD)


def _memory_target(rows: Report) -> None:
    measured = [r for r in rows.rows if r.scenario.startswith("memory") and r.rss_mb]
    if len(measured) != 2:
        return
    small, large = measured
    assert small.rss_mb is not None and large.rss_mb is not None
    growth = large.rss_mb / small.rss_mb - 1
    count = [row.phase.rsplit(" ", 1)[-1] for row in (large, small)]
    name = f"resident set after {count[0]} sign-ins vs after {count[1]}"
    value = f"{small.rss_mb:,.1f} → {large.rss_mb:,.1f} MB ({growth:+.1%})"
    rows.add_target(large, name, f"≤ +{report.MAX_MEMORY_GROWTH:.0%}", value, growth <= report.MAX_MEMORY_GROWTH)


def _scale_target(rows: Report) -> None:
    scale_rows = [r for r in rows.rows if r.scenario.startswith("pg+redis scale")]
    if len(scale_rows) != 2:
        return
    small, large = scale_rows
    if not (small.p50_ms and small.p99_ms and large.p50_ms and large.p99_ms):
        return
    p50 = large.p50_ms / small.p50_ms - 1
    p99 = large.p99_ms / small.p99_ms - 1
    met = p50 <= report.MAX_SCALE_SLOWDOWN and p99 <= report.MAX_SCALE_SLOWDOWN
    measured = f"p50 {p50:+.1%}, p99 {p99:+.1%}"
    name = f"latency at {large.phase.rsplit(', ', 1)[-1]} vs {small.phase.rsplit(', ', 1)[-1]}"
    rows.add_target(large, name, "p50 and p99 within +20%", measured, met)


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> int:
    """Run everything; print the table on stdout and write bench/results.json. Exit 1 if a scenario failed."""
    settings = load()
    workdir = Path(tempfile.mkdtemp(prefix="passgate-bench-", dir="/tmp"))
    bench_report = Report(settings={**asdict(settings), "server_environment": servers.server_environment()})
    bench_report.load_average["start"] = load_average()
    previous = signal.signal(signal.SIGTERM, _terminate)
    # Ctrl-C stops the run even when started in the background by a shell that made SIGINT ignored.
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    interrupted = False
    try:
        with contextlib.ExitStack() as stack:
            stack.callback(progress, "stopped every server the benchmark started")
            asyncio.run(run(Bench(settings=settings, stack=stack, workdir=workdir, report=bench_report)))
    except KeyboardInterrupt:
        interrupted = True
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)
        keep = settings.keep_logs or (bool(bench_report.failures) and not interrupted)
        if keep:
            progress(f"logs and databases kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    bench_report.timings["total"] = time.monotonic() - _STARTED
    bench_report.load_average["end"] = load_average()
    evaluate_targets(bench_report)
    print(report.table(bench_report))
    if interrupted:
        progress("interrupted: results.json not written")
        return 130
    report.write_json(bench_report)
    progress(f"wrote {report.RESULTS}")
    return 1 if bench_report.failures else 0
