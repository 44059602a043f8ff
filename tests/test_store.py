"""The store contract (bot/store): every test runs on SQLite and on PostgreSQL.

PostgreSQL runs need ``TEST_DATABASE_URL`` (see tests/helpers/stores.py); the tests named
``test_postgres_*`` exercise real concurrency: several transactions, pools and replicas at once.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, closing
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from bot.errors import StoreUnavailable
from bot.events import Channel, ContactKind, EventKind, Outcome
from bot.ingest import Decision, PracticeRules, PreparedPatient, apply
from bot.job import Job, JobState, NewJob, Queue
from bot.store import ContactRecord, PurgeCounts, SavedTexts, Store
from bot.store.postgres import PostgresStore
from bot.store.schema import DEDUPE_DAYS, ENDED_JOB_DAYS, SCHEMA_VERSION
from bot.store.sqlite import CHECKPOINT_INTERVAL, SQLiteStore
from tests.helpers.stores import StoreUnderTest, open_test_store, postgres_schema
from tests.test_allowlists import REVIEWED_SCHEMA

NOW = 1_767_261_600.0  # 2026-01-01 10:00 UTC
HOUR = 3600.0
DAY = 86400.0
WA = Channel.WHATSAPP


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def subject(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreUnderTest]:
    """Each store, opened on an empty database."""
    async with open_test_store(request.param, tmp_path) as opened:
        yield opened


@pytest.fixture
async def pg(tmp_path: Path) -> AsyncIterator[StoreUnderTest]:
    """The PostgreSQL store alone, in a schema of its own."""
    async with open_test_store("postgres", tmp_path) as opened:
        yield opened


def _new_job(tag: str, contact: str, channel: Channel, at: float, practice: str = "") -> NewJob:
    return NewJob(
        tag=tag,
        channel=channel,
        contact=contact,
        contact_kind=ContactKind.SCOPED if channel is not WA else ContactKind.PHONE,
        recipient=b"sealed:" + tag.encode(),
        received_at=at - 5,
        created_at=at,
        practice=practice,
    )


async def _queue(
    store: Store,
    tag: str,
    contact: str = "c1",
    channel: Channel = WA,
    at: float = NOW,
    *,
    practice: str = "",
) -> int:
    """Ingest's reply path: claim the cooldown, log the contact as pending, queue the job."""
    async with store.transaction() as tx:
        assert await tx.claim_cooldown(channel, contact, at, at - HOUR, tag)
        log_id = await tx.add_contact(
            at, channel, contact, EventKind.MESSAGE, Outcome.PENDING, practice=practice
        )
        await tx.add_job(_new_job(tag, contact, channel, at, practice), log_id)
    return log_id


async def _claim_one(store: Store, owner: str = "w1", at: float = NOW, lease: float = 60) -> Job:
    jobs = await store.claim(owner, at, 10, lease)
    assert len(jobs) == 1
    return jobs[0]


async def _claim_cooldown(
    store: Store, contact: str, at: float, free_before: float, tag: str
) -> bool:
    async with store.transaction() as tx:
        return await tx.claim_cooldown(WA, contact, at, free_before, tag)


async def _reply_then_end(store: Store, outcome: Outcome, tag: str = "t1") -> Job:
    await _queue(store, tag)
    job = await _claim_one(store)
    await store.end(job, "w1", outcome, NOW + 1)
    return job


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --- dedupe -----------------------------------------------------------------------------


async def test_mark_seen_new_once_then_duplicate(subject: StoreUnderTest) -> None:
    """A dedupe key is new the first time only, in the same and in later transactions."""
    async with subject.store.transaction() as tx:
        assert await tx.mark_seen("k1", NOW) is True
        assert await tx.mark_seen("k1", NOW) is False
    async with subject.store.transaction() as tx:
        assert await tx.mark_seen("k1", NOW + 1) is False
        assert await tx.mark_seen("k2", NOW + 1) is True


async def test_mark_seen_duplicate_after_reopen(subject: StoreUnderTest) -> None:
    """A key recorded before a restart is still a duplicate after it."""
    async with subject.store.transaction() as tx:
        assert await tx.mark_seen("k1", NOW)
    await subject.store.close()
    again = subject.another()
    await again.open()
    try:
        async with again.transaction() as tx:
            assert await tx.mark_seen("k1", NOW + 1) is False
    finally:
        await again.close()


# --- cooldown ---------------------------------------------------------------------------


async def test_claim_cooldown_free_row_is_claimed(subject: StoreUnderTest) -> None:
    """A contact with no cooldown row gets one, stamped with the time and job tag."""
    assert await _claim_cooldown(subject.store, "c1", NOW, NOW - HOUR, "t1")
    rows = await subject.rows("SELECT channel, contact, claimed_at, job_tag FROM cooldowns")
    assert rows == [("whatsapp", "c1", NOW, "t1")]


async def test_claim_cooldown_refused_while_job_pending(subject: StoreUnderTest) -> None:
    """A row held by an unended job refuses a claim even with a zero cooldown."""
    await _queue(subject.store, "t1")
    assert not await _claim_cooldown(subject.store, "c1", NOW + 10, NOW + 10, "t2")
    assert await _claim_cooldown(subject.store, "c2", NOW + 10, NOW + 10, "t3")


async def test_claim_cooldown_refused_inside_period(subject: StoreUnderTest) -> None:
    """After a reply, the contact's row refuses claims until the period has passed."""
    await _reply_then_end(subject.store, Outcome.REPLIED)
    at = NOW + HOUR / 2
    assert not await _claim_cooldown(subject.store, "c1", at, at - HOUR, "t2")


async def test_claim_cooldown_free_after_period(subject: StoreUnderTest) -> None:
    """Once the period has passed since the last claim, the row can be claimed again."""
    await _reply_then_end(subject.store, Outcome.REPLIED)
    at = NOW + HOUR
    assert await _claim_cooldown(subject.store, "c1", at, at - HOUR, "t2")
    rows = await subject.rows("SELECT claimed_at, job_tag FROM cooldowns")
    assert rows == [(at, "t2")]


@pytest.mark.parametrize("outcome", [Outcome.FAILED, Outcome.STALE])
async def test_end_failed_or_stale_releases_cooldown(
    subject: StoreUnderTest, outcome: Outcome
) -> None:
    """A job that ends failed or stale frees its claim at once."""
    await _reply_then_end(subject.store, outcome)
    assert await _claim_cooldown(subject.store, "c1", NOW + 2, NOW + 2 - HOUR, "t2")


@pytest.mark.parametrize("outcome", [Outcome.REPLIED, Outcome.DRY_RUN, Outcome.AMBIGUOUS])
async def test_end_with_reply_keeps_cooldown(subject: StoreUnderTest, outcome: Outcome) -> None:
    """A job that replied keeps its claim (tag cleared) for the rest of the period."""
    await _reply_then_end(subject.store, outcome)
    assert await subject.rows("SELECT claimed_at, job_tag FROM cooldowns") == [(NOW, None)]
    assert not await _claim_cooldown(subject.store, "c1", NOW + 2, NOW + 2 - HOUR, "t2")


