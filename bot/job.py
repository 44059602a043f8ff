"""A reply job's life: its states, the transitions between them, and running a claimed job.

A job is queued at ingest, in the transaction that records its contact, and ends exactly once
with the outcome its contact record then shows. In between it lives in the store, leased to
one worker at a time, so a crash at any point loses no reply and a restart resumes. The store
makes each transition below one conditional statement (the lease owner and the source states
are in its ``WHERE``); this module decides which transition comes next.

Beside ``state`` the row keeps three facts about sending:

- ``send_started_at``: when the latest attempt went on the wire;
- ``resent``: the one resend after an ambiguous send is, or was, on the wire;
- ``settled``: Meta reported a message carrying the job's tag (a status, or an echo), so
  the job never goes on the wire again: the reply reached the patient, or, with
  ``delivery_failed``, a ``failed`` status says it never will.

::

                      queue (ingest)
                            │
                            ▼
          ┌────────────► PENDING ◄─────────────────┐
    defer │                 │ begin_send            │ not_delivered: an error answer,
          │                 ▼                       │ or no connection at all
          └──────────── SENDING ────────────────────┘
                            │ wait_to_settle: the answer was lost after the request was
                            │ written, or the worker died with the request on the wire
                            ▼
                        AMBIGUOUS ─── settle window passes, not settled ───► SENDING
                            ▲          begin_send again: the one counted resend  │
                            └────── not_delivered: the resend is undone ─────────┘

    end:    PENDING, SENDING or AMBIGUOUS ──► DONE, with an outcome: replied, dry_run, failed,
            stale, or ambiguous (a resend went out, or a resend's answer was lost as well)
    settle: any state (ingest; a status or echo named the job): an ambiguous job is due now;
            a failed status settles it as failed, and turns a job that ended replied (or
            ambiguous) to failed
    defer:  back in the queue later; a job found SENDING is treated as AMBIGUOUS

What happens to a claimed job is decided in one place, :func:`next_step`:

1. settled: end ``failed`` if a status said so, else ``replied`` (``ambiguous`` if a resend
   went out);
2. SENDING or AMBIGUOUS: inside the settle window, wait for a status; after it, resend once,
   or end ``ambiguous`` if the resend has been made (never a third send);
3. older than ``REPLY_MAX_AGE_HOURS``: end ``stale``;
4. otherwise send.

Attempts that certainly failed are tried again; of the requests that may have reached Meta
there are at most two, the second only as the counted resend of an ambiguous one, and a
settled job never goes on the wire again (``begin_send`` refuses it).
``tests/test_job.py`` drives random claims, crashes, statuses and answers through the real
store and checks exactly that.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple, Protocol

import structlog
from cryptography.exceptions import InvalidTag

from bot.adapter import Adapter, Outbound, SendConfig, SendResult, Transport, Usage
from bot.errors import DeliveryError, ErrorClass, StoreUnavailable
from bot.events import Channel, ContactKind, Outcome, is_test_sender
from bot.metrics import Metrics
from bot.pseudonym import Keyring
from bot.replies import Reply
from bot.retry import RetryPolicy, error_fields

__all__ = [
    "BEGIN_SEND",
    "DEFER",
    "END",
    "NOT_DELIVERED",
    "SETTLE_WINDOW",
    "WAIT_TO_SETTLE",
    "Delivery",
    "End",
    "Job",
    "JobState",
    "JobStore",
    "NewJob",
    "Queue",
    "Send",
    "Senders",
    "Step",
    "Transition",
    "WaitToSettle",
    "next_step",
    "requeue_delay",
]

log = structlog.get_logger("bot.job")

SETTLE_WINDOW = 120.0  # SPEC §5: an ambiguous send is settled within 120 s or resent once
REQUEUE_BASE = 15.0  # first delay after a send ran out of attempts
# A job that keeps hitting an error nobody foresaw (a bug, not Meta) ends failed on this
# claim instead of coming back every few minutes until it is too old to send.
UNEXPECTED_ERROR_CLAIMS = 3
REQUEUE_MAX = 600.0


class JobState(enum.StrEnum):
    """Where a job is: waiting, on the wire, unsure whether Meta got it, or ended."""

    PENDING = "pending"
    SENDING = "sending"
    AMBIGUOUS = "ambiguous"
    DONE = "done"


@dataclass(frozen=True, slots=True)
class Transition:
    """A named change of a job's state, and the states it may start from."""

    name: str
    sources: frozenset[JobState]


