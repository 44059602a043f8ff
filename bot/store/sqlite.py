"""The embedded store: one SQLite file in WAL mode, written inline on the event loop.

A commit here costs tens of microseconds plus one fsync, less than handing the work to a
thread, so statements run directly on the loop. A transaction never awaits anything real, so
no other task can interleave with it. Checkpoints, whose fsync of the database file can take
a long time, run on a thread of their own. ``secure_delete`` overwrites deleted rows, and the
WAL is checkpointed and truncated on close, so erased recipients leave no trace in the files.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import structlog

from bot.errors import StoreUnavailable
from bot.events import Channel, ContactKind, EventKind
from bot.store import (
    ContactRecord,
    IngestTx,
    Job,
    JobState,
    NewJob,
    Outcome,
    PurgeCounts,
)

__all__ = ["SCHEMA", "SQLiteStore"]

log = structlog.get_logger("bot.store")

SCHEMA_VERSION = 1
DEDUPE_DAYS = 8  # Meta redelivers for up to 7 days
ENDED_JOB_DAYS = 8

SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_info (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS seen_messages (
    key TEXT PRIMARY KEY,
    seen_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cooldowns (
    channel TEXT NOT NULL,
    contact TEXT NOT NULL,
    claimed_at REAL NOT NULL,
    job_tag TEXT,
    PRIMARY KEY (channel, contact)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS staff_activity (
    channel TEXT NOT NULL,
    contact TEXT NOT NULL,
    quiet_until REAL NOT NULL,
    PRIMARY KEY (channel, contact)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS contact_log (
    id INTEGER PRIMARY KEY,
    time REAL NOT NULL,
    channel TEXT NOT NULL,
    pseudonym TEXT NOT NULL,
    kind TEXT NOT NULL,
    outcome TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS contact_log_time ON contact_log (time);
CREATE TABLE IF NOT EXISTS reply_jobs (
    id INTEGER PRIMARY KEY,
    tag TEXT NOT NULL UNIQUE,
    channel TEXT NOT NULL,
    contact TEXT NOT NULL,
    contact_kind TEXT NOT NULL,
    recipient BLOB,
    contact_log_id INTEGER,
    received_at REAL NOT NULL,
    created_at REAL NOT NULL,
    due_at REAL NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until REAL,
    send_started_at REAL,
    settled INTEGER NOT NULL DEFAULT 0,
    resent INTEGER NOT NULL DEFAULT 0,
    outcome TEXT,
    finished_at REAL
);
-- The queue is the jobs not yet ended, per channel: a partial index keeps a claim O(its due
-- jobs), never O(history), and a claim for an idle channel never walks another's backlog.
DROP INDEX IF EXISTS reply_jobs_open;
CREATE INDEX IF NOT EXISTS reply_jobs_due ON reply_jobs (channel, due_at) WHERE state <> 'done';
-- Only jobs already sent are looked up by person (an Instagram echo settles a recent send):
-- a new job adds no entry, so ingest writes no page at a random place in this index.
CREATE INDEX IF NOT EXISTS reply_jobs_sent_to ON reply_jobs (channel, contact)
    WHERE send_started_at IS NOT NULL;
-- Earlier releases indexed every job and contact-log row by person. Those indexes cost a
-- page write at a random place per patient message and served only ``contacts forget``,
-- which can afford to scan.
DROP INDEX IF EXISTS contact_log_person;
DROP INDEX IF EXISTS reply_jobs_person;
CREATE TABLE IF NOT EXISTS sent_messages (
    key TEXT PRIMARY KEY,
    sent_at REAL NOT NULL
) WITHOUT ROWID;
"""

_JOB_COLUMNS = (
    "id, tag, channel, contact, contact_kind, recipient, contact_log_id, received_at, state, "
    "attempts, send_started_at, settled, resent"
)


def _job(row: tuple[Any, ...]) -> Job:
    return Job(
        id=row[0],
        tag=row[1],
        channel=Channel(row[2]),
        contact=row[3],
        contact_kind=ContactKind(row[4]),
        recipient=row[5],
        contact_log_id=row[6],
        received_at=row[7],
        state=JobState(row[8]),
        attempts=row[9],
        send_started_at=row[10],
        settled=bool(row[11]),
        resent=bool(row[12]),
    )


