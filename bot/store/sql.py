"""The store's SQL, written once: every statement, and the logic both backends share.

Statements are written with ``?`` placeholders and a few tokens; a ``Dialect`` renders each
once, at import. Only what really differs between SQLite and PostgreSQL is left to it:
placeholders (``?`` or ``$n``), column types, ``MIN``/``MAX`` against ``LEAST``/``GREATEST``,
how an inserted row's id comes back, and the claim statement (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL). Connections, transactions, locking and error mapping belong to the backend
modules, which give :class:`SqlStore` an :class:`Executor` to run statements on.

The job's transitions are the ones ``bot.job`` names, and each takes its source states from
there (``sources``), so the states a statement accepts and the diagram cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from types import TracebackType
from typing import Any, Protocol

from bot.errors import StoreConflict
from bot.events import Channel, EventKind, Outcome
from bot.job import (
    BEGIN_SEND,
    DEFER,
    END,
    NOT_DELIVERED,
    WAIT_TO_SETTLE,
    Job,
    NewJob,
    Queue,
    Transition,
)
from bot.store import (
    CONFLICT_RETRIES,
    ContactRecord,
    LogFigures,
    PurgeCounts,
    SavedTexts,
    conflict_pause,
)
from bot.store.schema import (
    DEDUPE_DAYS,
    ENDED_JOB_DAYS,
    JOB_COLUMNS,
    MIGRATIONS,
    SCHEMA_INFO,
    SCHEMA_VERSION,
    Row,
    job_from_row,
)

__all__ = [
    "Dialect",
    "Executor",
    "SqlIngestTx",
    "SqlStore",
    "Statements",
    "migrate",
]

DAY = 86400.0
LINK_REFRESH = DAY  # a link in use is stamped again at most this often: one write a day


class Executor(Protocol):
    """Runs one rendered statement on a connection the backend chose."""

    async def execute(self, sql: str, args: tuple[Any, ...] = ()) -> int:
        """Run a statement; the number of rows it touched."""
        ...

    async def fetch(self, sql: str, args: tuple[Any, ...] = ()) -> Sequence[Row]:
        """Run a query; every row."""
        ...

    async def insert(self, sql: str, args: tuple[Any, ...]) -> int:
        """Run an ``INSERT`` of one row; the row's new ``id``."""
        ...


def _in(transition: Transition) -> str:
    """The ``state IN (…)`` test of a transition's source states, in a fixed order."""
    return "state IN ({})".format(", ".join(f"'{s.value}'" for s in sorted(transition.sources)))


# ``{begin_send_states}`` and so on: each transition's source states, from ``bot.job``.
_STATES = {
    f"{t.name}_states": _in(t) for t in (BEGIN_SEND, NOT_DELIVERED, WAIT_TO_SETTLE, DEFER, END)
}


# Why records left the contact log, as ``deletion_counts.reason`` (and ``_FIGURES``) names it.
ERASURE = "erasure"
RETENTION = "retention"

# One statement, so one snapshot: the contact log's size and oldest time, the runs and records
# deleted by erasure and by retention, and the day counting began (schema migration 9).
# ``@where`` narrows both tables to one practice.
_FIGURES = (
    "SELECT held.records, held.oldest, "
    "gone.erasure_runs, gone.erasure_records, gone.retention_runs, gone.retention_records, "
    "(SELECT value FROM schema_info WHERE key = 'deletions_counted_since') "
    "FROM (SELECT COUNT(*) AS records, MIN(time) AS oldest FROM contact_log @where) AS held, "
    "(SELECT "
    "COALESCE(SUM(CASE WHEN reason = 'erasure' THEN runs ELSE 0 END), 0) AS erasure_runs, "
    "COALESCE(SUM(CASE WHEN reason = 'erasure' THEN records ELSE 0 END), 0) AS erasure_records, "
    "COALESCE(SUM(CASE WHEN reason = 'retention' THEN runs ELSE 0 END), 0) AS retention_runs, "
    "COALESCE(SUM(CASE WHEN reason = 'retention' THEN records ELSE 0 END), 0) "
    "AS retention_records "
    "FROM deletion_counts @where) AS gone"
)

