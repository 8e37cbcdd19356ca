"""A clone of this repository alone must pass its tests: nothing reads outside the repository."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.conftest import VECTORS

ROOT = Path(__file__).resolve().parents[2]
# A path that climbs out of the repository: a string starting with two dots and a slash, or .parent past parents[n].
ESCAPES = re.compile(r"""["']\.\./|parents\[\d\]\.parent\b""")


def test_the_vectors_live_in_the_repository() -> None:
    assert VECTORS.resolve().is_relative_to(ROOT)
    assert (VECTORS / "README.md").is_file()
    assert len(list(VECTORS.glob("*.json"))) >= 50


def test_no_tracked_file_reaches_outside_the_repository() -> None:
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    offenders = []
    for name in tracked.splitlines():
        if not name.endswith((".py", ".sh", ".toml", ".cfg", ".ini")) and name not in ("Makefile", ".ci/run"):
            continue
        text = (ROOT / name).read_text(errors="replace")
        offenders += [f"{name}: {m.group(0)}" for m in ESCAPES.finditer(text)]
    assert offenders == []


def _planned(target: str, tmp_path: Path) -> str:
    """What `make TARGET` would run on a fresh clone (an empty virtual environment), without running it."""
    venv = tmp_path / "venv"
    done = subprocess.run(["make", "-n", target, f"VENV={venv}"], cwd=ROOT, capture_output=True, text=True, check=True)
    return done.stdout


def test_make_run_installs_the_server_only(tmp_path: Path) -> None:
    planned = _planned("run", tmp_path)
    assert "pip install --quiet -e ." in planned
    assert "[dev]" not in planned
    assert "passgate serve" in planned


def test_make_test_adds_the_development_tools(tmp_path: Path) -> None:
    planned = _planned("test", tmp_path)
    assert "pip install --quiet -e '.[dev]'" in planned
    assert "pytest" in planned


def test_make_test_installs_checks_and_runs_the_python_client(tmp_path: Path) -> None:
    planned = _planned("test", tmp_path)
    assert "-e 'clients/python[" in planned
    assert "ruff check src tests bench clients/python" in planned
    assert "clients/python" not in _planned("run", tmp_path)
