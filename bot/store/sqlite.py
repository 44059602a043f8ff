"""The embedded store: one SQLite file in WAL mode, written inline on the event loop.

A commit here costs tens of microseconds plus one fsync, less than handing the work to a
thread, so statements run directly on the loop. A transaction never awaits anything real, so
no other task can interleave with it. Waiting for another process's write lock is the one
wait: SQLite's own busy handler would sleep inside the call and freeze the loop, so it is
off, and a write that finds the lock taken sleeps on the loop between tries instead.

Checkpoints, whose fsync of the database file can take a long time, run on a thread of their
own. ``secure_delete`` overwrites deleted rows, and the WAL is checkpointed and truncated on
close, so erased recipients leave no trace in the files.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import structlog

from bot.errors import StoreUnavailable
from bot.store.schema import Row
from bot.store.sql import Dialect, SqlStore, migrate

__all__ = ["CHECKPOINT_INTERVAL", "DIALECT", "SQLiteStore"]

log = structlog.get_logger("bot.store")

DIALECT = Dialect(
    name="sqlite",
    numbered=False,
    tokens={
        "id": "INTEGER PRIMARY KEY",
        "integer": "INTEGER",
        "real": "REAL",
        "blob": "BLOB",
        "bool": "INTEGER",
        "rowid": " WITHOUT ROWID",
        "least": "MIN",
        "greatest": "MAX",
        "returning_id": "",
        "utc_today": "date('now')",
    },
    # One statement leases the batch: SQLite has one writer at a time, so no row is ever
    # claimed twice.
    claim_template=(
        "UPDATE reply_jobs SET lease_owner = ?, lease_until = ?, attempts = attempts + 1 "
        "WHERE id IN (SELECT id FROM reply_jobs WHERE {claimable}{queue} "
        "ORDER BY due_at, id LIMIT ?) RETURNING {columns}"
    ),
    update_last=False,
)

CHECKPOINT_INTERVAL = 0.5  # seconds between checkpoints of the WAL, off the event loop
LOCK_WAIT = 5.0  # seconds a write waits for another process's lock before the store gives up
_BUSY = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


_T = TypeVar("_T")


def _is_busy(error: sqlite3.OperationalError) -> bool:
    return error.sqlite_errorcode & 0xFF in _BUSY


async def _when_unlocked(run: Callable[[], _T], budget: float) -> _T:
    """``run()``, and again while another connection holds the write lock.

    Between tries the loop is free: health checks, metrics and webhooks that need no lock
    go on. After ``budget`` seconds the busy error is raised. The first try is direct: the
    lock is almost always free, and then nothing is awaited.
    """
    try:
        return run()
    except sqlite3.OperationalError as error:
        if not _is_busy(error):
            raise
    deadline = time.monotonic() + budget
    pause = 0.001
    while True:
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.05)
        try:
            return run()
        except sqlite3.OperationalError as error:
            if not _is_busy(error) or time.monotonic() >= deadline:
                raise


class _Cursor:
    """``Executor`` over one cursor; a whole transaction reuses it (each ``execute`` of the
    connection would make a new one)."""

    __slots__ = ("_cur",)

    def __init__(self, db: sqlite3.Connection) -> None:
        self._cur = db.cursor()

    async def execute(self, sql: str, args: tuple[Any, ...] = ()) -> int:
        return self._cur.execute(sql, args).rowcount

    async def fetch(self, sql: str, args: tuple[Any, ...] = ()) -> Sequence[Row]:
        # Read to the end: the shared cursor then holds no statement open.
        rows: list[tuple[Any, ...]] = self._cur.execute(sql, args).fetchall()
        return rows

    async def insert(self, sql: str, args: tuple[Any, ...]) -> int:
        return int(self._cur.execute(sql, args).lastrowid or 0)


class _WaitingCursor(_Cursor):
    """A cursor for statements outside a transaction: a write waits for the lock on the loop."""

    __slots__ = ("_lock_wait",)

    def __init__(self, db: sqlite3.Connection, lock_wait: float) -> None:
        super().__init__(db)
        self._lock_wait = lock_wait

    async def _run(self, sql: str, args: tuple[Any, ...]) -> sqlite3.Cursor:
        return await _when_unlocked(lambda: self._cur.execute(sql, args), self._lock_wait)

    async def execute(self, sql: str, args: tuple[Any, ...] = ()) -> int:
        return (await self._run(sql, args)).rowcount

    async def fetch(self, sql: str, args: tuple[Any, ...] = ()) -> Sequence[Row]:
        rows: list[tuple[Any, ...]] = (await self._run(sql, args)).fetchall()
        return rows

    async def insert(self, sql: str, args: tuple[Any, ...]) -> int:
        return int((await self._run(sql, args)).lastrowid or 0)


class _Transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` on one connection; rolled back on any exception.

    A class rather than a generator: ingest opens one for every group of webhooks.
    """

    __slots__ = ("_db", "_lock_wait")

    def __init__(self, db: sqlite3.Connection, lock_wait: float) -> None:
        self._db = db
        self._lock_wait = lock_wait

    async def __aenter__(self) -> _Cursor:
        try:
            await _when_unlocked(lambda: self._db.execute("BEGIN IMMEDIATE"), self._lock_wait)
        except sqlite3.Error as error:
            raise StoreUnavailable(f"cannot begin: {type(error).__name__}") from None
        return _Cursor(self._db)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        db = self._db
        if exc_type is not None:
            db.execute("ROLLBACK")
            if issubclass(exc_type, sqlite3.Error):
                raise StoreUnavailable(f"cannot record: {exc_type.__name__}") from None
            return
        try:
            db.execute("COMMIT")
        except sqlite3.Error as error:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise StoreUnavailable(f"cannot commit: {type(error).__name__}") from None