_CLAIMABLE = (
    "state <> 'done' AND due_at <= ? "
    "AND (lease_until IS NULL OR lease_until < ? OR (settled AND lease_owner <> ?))"
)


@dataclass(frozen=True, slots=True)
class Statements:
    """Every statement of the store, by name; :meth:`Dialect.render` fills in each."""

    # -- ingest, one transaction per group of webhooks --------------------------------
    mark_seen: str = "INSERT INTO seen_messages (key, seen_at) VALUES (?, ?) ON CONFLICT DO NOTHING"
    staff_quiet: str = (
        "SELECT 1 FROM staff_activity WHERE channel = ? AND contact = ? AND quiet_until > ?"
    )
    claim_cooldown: str = (
        "INSERT INTO cooldowns (channel, contact, claimed_at, job_tag) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (channel, contact) DO UPDATE "
        "SET claimed_at = excluded.claimed_at, job_tag = excluded.job_tag "
        "WHERE cooldowns.job_tag IS NULL AND cooldowns.claimed_at <= ?"
    )
    add_contact: str = (
        "INSERT INTO contact_log (time, channel, pseudonym, kind, outcome, practice) "
        "VALUES (?, ?, ?, ?, ?, ?){returning_id}"
    )
    add_job: str = (
        "INSERT INTO reply_jobs (tag, channel, contact, contact_kind, recipient, "
        "contact_log_id, received_at, created_at, due_at, state, practice) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?)"
    )
    settle_tag: str = (
        "UPDATE reply_jobs SET settled = TRUE, "
        "due_at = CASE WHEN state = 'ambiguous' THEN {least}(due_at, ?) ELSE due_at END "
        "WHERE tag = ?"
    )
    # A failed status: a live job will end failed; a job that ended sent did not reach anyone.
    fail_live_job: str = (
        "UPDATE reply_jobs SET settled = TRUE, delivery_failed = TRUE, "
        "due_at = CASE WHEN state = 'ambiguous' THEN {least}(due_at, ?) ELSE due_at END "
        "WHERE tag = ? AND state <> 'done'"
    )
    # An ambiguous ending was resent because no status came for the first send; a failed
    # status now means the patient very likely got nothing, so it too ends failed and frees
    # the claim: a possible second reply is better than none (kill campaign, job 1152).
    fail_replied_job: str = (
        "UPDATE reply_jobs SET outcome = 'failed', delivery_failed = TRUE "
        "WHERE tag = ? AND state = 'done' AND outcome IN ('replied', 'ambiguous') "
        "RETURNING contact_log_id, channel, contact, created_at"
    )
    fail_contact: str = "UPDATE contact_log SET outcome = 'failed' WHERE id = ?"
    # The claim a job's ingest made is the cooldown row stamped with the job's creation time.
    release_claim: str = (
        "DELETE FROM cooldowns "
        "WHERE channel = ? AND contact = ? AND job_tag IS NULL AND claimed_at = ?"
    )
    settle_recent_send: str = (
        "UPDATE reply_jobs SET settled = TRUE, "
        "due_at = CASE WHEN state = 'ambiguous' THEN {least}(due_at, ?) ELSE due_at END "
        "WHERE channel = ? AND contact = ? AND send_started_at >= ?"
    )
    is_sent_message: str = "SELECT 1 FROM sent_messages WHERE key = ?"
    mark_staff: str = (
        "INSERT INTO staff_activity (channel, contact, quiet_until) VALUES (?, ?, ?) "
        "ON CONFLICT (channel, contact) DO UPDATE "
        "SET quiet_until = {greatest}(staff_activity.quiet_until, excluded.quiet_until)"
    )

    # -- one person under linked pseudonyms (a WhatsApp phone number and BSUIDs) ------
    find_person: str = (
        "SELECT person, linked_at FROM contact_links WHERE channel = ? AND pseudonym = ?"
    )
    touch_link: str = "UPDATE contact_links SET linked_at = ? WHERE channel = ? AND pseudonym = ?"
    linked: str = "SELECT pseudonym FROM contact_links WHERE channel = ? AND person = ?"
    repoint_links: str = (
        "UPDATE contact_links SET person = ?, linked_at = ? WHERE channel = ? AND person = ?"
    )
    add_link: str = (
        "INSERT INTO contact_links (channel, pseudonym, person, linked_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (channel, pseudonym) DO UPDATE "
        "SET person = excluded.person, linked_at = excluded.linked_at"
    )
    # A joining person's last reply counts for the person they join. Its pending claim, if
    # any, stays where the job will release or keep it; only the claim's time is copied.
    join_cooldown: str = (
        "INSERT INTO cooldowns (channel, contact, claimed_at, job_tag) "
        "SELECT channel, CAST(? AS TEXT), claimed_at, NULL FROM cooldowns "
        "WHERE channel = ? AND contact = ? "
        "ON CONFLICT (channel, contact) DO UPDATE "
        "SET claimed_at = {greatest}(cooldowns.claimed_at, excluded.claimed_at)"
    )
    leave_cooldown: str = (
        "DELETE FROM cooldowns WHERE channel = ? AND contact = ? AND job_tag IS NULL"
    )
    join_staff: str = (
        "INSERT INTO staff_activity (channel, contact, quiet_until) "
        "SELECT channel, CAST(? AS TEXT), quiet_until FROM staff_activity "
        "WHERE channel = ? AND contact = ? "
        "ON CONFLICT (channel, contact) DO UPDATE "
        "SET quiet_until = {greatest}(staff_activity.quiet_until, excluded.quiet_until)"
    )

    # -- a job's transitions (bot.job), each held by the lease ------------------------
    begin_send: str = (
        "UPDATE reply_jobs SET state = 'sending', send_started_at = ?, "
        "resent = CASE WHEN ? THEN TRUE ELSE resent END "
        "WHERE id = ? AND lease_owner = ? AND NOT settled AND {begin_send_states}"
    )
    # The one attempt made on a job already marked resent is its resend (bot.job.next_step).
    not_delivered: str = (
        "UPDATE reply_jobs SET state = CASE WHEN resent THEN 'ambiguous' ELSE 'pending' END, "
        "resent = FALSE WHERE id = ? AND lease_owner = ? AND {not_delivered_states}"
    )
    # The casts let PostgreSQL type the parameters of a CASE (SQLite reads them as REAL).
    wait_to_settle: str = (
        "UPDATE reply_jobs SET state = 'ambiguous', "
        "due_at = CASE WHEN settled THEN CAST(? AS DOUBLE PRECISION) "
        "ELSE CAST(? AS DOUBLE PRECISION) END, lease_owner = NULL, lease_until = NULL "
        "WHERE id = ? AND lease_owner = ? AND {wait_to_settle_states}"
    )
    defer: str = (
        "UPDATE reply_jobs SET "
        "state = CASE WHEN state = 'sending' THEN 'ambiguous' ELSE state END, "
        "due_at = ?, lease_owner = NULL, lease_until = NULL "
        "WHERE id = ? AND lease_owner = ? AND {defer_states}"
    )
    end: str = (
        "UPDATE reply_jobs SET state = 'done', outcome = ?, finished_at = ?, recipient = NULL, "
        "lease_owner = NULL, lease_until = NULL WHERE id = ? AND lease_owner = ? AND {end_states}"
    )
    end_contact: str = "UPDATE contact_log SET outcome = ?, template = ? WHERE id = ?"
    release_cooldown: str = (
        "DELETE FROM cooldowns WHERE channel = ? AND contact = ? AND job_tag = ?"
    )
    keep_cooldown: str = (
        "UPDATE cooldowns SET job_tag = NULL WHERE channel = ? AND contact = ? AND job_tag = ?"
    )
    add_sent_message: str = (
        "INSERT INTO sent_messages (key, sent_at) VALUES (?, ?) ON CONFLICT DO NOTHING"
    )
    release: str = (
        "UPDATE reply_jobs SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = ?"
    )
    queue_depth: str = "SELECT COUNT(*) FROM reply_jobs WHERE state <> 'done'"
    due_queues: str = "SELECT DISTINCT practice, channel FROM reply_jobs WHERE {claimable}"

    # -- retention, the contact log, erasure ------------------------------------------
    # Records of practices no longer configured, or of a single practice: the practice each
    # deleted record belonged to comes back, to count the deletions per practice. Counting the
    # rows this statement deleted, not the rows a SELECT saw before it, keeps the count exact
    # when two replicas purge at once (the second deletes nothing).
    purge_contacts: str = "DELETE FROM contact_log WHERE time < ? RETURNING practice"
    purge_practice_contacts: str = "DELETE FROM contact_log WHERE practice = ? AND time < ?"
    purge_seen: str = "DELETE FROM seen_messages WHERE seen_at < ?"
    purge_jobs: str = "DELETE FROM reply_jobs WHERE state = 'done' AND finished_at < ?"
    purge_sent: str = "DELETE FROM sent_messages WHERE sent_at < ?"
    purge_staff: str = "DELETE FROM staff_activity WHERE quiet_until < ?"
    # A cooldown row says when a pseudonym last got a reply: kept no longer than the contact
    # log that records the same fact.
    purge_cooldowns: str = "DELETE FROM cooldowns WHERE job_tag IS NULL AND claimed_at < ?"
    purge_links: str = "DELETE FROM contact_links WHERE linked_at < ?"
    contacts: str = (
        "SELECT time, channel, pseudonym, kind, outcome, template, practice FROM contact_log "
        "WHERE time >= ? AND time < ? ORDER BY time, id"
    )
    forget_contacts: str = (
        "DELETE FROM contact_log WHERE channel = ? AND pseudonym = ? RETURNING practice"
    )
    # Counts only: the practice, why, the UTC day, and how many (never whose) records.
    count_deletions: str = (
        "INSERT INTO deletion_counts (practice, reason, day, runs, records) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (practice, reason, day) DO UPDATE "
        "SET runs = deletion_counts.runs + excluded.runs, "
        "records = deletion_counts.records + excluded.records"
    )
    figures: str = _FIGURES.replace(" @where", "")
    practice_figures: str = _FIGURES.replace("@where", "WHERE practice = ?")

    # -- the last good set of texts ---------------------------------------------------
    save_texts: str = (
        "INSERT INTO good_texts (practice, saved_at, texts) VALUES (?, ?, ?) "
        "ON CONFLICT (practice) DO UPDATE SET saved_at = excluded.saved_at, texts = excluded.texts "
        "WHERE good_texts.texts <> excluded.texts"
    )
    saved_texts: str = "SELECT saved_at, texts FROM good_texts WHERE practice = ?"
    forget_jobs: str = "DELETE FROM reply_jobs WHERE channel = ? AND contact = ?"
    forget_cooldowns: str = "DELETE FROM cooldowns WHERE channel = ? AND contact = ?"
    forget_staff: str = "DELETE FROM staff_activity WHERE channel = ? AND contact = ?"
    forget_links: str = "DELETE FROM contact_links WHERE channel = ? AND person = ?"

    # -- schema -----------------------------------------------------------------------
    schema_version: str = "SELECT value FROM schema_info WHERE key = 'version'"
    set_schema_version: str = (
        "INSERT INTO schema_info (key, value) VALUES ('version', ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
    )