async def test_end_releases_only_its_own_claim(subject: StoreUnderTest) -> None:
    """Finishing a job whose claim was since taken by another tag leaves that claim alone."""
    await _queue(subject.store, "t1")
    job = await _claim_one(subject.store)
    await subject.rows("UPDATE cooldowns SET job_tag = ? WHERE contact = ?", "t9", "c1")
    await subject.store.end(job, "w1", Outcome.FAILED, NOW + 1)
    assert await subject.rows("SELECT job_tag FROM cooldowns") == [("t9",)]


# --- staff activity ---------------------------------------------------------------------


async def test_staff_quiet_until_quiet_time(subject: StoreUnderTest) -> None:
    """Staff activity keeps one contact quiet until ``quiet_until`` (exclusive)."""
    async with subject.store.transaction() as tx:
        await tx.mark_staff(WA, "c1", NOW + 100)
        assert await tx.staff_quiet(WA, "c1", NOW + 99.5)
        assert not await tx.staff_quiet(WA, "c1", NOW + 100)
        assert not await tx.staff_quiet(WA, "c2", NOW)
        assert not await tx.staff_quiet(Channel.MESSENGER, "c1", NOW)


async def test_mark_staff_never_shortens_quiet(subject: StoreUnderTest) -> None:
    """A later echo with an earlier quiet time keeps the longer quiet period."""
    async with subject.store.transaction() as tx:
        await tx.mark_staff(WA, "c1", NOW + 100)
        await tx.mark_staff(WA, "c1", NOW + 50)
        assert await tx.staff_quiet(WA, "c1", NOW + 75)
        await tx.mark_staff(WA, "c1", NOW + 200)
        assert await tx.staff_quiet(WA, "c1", NOW + 150)


# --- settling ---------------------------------------------------------------------------


async def test_settle_tag_marks_own_job(subject: StoreUnderTest) -> None:
    """A known tag settles its job; an unknown tag is not ours."""
    await _queue(subject.store, "t1")
    async with subject.store.transaction() as tx:
        assert await tx.settle_tag("t1", NOW) is True
        assert await tx.settle_tag("t-unknown", NOW) is False
    assert (await _claim_one(subject.store)).settled is True


async def test_settle_tag_brings_ambiguous_job_forward(subject: StoreUnderTest) -> None:
    """Settling an ambiguous job makes it due now instead of after the settle window."""
    await _queue(subject.store, "t1")
    job = await _claim_one(subject.store)
    assert await subject.store.begin_send(job.id, "w1", NOW)
    await subject.store.wait_to_settle(job.id, "w1", NOW + 120, NOW)
    assert await subject.store.claim("w2", NOW + 5, 10, 60) == []
    async with subject.store.transaction() as tx:
        assert await tx.settle_tag("t1", NOW + 5)
    settled = await _claim_one(subject.store, "w2", NOW + 5)
    assert (settled.state, settled.settled) == (JobState.AMBIGUOUS, True)


async def test_fail_tag_of_a_live_job_settles_it_as_failed(subject: StoreUnderTest) -> None:
    """A failed status for a job not yet ended: it never sends again and ends failed."""
    await _queue(subject.store, "t1")
    job = await _claim_one(subject.store, "w1", lease=600)
    await subject.store.begin_send(job.id, "w1", NOW)
    async with subject.store.transaction() as tx:
        assert await tx.fail_tag("t1", NOW + 1) is True
    again = await _claim_one(subject.store, "w2", NOW + 1)
    assert (again.settled, again.delivery_failed) == (True, True)
    assert await subject.store.begin_send(again.id, "w2", NOW + 2) is False


@pytest.mark.parametrize("outcome", [Outcome.REPLIED, Outcome.AMBIGUOUS])
async def test_fail_tag_of_a_sent_job_fails_its_record_and_frees_its_claim(
    subject: StoreUnderTest, outcome: Outcome
) -> None:
    """A failed status after the job ended replied (or ambiguous, resent): the record says
    failed, the claim goes."""
    await _reply_then_end(subject.store, outcome)
    async with subject.store.transaction() as tx:
        assert await tx.fail_tag("t1", NOW + 2) is True
    assert await subject.rows("SELECT outcome FROM contact_log") == [("failed",)]
    assert await subject.rows("SELECT outcome FROM reply_jobs") == [("failed",)]
    assert await _claim_cooldown(subject.store, "c1", NOW + 3, NOW + 3 - HOUR, "t2")


@pytest.mark.parametrize("outcome", [Outcome.FAILED, Outcome.DRY_RUN])
async def test_fail_tag_leaves_other_endings_alone(
    subject: StoreUnderTest, outcome: Outcome
) -> None:
    """A job that sent nothing (failed, dry run) keeps its ending."""
    await _reply_then_end(subject.store, outcome)
    async with subject.store.transaction() as tx:
        assert await tx.fail_tag("t1", NOW + 2) is False
        assert await tx.fail_tag("t-unknown", NOW + 2) is False
    assert await subject.rows("SELECT outcome FROM contact_log") == [(outcome.value,)]


async def test_settle_recent_send_matches_recent_send_only(subject: StoreUnderTest) -> None:
    """Only a send to that contact begun at or after ``since`` is settled."""
    await _queue(subject.store, "t1")
    job = await _claim_one(subject.store)
    assert await subject.store.begin_send(job.id, "w1", NOW + 10)
    async with subject.store.transaction() as tx:
        assert not await tx.settle_recent_send(WA, "c1", NOW + 11, NOW + 12)
        assert not await tx.settle_recent_send(WA, "c2", NOW, NOW + 12)
        assert not await tx.settle_recent_send(Channel.INSTAGRAM, "c1", NOW, NOW + 12)
        assert await tx.settle_recent_send(WA, "c1", NOW + 10, NOW + 12)
    assert await subject.rows("SELECT settled FROM reply_jobs") == [(True,)]


async def test_is_sent_message_after_end_with_key(subject: StoreUnderTest) -> None:
    """The message key a send returned is recognised once the job has ended."""
    await _queue(subject.store, "t1")
    job = await _claim_one(subject.store)
    async with subject.store.transaction() as tx:
        assert not await tx.is_sent_message("m1")
    await subject.store.end(job, "w1", Outcome.REPLIED, NOW + 1, sent_key="m1")
    async with subject.store.transaction() as tx:
        assert await tx.is_sent_message("m1")
        assert not await tx.is_sent_message("m2")


# --- the queue --------------------------------------------------------------------------


