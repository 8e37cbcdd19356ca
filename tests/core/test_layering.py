"""core is pure: it must not import the web, the storage, asyncio or a clock."""

from __future__ import annotations

import ast
from pathlib import Path

import passgate.core

FORBIDDEN = ("passgate.web", "passgate.store", "passgate.service", "asyncio", "fastapi", "starlette", "sqlalchemy")


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_core_imports_nothing_from_the_outer_layers() -> None:
    core = Path(passgate.core.__file__).parent
    offenders = {
        f"{path.name}: {name}"
        for path in core.glob("*.py")
        for name in imported_modules(path)
        if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN)
    }
    assert offenders == set()


def test_core_never_reads_the_clock() -> None:
    core = Path(passgate.core.__file__).parent
    for path in core.glob("*.py"):
        source = path.read_text()
        assert ".now(" not in source and "time.time(" not in source and "utcnow(" not in source, path.name


def test_the_check_finds_a_forbidden_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import asyncio\nfrom passgate.store.sql import create_engine\n")
    assert {"asyncio", "passgate.store.sql"} <= imported_modules(sample)