_LIVE = frozenset({JobState.PENDING, JobState.SENDING, JobState.AMBIGUOUS})
BEGIN_SEND = Transition("begin_send", _LIVE)
NOT_DELIVERED = Transition("not_delivered", frozenset({JobState.SENDING}))
WAIT_TO_SETTLE = Transition("wait_to_settle", frozenset({JobState.SENDING, JobState.AMBIGUOUS}))
DEFER = Transition("defer", _LIVE)
END = Transition("end", _LIVE)


class Queue(NamedTuple):
    """One practice's replies on one channel: paced, claimed and woken as a unit, so one
    practice's throttling or backlog never holds up another's."""

    practice: str  # "" when the deployment serves one practice
    channel: Channel

    def log_fields(self) -> dict[str, str]:
        """The queue in a log line: its channel, and its practice in a group."""
        if self.practice:
            return {"channel": self.channel.value, "practice": self.practice}
        return {"channel": self.channel.value}


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
    practice: str = ""  # the slug of the practice it answers for; "" with a single practice


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    """A claimed reply job, as its row was when the worker leased it."""

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
    delivery_failed: bool = False
    practice: str = ""

    @property
    def queue(self) -> Queue:
        """The queue the job is claimed, paced and counted in."""
        return Queue(self.practice, self.channel)


class JobStore(Protocol):
    """The store's side of a job's life: each method is one transition, by name."""

    async def claim(
        self, owner: str, now: float, limit: int, lease: float, queue: Queue | None = None
    ) -> list[Job]:
        """Lease up to ``limit`` due jobs (of one queue, if given) whose lease has expired.

        A settled job only needs ending, so another owner may claim it while it is leased.
        """
        ...

    async def due_queues(self, owner: str, now: float) -> list[Queue]:
        """The queues ``owner`` could claim a job from at ``now``."""
        ...

    async def begin_send(
        self, job_id: int, owner: str, now: float, *, resend: bool = False
    ) -> bool:
        """BEGIN_SEND: on the wire from ``now``; False if the lease is lost or it is settled."""
        ...

    async def not_delivered(self, job_id: int, owner: str) -> None:
        """NOT_DELIVERED: the attempt certainly failed; PENDING, or AMBIGUOUS for a resend.

        A resend is undone (the first send may still have landed); the owner keeps its lease.
        """
        ...

    async def wait_to_settle(self, job_id: int, owner: str, until: float, now: float) -> None:
        """WAIT_TO_SETTLE: AMBIGUOUS, due at ``until`` (``now`` if already settled), unleased."""
        ...

    async def defer(self, job_id: int, owner: str, due_at: float) -> None:
        """DEFER: back in the queue for ``due_at``, unleased; SENDING becomes AMBIGUOUS."""
        ...

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
        """END: erase the recipient, record the outcome, keep or free the cooldown claim.

        ``sent_key`` is the keyed hash of the message id Meta returned (recognises its echo);
        ``template`` the file name of the text that went out, recorded with the outcome.
        False when the job was not this owner's to end.
        """
        ...

    async def release(self, owner: str) -> None:
        """Drop every lease ``owner`` holds (graceful shutdown)."""
        ...

    async def queue_depth(self) -> int:
        """Jobs not yet ended."""
        ...


@dataclass(frozen=True, slots=True)
class Send:
    """Put the reply on the wire; ``resend`` for the one resend after an ambiguous send."""

    resend: bool


@dataclass(frozen=True, slots=True)
class WaitToSettle:
    """An earlier attempt may have reached Meta: wait for its status until ``until``."""

    until: float


@dataclass(frozen=True, slots=True)
class End:
    """Nothing more to send: end with ``outcome``."""

    outcome: Outcome


Step = Send | WaitToSettle | End


def next_step(job: Job, now: float, *, settle_window: float, max_age: float) -> Step:
    """What a claimed job does next (the rules in the module docstring, in order)."""
    if job.settled:
        if job.delivery_failed:
            return End(Outcome.FAILED)
        return End(Outcome.AMBIGUOUS if job.resent else Outcome.REPLIED)
    resend = job.state in (JobState.SENDING, JobState.AMBIGUOUS)
    if resend:
        settle_by = (job.send_started_at or now) + settle_window
        if now < settle_by:
            return WaitToSettle(settle_by)
        if job.resent:
            return End(Outcome.AMBIGUOUS)
    if now - job.received_at > max_age:
        return End(Outcome.STALE)
    return Send(resend=resend)


