"""CPU time of process trees, read from the kernel's own accounting in /proc/<pid>/stat.

A process's CPU seconds are utime + stime (its own threads) + cutime + cstime (children it has reaped).
A tree's CPU is that sum over the root and every live descendant: a uvicorn supervisor and its workers,
or the PostgreSQL postmaster and its backends. A descendant that exits without being reaped by a process
of the tree during a measurement loses its time (none does in these scenarios).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PROC = Path("/proc")


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (field 3, `state`, is index 0); None if gone."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name is in parentheses and may hold spaces or parentheses: split after the last ')'.
    return text[text.rindex(")") + 2 :].split()


def _parents() -> dict[int, int]:
    """pid -> parent pid of every live process."""
    parents: dict[int, int] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None:
                parents[int(entry.name)] = int(fields[1])
    return parents


def tree(roots: Iterable[int]) -> set[int]:
    """The roots and all their live descendants."""
    children: dict[int, list[int]] = {}
    for pid, parent in _parents().items():
        children.setdefault(parent, []).append(pid)
    found: set[int] = set()
    pending = [pid for pid in roots if (PROC / str(pid)).exists()]
    while pending:
        pid = pending.pop()
        if pid not in found:
            found.add(pid)
            pending.extend(children.get(pid, ()))
    return found


def rss_bytes(pid: int) -> int:
    """The resident set of one process (VmRSS in /proc/<pid>/status), in bytes; 0 if it is gone."""
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """utime + stime + cutime + cstime of one process, in seconds (0 if it is gone)."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    # stat fields 14-17 (1-based) are utime, stime, cutime, cstime: indexes 11-14 here.
    return sum(int(value) for value in fields[11:15]) / _CLOCK_TICKS


class TreeCpu:
    """Snapshots of the CPU seconds of the process trees under some roots; `since()` gives the difference."""

    def __init__(self, roots: Iterable[int]) -> None:
        self._roots = list(roots)
        self._start = self._snapshot()

    def _snapshot(self) -> dict[int, float]:
        return {pid: cpu_seconds(pid) for pid in tree(self._roots)}

    def processes(self) -> int:
        """How many processes the trees hold now."""
        return len(tree(self._roots))

    def since(self) -> float:
        """CPU seconds the trees used since this object was made (new processes count from 0)."""
        end = self._snapshot()
        return sum(seconds - self._start.get(pid, 0.0) for pid, seconds in end.items())


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent running processes since boot (the `cpu` line of /proc/stat)."""
    with (PROC / "stat").open() as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    # user nice system idle iowait irq softirq (steal is the hypervisor's, guest time is inside user and nice)
    busy = sum(fields[:7]) - fields[3] - fields[4]
    return busy / _CLOCK_TICKS


def load_average() -> tuple[float, float, float]:
    """The 1, 5 and 15 minute load averages."""
    one, five, fifteen = (PROC / "loadavg").read_text().split()[:3]
    return float(one), float(five), float(fifteen)


class OtherLoad:
    """Cores kept busy by processes other than this one and its reaped children, from creation to `cores()`."""

    def __init__(self) -> None:
        self._machine = machine_busy_seconds()
        self._own = self._own_seconds()
        self._wall = time.monotonic()

    @staticmethod
    def _own_seconds() -> float:
        times = os.times()
        return times.user + times.system + times.children_user + times.children_system

    def cores(self) -> float:
        wall = time.monotonic() - self._wall
        other = (machine_busy_seconds() - self._machine) - (self._own_seconds() - self._own)
        return max(0.0, other) / wall if wall > 0 else 0.0