async def test_claim_returns_job_with_every_field(subject: StoreUnderTest) -> None:
    """A claimed job carries exactly what ingest queued, with its first attempt counted."""
    log_id = await _queue(subject.store, "t1", "c7", Channel.INSTAGRAM, NOW)
    job = await _claim_one(subject.store, at=NOW + 1)
    assert job == Job(
        id=job.id,
        tag="t1",
        channel=Channel.INSTAGRAM,
        contact="c7",
        contact_kind=ContactKind.SCOPED,
        recipient=b"sealed:t1",
        contact_log_id=log_id,
        received_at=NOW - 5,
        state=JobState.PENDING,
        attempts=1,
        send_started_at=None,
        settled=False,
        resent=False,
    )
    assert isinstance(job.id, int)
    assert isinstance(job.recipient, bytes)


async def test_claim_leased_job_waits_for_lease_expiry(subject: StoreUnderTest) -> None:
    """A leased job is not claimable until its lease ends; then it is, one attempt more."""
    await _queue(subject.store, "t1")
    first = await _claim_one(subject.store, "w1", NOW, lease=60)
    assert await subject.store.claim("w2", NOW + 30, 10, 60) == []
    second = await _claim_one(subject.store, "w2", NOW + 61)
    assert (second.id, second.attempts) == (first.id, 2)
    assert await subject.rows("SELECT lease_owner, lease_until FROM reply_jobs") == [
        ("w2", NOW + 121)
    ]


async def test_claim_skips_jobs_not_due_or_ended(subject: StoreUnderTest) -> None:
    """Only due, unended jobs are claimed."""
    await _queue(subject.store, "t1")
    job = await _claim_one(subject.store)
    await subject.store.defer(job.id, "w1", NOW + 100)
    assert await subject.store.claim("w2", NOW + 50, 10, 60) == []
    job = await _claim_one(subject.store, "w2", NOW + 100)
    await subject.store.end(job, "w2", Outcome.REPLIED, NOW + 101)
    assert await subject.store.claim("w3", NOW + 10 * DAY, 10, 60) == []


async def test_claim_limit_takes_earliest_due(subject: StoreUnderTest) -> None:
    """``limit`` bounds the batch, and the earliest due jobs go first."""
    for i in range(3):
        await _queue(subject.store, f"t{i}", f"c{i}", at=NOW + 2 - i)
    jobs = await subject.store.claim("w1", NOW + 5, 2, 60)
    assert sorted(job.tag for job in jobs) == ["t1", "t2"]


async def test_claim_filters_by_queue(subject: StoreUnderTest) -> None:
    """With a queue, only that practice's jobs on that channel are claimed."""
    await _queue(subject.store, "t-a-wa", contact="c1", practice="a")
    await _queue(subject.store, "t-b-wa", contact="c2", practice="b")
    await _queue(subject.store, "t-b-ig", contact="c3", channel=Channel.INSTAGRAM, practice="b")
    jobs = await subject.store.claim("w1", NOW, 10, 60, Queue("b", WA))
    assert [job.tag for job in jobs] == ["t-b-wa"]
    rest = await subject.store.claim("w1", NOW, 10, 60)
    assert sorted(job.tag for job in rest) == ["t-a-wa", "t-b-ig"]


async def test_due_queues_names_each_queue_with_a_claimable_job(
    subject: StoreUnderTest,
) -> None:
    """Due queues: those with a job due now and free to claim, each named once."""
    await _queue(subject.store, "t1", contact="c1", practice="a")
    await _queue(subject.store, "t2", contact="c2", practice="a")
    await _queue(subject.store, "t3", contact="c3", practice="b", at=NOW + 100)
    await _queue(subject.store, "t4", contact="c4", channel=Channel.MESSENGER, practice="c")
    await subject.store.claim("w1", NOW, 10, 60, Queue("c", Channel.MESSENGER))
    assert await subject.store.due_queues("w2", NOW) == [Queue("a", WA)]


async def test_claim_settled_job_despite_live_lease(subject: StoreUnderTest) -> None:
    """A settled job only needs ending, so it is claimable while another lease is live."""
    await _queue(subject.store, "t1")
    job = await _claim_one(subject.store, "w1", NOW, lease=600)
    assert await subject.store.begin_send(job.id, "w1", NOW)
    async with subject.store.transaction() as tx:
        assert await tx.settle_tag("t1", NOW + 1)
    again = await _claim_one(subject.store, "w2", NOW + 1)
    assert (again.id, again.state, again.settled) == (job.id, JobState.SENDING, True)


async def test_claim_settled_job_not_reclaimed_by_its_own_owner(subject: StoreUnderTest) -> None:
    """The worker already ending a settled job does not claim it again."""
    await _queue(subject.store, "t1")
    job = await _claim_one(subject.store, "w1", NOW, lease=600)
    assert await subject.store.begin_send(job.id, "w1", NOW)
    async with subject.store.transaction() as tx:
        assert await tx.settle_tag("t1", NOW + 1)
    assert await subject.store.claim("w1", NOW + 1, 10, 600) == []


async def test_begin_send_refused_for_other_owner(subject: StoreUnderTest) -> None:
    """Only the lease owner may start the send; it marks the job as on the wire."""
    await _queue(subject.store, "t1")
    job = await _claim_one(subject.store, "w1")
    assert await subject.store.begin_send(job.id, "w2", NOW + 1) is False
    assert await subject.rows("SELECT state, send_started_at FROM reply_jobs") == [
        ("pending", None)
    ]
    assert await subject.store.begin_send(job.id, "w1", NOW + 1) is True
    assert await subject.rows("SELECT state, send_started_at, resent FROM reply_jobs") == [
        ("sending", NOW + 1, False)
    ]


async def test_begin_send_resend_stays_resent(subject: StoreUnderTest) -> None:
    """A resend marks the job resent, and a later plain send does not clear the mark."""
    await _queue(subject.store, "t1")
    job = await _claim_one(subject.store, "w1")
    assert await subject.store.begin_send(job.id, "w1", NOW + 1, resend=True)
    assert await subject.store.begin_send(job.id, "w1", NOW + 2)
    assert await subject.rows("SELECT resent FROM reply_jobs") == [(True,)]


async def test_begin_send_refused_after_end(subject: StoreUnderTest) -> None:
    """An ended job cannot be put back on the wire."""
    job = await _reply_then_end(subject.store, Outcome.REPLIED)
    assert await subject.store.begin_send(job.id, "w1", NOW + 2) is False


async def test_begin_send_refused_once_settled(subject: StoreUnderTest) -> None:
    """A job Meta already reported as delivered never goes on the wire again."""
    await _queue(subject.store, "t1")
    job = await _claim_one(subject.store, "w1")
    async with subject.store.transaction() as tx:
        assert await tx.settle_tag("t1", NOW)
    assert await subject.store.begin_send(job.id, "w1", NOW + 1) is False
    assert await subject.rows("SELECT state, send_started_at FROM reply_jobs") == [
        ("pending", None)
    ]


