"""The store: dedupe keys, cooldown claims, staff activity, the contact log and the reply queue.

``Store`` is the interface. ``bot.store.schema`` holds the tables and migrations and
``bot.store.sql`` every statement and the logic over them, once; ``bot.store.sqlite``
(embedded default) and ``bot.store.postgres`` (several replicas) add only connections,
transactions, locking and what their SQL really differs in. Ingest decisions are made by
``bot.ingest.apply`` against an ``IngestTx``, one transaction per group of webhooks; the reply
queue's side is the job's transitions, ``bot.job.JobStore``.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from bot.errors import StoreUnavailable
from bot.events import Channel, EventKind, Outcome
from bot.job import JobStore, NewJob

__all__ = [
    "CONFLICT_RETRIES",
    "ContactRecord",
    "IngestTx",
    "LogFigures",
    "PurgeCounts",
    "SavedTexts",
    "Store",
    "conflict_pause",
    "describe_store",
    "open_store",
]


@dataclass(frozen=True, slots=True)
class ContactRecord:
    """One contact-log row as exported: time, channel, pseudonym, kind, outcome, and the file
    name of the text that was sent (``None`` when none was)."""

    time: float
    channel: str
    pseudonym: str
    kind: str
    outcome: str
    template: str | None = None
    practice: str = ""  # the practice's slug; "" with a single practice


@dataclass(frozen=True, slots=True)
class PurgeCounts:
    """How many rows retention removed, per table."""

    contacts: int
    seen: int
    jobs: int
    other: int


@dataclass(frozen=True, slots=True)
class LogFigures:
    """The contact log and its deletions in numbers, for the evidence pack: never who.

    Deletions are counted from ``counted_since`` (the UTC day this release's schema first
    opened the store); ``None`` only for a store that never recorded it.
    """

    records: int  # contact records held now
    oldest_age_days: int | None  # whole days since the oldest record was made; None: none held
    erasure_requests: int  # ``contacts forget`` requests carried out
    erased_records: int  # contact records those requests deleted
    retention_records: int  # contact records retention deleted
    retention_runs: int  # retention runs that deleted at least one of them
    counted_since: date | None


# A transaction PostgreSQL chose as a deadlock's victim was rolled back whole: run it again
# (after ``conflict_pause``) up to this many times.
CONFLICT_RETRIES = 5


async def conflict_pause(attempt: int) -> None:
    """Back off a moment before the ``attempt``-th rerun of a transaction that lost a
    deadlock: another replica holds the same rows."""
    await asyncio.sleep(random.uniform(0.001, 0.02) * (attempt + 1))  # noqa: S311 - jitter


@dataclass(frozen=True, slots=True)
class SavedTexts:
    """A practice's last good set of texts: each file's name and text, and when it was saved."""

    saved_at: float
    texts: dict[str, str]


class IngestTx(Protocol):
    """The primitive operations of one ingest transaction (see ``bot.ingest``)."""

    async def mark_seen(self, key: str, now: float) -> bool:
        """Record a dedupe key; False when it was already there."""
        ...

    async def staff_quiet(self, channel: Channel, contact: str, now: float) -> bool:
        """True while staff answered this contact by hand within the quiet period."""
        ...

    async def claim_cooldown(
        self, channel: Channel, contact: str, now: float, free_before: float, tag: str
    ) -> bool:
        """Conditional upsert: claim unless claimed after ``free_before`` or a job is pending."""
        ...

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
        """Append a contact-log row for ``practice`` (a slug, or ""); returns its id."""
        ...

    async def add_job(self, job: NewJob, contact_log_id: int) -> None:
        """Queue a reply job, due now."""
        ...

    async def settle_tag(self, tag: str, now: float) -> bool:
        """A status or echo carried this job tag: it reached Meta. True if the tag is ours."""
        ...

    async def fail_tag(self, tag: str, now: float) -> bool:
        """A failed status carried this job tag: the reply never reached the patient.

        A job not yet ended ends failed without another send; one that ended replied (or
        ambiguous, after its resend) has its contact record turned to failed and its
        cooldown claim released.
        """
        ...

    async def settle_recent_send(
        self, channel: Channel, contact: str, since: float, now: float
    ) -> bool:
        """An echo to ``contact`` after a send began since ``since``: True if the bot sent one."""
        ...

    async def is_sent_message(self, key: str) -> bool:
        """True when ``key`` is the hash of a message id the bot's own send returned."""
        ...

    async def mark_staff(self, channel: Channel, contact: str, quiet_until: float) -> None:
        """Staff answered by hand: keep the bot quiet for this contact until then."""
        ...

    async def person(self, channel: Channel, contact: str, now: float) -> str:
        """The pseudonym ``contact``'s person is kept under: its own unless it was linked."""
        ...

    async def link(self, channel: Channel, first: str, second: str, now: float) -> str:
        """Record that two pseudonyms are one person; returns the person's pseudonym.

        When both already have a history, ``first``'s person keeps its pseudonym and the
        other's cooldown and staff-quiet periods join it.
        """
        ...