class _Tx:
    """``IngestTx`` over one SQLite connection inside ``BEGIN IMMEDIATE``."""

    __slots__ = ("_cur",)

    def __init__(self, db: sqlite3.Connection) -> None:
        # One cursor for the whole transaction: ``Connection.execute`` makes a new one per call.
        self._cur = db.cursor()

    async def mark_seen(self, key: str, now: float) -> bool:
        cur = self._cur.execute(
            "INSERT OR IGNORE INTO seen_messages (key, seen_at) VALUES (?, ?)", (key, now)
        )
        return cur.rowcount == 1

    async def staff_quiet(self, channel: Channel, contact: str, now: float) -> bool:
        rows = self._cur.execute(
            "SELECT 1 FROM staff_activity WHERE channel = ? AND contact = ? AND quiet_until > ?",
            (channel.value, contact, now),
        ).fetchall()  # read to the end: the shared cursor holds no statement open
        return bool(rows)

    async def claim_cooldown(
        self, channel: Channel, contact: str, now: float, free_before: float, tag: str
    ) -> bool:
        cur = self._cur.execute(
            "INSERT INTO cooldowns (channel, contact, claimed_at, job_tag) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (channel, contact) DO UPDATE "
            "SET claimed_at = excluded.claimed_at, job_tag = excluded.job_tag "
            "WHERE cooldowns.job_tag IS NULL AND cooldowns.claimed_at <= ?",
            (channel.value, contact, now, tag, free_before),
        )
        return cur.rowcount == 1

    async def add_contact(
        self, now: float, channel: Channel, contact: str, kind: EventKind, outcome: Outcome
    ) -> int:
        cur = self._cur.execute(
            "INSERT INTO contact_log (time, channel, pseudonym, kind, outcome) "
            "VALUES (?, ?, ?, ?, ?)",
            (now, channel.value, contact, kind.value, outcome.value),
        )
        return int(cur.lastrowid or 0)

    async def add_job(self, job: NewJob, contact_log_id: int) -> None:
        self._cur.execute(
            "INSERT INTO reply_jobs (tag, channel, contact, contact_kind, recipient, "
            "contact_log_id, received_at, created_at, due_at, state) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                job.tag,
                job.channel.value,
                job.contact,
                job.contact_kind.value,
                job.recipient,
                contact_log_id,
                job.received_at,
                job.created_at,
                job.created_at,
                JobState.PENDING.value,
            ),
        )

    async def settle_tag(self, tag: str, now: float) -> bool:
        cur = self._cur.execute(
            "UPDATE reply_jobs SET settled = 1, "
            "due_at = CASE WHEN state = 'ambiguous' THEN MIN(due_at, ?) ELSE due_at END "
            "WHERE tag = ?",
            (now, tag),
        )
        return cur.rowcount > 0

    async def settle_recent_send(
        self, channel: Channel, contact: str, since: float, now: float
    ) -> bool:
        cur = self._cur.execute(
            "UPDATE reply_jobs SET settled = 1, "
            "due_at = CASE WHEN state = 'ambiguous' THEN MIN(due_at, ?) ELSE due_at END "
            "WHERE channel = ? AND contact = ? AND send_started_at >= ?",
            (now, channel.value, contact, since),
        )
        return cur.rowcount > 0

    async def is_sent_message(self, key: str) -> bool:
        rows = self._cur.execute("SELECT 1 FROM sent_messages WHERE key = ?", (key,)).fetchall()
        return bool(rows)

    async def mark_staff(self, channel: Channel, contact: str, quiet_until: float) -> None:
        self._cur.execute(
            "INSERT INTO staff_activity (channel, contact, quiet_until) VALUES (?, ?, ?) "
            "ON CONFLICT (channel, contact) DO UPDATE "
            "SET quiet_until = MAX(staff_activity.quiet_until, excluded.quiet_until)",
            (channel.value, contact, quiet_until),
        )


CHECKPOINT_INTERVAL = 0.5  # seconds between checkpoints of the WAL, off the event loop