async def test_not_delivered_puts_a_failed_attempt_back_to_pending(
    subject: StoreUnderTest,
) -> None:
    """An attempt that certainly failed leaves the wire; the owner keeps its lease."""
    await _queue(subject.store, "t1")
    job = await _claim_one(subject.store, "w1")
    await subject.store.begin_send(job.id, "w1", NOW + 1)
    await subject.store.not_delivered(job.id, "w1")
    assert await subject.rows("SELECT state, lease_owner FROM reply_jobs") == [("pending", "w1")]


async def test_not_delivered_of_a_resend_keeps_the_first_send_ambiguous(
    subject: StoreUnderTest,
) -> None:
    """A failed resend is undone: the job is ambiguous again and may be resent later."""
    await _queue(subject.store, "t1")
    job = await _claim_one(subject.store, "w1")
    await subject.store.begin_send(job.id, "w1", NOW + 1, resend=True)
    await subject.store.not_delivered(job.id, "w1")
    assert await subject.rows("SELECT state, resent FROM reply_jobs") == [("ambiguous", False)]


async def test_not_delivered_refused_for_other_owner(subject: StoreUnderTest) -> None:
    """Only the lease owner can take its attempt off the wire."""
    await _queue(subject.store, "t1")
    job = await _claim_one(subject.store, "w1")
    await subject.store.begin_send(job.id, "w1", NOW + 1)
    await subject.store.not_delivered(job.id, "w2")
    assert await subject.rows("SELECT state FROM reply_jobs") == [("sending",)]


async def test_wait_to_settle_requeues_ambiguous_without_lease(subject: StoreUnderTest) -> None:
    """A send whose answer was lost waits, unleased, until the settle time, as ambiguous."""
    await _queue(subject.store, "t1")
    job = await _claim_one(subject.store, "w1", lease=600)
    await subject.store.begin_send(job.id, "w1", NOW)
    await subject.store.wait_to_settle(job.id, "w1", NOW + 30, NOW)
    assert await subject.store.claim("w2", NOW + 10, 10, 60) == []
    again = await _claim_one(subject.store, "w2", NOW + 30)
    assert (again.id, again.state, again.attempts) == (job.id, JobState.AMBIGUOUS, 2)


async def test_wait_to_settle_of_a_settled_job_is_due_now(subject: StoreUnderTest) -> None:
    """A status that came while the attempt was still on the wire ends the wait at once."""
    await _queue(subject.store, "t1")
    job = await _claim_one(subject.store, "w1", lease=600)
    await subject.store.begin_send(job.id, "w1", NOW)
    async with subject.store.transaction() as tx:
        assert await tx.settle_tag("t1", NOW + 1)
    await subject.store.wait_to_settle(job.id, "w1", NOW + 120, NOW + 8)
    again = await _claim_one(subject.store, "w2", NOW + 8)
    assert (again.state, again.settled) == (JobState.AMBIGUOUS, True)


async def test_defer_requeues_without_lease_in_its_state(subject: StoreUnderTest) -> None:
    """A deferred job drops its lease and is due again at the new time, still pending."""
    await _queue(subject.store, "t1")
    job = await _claim_one(subject.store, "w1", lease=600)
    await subject.store.defer(job.id, "w1", NOW + 30)
    assert await subject.store.claim("w2", NOW + 10, 10, 60) == []
    again = await _claim_one(subject.store, "w2", NOW + 30)
    assert (again.id, again.state, again.attempts) == (job.id, JobState.PENDING, 2)


async def test_defer_of_a_job_on_the_wire_makes_it_ambiguous(subject: StoreUnderTest) -> None:
    """A job deferred while an attempt may be on the wire is treated as ambiguous."""
    await _queue(subject.store, "t1")
    job = await _claim_one(subject.store, "w1")
    await subject.store.begin_send(job.id, "w1", NOW)
    await subject.store.defer(job.id, "w1", NOW + 30)
    assert await subject.rows("SELECT state, lease_owner FROM reply_jobs") == [("ambiguous", None)]


async def test_defer_ignored_for_other_owner(subject: StoreUnderTest) -> None:
    """A worker that lost the lease cannot put the job back in the queue."""
    await _queue(subject.store, "t1")
    job = await _claim_one(subject.store, "w1", lease=600)
    await subject.store.defer(job.id, "w2", NOW + 1)
    assert await subject.rows("SELECT due_at, lease_owner FROM reply_jobs") == [(NOW, "w1")]


async def test_release_frees_leases_of_one_owner(subject: StoreUnderTest) -> None:
    """Release drops every lease of that owner, and no other."""
    await _queue(subject.store, "t1")
    await _queue(subject.store, "t2", "c2")
    await subject.store.claim("w1", NOW, 1, 600)
    await subject.store.claim("w2", NOW, 1, 600)
    await subject.store.release("w1")
    assert await subject.store.claim("w3", NOW + 1, 10, 60) != []
    rows = await subject.rows("SELECT lease_owner FROM reply_jobs ORDER BY lease_owner")
    assert rows == [("w2",), ("w3",)]


async def test_end_refused_for_other_owner_or_twice(subject: StoreUnderTest) -> None:
    """Only the lease owner ends a job, and a job ends once."""
    await _queue(subject.store, "t1")
    job = await _claim_one(subject.store, "w1")
    assert await subject.store.end(job, "w2", Outcome.FAILED, NOW + 1) is False
    assert await subject.store.end(job, "w1", Outcome.REPLIED, NOW + 2) is True
    assert await subject.store.end(job, "w1", Outcome.FAILED, NOW + 3) is False
    assert await subject.rows("SELECT outcome FROM contact_log") == [("replied",)]


async def test_end_erases_recipient_and_sets_outcome(subject: StoreUnderTest) -> None:
    """Ending a job erases the sealed recipient and writes the outcome to the contact log."""
    log_id = await _queue(subject.store, "t1")
    job = await _claim_one(subject.store)
    await subject.store.end(job, "w1", Outcome.REPLIED, NOW + 3)
    rows = await subject.rows(
        "SELECT recipient, state, outcome, finished_at, lease_owner, lease_until FROM reply_jobs"
    )
    assert rows == [(None, "done", "replied", NOW + 3, None, None)]
    assert await subject.rows("SELECT id, outcome FROM contact_log") == [(log_id, "replied")]


async def test_queue_depth_counts_unended_jobs(subject: StoreUnderTest) -> None:
    """Queue depth counts pending, sending and ambiguous jobs, not ended ones."""
    assert await subject.store.queue_depth() == 0
    await _queue(subject.store, "t1")
    await _queue(subject.store, "t2", "c2")
    assert await subject.store.queue_depth() == 2
    job = (await subject.store.claim("w1", NOW, 1, 60))[0]
    await subject.store.end(job, "w1", Outcome.REPLIED, NOW)
    assert await subject.store.queue_depth() == 1


# --- retention and export ---------------------------------------------------------------