class Store(JobStore, Protocol):
    """Durable state shared by every worker and replica."""

    async def open(self) -> None:
        """Connect and create or migrate the schema."""
        ...

    async def close(self) -> None:
        """Release connections (SQLite: checkpoint the WAL so deleted rows leave it)."""
        ...

    async def ping(self) -> bool:
        """True when the store answers."""
        ...

    def transaction(self) -> AbstractAsyncContextManager[IngestTx]:
        """One transaction: commits when the block ends, rolls back on an exception.

        Raises:
            StoreUnavailable: the store could not begin or commit.
        """
        ...

    async def purge(
        self, now: float, retention_days: int, *, practices: Mapping[str, int] | None = None
    ) -> PurgeCounts:
        """Apply retention: contact log, dedupe keys, ended jobs. In a group, ``practices``
        gives each practice's own retention in days for its contact records."""
        ...

    async def contacts(self, since: float | None, until: float | None) -> list[ContactRecord]:
        """Contact-log rows in ``[since, until)``, oldest first."""
        ...

    async def forget(self, channel: Channel, contact: str, *, practice: str | None = None) -> int:
        """Delete every record of one person, under every pseudonym linked to ``contact``;
        returns the number of contact records.

        The request is counted (``figures``) for the practice of the records it deleted; one
        that found none is counted for ``practice`` ("" when not given).
        """
        ...

    async def figures(self, practice: str | None, now: float) -> LogFigures:
        """The contact log's size and age and the deletions counted so far, for one practice
        (a slug, or "" with a single practice) or, with None, for the whole store."""
        ...

    async def save_texts(self, sets: Mapping[str, Mapping[str, str]], now: float) -> None:
        """Keep each practice's set of texts (by slug) as its last good one."""
        ...

    async def saved_texts(self, practice: str) -> SavedTexts | None:
        """The practice's last good set of texts, if one was ever saved."""
        ...


def open_store(url: str, *, pool_size: int = 4, create: bool = True) -> Store:
    """The store for a ``DATABASE_URL`` (not yet opened).

    ``create=False`` is for commands that read or erase an existing contact log: a SQLite
    file that does not exist is then an error, not a new empty store.

    Raises:
        StoreUnavailable: ``create`` is False and there is no SQLite file at the path.
    """
    if url.startswith("sqlite:///"):
        from bot.store.sqlite import SQLiteStore  # noqa: PLC0415 - only load the backend in use

        path = url.removeprefix("sqlite:///")
        if not create and not Path(path).exists():
            raise StoreUnavailable(
                f"no database at {Path(path).absolute()} (the service creates it when it "
                "first starts; check the path and the working directory)"
            )
        return SQLiteStore(path)
    if url.startswith(("postgresql://", "postgres://")):
        from bot.store.postgres import PostgresStore  # noqa: PLC0415

        return PostgresStore(url, pool_size=pool_size)
    raise ValueError("DATABASE_URL must start with sqlite:/// or postgresql://")


def describe_store(url: str) -> str:
    """The store a ``DATABASE_URL`` names, for logs: kind and place, never the credentials."""
    if url.startswith("sqlite:///"):
        return f"sqlite {Path(url.removeprefix('sqlite:///')).absolute()}"
    parts = urlsplit(url)
    database = parts.path.lstrip("/") or "(default database)"
    return f"postgresql {parts.hostname or 'localhost'}:{parts.port or 5432}/{database}"