TEMPLATES = Statements()
_PLACEHOLDER = re.compile(r"\?")


@dataclass(frozen=True, slots=True)
class Dialect:
    """What differs between the two databases' SQL, and the statements rendered for one.

    ``claim_template`` leases due jobs; it has ``{columns}`` (the job's), ``{claimable}`` (the
    conditions below, shared) and ``{queue}`` (empty, or the one-queue condition) in it.
    ``update_last``: its ``SET`` arguments come after the conditions and the limit.
    """

    name: str
    numbered: bool  # placeholders are $1, $2, … instead of ?
    tokens: Mapping[str, str]
    claim_template: str
    update_last: bool

    def render(self, sql: str) -> str:
        """``sql`` with the tokens filled in and the placeholders of this database."""
        text = sql.format_map({**self.tokens, **_STATES, "claimable": _CLAIMABLE})
        if not self.numbered:
            return text
        numbers = iter(range(1, text.count("?") + 1))
        return _PLACEHOLDER.sub(lambda _: f"${next(numbers)}", text)

    def statements(self) -> Statements:
        """Every statement, rendered once for this database."""
        return Statements(**{f.name: self.render(getattr(TEMPLATES, f.name)) for f in _FIELDS})

    def claims(self) -> tuple[str, str]:
        """The claim statement for every queue, and for one queue."""

        def claim(queue: str) -> str:
            return self.render(
                self.claim_template.format(columns=JOB_COLUMNS, claimable=_CLAIMABLE, queue=queue)
            )

        return claim(""), claim(" AND practice = ? AND channel = ?")

    def claim_args(
        self, owner: str, now: float, limit: int, lease: float, queue: Queue | None
    ) -> tuple[Any, ...]:
        """The claim's arguments in this dialect's order."""
        where = (
            (now, now, owner)
            if queue is None
            else (now, now, owner, queue.practice, queue.channel.value)
        )
        update = (owner, now + lease)
        if self.update_last:
            return (*where, limit, *update)
        return (*update, *where, limit)