async def test_purge_contact_log_by_retention_days(subject: StoreUnderTest) -> None:
    """Contact records older than the retention period are deleted, newer ones kept."""
    async with subject.store.transaction() as tx:
        for age in (31, 29):
            await tx.add_contact(NOW - age * DAY, WA, "c1", EventKind.MESSAGE, Outcome.REPLIED)
    counts = await subject.store.purge(NOW, 30)
    assert counts == PurgeCounts(contacts=1, seen=0, jobs=0, other=0)
    assert await subject.rows("SELECT time FROM contact_log") == [(NOW - 29 * DAY,)]


async def test_purge_keeps_each_practices_records_for_its_own_period(
    subject: StoreUnderTest,
) -> None:
    """In a group, each practice's contact records go after that practice's own period."""
    async with subject.store.transaction() as tx:
        for practice in ("short", "long"):
            await tx.add_contact(
                NOW - 40 * DAY,
                WA,
                f"c-{practice}",
                EventKind.MESSAGE,
                Outcome.REPLIED,
                practice=practice,
            )
    counts = await subject.store.purge(NOW, 90, practices={"short": 30, "long": 60})
    assert counts.contacts == 1
    assert await subject.rows("SELECT practice FROM contact_log") == [("long",)]


async def test_purge_dedupe_keys_after_eight_days(subject: StoreUnderTest) -> None:
    """Dedupe keys live for eight days (Meta redelivers for seven), then go."""
    assert DEDUPE_DAYS == 8
    async with subject.store.transaction() as tx:
        await tx.mark_seen("old", NOW - 8 * DAY - 1)
        await tx.mark_seen("recent", NOW - 8 * DAY + 1)
    assert (await subject.store.purge(NOW, 30)).seen == 1
    async with subject.store.transaction() as tx:
        assert await tx.mark_seen("old", NOW) is True
        assert await tx.mark_seen("recent", NOW) is False


async def test_purge_ended_jobs_after_eight_days(subject: StoreUnderTest) -> None:
    """Ended jobs go eight days after they ended; unended jobs stay however old."""
    assert ENDED_JOB_DAYS == 8
    for tag, age in (("old", 9), ("recent", 7)):
        at = NOW - age * DAY
        await _queue(subject.store, tag, tag, at=at)
        job = await _claim_one(subject.store, at=at)
        await subject.store.end(job, "w1", Outcome.REPLIED, at)
    await _queue(subject.store, "waiting", "c3", at=NOW - 9 * DAY)
    assert (await subject.store.purge(NOW, 30)).jobs == 1
    rows = await subject.rows("SELECT tag FROM reply_jobs ORDER BY tag")
    assert rows == [("recent",), ("waiting",)]


async def test_purge_sent_keys_and_expired_staff_rows(subject: StoreUnderTest) -> None:
    """Sent-message keys go after eight days, staff rows once their quiet time has passed."""
    await _queue(subject.store, "t1", at=NOW - 9 * DAY)
    job = await _claim_one(subject.store, at=NOW - 9 * DAY)
    await subject.store.end(job, "w1", Outcome.REPLIED, NOW - 9 * DAY, sent_key="m1")
    async with subject.store.transaction() as tx:
        await tx.mark_staff(WA, "c1", NOW - 1)
        await tx.mark_staff(WA, "c2", NOW + 1)
    assert (await subject.store.purge(NOW, 30)).other == 2
    async with subject.store.transaction() as tx:
        assert not await tx.is_sent_message("m1")
        assert await tx.staff_quiet(WA, "c2", NOW)


async def test_contacts_ordered_within_bounds(subject: StoreUnderTest) -> None:
    """Export lists records in ``[since, until)``, oldest first, ties in insertion order."""
    async with subject.store.transaction() as tx:
        for offset, contact in ((2, "a"), (0, "b"), (1, "c"), (1, "d"), (3, "e")):
            await tx.add_contact(NOW + offset, WA, contact, EventKind.WELCOME, Outcome.COOLDOWN)
    everything = await subject.store.contacts(None, None)
    assert [record.pseudonym for record in everything] == ["b", "c", "d", "a", "e"]
    assert everything[0] == ContactRecord(NOW, "whatsapp", "b", "welcome", "cooldown")
    window = await subject.store.contacts(NOW + 1, NOW + 3)
    assert [record.pseudonym for record in window] == ["c", "d", "a"]
    assert [r.pseudonym for r in await subject.store.contacts(NOW + 2, None)] == ["a", "e"]
    assert [r.pseudonym for r in await subject.store.contacts(None, NOW + 1)] == ["b"]


async def test_forget_deletes_one_person_only(subject: StoreUnderTest) -> None:
    """Erasure deletes one person's records on one channel and counts their contact rows."""
    for contact in ("c1", "c2"):
        await _queue(subject.store, f"t-{contact}", contact)
        async with subject.store.transaction() as tx:
            await tx.add_contact(NOW + 1, WA, contact, EventKind.MESSAGE, Outcome.COOLDOWN)
            await tx.mark_staff(WA, contact, NOW + HOUR)
    await _queue(subject.store, "t-ms", "c1", Channel.MESSENGER)
    assert await subject.store.forget(WA, "c1") == 2
    people = "SELECT DISTINCT channel, {} FROM {} ORDER BY 1, 2"
    other_person, other_channel = ("whatsapp", "c2"), ("messenger", "c1")
    assert await subject.rows(people.format("pseudonym", "contact_log")) == [
        other_channel,
        other_person,
    ]
    for table in ("reply_jobs", "cooldowns"):
        assert await subject.rows(people.format("contact", table)) == [other_channel, other_person]
    assert await subject.rows(people.format("contact", "staff_activity")) == [other_person]


async def test_forget_unknown_person_counts_zero(subject: StoreUnderTest) -> None:
    """Erasing someone the store never saw deletes nothing."""
    await _queue(subject.store, "t1")
    assert await subject.store.forget(WA, "nobody") == 0
    assert await subject.store.queue_depth() == 1


# --- one person under linked pseudonyms --------------------------------------------------


async def _link(store: Store, first: str, second: str, at: float = NOW) -> str:
    async with store.transaction() as tx:
        return await tx.link(WA, first, second, at)


async def _person(store: Store, contact: str, at: float = NOW) -> str:
    async with store.transaction() as tx:
        return await tx.person(WA, contact, at)


async def test_person_of_an_unlinked_pseudonym_is_itself(subject: StoreUnderTest) -> None:
    """A pseudonym never linked is its own person, and looking it up writes nothing."""
    assert await _person(subject.store, "phone") == "phone"
    assert await subject.rows("SELECT * FROM contact_links") == []


async def test_link_keeps_the_person_under_the_first_pseudonym(subject: StoreUnderTest) -> None:
    """Linking a phone's and a BSUID's pseudonyms makes both name the phone's person."""
    assert await _link(subject.store, "phone", "bsuid") == "phone"
    assert await _person(subject.store, "bsuid") == "phone"
    assert await _person(subject.store, "phone") == "phone"
    assert await _link(subject.store, "phone", "bsuid", NOW + 1) == "phone"
    assert await subject.rows("SELECT pseudonym, person FROM contact_links") == [("bsuid", "phone")]


