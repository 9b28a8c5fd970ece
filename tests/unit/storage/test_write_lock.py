"""SqliteWriteLock: one holder at a time across lock objects (as across processes: flock on
separate open files), the lock file private, and a lock file that cannot be opened leaves the
thread lock alone."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

from postroom.storage.write_lock import SqliteWriteLock, lock_path


def test_two_locks_on_one_database_exclude_each_other(tmp_path: Path) -> None:
    database = tmp_path / "postroom.db"
    first, second = SqliteWriteLock(database), SqliteWriteLock(database)
    entered = threading.Event()
    with first:
        thread = threading.Thread(target=lambda: (second.__enter__(), entered.set()))
        thread.start()
        assert not entered.wait(0.2)  # the other lock object waits for this one
    assert entered.wait(10.0)  # ... and gets in once it is let go
    second.__exit__(None, None, None)
    thread.join()
    with first:  # free again
        pass
    first.close()
    second.close()


def test_the_lock_file_is_private(tmp_path: Path) -> None:
    database = tmp_path / "postroom.db"
    lock = SqliteWriteLock(database)
    with lock:
        pass
    lock.close()
    path = lock_path(database)
    assert path.name == "postroom.db-writelock"
    assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0


def test_an_unusable_lock_file_leaves_the_thread_lock(tmp_path: Path) -> None:
    lock = SqliteWriteLock(tmp_path / "missing-dir" / "postroom.db")
    with lock:  # the file cannot be made: logged, the thread lock is still taken
        assert lock._thread.locked()
    assert not lock._thread.locked()
    with lock:
        pass