class _OneStatement:
    """One statement on the worker's connection, outside any transaction (autocommit)."""

    __slots__ = ("_cursor",)

    def __init__(self, cursor: _Cursor | None) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> _Cursor:
        if self._cursor is None:
            raise StoreUnavailable("store is not open")
        return self._cursor

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None and issubclass(exc_type, sqlite3.Error):
            raise StoreUnavailable(f"cannot write: {exc_type.__name__}") from None


class _Checkpointer:
    """Copies the WAL back into the database on a thread of its own, twice a second.

    SQLite's automatic checkpoint runs inside whichever commit crosses 1,000 WAL pages, and
    ends with an fsync of the database file after scattered writes, which on a virtual disk
    can hold a webhook's acknowledgement for a long time. Here the loop's connections never
    checkpoint; this thread does, with a ``PASSIVE`` checkpoint that never blocks their
    commits, while sqlite3 releases the GIL.
    """

    def __init__(self, path: Path, interval: float = CHECKPOINT_INTERVAL) -> None:
        self._path = path
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error:
            log.warning("store_checkpoint_failed", reason="cannot open")
            return
        with contextlib.closing(conn):
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA busy_timeout = 5000")
            while not self._stop.wait(self._interval):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as error:
                    log.warning("store_checkpoint_failed", reason=type(error).__name__)


def _create_private(path: Path) -> None:
    """Create the database's missing folders (0700) and its empty file (0600), whatever the
    umask: they hold the contact log. SQLite gives the ``-wal`` and ``-shm`` files the mode
    of the database file. Folders and files that already exist are left as they are.
    """
    missing: list[Path] = []
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it a moment ago
            folder.mkdir(mode=0o700)
            folder.chmod(0o700)  # mkdir's mode passes through the umask
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def _cannot_open(path: Path, error: sqlite3.Error | OSError) -> str:
    """Why the file could not be opened, in words: the path, the system's reason or SQLite's
    own fixed message (no statement has run yet, so no value can be in it)."""
    if path.is_dir():
        return f"{path} is a folder, not a database file"
    if isinstance(error, OSError):
        return f"cannot create {error.filename or path}: {error.strerror or type(error).__name__}"
    return f"cannot open {path}: {error}"


class SQLiteStore(SqlStore):
    """``Store`` on one SQLite file (``DATABASE_URL=sqlite:///path``).

    Two connections: webhooks are recorded on ``db`` with ``synchronous=FULL`` (Meta gets its
    200 only for what survives a power cut; group commit shares the fsync), and the worker's
    bookkeeping goes through ``bg`` with ``NORMAL``, which survives any crash of the process:
    a power cut could at worst replay a send, like an ambiguous one.
    """

    dialect = DIALECT

    def __init__(self, path: str, *, lock_wait: float = LOCK_WAIT) -> None:
        super().__init__()
        self.path = Path(path)
        self._lock_wait = lock_wait
        self._db: sqlite3.Connection | None = None
        self._bg: sqlite3.Connection | None = None
        self._bg_cursor: _WaitingCursor | None = None
        self._checkpointer: _Checkpointer | None = None

    @property
    def db(self) -> sqlite3.Connection:
        """The ingest connection (tests use it to inject faults)."""
        if self._db is None:
            raise StoreUnavailable("store is not open")
        return self._db

    @property
    def bg(self) -> sqlite3.Connection:
        """The worker's connection: queue bookkeeping after the acknowledgement."""
        if self._bg is None:
            raise StoreUnavailable("store is not open")
        return self._bg

    def _connect(self, synchronous: str) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode = WAL")
        db.execute(f"PRAGMA synchronous = {synchronous}")
        db.execute("PRAGMA secure_delete = ON")
        db.execute("PRAGMA busy_timeout = 0")  # a lock is waited for on the loop, see above
        db.execute("PRAGMA wal_autocheckpoint = 0")  # the checkpoint thread does it
        return db

    async def open(self) -> None:
        db: sqlite3.Connection | None = None
        try:
            _create_private(self.path)
            db = self._connect("FULL")
            bg = self._connect("NORMAL")
        except (sqlite3.Error, OSError) as error:
            if db is not None:
                db.close()
            raise StoreUnavailable(_cannot_open(self.path, error)) from None
        self._db, self._bg = db, bg
        self._bg_cursor = _WaitingCursor(bg, self._lock_wait)
        try:
            async with self._atomic() as ex:
                await migrate(ex, self.dialect)
        except StoreUnavailable:
            await self.close()
            raise
        self._checkpointer = _Checkpointer(self.path)
        self._checkpointer.start()

    async def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        if self._bg is not None:
            self._bg.close()
            self._bg = self._bg_cursor = None
        if self._db is None:
            return
        db, self._db = self._db, None
        try:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error:
            pass  # another process holds a read lock; the next close checkpoints
        finally:
            db.close()

    async def ping(self) -> bool:
        try:
            self.db.execute("SELECT 1").fetchone()
        except (sqlite3.Error, StoreUnavailable):
            return False
        return True

    def _atomic(self) -> _Transaction:
        return _Transaction(self.db, self._lock_wait)

    def _bookkeeping(self) -> _Transaction:
        return _Transaction(self.bg, self._lock_wait)

    def _single(self) -> _OneStatement:
        return _OneStatement(self._bg_cursor)

    def _erased(self) -> None:
        with contextlib.suppress(sqlite3.Error):  # a reader holds the WAL; close truncates it
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