async def test_link_chains_onto_one_person(subject: StoreUnderTest) -> None:
    """A new BSUID linked to an old one joins the person the old one already belonged to."""
    await _link(subject.store, "phone", "old-bsuid")
    assert await _link(subject.store, "old-bsuid", "new-bsuid") == "phone"
    assert await _person(subject.store, "new-bsuid") == "phone"


async def test_link_joins_the_second_persons_periods(subject: StoreUnderTest) -> None:
    """Merging two histories keeps the later reply time and the longer staff-quiet period."""
    assert await _claim_cooldown(subject.store, "bsuid", NOW, NOW - HOUR, "t1")
    async with subject.store.transaction() as tx:
        await tx.mark_staff(WA, "bsuid", NOW + 2 * HOUR)
        await tx.mark_staff(WA, "phone", NOW + HOUR)
    assert await _link(subject.store, "phone", "bsuid") == "phone"
    assert await subject.rows("SELECT contact, claimed_at, job_tag FROM cooldowns") == [
        ("bsuid", NOW, "t1"),  # the pending job still releases or keeps its own claim
        ("phone", NOW, None),
    ]
    assert await subject.rows("SELECT contact, quiet_until FROM staff_activity") == [
        ("phone", NOW + 2 * HOUR)
    ]
    assert not await _claim_cooldown(subject.store, "phone", NOW + 1, NOW - HOUR, "t2")


async def test_link_moves_an_ended_claim_to_the_person(subject: StoreUnderTest) -> None:
    """A claim whose job ended leaves the joining pseudonym and counts for the person."""
    await _queue(subject.store, "t1", "bsuid")
    await subject.store.end(await _claim_one(subject.store), "w1", Outcome.REPLIED, NOW + 1)
    await _link(subject.store, "phone", "bsuid", NOW + 2)
    assert await subject.rows("SELECT contact, claimed_at, job_tag FROM cooldowns") == [
        ("phone", NOW, None)
    ]


async def test_link_in_use_is_stamped_again_after_a_day(subject: StoreUnderTest) -> None:
    """Naming a link refreshes its time at most daily, so retention ends only unused links."""
    await _link(subject.store, "phone", "bsuid")
    await _person(subject.store, "bsuid", NOW + HOUR)
    assert await subject.rows("SELECT linked_at FROM contact_links") == [(NOW,)]
    await _person(subject.store, "bsuid", NOW + 2 * DAY)
    assert await subject.rows("SELECT linked_at FROM contact_links") == [(NOW + 2 * DAY,)]


async def test_purge_removes_links_unused_for_the_retention_period(
    subject: StoreUnderTest,
) -> None:
    """A link nothing named for the retention period is erased; a fresh one is kept."""
    await _link(subject.store, "phone", "bsuid", NOW - 31 * DAY)
    await _link(subject.store, "phone2", "bsuid2", NOW - 29 * DAY)
    counts = await subject.store.purge(NOW, 30)
    assert counts.other == 1
    assert await subject.rows("SELECT pseudonym FROM contact_links") == [("bsuid2",)]


@pytest.mark.parametrize("named", ["phone", "old-bsuid", "new-bsuid"])
async def test_forget_by_any_linked_pseudonym_erases_the_person(
    subject: StoreUnderTest, named: str
) -> None:
    """Erasure by any of a person's ids deletes the records kept under each, and the links."""
    await _link(subject.store, "phone", "old-bsuid")
    await _link(subject.store, "old-bsuid", "new-bsuid")
    async with subject.store.transaction() as tx:
        for contact in ("phone", "old-bsuid", "new-bsuid", "someone-else"):
            await tx.add_contact(NOW, WA, contact, EventKind.MESSAGE, Outcome.COOLDOWN)
            await tx.mark_staff(WA, contact, NOW + HOUR)
    await _queue(subject.store, "t1", "phone")
    assert await subject.store.forget(WA, named) == 4
    assert await subject.rows("SELECT pseudonym FROM contact_log") == [("someone-else",)]
    assert await subject.rows("SELECT contact FROM staff_activity") == [("someone-else",)]
    assert await subject.rows("SELECT * FROM contact_links") == []
    assert await subject.rows("SELECT * FROM cooldowns") == []
    assert await subject.store.queue_depth() == 0


# --- transactions and errors ------------------------------------------------------------


async def test_transaction_rolls_back_on_exception(subject: StoreUnderTest) -> None:
    """An exception inside a transaction leaves no trace and propagates unchanged."""

    async def write_everything_then_fail() -> None:
        async with subject.store.transaction() as tx:
            await tx.mark_seen("k1", NOW)
            assert await tx.claim_cooldown(WA, "c1", NOW, NOW - HOUR, "t1")
            log_id = await tx.add_contact(NOW, WA, "c1", EventKind.MESSAGE, Outcome.PENDING)
            await tx.add_job(_new_job("t1", "c1", WA, NOW), log_id)
            await tx.mark_staff(WA, "c2", NOW + HOUR)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await write_everything_then_fail()
    for table in ("seen_messages", "cooldowns", "contact_log", "reply_jobs", "staff_activity"):
        assert await subject.rows(f"SELECT COUNT(*) FROM {table}") == [(0,)], table  # noqa: S608
    async with subject.store.transaction() as tx:
        assert await tx.mark_seen("k1", NOW)


async def test_transaction_store_error_is_store_unavailable(subject: StoreUnderTest) -> None:
    """A failing statement rolls back and surfaces as StoreUnavailable naming no value."""
    await _queue(subject.store, "pb-secret-tag", "c-secret")

    async def queue_the_same_tag_again() -> None:
        async with subject.store.transaction() as tx:
            await tx.mark_seen("k1", NOW)
            await tx.add_job(_new_job("pb-secret-tag", "c-secret", WA, NOW), 1)  # tag is UNIQUE

    with pytest.raises(StoreUnavailable) as caught:
        await queue_the_same_tag_again()
    message = str(caught.value)
    assert "secret" not in message
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__
    assert await subject.rows("SELECT COUNT(*) FROM seen_messages") == [(0,)]


async def test_store_calls_raise_store_unavailable_on_server_error(
    subject: StoreUnderTest,
) -> None:
    """With its tables gone, every store call raises StoreUnavailable, never a driver error."""
    await _queue(subject.store, "t1")
    job = await _claim_one(subject.store)
    for table in ("reply_jobs", "contact_log"):
        await subject.rows(f"DROP TABLE {table}")
    store = subject.store
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: store.claim("w1", NOW, 10, 60),
        lambda: store.begin_send(job.id, "w1", NOW),
        lambda: store.not_delivered(job.id, "w1"),
        lambda: store.wait_to_settle(job.id, "w1", NOW, NOW),
        lambda: store.defer(job.id, "w1", NOW),
        lambda: store.end(job, "w1", Outcome.REPLIED, NOW),
        lambda: store.release("w1"),
        store.queue_depth,
        lambda: store.purge(NOW, 30),
        lambda: store.contacts(None, None),
        lambda: store.forget(WA, "c1"),
    ]
    for call in calls:
        with pytest.raises(StoreUnavailable):
            await call()
    assert await store.ping()