_FIELDS = dataclasses.fields(Statements)


async def migrate(ex: Executor, dialect: Dialect) -> None:
    """Bring the schema to ``SCHEMA_VERSION`` inside the caller's transaction (idempotent)."""
    await ex.execute(dialect.render(SCHEMA_INFO))
    rows = await ex.fetch(dialect.render(TEMPLATES.schema_version))
    version = int(rows[0][0]) if rows else 0
    if version >= SCHEMA_VERSION:
        return  # current, or written by a newer release whose changes are additive
    for step in MIGRATIONS[version:]:
        for statement in step:
            await ex.execute(dialect.render(statement))
    await ex.execute(dialect.render(TEMPLATES.set_schema_version), (str(SCHEMA_VERSION),))


class SqlIngestTx:
    """``IngestTx`` over one transaction's executor."""

    __slots__ = ("_ex", "_sql")

    def __init__(self, ex: Executor, sql: Statements) -> None:
        self._ex = ex
        self._sql = sql

    async def mark_seen(self, key: str, now: float) -> bool:
        return await self._ex.execute(self._sql.mark_seen, (key, now)) == 1

    async def staff_quiet(self, channel: Channel, contact: str, now: float) -> bool:
        return bool(await self._ex.fetch(self._sql.staff_quiet, (channel.value, contact, now)))

    async def claim_cooldown(
        self, channel: Channel, contact: str, now: float, free_before: float, tag: str
    ) -> bool:
        args = (channel.value, contact, now, tag, free_before)
        return await self._ex.execute(self._sql.claim_cooldown, args) == 1

    async def add_contact(
        self,
        now: float,
        channel: Channel,
        contact: str,
        kind: EventKind,
        outcome: Outcome,
        *,
        practice: str = "",
    ) -> int:
        args = (now, channel.value, contact, kind.value, outcome.value, practice)
        return await self._ex.insert(self._sql.add_contact, args)

    async def add_job(self, job: NewJob, contact_log_id: int) -> None:
        args = (
            job.tag,
            job.channel.value,
            job.contact,
            job.contact_kind.value,
            job.recipient,
            contact_log_id,
            job.received_at,
            job.created_at,
            job.created_at,
            job.practice,
        )
        await self._ex.execute(self._sql.add_job, args)

    async def settle_tag(self, tag: str, now: float) -> bool:
        return await self._ex.execute(self._sql.settle_tag, (now, tag)) > 0

    async def fail_tag(self, tag: str, now: float) -> bool:
        if await self._ex.execute(self._sql.fail_live_job, (now, tag)):
            return True
        rows = await self._ex.fetch(self._sql.fail_replied_job, (tag,))
        for row in rows:  # contact_log_id, channel, contact, created_at
            if row[0] is not None:
                await self._ex.execute(self._sql.fail_contact, (row[0],))
            await self._ex.execute(self._sql.release_claim, (row[1], row[2], row[3]))
        return bool(rows)

    async def settle_recent_send(
        self, channel: Channel, contact: str, since: float, now: float
    ) -> bool:
        args = (now, channel.value, contact, since)
        return await self._ex.execute(self._sql.settle_recent_send, args) > 0

    async def is_sent_message(self, key: str) -> bool:
        return bool(await self._ex.fetch(self._sql.is_sent_message, (key,)))

    async def mark_staff(self, channel: Channel, contact: str, quiet_until: float) -> None:
        await self._ex.execute(self._sql.mark_staff, (channel.value, contact, quiet_until))

    async def person(self, channel: Channel, contact: str, now: float) -> str:
        return await _person(self._ex, self._sql, channel, contact, now)

    async def link(self, channel: Channel, first: str, second: str, now: float) -> str:
        ex, sql, name = self._ex, self._sql, channel.value
        person = await _person(ex, sql, channel, first, now)
        joining = await _person(ex, sql, channel, second, now)
        if person == joining:
            return person
        # Everyone kept under ``joining`` (itself included) is now kept under ``person``.
        await ex.execute(sql.repoint_links, (person, now, name, joining))
        await ex.execute(sql.add_link, (name, joining, person, now))
        await ex.execute(sql.join_cooldown, (person, name, joining))
        await ex.execute(sql.leave_cooldown, (name, joining))
        await ex.execute(sql.join_staff, (person, name, joining))
        await ex.execute(sql.forget_staff, (name, joining))
        return person