def requeue_delay(attempts: int, retry_after: float | None) -> float:
    """Later due time for a job whose send ran out of attempts: jittered, capped, ≥ Retry-After."""
    exp: float = min(REQUEUE_MAX, REQUEUE_BASE * 2.0 ** max(0, attempts - 1))
    jittered = exp / 2 + random.uniform(0, exp / 2)  # noqa: S311 - jitter, not cryptography
    return max(jittered, retry_after or 0.0)


class Senders(Protocol):
    """What sending needs to know of the practices served now (``bot.practices.Practices``)."""

    @property
    def max_age(self) -> float:
        """Seconds after which a queued reply is too late to send."""
        ...

    def send_config(self, queue: Queue) -> SendConfig | None:
        """How ``queue``'s replies are sent; None when its channel or practice is gone."""
        ...

    def render(self, queue: Queue, at: datetime) -> Reply:
        """The reply ``queue``'s practice gives on its channel at ``at``."""
        ...


class _NotOnTheWire(Exception):
    """``begin_send`` refused: another worker holds the job, or Meta already settled it."""


class Delivery:
    """Runs claimed jobs to their next transition: sends with retries, ends, waits or defers."""

    def __init__(
        self,
        *,
        store: JobStore,
        transport: Transport,
        adapters: Mapping[Channel, Adapter],
        senders: Callable[[], Senders],
        keyring: Keyring,
        metrics: Metrics,
        retry: RetryPolicy,
        clock: Callable[[], float] = time.time,
        settle_window: float = SETTLE_WINDOW,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_usage: Callable[[Queue, Usage], None] | None = None,
    ) -> None:
        """``senders()`` gives the practices as configured now (a group's files may change);
        ``on_usage`` hears the rate-limit usage each Graph answer reports (the pace)."""
        self._store = store
        self._transport = transport
        self._adapters = adapters
        self._senders = senders
        self._keyring = keyring
        self._metrics = metrics
        self._retry = retry
        self._clock = clock
        self._settle = settle_window
        self._sleep = sleep
        self._on_usage = on_usage

    async def run(self, job: Job, owner: str) -> None:
        """Take ``job`` (leased to ``owner``) to its next transition; never raises."""
        try:
            await self._run(job, owner)
        except StoreUnavailable:
            # The lease expires and another pass picks the job up; nothing is lost.
            log.warning("worker_store_unavailable", **job.queue.log_fields(), job=job.id)
        except Exception:  # a bug must not kill the worker; the job is tried a few times
            gives_up = job.attempts >= UNEXPECTED_ERROR_CLAIMS
            log.error(
                "worker_unexpected_error",
                **job.queue.log_fields(),
                job=job.id,
                attempt=job.attempts,
                outcome=Outcome.FAILED.value if gives_up else "requeued",
                exc_info=True,
            )
            if not gives_up:
                await self._defer(job, owner, None)
                return
            with contextlib.suppress(StoreUnavailable):  # the lease expires; tried again
                await self._end(job, owner, Outcome.FAILED)

    async def _run(self, job: Job, owner: str) -> None:
        now = self._clock()
        senders = self._senders()
        step = next_step(job, now, settle_window=self._settle, max_age=senders.max_age)
        if isinstance(step, End):
            await self._end(job, owner, step.outcome)
            return
        if isinstance(step, WaitToSettle):
            await self._store.wait_to_settle(job.id, owner, step.until, now)
            return
        config = senders.send_config(job.queue)
        if config is None or job.recipient is None:
            await self._end(job, owner, Outcome.FAILED)
            return
        reply = senders.render(job.queue, datetime.fromtimestamp(now, UTC))
        if config.token is None:
            await self._end(job, owner, Outcome.DRY_RUN, template=reply.source)
            return
        try:
            recipient = self._keyring.unseal(job.recipient, job.tag)
        except InvalidTag:
            log.error(
                "recipient_unreadable",
                **job.queue.log_fields(),
                job=job.id,
                reason="PSEUDONYM_KEY changed since the job was queued",
            )
            await self._end(job, owner, Outcome.FAILED)
            return
        if is_test_sender(recipient):
            # ``practice-bot simulate``: the whole path but the last step; Meta never sees it.
            await self._end(job, owner, Outcome.DRY_RUN, template=reply.source)
            return
        outbound = self._adapters[job.channel].build_send(
            reply,
            config=config,
            recipient_id=recipient,
            contact_kind=job.contact_kind,
            tag=job.tag,
        )
        await self._send(job, owner, outbound, reply.source, resend=step.resend)

    async def _send(
        self, job: Job, owner: str, outbound: Outbound, template: str, *, resend: bool
    ) -> None:
        started = time.perf_counter()
        try:
            result = await self._attempts(job, owner, outbound, resend=resend)
        except _NotOnTheWire:
            # Settled meanwhile: drop the lease so the next claim ends it. Lost to another
            # worker: the statement matches nothing.
            await self._store.defer(job.id, owner, self._clock())
            return
        except DeliveryError as error:
            await self._failed(job, owner, error, template)
            return
        finally:
            self._metrics.send_seconds.observe(time.perf_counter() - started)
        sent_key = (
            self._keyring.message(job.channel, result.message_id) if result.message_id else None
        )
        outcome = Outcome.AMBIGUOUS if resend or job.resent else Outcome.REPLIED
        await self._end(job, owner, outcome, sent_key, template)

    async def _attempts(
        self, job: Job, owner: str, outbound: Outbound, *, resend: bool
    ) -> SendResult:
        """Each attempt is on the wire only between BEGIN_SEND and its answer.

        So a crash while waiting to retry leaves a PENDING job, not an ambiguous one.
        """
        announced = False

        async def attempt() -> SendResult:
            nonlocal announced
            if not await self._store.begin_send(job.id, owner, self._clock(), resend=resend):
                raise _NotOnTheWire
            if resend and not announced:
                announced = True
                self._metrics.ambiguous_resends.labels(
                    *self._metrics.scoped(job.practice, job.channel.value)
                ).inc()
                log.warning("ambiguous_resend", **job.queue.log_fields(), job=job.id)
            return await self._post(job, owner, outbound)

        return await self._retry.run(attempt, sleep=self._sleep)

    async def _post(self, job: Job, owner: str, outbound: Outbound) -> SendResult:
        try:
            result = await self._transport.post(outbound)
        except DeliveryError as error:
            self._report_usage(job, error.usage)
            self._metrics.graph_errors.labels(
                *self._metrics.scoped(job.practice, job.channel.value, error.error_class.value)
            ).inc()
            if not (error.ambiguous or error.sent):
                await self._store.not_delivered(job.id, owner)
            raise
        self._report_usage(job, result.usage)
        return result

    def _report_usage(self, job: Job, usage: Usage | None) -> None:
        if usage is not None and self._on_usage is not None:
            self._on_usage(job.queue, usage)

    async def _failed(self, job: Job, owner: str, error: DeliveryError, template: str) -> None:
        fields = {**job.queue.log_fields(), "job": job.id, **error_fields(error)}
        if error.sent:
            # Meta: "the messages are all sent successfully, but the endpoint returns an error".
            log.warning("send_error_but_sent", **fields)
            await self._end(job, owner, Outcome.REPLIED, template=template)
        elif error.ambiguous:
            log.warning("send_ambiguous", **fields)
            now = self._clock()
            await self._store.wait_to_settle(job.id, owner, now + self._settle, now)
        elif error.error_class is ErrorClass.ALERT:
            log.error("send_alert", **fields)
            await self._end(job, owner, Outcome.FAILED)
        elif error.error_class is ErrorClass.PERMANENT or (
            error.retry_for is not None and self._clock() - job.received_at > error.retry_for
        ):
            log.warning("send_failed", **fields)
            await self._end(job, owner, Outcome.FAILED)
        else:
            log.warning("send_deferred", **fields)
            await self._defer(job, owner, error.retry_after)

    async def _defer(self, job: Job, owner: str, retry_after: float | None) -> None:
        delay = requeue_delay(job.attempts, retry_after)
        try:
            await self._store.defer(job.id, owner, self._clock() + delay)
        except StoreUnavailable:
            return
        log.info("reply_requeued", **job.queue.log_fields(), job=job.id, due_in_s=round(delay))

    async def _end(
        self,
        job: Job,
        owner: str,
        outcome: Outcome,
        sent_key: str | None = None,
        template: str | None = None,
    ) -> None:
        """End the job; ``template`` names the text that went out (or would have: dry run)."""
        now = self._clock()
        if not await self._store.end(
            job, owner, outcome, now, sent_key=sent_key, template=template
        ):
            return  # another worker took the job over and ends it
        self._metrics.count_reply(job.practice, job.channel.value, outcome.value)
        log.info(
            "reply_ended",
            **job.queue.log_fields(),
            job=job.id,
            outcome=outcome.value,
            template=template,
        )
