"""The reply worker: claims due jobs from the store, renders, sends, and ends them.

The queue lives in the store, so a restart resumes where the last process stopped. A send
that may have reached Meta without an answer (timeout or reset after the request was written,
or a process that died mid-send) is *ambiguous*: the worker waits ``settle_window`` seconds for
a status webhook or echo carrying the job's tag, and only then sends once more, counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Protocol

import structlog
from cryptography.exceptions import InvalidTag

from bot.adapter import Adapter, Outbound, SendConfig
from bot.errors import DeliveryError, ErrorClass, StoreUnavailable
from bot.events import Channel
from bot.metrics import Metrics
from bot.pseudonym import Keyring
from bot.replies import Reply
from bot.store import Job, JobState, Outcome, Store

__all__ = ["ReplyWorker", "SendResultLike", "Sender", "TokenBucket"]

log = structlog.get_logger("bot.worker")

SETTLE_WINDOW = 120.0  # SPEC §5: an ambiguous send is settled within 120 s or resent once
REQUEUE_BASE = 15.0  # first delay after a send ran out of in-process retries
REQUEUE_MAX = 600.0
CLAIM_BATCH = 8  # with a backlog, jobs claimed per query (at 80 sends/s: one query per 0.1 s)


class SendResultLike(Protocol):
    """What a successful send returns."""

    @property
    def message_id(self) -> str | None: ...


class Sender(Protocol):
    """The Graph client as the worker uses it (see ``adapters._meta.graph.GraphClient.send``)."""

    async def send(
        self,
        outbound: Outbound,
        *,
        on_error: Callable[[ErrorClass], None] | None = None,
        on_attempt: Callable[[int], Awaitable[None]] | None = None,
        on_not_delivered: Callable[[], Awaitable[None]] | None = None,
    ) -> SendResultLike: ...


class _LeaseLost(Exception):
    """Another worker took the job between two attempts."""


Renderer = Callable[[Channel, datetime], Reply]


class TokenBucket:
    """Meta's per-number throughput as a bucket: ``rate`` sends per second, bursts of one second.

    The worker claims only as many jobs as the bucket holds tokens, so a job is never leased
    while it waits for its turn, and a restart finds unsent jobs free to claim.
    """

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self._tokens = self.capacity
        self._updated = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
        self._updated = now

    def available(self) -> int:
        """Whole sends allowed now."""
        self._refill()
        return int(self._tokens)

    def take(self, count: int) -> None:
        """Spend ``count`` tokens."""
        self._tokens -= count

    def wait(self, count: int = 1) -> float:
        """Seconds until ``count`` tokens are there."""
        self._refill()
        return 0.0 if self._tokens >= count else (count - self._tokens) / self.rate


def requeue_delay(attempts: int, retry_after: float | None) -> float:
    """Later due time for a job whose send ran out of attempts: jittered, capped, ≥ Retry-After."""
    exp: float = min(REQUEUE_MAX, REQUEUE_BASE * 2.0 ** max(0, attempts - 1))
    jittered = exp / 2 + random.uniform(0, exp / 2)  # noqa: S311 - jitter, not cryptography
    return max(jittered, retry_after or 0.0)


class ReplyWorker:
    """One per process; any number may share a store (leases keep them apart)."""

    def __init__(
        self,
        *,
        store: Store,
        sender: Sender,
        adapters: Mapping[Channel, Adapter],
        render: Renderer,
        send_configs: Mapping[Channel, SendConfig],
        keyring: Keyring,
        metrics: Metrics,
        max_age: float,
        rates: Mapping[Channel, float],
        clock: Callable[[], float] = time.time,
        lease: float = 60.0,
        max_inflight: int = 32,
        poll_interval: float = 1.0,
        settle_window: float = SETTLE_WINDOW,
    ) -> None:
        self.owner = uuid.uuid4().hex[:12]
        self._store = store
        self._sender = sender
        self._adapters = adapters
        self._render = render
        self._configs = send_configs
        self._keyring = keyring
        self._metrics = metrics
        self._max_age = max_age
        self._buckets = {channel: TokenBucket(rate) for channel, rate in rates.items()}
        self._clock = clock
        self._lease = lease
        self._max_inflight = max_inflight
        self._poll = poll_interval
        self._settle = settle_window
        self._wake = asyncio.Event()
        self._stopping = False
        self._inflight: set[asyncio.Task[None]] = set()
        self._dirty: set[Channel] = set(Channel)  # channels that may have due jobs
        self._backlog: set[Channel] = set()  # channels whose last claim filled its limit
        self._last_depth = 0.0

    def wake(self, channels: Iterable[Channel] = ()) -> None:
        """New jobs were recorded for ``channels``: look now instead of at the next poll."""
        self._dirty.update(channels)
        self._wake.set()

    async def run(self) -> None:
        """Claim and process jobs until :meth:`stop`."""
        next_poll = time.monotonic() + self._poll
        while not self._stopping:
            if time.monotonic() >= next_poll:
                # A poll: retries fall due and leases expire without a webhook to say so.
                self._dirty.update(Channel)
                next_poll = time.monotonic() + self._poll
            claimed, wait = await self._claim_round()
            await self._update_depth()
            if claimed == 0 or len(self._inflight) >= self._max_inflight:
                self._wake.clear()
                # Sleep until a webhook or a finished send wakes us, the held-back channel's
                # next token, or the next poll, whichever is first. Waking for a token asks
                # only the channels still marked, never the idle ones.
                timeout = max(0.0, next_poll - time.monotonic())
                if wait:
                    timeout = min(timeout, wait)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=timeout)

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop claiming, let in-flight sends finish (bounded), release remaining leases."""
        self._stopping = True
        self._wake.set()
        if self._inflight:
            _, pending = await asyncio.wait(set(self._inflight), timeout=timeout)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        try:
            await self._store.release(self.owner)
        except StoreUnavailable:
            log.warning("worker_release_failed")

    async def drain(self, timeout: float = 10.0) -> None:
        """Process until no job is due and nothing is in flight (tests and the CLI)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._dirty.update(Channel)
            claimed, wait = await self._claim_round()
            if self._inflight:
                await asyncio.wait(set(self._inflight))
            elif claimed == 0 and wait == 0:
                return
            elif claimed == 0:
                await asyncio.sleep(min(wait, max(0.0, deadline - time.monotonic())))

    async def _claim_round(self) -> tuple[int, float]:
        """Claim what each channel that may have due work is allowed to send now.

        Only channels marked dirty (a webhook queued work, a poll came round, or the last
        claim filled its limit) are asked, so an idle channel costs no query. Returns the
        number claimed and, when a channel had work but no token, the seconds until its next
        token (0.0 when no channel was held back).
        """
        claimed = 0
        wait = 0.0
        now = self._clock()
        for channel in [c for c in Channel if c in self._dirty]:
            free = self._max_inflight - len(self._inflight)
            if free <= 0:
                break
            bucket = self._buckets.get(channel)
            limit = min(free, bucket.available()) if bucket is not None else free
            # With a backlog, wait for a handful of tokens and claim them in one query rather
            # than one query per token; a lone new job still goes as soon as there is one.
            want = min(free, CLAIM_BATCH) if channel in self._backlog else 1
            if bucket is not None and limit < want:
                later = bucket.wait(min(want, int(bucket.capacity)))
                wait = min(wait, later) if wait else later
                continue
            self._dirty.discard(channel)
            try:
                jobs = await self._store.claim(self.owner, now, limit, self._lease, channel)
            except StoreUnavailable:
                self._dirty.add(channel)
                log.warning("worker_claim_failed")
                return claimed, 0.0
            if len(jobs) == limit:
                self._dirty.add(channel)  # there may be more
                self._backlog.add(channel)
            else:
                self._backlog.discard(channel)
            if bucket is not None:
                bucket.take(len(jobs))
            for job in jobs:
                task = asyncio.create_task(self._process(job))
                self._inflight.add(task)
                task.add_done_callback(self._sent)
            claimed += len(jobs)
        return claimed, wait

    def _sent(self, task: asyncio.Task[None]) -> None:
        """A job's task ended: a slot is free, so a channel held back by the limit may go on."""
        self._inflight.discard(task)
        self._wake.set()

    async def _update_depth(self) -> None:
        now = time.monotonic()
        if now - self._last_depth < 1.0:
            return
        self._last_depth = now
        try:
            self._metrics.queue_depth.set(await self._store.queue_depth())
        except StoreUnavailable:
            return

    async def _finish(self, job: Job, outcome: Outcome, sent_key: str | None = None) -> None:
        await self._store.finish(job, outcome, self._clock(), sent_key)
        self._metrics.count_reply(job.channel.value, outcome.value)
        log.info("reply_ended", channel=job.channel.value, job=job.id, outcome=outcome.value)

    async def _process(self, job: Job) -> None:
        try:
            await self._process_job(job)
        except StoreUnavailable:
            # The lease expires and another pass picks the job up; nothing is lost.
            log.warning("worker_store_unavailable", channel=job.channel.value, job=job.id)
        except Exception:  # a bug must not kill the worker; the job stays queued
            log.error(
                "worker_unexpected_error", channel=job.channel.value, job=job.id, exc_info=True
            )
            await self._requeue(job, None)

    async def _requeue(
        self, job: Job, retry_after: float | None, state: JobState | None = None
    ) -> None:
        delay = requeue_delay(job.attempts, retry_after)
        try:
            await self._store.reschedule(
                job.id, self.owner, self._clock() + delay, state or JobState.PENDING
            )
        except StoreUnavailable:
            return
        log.info("reply_requeued", channel=job.channel.value, job=job.id, due_in_s=round(delay))

    async def _process_job(self, job: Job) -> None:
        now = self._clock()
        resend = False
        if job.settled:  # Meta reported a send carrying this job's tag: it arrived
            await self._finish(job, Outcome.AMBIGUOUS if job.resent else Outcome.REPLIED)
            return
        if job.state in (JobState.SENDING, JobState.AMBIGUOUS):
            # An earlier attempt may have reached Meta: wait for it to settle, then resend once.
            settle_by = (job.send_started_at or now) + self._settle
            if now < settle_by:
                await self._store.reschedule(job.id, self.owner, settle_by, JobState.AMBIGUOUS)
                return
            if job.resent:
                await self._finish(job, Outcome.AMBIGUOUS)  # never a third send
                return
            resend = True
        if now - job.received_at > self._max_age:
            await self._finish(job, Outcome.STALE)
            return
        config = self._configs.get(job.channel)
        if config is None or job.recipient is None:
            await self._finish(job, Outcome.FAILED)
            return
        reply = self._render(job.channel, datetime.fromtimestamp(now, UTC))
        if config.token is None:
            await self._finish(job, Outcome.DRY_RUN)
            return
        try:
            recipient = self._keyring.unseal(job.recipient, job.tag)
        except InvalidTag:
            log.error(
                "recipient_unreadable",
                channel=job.channel.value,
                job=job.id,
                reason="PSEUDONYM_KEY changed since the job was queued",
            )
            await self._finish(job, Outcome.FAILED)
            return
        outbound = self._adapters[job.channel].build_send(
            reply,
            config=config,
            recipient_id=recipient,
            contact_kind=job.contact_kind,
            tag=job.tag,
        )
        if not await self._store.begin_send(job.id, self.owner, self._clock(), resend=resend):
            return  # the lease was lost to another worker
        if resend:
            self._metrics.ambiguous_resends.labels(job.channel.value).inc()
            log.warning("ambiguous_resend", channel=job.channel.value, job=job.id)
        await self._send(job, outbound, resend=resend)

    async def _send(self, job: Job, outbound: Outbound, *, resend: bool) -> None:
        started = time.perf_counter()
        errors = self._metrics.graph_errors

        def count(error_class: ErrorClass) -> None:
            errors.labels(job.channel.value, error_class.value).inc()

        async def on_attempt(number: int) -> None:
            # The first attempt was marked by _process_job; later ones go on the wire anew.
            if number > 1 and not await self._store.begin_send(
                job.id, self.owner, self._clock(), resend=resend
            ):
                raise _LeaseLost

        async def on_not_delivered() -> None:
            await self._store.unsend(job.id, self.owner, resend=resend)

        try:
            result = await self._sender.send(
                outbound, on_error=count, on_attempt=on_attempt, on_not_delivered=on_not_delivered
            )
        except _LeaseLost:
            return
        except DeliveryError as error:
            await self._delivery_failed(job, error, resend=resend)
            return
        finally:
            self._metrics.send_seconds.observe(time.perf_counter() - started)
        sent_key = (
            self._keyring.message(job.channel, result.message_id) if result.message_id else None
        )
        outcome = Outcome.AMBIGUOUS if resend or job.resent else Outcome.REPLIED
        await self._finish(job, outcome, sent_key)

    async def _delivery_failed(self, job: Job, error: DeliveryError, *, resend: bool) -> None:
        fields = {
            "channel": job.channel.value,
            "job": job.id,
            "error_class": error.error_class.value,
            "code": getattr(error, "code", None),
            "subcode": getattr(error, "subcode", None),
            "http_status": getattr(error, "status", None),
        }
        if error.ambiguous:
            log.warning("send_ambiguous", **fields)
            settle_by = self._clock() + self._settle
            await self._store.reschedule(job.id, self.owner, settle_by, JobState.AMBIGUOUS)
            return
        if error.error_class is ErrorClass.ALERT:
            log.error("send_alert", **fields)
            await self._finish(job, Outcome.FAILED)
            return
        if error.error_class is ErrorClass.PERMANENT:
            log.warning("send_failed", **fields)
            await self._finish(job, Outcome.FAILED)
            return
        log.warning("send_deferred", **fields)
        # A resend that failed leaves the first, ambiguous send unsettled: keep it ambiguous.
        await self._requeue(job, error.retry_after, JobState.AMBIGUOUS if resend else None)
