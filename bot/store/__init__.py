"""The store: dedupe keys, cooldown claims, staff activity, the contact log and the reply queue.

``Store`` is the interface; ``bot.store.sqlite`` (embedded default) and ``bot.store.postgres``
(several replicas) implement it with the same guarantees. Ingest decisions are made by
``bot.ingest.apply`` against an ``IngestTx``, one transaction per webhook, so the reply policy
is written once for every backend.
"""

from __future__ import annotations

import enum
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Protocol

from bot.events import Channel, ContactKind, EventKind

__all__ = [
    "ContactRecord",
    "IngestTx",
    "Job",
    "JobState",
    "NewJob",
    "Outcome",
    "PurgeCounts",
    "Store",
    "open_store",
]


class Outcome(enum.StrEnum):
    """Contact-log outcomes (SPEC §6)."""

    PENDING = "pending"
    REPLIED = "replied"
    DRY_RUN = "dry_run"
    COOLDOWN = "cooldown"
    STALE = "stale"
    STAFF_ACTIVE = "staff_active"
    FAILED = "failed"
    AMBIGUOUS = "ambiguous"


class JobState(enum.StrEnum):
    """Where a reply job is: waiting, on the wire, unsure whether Meta got it, or ended."""

    PENDING = "pending"
    SENDING = "sending"
    AMBIGUOUS = "ambiguous"
    DONE = "done"


@dataclass(frozen=True, slots=True, kw_only=True)
class NewJob:
    """A reply job created at ingest, in the same transaction as its contact record."""

    tag: str
    channel: Channel
    contact: str  # pseudonym
    contact_kind: ContactKind
    recipient: bytes = field(repr=False)  # sealed raw recipient id
    received_at: float  # the inbound message's own timestamp
    created_at: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    """A claimed reply job, as the worker sees it."""

    id: int
    tag: str = field(repr=False)
    channel: Channel
    contact: str = field(repr=False)
    contact_kind: ContactKind
    recipient: bytes | None = field(repr=False)
    contact_log_id: int | None
    received_at: float
    state: JobState
    attempts: int
    send_started_at: float | None
    settled: bool
    resent: bool


@dataclass(frozen=True, slots=True)
class ContactRecord:
    """One contact-log row as exported: nothing but time, channel, pseudonym, kind, outcome."""

    time: float
    channel: str
    pseudonym: str
    kind: str
    outcome: str


@dataclass(frozen=True, slots=True)
class PurgeCounts:
    """How many rows retention removed, per table."""

    contacts: int
    seen: int
    jobs: int
    other: int


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
        self, now: float, channel: Channel, contact: str, kind: EventKind, outcome: Outcome
    ) -> int:
        """Append a contact-log row; returns its id."""
        ...

    async def add_job(self, job: NewJob, contact_log_id: int) -> None:
        """Queue a reply job, due now."""
        ...

    async def settle_tag(self, tag: str, now: float) -> bool:
        """A status or echo carried this job tag: it reached Meta. True if the tag is ours."""
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


class Store(Protocol):
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

    async def claim(
        self, owner: str, now: float, limit: int, lease: float, channel: Channel | None = None
    ) -> list[Job]:
        """Lease up to ``limit`` due jobs (of one channel, if given) whose lease has expired.

        A settled job on or near the wire (its tag came back in a status or echo) is claimable
        at once even while another owner leases it: it only needs ending, so a restart need not
        wait out a dead worker's lease.
        """
        ...

    async def begin_send(
        self, job_id: int, owner: str, now: float, *, resend: bool = False
    ) -> bool:
        """Mark the job as on the wire (and a resend as resent); False if the lease is lost."""
        ...

    async def unsend(self, job_id: int, owner: str, *, resend: bool = False) -> None:
        """The attempt certainly did not deliver: the job is no longer on the wire.

        It goes back to ``pending``, or, when the attempt was the resend after an ambiguous
        send, to ``ambiguous`` with the resend undone (the first send may still have landed).
        The lease stays with ``owner``, which may try again at once.
        """
        ...

    async def reschedule(self, job_id: int, owner: str, due_at: float, state: JobState) -> None:
        """Put the job back in the queue for ``due_at`` and drop the lease."""
        ...

    async def finish(
        self, job: Job, outcome: Outcome, now: float, sent_key: str | None = None
    ) -> None:
        """End the job: erase its recipient, set the contact outcome, keep or free the claim."""
        ...

    async def release(self, owner: str) -> None:
        """Drop every lease ``owner`` holds (graceful shutdown)."""
        ...

    async def queue_depth(self) -> int:
        """Jobs not yet ended."""
        ...

    async def purge(self, now: float, retention_days: int) -> PurgeCounts:
        """Apply retention: contact log, dedupe keys, ended jobs."""
        ...

    async def contacts(self, since: float | None, until: float | None) -> list[ContactRecord]:
        """Contact-log rows in ``[since, until)``, oldest first."""
        ...

    async def forget(self, channel: Channel, contact: str) -> int:
        """Delete every record of one person; returns the number of contact records."""
        ...


def open_store(url: str, *, pool_size: int = 4) -> Store:
    """The store for a ``DATABASE_URL`` (not yet opened)."""
    if url.startswith("sqlite:///"):
        from bot.store.sqlite import SQLiteStore  # noqa: PLC0415 - only load the backend in use

        return SQLiteStore(url.removeprefix("sqlite:///"))
    if url.startswith(("postgresql://", "postgres://")):
        from bot.store.postgres import PostgresStore  # noqa: PLC0415

        return PostgresStore(url, pool_size=pool_size)
    raise ValueError("DATABASE_URL must start with sqlite:/// or postgresql://")