def _utc_day(now: float) -> str:
    """The UTC day of a Unix time, as ``deletion_counts.day`` holds it."""
    return datetime.fromtimestamp(now, UTC).date().isoformat()


async def _person(
    ex: Executor, sql: Statements, channel: Channel, pseudonym: str, now: float | None
) -> str:
    """The pseudonym ``pseudonym``'s person is kept under: its own unless it was linked.

    A link found in use is stamped again (at most daily, and not when ``now`` is None), so
    retention only ends links that nothing has named for the retention period.
    """
    rows = await ex.fetch(sql.find_person, (channel.value, pseudonym))
    if not rows:
        return pseudonym
    person: str = rows[0][0]
    if now is not None and rows[0][1] < now - LINK_REFRESH:
        await ex.execute(sql.touch_link, (now, channel.value, pseudonym))
    return person


class _IngestTransaction:
    """The backend's atomic block, used as an ``IngestTx`` (a class: one per webhook group)."""

    __slots__ = ("_block", "_sql")

    def __init__(self, block: AbstractAsyncContextManager[Executor], sql: Statements) -> None:
        self._block = block
        self._sql = sql

    async def __aenter__(self) -> SqlIngestTx:
        return SqlIngestTx(await self._block.__aenter__(), self._sql)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        return await self._block.__aexit__(exc_type, exc, tb)


