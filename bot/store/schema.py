"""The store's schema, once for both backends: tables, the job row, retention, migrations.

``MIGRATIONS[i]`` takes a database from schema version ``i`` to ``i + 1`` (version 0 is an
empty database). Both backends apply the same list, one step per transaction, and record the
version reached in ``schema_info``; a database written by a newer release is left alone (its
changes are additive). Statements name column types with tokens that the dialect fills in
(``bot.store.sql.Dialect``): ``{id}``, ``{real}``, ``{blob}``, ``{bool}``, ``{rowid}`` (the
suffix of tables that need no rowid) and ``{utc_today}`` (today's UTC date as ``YYYY-MM-DD``).
"""

from __future__ import annotations

from typing import Any, Protocol

from bot.events import Channel, ContactKind
from bot.job import Job, JobState

__all__ = [
    "DEDUPE_DAYS",
    "ENDED_JOB_DAYS",
    "JOB_COLUMNS",
    "MIGRATIONS",
    "SCHEMA_INFO",
    "SCHEMA_VERSION",
    "Row",
    "job_from_row",
]

DEDUPE_DAYS = 8  # Meta redelivers for up to 7 days
ENDED_JOB_DAYS = 8

SCHEMA_INFO = (
    "CREATE TABLE IF NOT EXISTS schema_info (key TEXT PRIMARY KEY, value TEXT NOT NULL){rowid}"
)

