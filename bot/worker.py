"""The reply worker: claims due jobs from the store, at each queue's pace, and runs them.

The queue lives in the store, so a restart resumes where the last process stopped. The worker
decides only *when* and *how many*: what happens to a claimed job (send, wait for a status,
end) is the job's life, ``bot.job``.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import math
import time
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from bot.adapter import Usage
from bot.errors import StoreUnavailable
from bot.job import Job, JobStore, Queue
from bot.metrics import Metrics

__all__ = ["MESSENGER_RATE", "Pacer", "ReplyWorker", "TokenBucket", "WorkerConfig", "pace_factor"]

log = structlog.get_logger("bot.worker")

CLAIM_BATCH = 8  # with a backlog, jobs claimed per query (at 80 sends/s: one query per 0.1 s)
MESSENGER_RATE = 250.0  # a Page's (and an Instagram account's) pace: below 300 calls/s


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerConfig:
    """How the worker paces itself; the defaults are the service's."""

    lease: float = 60.0  # seconds a claimed job stays with this worker
    max_inflight: int = 64  # jobs being run at once (the Graph session keeps 64 connections)
    # Jobs of one queue being run at once. A practice whose sends hang or are retried for
    # seconds holds at most this many slots, so the others' replies still go out.
    queue_inflight: int = 8
    poll_interval: float = 1.0  # seconds between looks at the store without a wake-up


class TokenBucket:
    """Meta's per-number throughput as a bucket: ``rate`` sends per second, bursts of one second.

    The worker claims only as many jobs as the bucket holds tokens, so a job is never leased
    while it waits for its turn, and a restart finds unsent jobs free to claim. The rate can
    be lowered and the bucket paused while Meta reports the channel near or over its limit.
    """

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.base_rate = rate
        self.rate = rate
        self.capacity = max(1.0, rate)
        self._clock = clock
        self._tokens = self.capacity
        self._updated = clock()
        self._paused_until = 0.0

    def _refill(self) -> None:
        now = self._clock()
        if now < self._paused_until:
            self._tokens = 0.0
        else:
            elapsed = now - max(self._updated, self._paused_until)
            self._tokens = min(self.capacity, self._tokens + elapsed * self.rate)
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
        paused = max(0.0, self._paused_until - self._clock())
        missing = max(0.0, count - self._tokens)
        return paused + missing / self.rate

    def rebase(self, rate: float) -> None:
        """A new configured rate; a pause or slow-down Meta asked for stays."""
        self._refill()
        self.rate = self.rate * rate / self.base_rate
        self.base_rate = rate
        self.capacity = max(1.0, rate)
        self._tokens = min(self._tokens, self.capacity)

    def pace(self, factor: float, pause: float = 0.0) -> None:
        """Send at ``factor`` of the base rate, and nothing at all for ``pause`` seconds."""
        self._refill()
        self.rate = self.base_rate * factor
        if pause > 0:
            self._paused_until = max(self._paused_until, self._clock() + pause)


SLOW_FROM = 75.0  # percent of Meta's limit from which a channel slows down
SLOWEST = 0.1  # the least share of its pace a slowed channel keeps


def pace_factor(percent: float) -> float:
    """The share of its pace a channel keeps at ``percent`` of Meta's limit: all below
    ``SLOW_FROM``, then less and less, down to ``SLOWEST`` at 100 % and over."""
    if percent < SLOW_FROM:
        return 1.0
    return max(SLOWEST, (100.0 - percent) / (100.0 - SLOW_FROM))