class _Checkpointer:
    """Copies the WAL back into the database on a thread of its own, twice a second.

    SQLite's automatic checkpoint runs inside whichever commit crosses 1,000 WAL pages, and
    it ends with an fsync of the database file after scattered writes: on a virtual disk
    that took up to 190 ms, all of it inside a webhook's acknowledgement. Here the loop's
    connections never checkpoint; this thread does, with a ``PASSIVE`` checkpoint that
    never blocks their commits, while sqlite3 releases the GIL.
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


class SQLiteStore:
    """``Store`` on one SQLite file (``DATABASE_URL=sqlite:///path``)."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self._db: sqlite3.Connection | None = None
        self._bg: sqlite3.Connection | None = None
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
        db.execute("PRAGMA busy_timeout = 5000")
        db.execute("PRAGMA wal_autocheckpoint = 0")  # the checkpoint thread does it
        return db

    async def open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Ingest commits are FULL: Meta gets its 200 only for what survives a power cut
            # (group commit shares the fsync). Worker bookkeeping is NORMAL, which survives any
            # crash of the process; a power cut could at worst replay a send, like an
            # ambiguous one.
            db = self._connect("FULL")
            db.executescript(SCHEMA)
            db.execute(
                "INSERT OR IGNORE INTO schema_info (key, value) VALUES ('version', ?)",
                (str(SCHEMA_VERSION),),
            )
            bg = self._connect("NORMAL")
        except (sqlite3.Error, OSError) as error:
            raise StoreUnavailable(
                f"cannot open the SQLite store: {type(error).__name__}"
            ) from None
        self._db, self._bg = db, bg
        self._checkpointer = _Checkpointer(self.path)
        self._checkpointer.start()

    async def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        if self._bg is not None:
            self._bg.close()
            self._bg = None
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

    def transaction(self) -> AbstractAsyncContextManager[IngestTx]:
        return self._transaction(self.db)

    @asynccontextmanager
    async def _transaction(self, db: sqlite3.Connection) -> AsyncIterator[IngestTx]:
        try:
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as error:
            raise StoreUnavailable(f"cannot begin: {type(error).__name__}") from None
        try:
            yield _Tx(db)
        except sqlite3.Error as error:
            db.execute("ROLLBACK")
            raise StoreUnavailable(f"cannot record: {type(error).__name__}") from None
        except BaseException:
            db.execute("ROLLBACK")
            raise
        try:
            db.execute("COMMIT")
        except sqlite3.Error as error:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise StoreUnavailable(f"cannot commit: {type(error).__name__}") from None

    def _write(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        try:
            return self.bg.execute(sql, params)
        except sqlite3.Error as error:
            raise StoreUnavailable(f"cannot write: {type(error).__name__}") from None

    async def claim(
        self, owner: str, now: float, limit: int, lease: float, channel: Channel | None = None
    ) -> list[Job]:
        channels = [channel.value] if channel is not None else [c.value for c in Channel]
        placeholders = ", ".join("?" * len(channels))
        cur = self._write(
            "UPDATE reply_jobs SET lease_owner = ?, lease_until = ?, attempts = attempts + 1 "  # noqa: S608 - placeholders only
            "WHERE id IN (SELECT id FROM reply_jobs "
            f"WHERE state <> 'done' AND channel IN ({placeholders}) AND due_at <= ? "
            "AND (lease_until IS NULL OR lease_until < ? "
            "OR (settled = 1 AND state != 'pending' AND lease_owner != ?)) "
            f"ORDER BY due_at LIMIT ?) RETURNING {_JOB_COLUMNS}",
            (owner, now + lease, *channels, now, now, owner, limit),
        )
        return [_job(row) for row in cur.fetchall()]

    async def begin_send(
        self, job_id: int, owner: str, now: float, *, resend: bool = False
    ) -> bool:
        cur = self._write(
            "UPDATE reply_jobs SET state = 'sending', send_started_at = ?, "
            "resent = MAX(resent, ?) WHERE id = ? AND lease_owner = ? AND state != 'done'",
            (now, int(resend), job_id, owner),
        )
        return cur.rowcount == 1

    async def unsend(self, job_id: int, owner: str, *, resend: bool = False) -> None:
        self._write(
            "UPDATE reply_jobs SET "
            "state = CASE WHEN ? THEN 'ambiguous' ELSE 'pending' END, "
            "resent = CASE WHEN ? THEN 0 ELSE resent END "
            "WHERE id = ? AND lease_owner = ? AND state = 'sending'",
            (int(resend), int(resend), job_id, owner),
        )

    async def reschedule(self, job_id: int, owner: str, due_at: float, state: JobState) -> None:
        self._write(
            "UPDATE reply_jobs SET due_at = ?, state = ?, lease_owner = NULL, lease_until = NULL "
            "WHERE id = ? AND lease_owner = ? AND state != 'done'",
            (due_at, state.value, job_id, owner),
        )

    async def finish(
        self, job: Job, outcome: Outcome, now: float, sent_key: str | None = None
    ) -> None:
        releases = outcome in (Outcome.FAILED, Outcome.STALE)
        async with self._transaction(self.bg):
            db = self.bg
            db.execute(
                "UPDATE reply_jobs SET state = 'done', outcome = ?, finished_at = ?, "
                "recipient = NULL, lease_owner = NULL, lease_until = NULL WHERE id = ?",
                (outcome.value, now, job.id),
            )
            if job.contact_log_id is not None:
                db.execute(
                    "UPDATE contact_log SET outcome = ? WHERE id = ?",
                    (outcome.value, job.contact_log_id),
                )
            if releases:
                db.execute(
                    "DELETE FROM cooldowns WHERE channel = ? AND contact = ? AND job_tag = ?",
                    (job.channel.value, job.contact, job.tag),
                )
            else:
                db.execute(
                    "UPDATE cooldowns SET job_tag = NULL "
                    "WHERE channel = ? AND contact = ? AND job_tag = ?",
                    (job.channel.value, job.contact, job.tag),
                )
            if sent_key is not None:
                db.execute(
                    "INSERT OR IGNORE INTO sent_messages (key, sent_at) VALUES (?, ?)",
                    (sent_key, now),
                )

    async def release(self, owner: str) -> None:
        self._write(
            "UPDATE reply_jobs SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = ?",
            (owner,),
        )

    async def queue_depth(self) -> int:
        try:
            row = self.bg.execute("SELECT COUNT(*) FROM reply_jobs WHERE state != 'done'")
            return int(row.fetchone()[0])
        except sqlite3.Error as error:
            raise StoreUnavailable(f"cannot read: {type(error).__name__}") from None

    async def purge(self, now: float, retention_days: int) -> PurgeCounts:
        async with self.transaction():
            db = self.db
            contacts = db.execute(
                "DELETE FROM contact_log WHERE time < ?", (now - retention_days * 86400,)
            ).rowcount
            seen = db.execute(
                "DELETE FROM seen_messages WHERE seen_at < ?", (now - DEDUPE_DAYS * 86400,)
            ).rowcount
            jobs = db.execute(
                "DELETE FROM reply_jobs WHERE state = 'done' AND finished_at < ?",
                (now - ENDED_JOB_DAYS * 86400,),
            ).rowcount
            other = db.execute(
                "DELETE FROM sent_messages WHERE sent_at < ?", (now - DEDUPE_DAYS * 86400,)
            ).rowcount
            other += db.execute("DELETE FROM staff_activity WHERE quiet_until < ?", (now,)).rowcount
            # A cooldown row says when a pseudonym last got a reply: keep it no longer than
            # the contact log that records the same fact.
            other += db.execute(
                "DELETE FROM cooldowns WHERE job_tag IS NULL AND claimed_at < ?",
                (now - retention_days * 86400,),
            ).rowcount
        with contextlib.suppress(sqlite3.Error):  # a reader holds the WAL; close truncates it
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return PurgeCounts(contacts=contacts, seen=seen, jobs=jobs, other=other)

    async def contacts(self, since: float | None, until: float | None) -> list[ContactRecord]:
        try:
            rows = self.db.execute(
                "SELECT time, channel, pseudonym, kind, outcome FROM contact_log "
                "WHERE time >= ? AND time < ? ORDER BY time, id",
                (
                    since if since is not None else float("-inf"),
                    until if until is not None else float("inf"),
                ),
            ).fetchall()
        except sqlite3.Error as error:
            raise StoreUnavailable(f"cannot read: {type(error).__name__}") from None
        return [ContactRecord(*row) for row in rows]

    async def forget(self, channel: Channel, contact: str) -> int:
        async with self.transaction():
            db = self.db
            params = (channel.value, contact)
            count = db.execute(
                "DELETE FROM contact_log WHERE channel = ? AND pseudonym = ?", params
            ).rowcount
            db.execute("DELETE FROM reply_jobs WHERE channel = ? AND contact = ?", params)
            db.execute("DELETE FROM cooldowns WHERE channel = ? AND contact = ?", params)
            db.execute("DELETE FROM staff_activity WHERE channel = ? AND contact = ?", params)
        with contextlib.suppress(sqlite3.Error):
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return int(count)