class SqlStore:
    """``Store`` written once over a backend's connections.

    A backend sets ``dialect`` and gives three ways to run statements: :meth:`_atomic` (one
    transaction on the connection webhooks are recorded on), :meth:`_bookkeeping` (one
    transaction for the worker's multi-statement transitions) and :meth:`_single` (one
    statement on its own, for the worker and readers).
    """

    dialect: Dialect

    def __init__(self) -> None:
        self._sql = self.dialect.statements()
        self._claim_all, self._claim_one = self.dialect.claims()

    def _atomic(self) -> AbstractAsyncContextManager[Executor]:
        raise NotImplementedError

    def _bookkeeping(self) -> AbstractAsyncContextManager[Executor]:
        raise NotImplementedError

    def _single(self) -> AbstractAsyncContextManager[Executor]:
        raise NotImplementedError

    def _erased(self) -> None:
        """Rows were erased: a backend may make sure they leave its files (SQLite's WAL)."""

    def transaction(self) -> AbstractAsyncContextManager[SqlIngestTx]:
        """One ingest transaction: commits when the block ends, rolls back on an exception.

        Raises:
            StoreUnavailable: the store could not begin or commit.
        """
        return _IngestTransaction(self._atomic(), self._sql)

    async def _run(self, sql: str, args: tuple[Any, ...] = ()) -> int:
        async with self._single() as ex:
            return await ex.execute(sql, args)

    async def claim(
        self, owner: str, now: float, limit: int, lease: float, queue: Queue | None = None
    ) -> list[Job]:
        sql = self._claim_all if queue is None else self._claim_one
        args = self.dialect.claim_args(owner, now, limit, lease, queue)
        async with self._single() as ex:
            rows = await ex.fetch(sql, args)
        return [job_from_row(row) for row in rows]

    async def due_queues(self, owner: str, now: float) -> list[Queue]:
        async with self._single() as ex:
            rows = await ex.fetch(self._sql.due_queues, (now, now, owner))
        return [Queue(row[0], Channel(row[1])) for row in rows]

    async def begin_send(
        self, job_id: int, owner: str, now: float, *, resend: bool = False
    ) -> bool:
        return await self._run(self._sql.begin_send, (now, resend, job_id, owner)) == 1

    async def not_delivered(self, job_id: int, owner: str) -> None:
        await self._run(self._sql.not_delivered, (job_id, owner))

    async def wait_to_settle(self, job_id: int, owner: str, until: float, now: float) -> None:
        await self._run(self._sql.wait_to_settle, (now, until, job_id, owner))

    async def defer(self, job_id: int, owner: str, due_at: float) -> None:
        await self._run(self._sql.defer, (due_at, job_id, owner))

    async def end(
        self,
        job: Job,
        owner: str,
        outcome: Outcome,
        now: float,
        *,
        sent_key: str | None = None,
        template: str | None = None,
    ) -> bool:
        for attempt in range(CONFLICT_RETRIES + 1):
            try:
                return await self._end(job, owner, outcome, now, sent_key, template)
            except StoreConflict:
                # Ingest on another replica locked the same cooldown row: the reply went out,
                # so ending it must not wait for the lease to run out.
                if attempt == CONFLICT_RETRIES:
                    raise
                await conflict_pause(attempt)
        return False  # pragma: no cover - the loop returns or raises

    async def _end(  # noqa: PLR0917 - the arguments of ``end``, passed on
        self,
        job: Job,
        owner: str,
        outcome: Outcome,
        now: float,
        sent_key: str | None,
        template: str | None,
    ) -> bool:
        sql = self._sql
        async with self._bookkeeping() as ex:
            if await ex.execute(sql.end, (outcome.value, now, job.id, owner)) != 1:
                return False
            if job.contact_log_id is not None:
                args = (outcome.value, template, job.contact_log_id)
                await ex.execute(sql.end_contact, args)
            # A failed or stale job released its cooldown claim; a reply keeps it for the period.
            frees = outcome in (Outcome.FAILED, Outcome.STALE)
            cooldown = sql.release_cooldown if frees else sql.keep_cooldown
            await ex.execute(cooldown, (job.channel.value, job.contact, job.tag))
            if sent_key is not None:
                await ex.execute(sql.add_sent_message, (sent_key, now))
        return True

    async def release(self, owner: str) -> None:
        await self._run(self._sql.release, (owner,))

    async def queue_depth(self) -> int:
        async with self._single() as ex:
            rows = await ex.fetch(self._sql.queue_depth)
        return int(rows[0][0])

    async def purge(
        self, now: float, retention_days: int, *, practices: Mapping[str, int] | None = None
    ) -> PurgeCounts:
        sql = self._sql
        practices = practices or {}
        # A practice's records go after its own period; anything else (a practice no longer
        # configured), and the cooldown and link rows that carry no practice, after the
        # longest period any practice keeps its records for.
        kept_since = now - max([retention_days, *practices.values()]) * DAY
        deduped_since = now - DEDUPE_DAYS * DAY
        async with self._atomic() as ex:
            deleted: Counter[str] = Counter()
            for practice, days in practices.items():
                args = (practice, now - days * DAY)
                deleted[practice] += await ex.execute(sql.purge_practice_contacts, args)
            deleted.update(row[0] for row in await ex.fetch(sql.purge_contacts, (kept_since,)))
            seen = await ex.execute(sql.purge_seen, (deduped_since,))
            jobs = await ex.execute(sql.purge_jobs, (now - ENDED_JOB_DAYS * DAY,))
            other = await ex.execute(sql.purge_sent, (deduped_since,))
            other += await ex.execute(sql.purge_staff, (now,))
            other += await ex.execute(sql.purge_cooldowns, (kept_since,))
            other += await ex.execute(sql.purge_links, (kept_since,))
            # In the same transaction: a count is never lost, nor made for a rolled-back purge.
            # A run that deleted nothing is not one: the service purges every day.
            day = _utc_day(now)
            for practice, records in deleted.items():
                if records:
                    counted = (practice, RETENTION, day, 1, records)
                    await ex.execute(sql.count_deletions, counted)
        self._erased()
        contacts = sum(deleted.values())
        return PurgeCounts(contacts=contacts, seen=seen, jobs=jobs, other=other)

    async def contacts(self, since: float | None, until: float | None) -> list[ContactRecord]:
        low = since if since is not None else float("-inf")
        high = until if until is not None else float("inf")
        async with self._single() as ex:
            rows = await ex.fetch(self._sql.contacts, (low, high))
        return [
            ContactRecord(row[0], row[1], row[2], row[3], row[4], row[5], row[6]) for row in rows
        ]

    async def save_texts(self, sets: Mapping[str, Mapping[str, str]], now: float) -> None:
        async with self._bookkeeping() as ex:
            for practice, texts in sets.items():
                await ex.execute(self._sql.save_texts, (practice, now, json.dumps(texts)))

    async def saved_texts(self, practice: str) -> SavedTexts | None:
        async with self._single() as ex:
            rows = await ex.fetch(self._sql.saved_texts, (practice,))
        if not rows:
            return None
        return SavedTexts(saved_at=rows[0][0], texts=json.loads(rows[0][1]))

    async def forget(self, channel: Channel, contact: str, *, practice: str | None = None) -> int:
        sql, name = self._sql, channel.value
        deleted: Counter[str] = Counter()
        async with self._atomic() as ex:
            person = await _person(ex, sql, channel, contact, None)
            linked = [row[0] for row in await ex.fetch(sql.linked, (name, person))]
            for pseudonym in dict.fromkeys((contact, person, *linked)):
                rows = await ex.fetch(sql.forget_contacts, (name, pseudonym))
                deleted.update(row[0] for row in rows)
                for statement in (sql.forget_jobs, sql.forget_cooldowns, sql.forget_staff):
                    await ex.execute(statement, (name, pseudonym))
            await ex.execute(sql.forget_links, (name, person))
            # One request, counted with what it deleted (a pseudonym is keyed by practice, so
            # its records are one practice's); a request that found nothing still happened.
            day = _utc_day(time.time())
            for slug, records in (deleted or Counter({practice or "": 0})).items():
                await ex.execute(sql.count_deletions, (slug, ERASURE, day, 1, records))
        self._erased()
        return sum(deleted.values())

    async def figures(self, practice: str | None, now: float) -> LogFigures:
        sql = self._sql
        async with self._single() as ex:
            if practice is None:
                rows = await ex.fetch(sql.figures)
            else:
                rows = await ex.fetch(sql.practice_figures, (practice, practice))
        row = rows[0]
        oldest: float | None = row[1]
        since: str | None = row[6]
        return LogFigures(
            records=int(row[0]),
            # A record stamped ahead of this clock (another replica's) is not negative days old.
            oldest_age_days=None if oldest is None else max(0, int((now - oldest) // DAY)),
            erasure_requests=int(row[2]),
            erased_records=int(row[3]),
            retention_runs=int(row[4]),
            retention_records=int(row[5]),
            counted_since=date.fromisoformat(since) if since else None,
        )