_TABLES = (
    "CREATE TABLE IF NOT EXISTS seen_messages ("
    "key TEXT PRIMARY KEY, seen_at {real} NOT NULL){rowid}",
    "CREATE TABLE IF NOT EXISTS cooldowns ("
    "channel TEXT NOT NULL, contact TEXT NOT NULL, claimed_at {real} NOT NULL, job_tag TEXT, "
    "PRIMARY KEY (channel, contact)){rowid}",
    "CREATE TABLE IF NOT EXISTS staff_activity ("
    "channel TEXT NOT NULL, contact TEXT NOT NULL, quiet_until {real} NOT NULL, "
    "PRIMARY KEY (channel, contact)){rowid}",
    "CREATE TABLE IF NOT EXISTS contact_log ("
    "id {id}, time {real} NOT NULL, channel TEXT NOT NULL, pseudonym TEXT NOT NULL, "
    "kind TEXT NOT NULL, outcome TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS contact_log_time ON contact_log (time)",
    "CREATE TABLE IF NOT EXISTS reply_jobs ("
    "id {id}, tag TEXT NOT NULL UNIQUE, channel TEXT NOT NULL, contact TEXT NOT NULL, "
    "contact_kind TEXT NOT NULL, recipient {blob}, contact_log_id {integer}, "
    "received_at {real} NOT NULL, created_at {real} NOT NULL, due_at {real} NOT NULL, "
    "state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, lease_owner TEXT, "
    "lease_until {real}, send_started_at {real}, settled {bool} NOT NULL DEFAULT FALSE, "
    "resent {bool} NOT NULL DEFAULT FALSE, outcome TEXT, finished_at {real})",
    "CREATE TABLE IF NOT EXISTS sent_messages ("
    "key TEXT PRIMARY KEY, sent_at {real} NOT NULL){rowid}",
)

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1. The tables, with an index on every person's jobs and contact records.
    (
        *_TABLES,
        "CREATE INDEX IF NOT EXISTS reply_jobs_open ON reply_jobs (due_at) WHERE state <> 'done'",
        "CREATE INDEX IF NOT EXISTS reply_jobs_person ON reply_jobs (channel, contact)",
        "CREATE INDEX IF NOT EXISTS contact_log_person ON contact_log (channel, pseudonym)",
    ),
    # 2. The queue is indexed per channel: a claim for an idle channel never walks another's
    #    backlog, and the partial index keeps a claim O(due jobs), not O(history). Only jobs
    #    already sent are looked up by person (an Instagram echo settles a recent send); a new
    #    job or contact record then writes no index page at a random place, and
    #    ``contacts forget`` scans instead. Every statement is idempotent: SQLite databases
    #    of releases before this list record version 1 with these indexes already in place.
    (
        "DROP INDEX IF EXISTS reply_jobs_open",
        "CREATE INDEX IF NOT EXISTS reply_jobs_due ON reply_jobs (channel, due_at) "
        "WHERE state <> 'done'",
        "DROP INDEX IF EXISTS reply_jobs_person",
        "CREATE INDEX IF NOT EXISTS reply_jobs_sent_to ON reply_jobs (channel, contact) "
        "WHERE send_started_at IS NOT NULL",
        "DROP INDEX IF EXISTS contact_log_person",
    ),
    # 3. A status can report that a reply failed to reach the patient after all.
    ("ALTER TABLE reply_jobs ADD COLUMN delivery_failed {bool} NOT NULL DEFAULT FALSE",),
    # 4. One person under two ids (a WhatsApp phone number and BSUID, or an old and a new
    #    BSUID): each linked pseudonym names the pseudonym the person is kept under. Only
    #    pseudonyms; ``linked_at`` is refreshed while the link is in use, so retention ends
    #    a link as it ends the contact records.
    (
        "CREATE TABLE IF NOT EXISTS contact_links ("
        "channel TEXT NOT NULL, pseudonym TEXT NOT NULL, person TEXT NOT NULL, "
        "linked_at {real} NOT NULL, PRIMARY KEY (channel, pseudonym)){rowid}",
        "CREATE INDEX IF NOT EXISTS contact_links_person ON contact_links (channel, person)",
    ),
    # 5. Which text a reply used: the template's file name, never the text.
    ("ALTER TABLE contact_log ADD COLUMN template TEXT",),
    # 6. A group in one deployment: which practice a record or a reply belongs to ('' when the
    #    deployment serves one practice). Cooldowns, staff-quiet rows, dedupe keys and links
    #    need no column: their pseudonyms are keyed by practice already.
    (
        "ALTER TABLE contact_log ADD COLUMN practice TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE reply_jobs ADD COLUMN practice TEXT NOT NULL DEFAULT ''",
    ),
    # 7. The queue is claimed per practice and channel (``bot.job.Queue``): a claim for one
    #    practice never walks another's backlog.
    (
        "DROP INDEX IF EXISTS reply_jobs_due",
        "CREATE INDEX IF NOT EXISTS reply_jobs_due ON reply_jobs (practice, channel, due_at) "
        "WHERE state <> 'done'",
    ),
    # 8. The last good set of each practice's texts (the manager's words, never a patient's),
    #    served when the files are broken at start-up: a text never takes the service down.
    (
        "CREATE TABLE IF NOT EXISTS good_texts ("
        "practice TEXT PRIMARY KEY, saved_at {real} NOT NULL, texts TEXT NOT NULL){rowid}",
    ),
    # 9. How many records erasure requests and retention deleted, per practice and UTC day:
    #    numbers only, never who, so the evidence pack (``practice-bot compliance``) can
    #    report deletions long after the records are gone. ``runs`` counts erasure requests,
    #    or retention runs that deleted something. The day counting began is kept, since
    #    deletions made by earlier releases were never counted.
    (
        "CREATE TABLE IF NOT EXISTS deletion_counts ("
        "practice TEXT NOT NULL, reason TEXT NOT NULL, day TEXT NOT NULL, "
        "runs INTEGER NOT NULL, records INTEGER NOT NULL, "
        "PRIMARY KEY (practice, reason, day)){rowid}",
        "INSERT INTO schema_info (key, value) VALUES ('deletions_counted_since', {utc_today}) "
        "ON CONFLICT (key) DO NOTHING",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)


class Row(Protocol):
    """A result row: SQLite's tuple or asyncpg's ``Record``, read by position."""

    def __getitem__(self, index: int, /) -> Any: ...


JOB_COLUMNS = (
    "id, tag, channel, contact, contact_kind, recipient, contact_log_id, received_at, state, "
    "attempts, send_started_at, settled, resent, delivery_failed, practice"
)


def job_from_row(row: Row) -> Job:
    """A ``Job`` from a row of ``JOB_COLUMNS``, in that order."""
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
        delivery_failed=bool(row[13]),
        practice=row[14],
    )