async def test_ping_false_once_closed(subject: StoreUnderTest) -> None:
    """Ping answers while open and says no once closed; closing twice is harmless."""
    assert await subject.store.ping() is True
    await subject.store.close()
    await subject.store.close()
    assert await subject.store.ping() is False
    with pytest.raises(StoreUnavailable):
        await subject.store.queue_depth()


async def test_open_on_existing_database_keeps_data(subject: StoreUnderTest) -> None:
    """Opening a second store on a database in use keeps schema and rows as they are."""
    await _queue(subject.store, "t1")
    second = subject.another()
    await second.open()
    try:
        assert await second.queue_depth() == 1
        assert (await _claim_one(second)).tag == "t1"
    finally:
        await second.close()


# --- Upgrades from earlier releases ------------------------------------------------------

CURRENT_INDEXES = {
    "contact_log_time",
    "reply_jobs_due",
    "reply_jobs_sent_to",
    "contact_links_person",
}
SCHEMA_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "schema"


async def _assert_upgraded(
    store: Store, subject_rows: Callable[[str], Awaitable[list[Any]]]
) -> None:
    """The previous release's rows are all there, on today's indexes and schema version."""
    assert await subject_rows("SELECT value FROM schema_info WHERE key = 'version'") == [
        (str(SCHEMA_VERSION),)
    ]
    assert await subject_rows("SELECT outcome FROM contact_log") == [("pending",)]
    assert await subject_rows("SELECT contact FROM staff_activity") == [("c2",)]
    async with store.transaction() as tx:
        assert await tx.mark_seen("k1", NOW + 1) is False
        assert not await tx.claim_cooldown(WA, "c1", NOW + 1, NOW + 1, "t2")
    job = await _claim_one(store, at=NOW + 1)
    assert (job.tag, job.state, job.recipient, job.received_at) == (
        "t1",
        JobState.PENDING,
        b"sealed:t1",
        NOW - 5,
    )
    assert await store.end(job, "w1", Outcome.REPLIED, NOW + 2)


async def test_sqlite_previous_release_database_is_upgraded(tmp_path: Path) -> None:
    """A database the previous release wrote opens, upgrades and keeps every row."""
    path = tmp_path / "previous.sqlite3"
    with closing(sqlite3.connect(path)) as db:
        db.executescript((SCHEMA_FIXTURES / "sqlite-previous-release.sql").read_text())
    store = SQLiteStore(str(path))
    await store.open()
    try:

        async def rows(sql: str) -> list[Any]:
            return store.db.execute(sql).fetchall()

        indexes = await rows(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%'"
        )
        assert {name for (name,) in indexes} == CURRENT_INDEXES
        await _assert_upgraded(store, rows)
    finally:
        await store.close()


async def test_sqlite_first_release_indexes_are_replaced(tmp_path: Path) -> None:
    """A database still carrying the first release's per-person indexes gets today's."""
    path = tmp_path / "first.sqlite3"
    with closing(sqlite3.connect(path)) as db:
        db.executescript((SCHEMA_FIXTURES / "sqlite-previous-release.sql").read_text())
        db.executescript(
            "DROP INDEX reply_jobs_due; DROP INDEX reply_jobs_sent_to;"
            "CREATE INDEX reply_jobs_open ON reply_jobs (due_at) WHERE state <> 'done';"
            "CREATE INDEX reply_jobs_person ON reply_jobs (channel, contact);"
            "CREATE INDEX contact_log_person ON contact_log (channel, pseudonym);"
        )
    store = SQLiteStore(str(path))
    await store.open()
    try:
        rows = store.db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%'"
        ).fetchall()
        assert {name for (name,) in rows} == CURRENT_INDEXES
        assert (await _claim_one(store)).tag == "t1"
    finally:
        await store.close()


@pytest.mark.postgres
async def test_postgres_previous_release_database_is_upgraded() -> None:
    """A database the previous release wrote opens, upgrades and keeps every row."""
    async with postgres_schema() as url:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute((SCHEMA_FIXTURES / "postgres-previous-release.sql").read_text())
        finally:
            await conn.close()

        async def rows(sql: str) -> list[Any]:
            conn = await asyncpg.connect(url)
            try:
                return [tuple(row.values()) for row in await conn.fetch(sql)]
            finally:
                await conn.close()

        store = PostgresStore(url, pool_size=1)
        await store.open()
        try:
            indexes = await rows(
                "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() "
                "AND indexname NOT LIKE '%_pkey' AND indexname NOT LIKE '%_key'"
            )
            assert {name for (name,) in indexes} == CURRENT_INDEXES
            await _assert_upgraded(store, rows)
        finally:
            await store.close()


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_new_database_gets_the_same_schema_on_both_backends(
    kind: str, tmp_path: Path
) -> None:
    """Both backends build the same tables and columns from the one migrations list."""
    async with open_test_store(kind, tmp_path) as opened:
        if kind == "sqlite":
            rows = await opened.rows(
                "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p "
                "WHERE m.type = 'table'"
            )
        else:
            rows = await opened.rows(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = current_schema()"
            )
    columns = {(table, column) for table, column in rows}
    assert columns == EXPECTED_COLUMNS


# The reviewed list of what each column holds is the one home of the schema's columns.
EXPECTED_COLUMNS = {
    (table, column) for table, columns in REVIEWED_SCHEMA.items() for column in columns
}


async def test_sqlite_wal_reaches_the_database_file_in_the_background(tmp_path: Path) -> None:
    """Committed rows are copied from the WAL into the database file without a commit's help."""
    path = tmp_path / "store.sqlite3"
    store = SQLiteStore(str(path))
    await store.open()
    try:
        await _queue(store, "t1")
        await asyncio.sleep(CHECKPOINT_INTERVAL * 3)
        shutil.copy(path, tmp_path / "copy.sqlite3")  # the database file alone, no WAL
        with closing(sqlite3.connect(tmp_path / "copy.sqlite3")) as copy:
            assert copy.execute("SELECT tag FROM reply_jobs").fetchall() == [("t1",)]
    finally:
        await store.close()


async def test_sqlite_commits_never_checkpoint(tmp_path: Path) -> None:
    """The connections the event loop uses leave checkpoints (and their fsync) to the thread."""
    store = SQLiteStore(str(tmp_path / "store.sqlite3"))
    await store.open()
    try:
        for conn in (store.db, store.bg):
            assert conn.execute("PRAGMA wal_autocheckpoint").fetchone() == (0,)
    finally:
        await store.close()


# --- PostgreSQL: schema, real concurrency, several replicas -----------------------------


@pytest.mark.postgres
async def test_postgres_schema_version_recorded(pg: StoreUnderTest) -> None:
    """The schema_info table records the schema version."""
    rows = await pg.rows("SELECT key, value FROM schema_info WHERE key = 'version'")
    assert rows == [("version", str(SCHEMA_VERSION))]


