"""Several nodes opening one new SQLite database at the same moment."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from passgate.store.sql import Database


def test_nodes_opening_a_new_database_together_all_switch_it_to_wal(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    made = sqlite3.connect(path)  # as a migration tool leaves it: the default rollback journal
    made.execute("CREATE TABLE t (n INTEGER)")
    made.commit()
    made.close()
    url = f"sqlite+aiosqlite:///{path}"
    start = threading.Barrier(8, timeout=30)
    modes: list[str] = []
    errors: list[BaseException] = []

    def open_and_read() -> None:
        database = Database(url)
        assert database._sync is not None
        try:
            start.wait()
            with database._sync.connect() as connection:
                modes.append(connection.exec_driver_sql("PRAGMA journal_mode").scalar_one())
                connection.exec_driver_sql("INSERT INTO t VALUES (1)")
        except BaseException as error:  # the assertion below names it
            errors.append(error)
        finally:
            database._sync.dispose()

    threads = [threading.Thread(target=open_and_read) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert modes == ["wal"] * 8