class Pacer:
    """Each queue's pace: its token bucket, slowed or paused by the usage Meta reports.

    Meta limits each number, Page and account on its own, so one practice's channel being
    throttled never slows another channel or another practice: each has a bucket of its own.
    """

    def __init__(
        self,
        rates: Mapping[Queue, float],
        metrics: Metrics,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.buckets: dict[Queue, TokenBucket] = {}
        self._metrics = metrics
        self._clock = clock
        self.configure(rates)

    def configure(self, rates: Mapping[Queue, float]) -> None:
        """The configured rates (again, after a group's practices changed): a new queue gets
        a bucket, a removed one loses it, and a kept one keeps what Meta asked of it."""
        for queue in self.buckets.keys() - rates.keys():
            del self.buckets[queue]
        for queue, rate in rates.items():
            bucket = self.buckets.get(queue)
            if bucket is None:
                self.buckets[queue] = TokenBucket(rate, self._clock)
            elif bucket.base_rate != rate:
                bucket.rebase(rate)

    def observe(self, queue: Queue, usage: Usage) -> None:
        """Graph's answer reported ``usage`` for ``queue``: set its pace from it."""
        self._metrics.graph_usage.labels(
            *self._metrics.scoped(queue.practice, queue.channel.value)
        ).set(usage.percent)
        bucket = self.buckets.get(queue)
        if bucket is None:
            return
        if usage.regain_after > 0:
            log.warning(
                "channel_paused",
                **queue.log_fields(),
                wait_s=round(usage.regain_after),
            )
        bucket.pace(pace_factor(usage.percent), usage.regain_after)


class ReplyWorker:
    """One per process; any number may share a store (leases keep them apart)."""

    def __init__(
        self,
        *,
        store: JobStore,
        run: Callable[[Job, str], Coroutine[Any, Any, None]],
        metrics: Metrics,
        pacer: Pacer,
        clock: Callable[[], float] = time.time,
        config: WorkerConfig | None = None,
    ) -> None:
        """``run(job, owner)`` takes a claimed job to its next transition (``Delivery.run``)."""
        self.owner = uuid.uuid4().hex[:12]
        self._store = store
        self._run_job = run
        self._metrics = metrics
        self._buckets = pacer.buckets
        self._clock = clock
        config = config if config is not None else WorkerConfig()
        self._lease = config.lease
        self._max_inflight = config.max_inflight
        self._queue_inflight = config.queue_inflight
        self._poll = config.poll_interval
        self._wake = asyncio.Event()
        self._stopping = False
        self._inflight: set[asyncio.Task[None]] = set()
        self._running: Counter[Queue] = Counter()  # jobs in flight per queue
        # Claims on their way to the store (the run loop's, and drain's): their jobs are not
        # in flight yet. The event is set while there are none.
        self._claiming = 0
        self._claim_done = asyncio.Event()
        self._claim_done.set()
        self._dirty: set[Queue] = set()  # queues that may have due jobs
        self._backlog: set[Queue] = set()  # queues whose last claim filled its limit
        # Queues waiting for send tokens, by the monotonic time they will have them.
        self._parked: list[tuple[float, Queue]] = []
        self._parked_until: dict[Queue, float] = {}  # each parked queue's earliest entry
        self._last_depth = 0.0

    def wake(self, queues: Iterable[Queue] = ()) -> None:
        """New jobs were recorded for ``queues``: look now instead of at the next poll."""
        self._dirty.update(queues)
        self._wake.set()

    async def run(self) -> None:
        """Claim and process jobs until :meth:`stop`."""
        next_poll = 0.0
        while not self._stopping:
            if time.monotonic() >= next_poll:
                # A poll: retries fall due and leases expire without a webhook to say so.
                await self._find_due()
                next_poll = time.monotonic() + self._poll
            claimed, wait = await self._claim_round()
            await self._update_depth()
            if claimed == 0 or len(self._inflight) >= self._max_inflight:
                self._wake.clear()
                # Sleep until a webhook or a finished send wakes us, the held-back queue's
                # next token, or the next poll, whichever is first. Waking for a token asks
                # only the queues still marked, never the idle ones.
                timeout = max(0.0, next_poll - time.monotonic())
                if wait:
                    timeout = min(timeout, wait)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=timeout)

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop claiming, let in-flight sends finish (bounded), release remaining leases."""
        self._stopping = True
        self._wake.set()
        await self._claim_done.wait()  # or its jobs would start after the wait below
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
            await self._find_due()
            claimed, wait = await self._claim_round()
            if self._inflight:
                await asyncio.wait(set(self._inflight))
            elif not self._claim_done.is_set():
                await self._claim_done.wait()  # the run loop's claim may be bringing jobs
            elif claimed == 0 and wait == 0:
                return
            elif claimed == 0:
                await asyncio.sleep(min(wait, max(0.0, deadline - time.monotonic())))

    async def _find_due(self) -> None:
        """Mark every queue with a job due now: one query, however many practices."""
        try:
            self._dirty.update(await self._store.due_queues(self.owner, self._clock()))
        except StoreUnavailable:
            log.warning("worker_claim_failed")

    async def _claim_round(self) -> tuple[int, float]:
        """Claim what each queue that may have due work is allowed to send now.

        Only queues marked dirty (a webhook queued work, a poll found some, or the last claim
        filled its limit) are asked, so an idle queue costs no query; a queue with a backlog
        is asked after the others, so a new message is not held behind it; a queue without
        the tokens it needs is parked until it has them. Returns the number claimed and the
        seconds until the first parked queue's tokens (0.0 when none is parked).
        """
        claimed = 0
        now = self._clock()
        moment = time.monotonic()
        while self._parked and self._parked[0][0] <= moment:
            until, queue = heapq.heappop(self._parked)
            if self._parked_until.get(queue) == until:
                del self._parked_until[queue]
            self._dirty.add(queue)
        for queue in sorted(self._dirty, key=self._backlog.__contains__):
            if self._stopping:
                break
            free = min(
                self._max_inflight - len(self._inflight),
                self._queue_inflight - self._running[queue],
            )
            if free <= 0:
                continue  # still dirty: a finished job wakes the worker
            bucket = self._buckets.get(queue)
            limit = min(free, bucket.available()) if bucket is not None else free
            # With a backlog, wait for a handful of tokens and claim them in one query rather
            # than one query per token; a lone new job still goes as soon as there is one.
            # A bucket smaller than a batch (a slow pace) is waited for whole, never for more.
            batch = min(CLAIM_BATCH, int(bucket.capacity)) if bucket is not None else CLAIM_BATCH
            want = min(free, batch) if queue in self._backlog else 1
            if bucket is not None and limit < want:
                # Parked until its tokens are there: a group's hundreds of queues waiting
                # for their pace are not looked at again on every webhook's wake-up.
                until = moment + max(bucket.wait(want), 0.001)
                self._dirty.discard(queue)
                if until < self._parked_until.get(queue, math.inf):
                    self._parked_until[queue] = until
                    heapq.heappush(self._parked, (until, queue))
                continue
            self._dirty.discard(queue)
            self._claiming += 1
            self._claim_done.clear()
            try:
                jobs = await self._store.claim(self.owner, now, limit, self._lease, queue)
            except StoreUnavailable:
                self._dirty.add(queue)
                log.warning("worker_claim_failed")
                return claimed, 0.0
            finally:
                self._claiming -= 1
                if not self._claiming:
                    self._claim_done.set()
            if len(jobs) == limit:
                self._dirty.add(queue)  # there may be more
                self._backlog.add(queue)
            else:
                self._backlog.discard(queue)
            if bucket is not None:
                bucket.take(len(jobs))
            for job in jobs:
                self._start(queue, job)
            claimed += len(jobs)
        wait = max(self._parked[0][0] - time.monotonic(), 0.001) if self._parked else 0.0
        return claimed, wait

    def _start(self, queue: Queue, job: Job) -> None:
        task = asyncio.create_task(self._run_job(job, self.owner))
        self._inflight.add(task)
        self._running[queue] += 1

        def finished(task: asyncio.Task[None]) -> None:
            # A slot is free, so a queue held back by the limit may go on.
            self._inflight.discard(task)
            self._running[queue] -= 1
            if not self._running[queue]:
                del self._running[queue]
            self._wake.set()

        task.add_done_callback(finished)

    async def _update_depth(self) -> None:
        now = time.monotonic()
        if now - self._last_depth < 1.0:
            return
        self._last_depth = now
        try:
            self._metrics.queue_depth.set(await self._store.queue_depth())
        except StoreUnavailable:
            return