@pytest.mark.postgres
async def test_postgres_replicas_starting_together_create_schema_once() -> None:
    """Several replicas opening an empty database at once all start, with one schema."""
    async with postgres_schema() as url, AsyncExitStack() as stack:
        stores = [PostgresStore(url, pool_size=1) for _ in range(4)]
        for store in stores:
            stack.push_async_callback(store.close)
        await asyncio.gather(*(store.open() for store in stores))
        assert all([await store.ping() for store in stores])
        assert await stores[0].queue_depth() == 0


async def _replicas(pg: StoreUnderTest, stack: AsyncExitStack, count: int) -> list[Store]:
    stores = [pg.store]
    for _ in range(count - 1):
        replica = pg.another()
        stack.push_async_callback(replica.close)
        await replica.open()
        stores.append(replica)
    return stores


@pytest.mark.postgres
@pytest.mark.parametrize("replicas", [1, 2])
async def test_postgres_concurrent_cooldown_claims_one_winner(
    pg: StoreUnderTest, replicas: int
) -> None:
    """Transactions open at the same time, on one or two replicas, claim a row exactly once."""
    parties = 4
    barrier = asyncio.Barrier(parties)

    async def attempt(store: Store, tag: str) -> bool:
        async with store.transaction() as tx:
            await barrier.wait()
            return await tx.claim_cooldown(WA, "c1", NOW, NOW - HOUR, tag)

    async with AsyncExitStack() as stack:
        stores = await _replicas(pg, stack, replicas)
        async with asyncio.timeout(10):
            won = await asyncio.gather(
                *(attempt(stores[i % replicas], f"t{i}") for i in range(parties))
            )
    assert sorted(won) == [False, False, False, True]
    winner = f"t{won.index(True)}"
    assert await pg.rows("SELECT job_tag FROM cooldowns") == [(winner,)]


@pytest.mark.postgres
@pytest.mark.parametrize("replicas", [1, 2])
async def test_postgres_concurrent_mark_seen_one_new(pg: StoreUnderTest, replicas: int) -> None:
    """Transactions open at the same time see one redelivered message as new exactly once."""
    parties = 4
    barrier = asyncio.Barrier(parties)

    async def attempt(store: Store) -> bool:
        async with store.transaction() as tx:
            await barrier.wait()
            return await tx.mark_seen("k1", NOW)

    async with AsyncExitStack() as stack:
        stores = await _replicas(pg, stack, replicas)
        async with asyncio.timeout(10):
            new = await asyncio.gather(*(attempt(stores[i % replicas]) for i in range(parties)))
    assert sorted(new) == [False, False, False, True]


@pytest.mark.postgres
async def test_postgres_concurrent_webhooks_reply_once(pg: StoreUnderTest) -> None:
    """Four messages from one patient ingested at once on two replicas get one reply job."""
    rules = PracticeRules(practice="", cooldown=HOUR, staff_quiet=HOUR, max_age=HOUR)
    barrier = asyncio.Barrier(4)

    async def webhook(store: Store, i: int) -> Decision:
        item = PreparedPatient(
            channel=WA,
            rules=rules,
            contact="c1",
            contact_kind=ContactKind.PHONE,
            dedupe_key=f"m{i}",
            timestamp=NOW - 1,
            kind=EventKind.MESSAGE,
            tag=f"t{i}",
            recipient=b"sealed",
        )
        async with store.transaction() as tx:
            await barrier.wait()
            [decision] = await apply(tx, [item], NOW)
        return decision

    async with AsyncExitStack() as stack:
        stores = await _replicas(pg, stack, 2)
        async with asyncio.timeout(10):
            decisions = await asyncio.gather(*(webhook(stores[i % 2], i) for i in range(4)))
    assert sorted(decisions) == sorted([Decision.REPLY] + [Decision.COOLDOWN] * 3)
    assert await pg.store.queue_depth() == 1
    outcomes = await pg.rows("SELECT outcome FROM contact_log ORDER BY outcome")
    assert outcomes == [("cooldown",)] * 3 + [("pending",)]


@pytest.mark.postgres
async def test_postgres_concurrent_claims_never_share_a_job(pg: StoreUnderTest) -> None:
    """Many workers on two replicas claiming at once never lease the same job twice."""
    total, rounds = 24, 4
    async with pg.store.transaction() as tx:
        for i in range(total):
            log_id = await tx.add_contact(NOW, WA, f"c{i}", EventKind.MESSAGE, Outcome.PENDING)
            await tx.add_job(_new_job(f"t{i}", f"c{i}", WA, NOW + i / 100), log_id)
    async with AsyncExitStack() as stack:
        stores = await _replicas(pg, stack, 2)
        for r in range(rounds):  # every round starts after the last round's leases expired
            at = NOW + 1 + r * 100
            batches = await asyncio.gather(
                *(stores[i % 2].claim(f"w{r}-{i}", at, 3, 60) for i in range(12))
            )
            claimed = [(job.id, f"w{r}-{i}") for i, batch in enumerate(batches) for job in batch]
            ids = [job_id for job_id, _ in claimed]
            assert len(ids) == len(set(ids)), f"round {r}"
            claimed += [
                (job.id, "w-rest") for job in await stores[0].claim("w-rest", at, total, 60)
            ]
            leases = await pg.rows("SELECT id, lease_owner, attempts FROM reply_jobs")
            assert {(job_id, owner) for job_id, owner, _ in leases} == set(claimed)
            assert len(claimed) == total
    assert {attempts for _, _, attempts in leases} == {rounds}


async def test_postgres_unreachable_server_raises_store_unavailable() -> None:
    """A server that cannot be reached is StoreUnavailable naming only the error class."""
    port = _closed_port()
    store = PostgresStore(f"postgresql://someone:hunter2@127.0.0.1:{port}/bot")
    with pytest.raises(StoreUnavailable) as caught:
        await store.open()
    message = str(caught.value)
    assert "hunter2" not in message
    assert str(port) not in message
    assert caught.value.__cause__ is None
    assert await store.ping() is False
    with pytest.raises(StoreUnavailable):
        async with store.transaction():
            pass
    await store.close()


async def test_saved_texts_are_each_practices_last_good_set(subject: StoreUnderTest) -> None:
    """Each practice's last good texts come back as saved; a changed set replaces them."""
    await subject.store.save_texts({"a": {"reply.txt": "A1"}, "b": {"reply.txt": "B1"}}, NOW)
    await subject.store.save_texts({"a": {"reply.txt": "A2"}}, NOW + 60)
    a, b = await subject.store.saved_texts("a"), await subject.store.saved_texts("b")
    assert (a, b) == (
        SavedTexts(saved_at=NOW + 60, texts={"reply.txt": "A2"}),
        SavedTexts(saved_at=NOW, texts={"reply.txt": "B1"}),
    )
    assert await subject.store.saved_texts("c") is None
