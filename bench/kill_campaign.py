"""Kill campaign: SIGKILL the bot again and again under Graph faults, then count lost and doubled
replies (reliability.md §2.4 and §8.3, item 16).

One asyncio process plays everything around the bot, on loopback only:

* **Meta, inbound** — posts signed WhatsApp text webhooks (one distinct sender and ``wamid`` per
  message, fresh timestamp), at most ``--concurrency`` at a time and paced over the campaign,
  and retries every non-2xx answer, timeout and connection error with short backoff until a 2xx
  (the bot is dead half the time), like Meta. It records which senders were acknowledged.
* **Graph API** — ``FakeGraph`` with a seeded fault model per request: 5xx, hang then reset
  (the bot's read times out after the write), reset after read, 130429 and 131047. Every request
  it *read* and did not answer with an error may have been delivered by Meta, so it counts as
  DELIVERED for its ``to`` and a ``sent`` status webhook carrying the request's
  ``biz_opaque_callback_data`` goes back to the bot after a small random delay, signed and
  retried until 2xx, like Meta.
* **Killer** — SIGKILLs ``python -m bot serve`` every 0.5 to 3 s and restarts it at once, then lets
  it drain for at most lease (60 s) + settle window (120 s) + 60 s.

Afterwards the SQLite file is read (read-only) and the figures are printed; the exit code is 0
when every target holds, 1 otherwise. Run from the repository root::

    python bench/kill_campaign.py --kills 200 --messages 5000 --max-seconds 900
    python bench/kill_campaign.py --quick

The bot's lease (60 s) and settle window (120 s) are fixed, so even ``--quick`` needs up to a
few minutes of drain when the last kill caught a send on the wire.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import random
import shutil
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # ``python bench/kill_campaign.py`` puts only bench/ on the path
    sys.path.insert(0, str(ROOT))

from bot.events import Channel, ContactKind  # noqa: E402
from bot.pseudonym import Keyring  # noqa: E402
from tests.helpers.fake_graph import Action, FakeGraph, RecordedRequest  # noqa: E402
from tests.helpers.process import BotProcess, whatsapp_text  # noqa: E402
from tests.helpers.service import APP_SECRET, PHONE_NUMBER_ID, PSEUDONYM_KEY  # noqa: E402
from tests.helpers.signing import sign  # noqa: E402

__all__ = ["CampaignConfig", "Faults", "Figures", "main", "run_campaign"]

LEASE = 60.0  # ReplyWorker's default lease
SETTLE = 120.0  # SPEC §5: an ambiguous send is settled within 120 s or resent once
DRAIN = LEASE + SETTLE + 60.0
CLEANUP_BUDGET = 25.0  # seconds kept back from --max-seconds for stopping and reading the DB
AMBIGUOUS_TARGET = 0.001  # ambiguous jobs per send request (reliability.md §8.3)
MEAN_CYCLE_GUESS = 1.75 + 0.7  # mean kill interval + a restart, to pace the messages
WEBHOOK_TIMEOUT = aiohttp.ClientTimeout(total=5, connect=1)
LOG_EVENTS = (
    "send_ambiguous",
    "ambiguous_resend",
    "send_failed",
    "send_alert",
    "send_deferred",
    "reply_requeued",
    "worker_unexpected_error",
    "worker_store_unavailable",
    "worker_claim_failed",
    "recipient_unreadable",
)


# -- configuration --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class Faults:
    """Per-request fault probabilities of the fake Graph API (the rest answer 200)."""

    server_error: float = 0.10  # 500 / 503 with a transient Graph code: not delivered
    hang: float = 0.05  # read, no answer for ``hang_seconds``, then reset: maybe delivered
    reset: float = 0.05  # read, then reset at once: maybe delivered
    throughput: float = 0.02  # 130429: not delivered
    window_closed: float = 0.01  # 131047: permanent, not delivered, the job ends failed
    # Of the sends answered 200, the share Meta later reports ``failed`` (131026) in a status:
    # not delivered, and the job's record must end failed with its cooldown claim released.
    status_failed: float = 0.0
    hang_seconds: float = 9.0  # > the bot's 8 s socket read timeout: a timeout after write

    def __post_init__(self) -> None:
        total = self.server_error + self.hang + self.reset + self.throughput + self.window_closed
        if total > 1 or min(self.server_error, self.hang, self.reset, self.status_failed) < 0:
            raise ValueError("fault probabilities must be >= 0 and sum to at most 1")


@dataclass(frozen=True, slots=True, kw_only=True)
class CampaignConfig:
    """What one campaign does."""

    kills: int
    min_kills: int
    messages: int
    max_seconds: float
    concurrency: int = 16
    status_concurrency: int = 16
    rate: float | None = None  # messages offered per second; None: spread over the kill phase
    sends_per_second: float = 500.0
    seed: int = 1
    faults: Faults = field(default_factory=Faults)
    data_dir: Path | None = None  # None: a fresh temp dir, removed afterwards
    keep: bool = False

    @property
    def kill_budget(self) -> float:
        """Seconds the kill phase may last so that drain and cleanup still fit."""
        return max(5.0, self.max_seconds - DRAIN - CLEANUP_BUDGET)

    @property
    def offered_rate(self) -> float:
        """Messages per second offered by the fake Meta."""
        if self.rate is not None:
            return self.rate
        phase = min(self.kill_budget, max(1, self.kills) * MEAN_CYCLE_GUESS)
        return max(1.0, self.messages / (0.85 * phase))


# -- Meta: signed webhooks, retried until 2xx ---------------------------------------------
@dataclass(slots=True)
class Deliveries:
    """What the bot answered to signed webhooks."""

    answers: Counter[int] = field(default_factory=Counter)
    connection_errors: int = 0
    timeouts: int = 0
    gave_up: int = 0


class Meta:
    """Posts signed webhooks to the bot the way Meta does: until a 2xx, with short backoff."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        deadline: float,
        rng: random.Random,
    ) -> None:
        self._session = session
        self._url = url
        self._deadline = deadline
        self._rng = rng
        self.messages = Deliveries()
        self.statuses = Deliveries()

    async def deliver(self, body: bytes, tally: Deliveries) -> bool:
        """POST ``body`` until the bot answers 2xx; False if the campaign deadline came first."""
        headers = {"X-Hub-Signature-256": sign(body, APP_SECRET)}
        backoff = 0.05
        while time.monotonic() < self._deadline:
            try:
                async with self._session.post(
                    self._url, data=body, headers=headers, timeout=WEBHOOK_TIMEOUT
                ) as response:
                    await response.read()
                    tally.answers[response.status] += 1
                    if 200 <= response.status <= 299:
                        return True
            except TimeoutError:
                tally.timeouts += 1
            except aiohttp.ClientError:
                tally.connection_errors += 1
            await asyncio.sleep(backoff * (0.5 + self._rng.random()))
            backoff = min(1.0, backoff * 2)
        tally.gave_up += 1
        return False


@dataclass(frozen=True, slots=True)
class Message:
    """One patient message: a distinct sender and message id."""

    sender: str
    wamid: str


class Inbound:
    """The fake Meta's message side: paced, bounded concurrency, records acknowledgements."""

    def __init__(self, meta: Meta, messages: list[Message], rate: float, concurrency: int) -> None:
        self._meta = meta
        self._messages = messages
        self._rate = rate
        self._concurrency = concurrency
        self.release = asyncio.Event()  # set: offer every remaining message at once
        self.acknowledged: set[str] = set()
        self.finished = asyncio.Event()

    async def run(self) -> None:
        """Offer every message once (each retried until 2xx); returns when all are done."""
        queue: asyncio.Queue[Message | None] = asyncio.Queue(maxsize=self._concurrency)
        workers = [asyncio.create_task(self._worker(queue)) for _ in range(self._concurrency)]
        try:
            start = time.monotonic()
            for index, message in enumerate(self._messages):
                due = start + index / self._rate
                if not self.release.is_set() and due > time.monotonic():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.release.wait(), due - time.monotonic())
                await queue.put(message)
            for _ in workers:
                await queue.put(None)
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            self.finished.set()

    async def _worker(self, queue: asyncio.Queue[Message | None]) -> None:
        while (message := await queue.get()) is not None:
            body = whatsapp_text(message.sender, message.wamid, time.time())
            if await self._meta.deliver(body, self._meta.messages):
                self.acknowledged.add(message.sender)


def status_body(recipient: str, tag: str, *, failed: bool = False) -> bytes:
    """A WhatsApp ``sent`` (or ``failed``) status webhook for one send, with its callback data."""
    status: dict[str, Any] = {
        "id": f"wamid.STATUS{random.getrandbits(64):016x}",
        "status": "failed" if failed else "sent",
        "timestamp": str(int(time.time())),
        "recipient_id": recipient,
        "biz_opaque_callback_data": tag,
    }
    if failed:
        status["errors"] = [{"code": 131026, "title": "Message undeliverable"}]
    payload = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "184725930012345",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "15550001234",
                                "phone_number_id": PHONE_NUMBER_ID,
                            },
                            "statuses": [status],
                        },
                    }
                ],
            }
        ],
    }
    return json.dumps(payload, separators=(",", ":")).encode()


class StatusHooks:
    """Status webhooks Meta owes the bot: each posted after a small delay, retried until 2xx."""

    def __init__(self, meta: Meta, rng: random.Random, concurrency: int) -> None:
        self._meta = meta
        self._rng = rng
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self.queued = 0
        self.delivered = 0
        self.acknowledged_at: dict[str, list[float]] = {}  # tag -> when its statuses got a 2xx

    def schedule(self, recipient: str, tag: str, *, failed: bool = False) -> None:
        """Queue one status webhook for a send the fake Graph API read."""
        self.queued += 1
        delay = self._rng.uniform(0.05, 1.5)
        task = asyncio.get_running_loop().create_task(
            self._post(status_body(recipient, tag, failed=failed), delay, tag)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def pending(self) -> int:
        """Status webhooks not yet acknowledged."""
        return len(self._tasks)

    async def _post(self, body: bytes, delay: float, tag: str) -> None:
        await asyncio.sleep(delay)
        async with self._slots:
            if await self._meta.deliver(body, self._meta.statuses):
                self.delivered += 1
                self.acknowledged_at.setdefault(tag, []).append(time.time())

    async def close(self, timeout: float) -> None:
        """Wait (bounded) for the pending webhooks, then cancel what is left."""
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)


# -- Graph API: a seeded fault model ----------------------------------------------------------
_SERVER_ERRORS = ((500, 1), (503, 2), (500, 131000))


class GraphFaults:
    """``FakeGraph.decide``: one fault or success per request, counted per recipient ``to``."""

    def __init__(self, faults: Faults, rng: random.Random, statuses: StatusHooks) -> None:
        self._faults = faults
        self._rng = rng
        self._statuses = statuses
        self.kinds: Counter[str] = Counter()
        self.delivered: Counter[str] = Counter()  # answered 200, or read then reset / hung
        self.permanent: set[str] = set()  # recipients answered 131047
        self.failed_by_status: set[str] = set()  # recipients whose send a status reported failed
        self.history: dict[str, list[str]] = {}  # recipient -> what each request got, in order
        self.requests_by_tag: dict[str, list[tuple[float, str]]] = {}  # tag -> (read at, fault)
        self.untagged = 0

    def decide(self, record: RecordedRequest) -> Action:
        """Pick what happens to this request; a read request may be delivered, so count it."""
        body = record.json if isinstance(record.json, dict) else {}
        to = body.get("to")
        tag = body.get("biz_opaque_callback_data")
        recipient = to if isinstance(to, str) else "?"
        f = self._faults
        draw = self._rng.random()
        action: Action
        if draw < (edge := f.server_error):
            status, code = self._rng.choice(_SERVER_ERRORS)
            kind, action = "5xx", Action.error(status, code, error_type="OAuthException")
        elif draw < (edge := edge + f.throughput):
            kind, action = "130429", Action.error(400, 130429)
        elif draw < (edge := edge + f.window_closed):
            kind, action = "131047", Action.error(400, 131047)
            self.permanent.add(recipient)
        elif draw < (edge := edge + f.hang):
            kind, action = "hang_then_reset", Action.hang(f.hang_seconds)
        elif draw < edge + f.reset:
            kind, action = "reset_after_read", Action.reset()
        else:
            kind, action = "ok", Action.ok()
            if self._rng.random() < f.status_failed:
                kind = "ok_then_status_failed"
        self.kinds[kind] += 1
        self.history.setdefault(recipient, []).append(kind)
        if isinstance(tag, str):
            self.requests_by_tag.setdefault(tag, []).append((time.time(), kind))
        if kind == "ok_then_status_failed":
            self.failed_by_status.add(recipient)
            if isinstance(tag, str) and tag:
                self._statuses.schedule(recipient, tag, failed=True)
        elif action.kind in {"ok", "reset", "hang"}:
            self.delivered[recipient] += 1
            if isinstance(tag, str) and tag:
                self._statuses.schedule(recipient, tag)
            else:
                self.untagged += 1
        return action


# -- the killer -------------------------------------------------------------------------------
@dataclass(slots=True)
class Killer:
    """SIGKILL and restart at random intervals; counts kills and restart times."""

    bot: BotProcess
    rng: random.Random
    kills: int = 0
    restart_seconds: list[float] = field(default_factory=list)
    start_failures: int = 0
    broken: bool = False

    async def restart(self) -> None:
        """Start the service, trying again (bounded) if a start fails."""
        for _ in range(3):
            try:
                await self.bot.start()
            except (RuntimeError, TimeoutError):
                self.start_failures += 1
                await self.bot.stop()
                continue
            return
        raise RuntimeError("the bot did not come back after three starts")

    async def run(self, config: CampaignConfig, inbound: Inbound, until: float) -> None:
        """Kill until ``--kills``, or all acknowledged after ``--min-kills``, or ``until``."""
        while self.kills < config.kills and time.monotonic() < until:
            if self.kills >= config.min_kills and inbound.finished.is_set():
                break
            await asyncio.sleep(self.rng.uniform(0.5, 3.0))
            self.bot.signal(signal.SIGKILL)
            await self.bot.wait(5)
            self.kills += 1
            started = time.monotonic()
            try:
                await self.restart()
            except RuntimeError:
                self.broken = True
                return
            self.restart_seconds.append(time.monotonic() - started)


# -- reading the store ------------------------------------------------------------------------
def open_readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection; ``immutable`` when the service is gone and left no WAL index."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError:
        db = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    return db


def open_jobs(path: Path) -> int:
    """Jobs whose state is not 'done' (0 before the store exists)."""
    if not path.exists():
        return -1
    db = open_readonly(path)
    try:
        row = db.execute("SELECT COUNT(*) FROM reply_jobs WHERE state != 'done'").fetchone()
        return int(row[0])
    except sqlite3.Error:
        return -1
    finally:
        db.close()


@dataclass(frozen=True, slots=True)
class JobRow:
    """The parts of a reply job the figures need."""

    id: int
    state: str
    outcome: str | None
    attempts: int
    resent: bool
    settled: bool


# -- figures ----------------------------------------------------------------------------------
@dataclass(slots=True)
class Figures:
    """Everything the campaign prints."""

    messages: int = 0
    acknowledged: int = 0
    unacknowledged: int = 0
    replies_delivered: int = 0
    lost: int = 0
    doubled: int = 0
    ambiguous: int = 0
    resent_jobs: int = 0
    doubled_outside_ambiguous: int = 0
    stuck: int = 0
    failed_permanent: int = 0
    failed_by_status: int = 0
    failed_status_shown_failed: int = 0
    failed_status_claim_released: int = 0
    failed_other: int = 0
    jobs: int = 0
    job_outcomes: dict[str, int] = field(default_factory=dict)
    senders_without_job: int = 0
    senders_with_several_jobs: int = 0
    contact_rows_not_one: int = 0
    orphan_sends: int = 0
    graph_requests: int = 0
    graph_kinds: dict[str, int] = field(default_factory=dict)
    untagged_sends: int = 0
    webhook_answers: dict[str, int] = field(default_factory=dict)
    status_answers: dict[str, int] = field(default_factory=dict)
    webhook_5xx: int = 0
    webhook_4xx: int = 0
    connection_errors: int = 0
    webhook_timeouts: int = 0
    gave_up: int = 0
    statuses_queued: int = 0
    statuses_delivered: int = 0
    integrity: str = "not run"
    kills: int = 0
    start_failures: int = 0
    broken: bool = False
    restart_p50: float = math.nan
    restart_max: float = math.nan
    kill_phase_seconds: float = 0.0
    drain_seconds: float = 0.0
    wall_seconds: float = 0.0
    log_events: dict[str, int] = field(default_factory=dict)
    histories: dict[str, dict[str, int]] = field(default_factory=dict)
    examples: dict[str, list[int]] = field(default_factory=dict)
    resend_timelines: list[str] = field(default_factory=list)

    @property
    def ambiguous_ratio(self) -> float:
        """Ambiguous jobs per send request the Graph API received."""
        return self.ambiguous / self.graph_requests if self.graph_requests else 0.0

    def checks(self) -> list[tuple[str, bool]]:
        """Each target and whether it holds."""
        return [
            ("every message acknowledged", self.unacknowledged == 0),
            ("LOST == 0", self.lost == 0),
            ("DOUBLED OUTSIDE AMBIGUOUS == 0", self.doubled_outside_ambiguous == 0),
            (f"AMBIGUOUS <= {AMBIGUOUS_TARGET:.1%} of sends", self.ambiguous_ratio <= 0.001),
            ("STUCK == 0", self.stuck == 0),
            ("5xx answers to signed webhooks == 0", self.webhook_5xx == 0),
            ("4xx answers to signed webhooks == 0", self.webhook_4xx == 0),
            ("one job and one contact record per sender", self._one_each()),
            (
                "every send a status reported failed: record failed, claim released",
                self.failed_status_shown_failed == self.failed_by_status
                and self.failed_status_claim_released == self.failed_by_status,
            ),
            ("no send without an inbound message", self.orphan_sends == 0),
            ("PRAGMA integrity_check == ok", self.integrity == "ok"),
            ("every restart came up", self.start_failures == 0 and not self.broken),
        ]

    def _one_each(self) -> bool:
        return (
            self.senders_with_several_jobs == 0
            and self.contact_rows_not_one == 0
            and self.senders_without_job == 0
        )


def _statuses(answers: Counter[int]) -> dict[str, int]:
    return {str(code): n for code, n in sorted(answers.items())}


def analyse(
    db_path: Path,
    messages: list[Message],
    *,
    inbound: Inbound,
    graph: GraphFaults,
    graph_requests: int,
    stuck: int,
    acknowledged_at: dict[str, list[float]] | None = None,
) -> Figures:
    """Join what Meta saw, what Graph saw and what the store holds, by sender pseudonym."""
    keyring = Keyring(PSEUDONYM_KEY)
    figures = Figures(messages=len(messages), stuck=stuck)
    db = open_readonly(db_path)
    try:
        figures.integrity = str(db.execute("PRAGMA integrity_check").fetchone()[0])
        jobs: dict[str, list[JobRow]] = {}
        for row in db.execute(
            "SELECT contact, id, state, outcome, attempts, resent, settled FROM reply_jobs "
            "WHERE channel = 'whatsapp'"
        ):
            jobs.setdefault(row[0], []).append(
                JobRow(row[1], row[2], row[3], row[4], bool(row[5]), bool(row[6]))
            )
        resent_rows = db.execute(
            "SELECT id, tag, created_at, send_started_at, finished_at, outcome FROM reply_jobs "
            "WHERE resent = 1 OR outcome = 'ambiguous' ORDER BY id"
        ).fetchall()
        record_outcomes: dict[str, list[str]] = {}
        for pseudonym, record_outcome in db.execute(
            "SELECT pseudonym, outcome FROM contact_log WHERE channel = 'whatsapp'"
        ):
            record_outcomes.setdefault(pseudonym, []).append(record_outcome)
        records = Counter({p: len(o) for p, o in record_outcomes.items()})
        claimed = {
            row[0] for row in db.execute("SELECT contact FROM cooldowns WHERE channel = 'whatsapp'")
        }
    finally:
        db.close()

    outcomes: Counter[str] = Counter()
    for rows in jobs.values():
        outcomes.update(r.outcome or f"({r.state})" for r in rows)
    figures.jobs = sum(len(rows) for rows in jobs.values())
    figures.job_outcomes = dict(sorted(outcomes.items()))
    figures.ambiguous = outcomes["ambiguous"]
    figures.resent_jobs = sum(r.resent for rows in jobs.values() for r in rows)
    examples: dict[str, list[int]] = {}
    histories: dict[str, Counter[str]] = {}

    def history(name: str, sender: str) -> None:
        pattern = ">".join(graph.history.get(sender, [])) or "(no request)"
        histories.setdefault(name, Counter())[pattern] += 1

    def example(name: str, rows: list[JobRow]) -> None:
        ids = examples.setdefault(name, [])
        if len(ids) < 10:
            ids.extend(r.id for r in rows[:1])

    senders = {m.sender for m in messages}
    for message in messages:
        sender = message.sender
        pseudonym = keyring.contact(Channel.WHATSAPP, sender, ContactKind.PHONE)
        rows = jobs.get(pseudonym, [])
        delivered = graph.delivered.get(sender, 0)
        acked = sender in inbound.acknowledged
        if not acked:
            figures.unacknowledged += 1
            continue
        figures.acknowledged += 1
        if not rows:
            figures.senders_without_job += 1
        elif len(rows) > 1:
            figures.senders_with_several_jobs += 1
            example("several_jobs", rows)
        if records.get(pseudonym, 0) != 1:
            figures.contact_rows_not_one += 1
        failed = any(r.outcome == "failed" for r in rows)
        if sender in graph.failed_by_status:
            figures.failed_by_status += 1
            figures.failed_status_shown_failed += record_outcomes.get(pseudonym) == ["failed"]
            figures.failed_status_claim_released += pseudonym not in claimed
        expected = sender in graph.permanent or sender in graph.failed_by_status
        permanent = failed and expected
        if failed:
            if sender in graph.permanent:
                figures.failed_permanent += 1
            elif sender not in graph.failed_by_status:
                figures.failed_other += 1
                example("failed_without_131047", rows)
        if any(r.outcome == "ambiguous" for r in rows):
            history("ambiguous", sender)
        if delivered >= 1:
            figures.replies_delivered += 1
        elif not permanent:
            figures.lost += 1
            example("lost", rows)
            history("lost", sender)
        if delivered >= 2:
            figures.doubled += 1
            if not any(r.outcome == "ambiguous" for r in rows):
                figures.doubled_outside_ambiguous += 1
                example("doubled_outside_ambiguous", rows)
    figures.orphan_sends = sum(n for to, n in graph.delivered.items() if to not in senders)
    figures.graph_requests = graph_requests
    figures.graph_kinds = dict(sorted(graph.kinds.items()))
    figures.untagged_sends = graph.untagged
    figures.examples = {name: ids for name, ids in examples.items() if ids}
    figures.resend_timelines = [
        resend_timeline(
            row, graph.requests_by_tag.get(row[1], []), (acknowledged_at or {}).get(row[1], [])
        )
        for row in resent_rows
    ]
    figures.histories = {
        name: dict(counts.most_common(12)) for name, counts in sorted(histories.items())
    }
    return figures


def resend_timeline(
    row: tuple[Any, ...], requests: list[tuple[float, str]], acknowledged: list[float]
) -> str:
    """One resent job, in seconds from its creation: each request the fake Graph API read with
    what it got, when statuses carrying the job's tag were acknowledged by the bot, and the
    job's last send and end as the store has them. A delivered request ("ok", a reset or a
    hang) with no status acknowledged before the resend is a status that came too late."""
    job_id, _, created, last_send, finished, outcome = row

    def at(moment: float | None) -> str:
        return "never" if moment is None else f"+{moment - created:.1f}s"

    sent = ", ".join(f"{kind} {at(read)}" for read, kind in requests) or "none read"
    acked = ", ".join(at(moment) for moment in acknowledged) or "none"
    return (
        f"job {job_id}: requests {sent}; statuses acknowledged {acked}; "
        f"last send began {at(last_send)}, ended {at(finished)} {outcome}"
    )


def count_log_events(log_path: Path) -> dict[str, int]:
    """How often the bot logged each interesting event name (JSON lines), and how many jobs
    were ended more than once (``reply_ended`` repeated for one job id)."""
    counts: Counter[str] = Counter()
    ended: Counter[int] = Counter()
    if not log_path.exists():
        return {}
    with log_path.open("rb") as handle:
        for raw in handle:
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(line, dict):
                continue
            if line.get("event") in LOG_EVENTS:
                counts[str(line["event"])] += 1
            elif line.get("event") == "reply_ended" and isinstance(line.get("job"), int):
                ended[line["job"]] += 1
    repeats = [n for n in ended.values() if n > 1]
    counts["jobs_ended_more_than_once"] = len(repeats)
    counts["reply_ended_lines_in_excess"] = sum(repeats) - len(repeats)
    return dict(sorted(counts.items()))


# -- the campaign -----------------------------------------------------------------------------
async def run_campaign(config: CampaignConfig, data_dir: Path) -> Figures:
    """Run one campaign with its store under ``data_dir``; returns the figures."""
    started = time.monotonic()
    hard_deadline = started + config.max_seconds - CLEANUP_BUDGET / 2
    rng = random.Random(config.seed)
    messages = [
        Message(sender=f"4479{i:08d}", wamid=f"wamid.KILLCAMPAIGN{config.seed:04d}{i:08d}")
        for i in range(config.messages)
    ]
    db_path = data_dir / "practice-bot.sqlite3"
    kill_end = drain_end = started
    stuck = -1
    async with aiohttp.ClientSession() as session, FakeGraph() as graph:
        bot = BotProcess(
            data_dir,
            graph.url,
            WHATSAPP_SENDS_PER_SECOND=f"{config.sends_per_second:g}",
            LOG_LEVEL="info",
        )
        meta = Meta(session, f"{bot.url}/webhook", hard_deadline, random.Random(rng.random()))
        statuses = StatusHooks(meta, random.Random(rng.random()), config.status_concurrency)
        graph_faults = GraphFaults(config.faults, random.Random(rng.random()), statuses)
        graph.decide = graph_faults.decide
        inbound = Inbound(meta, messages, config.offered_rate, config.concurrency)
        killer = Killer(bot, random.Random(rng.random()))
        sending: asyncio.Task[None] | None = None
        try:
            await killer.restart()
            sending = asyncio.create_task(inbound.run())
            try:
                await killer.run(config, inbound, started + config.kill_budget)
            finally:
                inbound.release.set()
            kill_end = time.monotonic()
            # No more kills: wait until every job has ended, at most lease + settle + 60 s.
            drain_until = min(kill_end + DRAIN, hard_deadline)
            while time.monotonic() < drain_until:
                stuck = open_jobs(db_path)
                if stuck == 0 and inbound.finished.is_set() and statuses.pending == 0:
                    break
                await asyncio.sleep(1.0)
            stuck = open_jobs(db_path)
            drain_end = time.monotonic()
        finally:
            if sending is not None:
                await asyncio.wait({sending}, timeout=max(1.0, hard_deadline - time.monotonic()))
                sending.cancel()
                await asyncio.gather(sending, return_exceptions=True)
            if bot.proc is not None and bot.proc.poll() is None:
                bot.signal(signal.SIGTERM)
                with contextlib.suppress(TimeoutError):
                    await bot.wait(10)
            await bot.stop()
            await statuses.close(timeout=2.0)
        figures = analyse(
            db_path,
            messages,
            inbound=inbound,
            graph=graph_faults,
            graph_requests=len(graph.requests),
            stuck=stuck,
            acknowledged_at=statuses.acknowledged_at,
        )
    figures.kills = killer.kills
    figures.start_failures = killer.start_failures
    figures.broken = killer.broken
    if killer.restart_seconds:
        figures.restart_p50 = statistics.median(killer.restart_seconds)
        figures.restart_max = max(killer.restart_seconds)
    figures.kill_phase_seconds = kill_end - started
    figures.drain_seconds = drain_end - kill_end
    figures.webhook_answers = _statuses(meta.messages.answers)
    figures.status_answers = _statuses(meta.statuses.answers)
    both = meta.messages.answers + meta.statuses.answers
    figures.webhook_5xx = sum(n for code, n in both.items() if code >= 500)
    figures.webhook_4xx = sum(n for code, n in both.items() if 400 <= code < 500)
    figures.connection_errors = meta.messages.connection_errors + meta.statuses.connection_errors
    figures.webhook_timeouts = meta.messages.timeouts + meta.statuses.timeouts
    figures.gave_up = meta.messages.gave_up + meta.statuses.gave_up
    figures.statuses_queued = statuses.queued
    figures.statuses_delivered = statuses.delivered
    figures.log_events = count_log_events(data_dir / "bot.log")
    figures.wall_seconds = time.monotonic() - started
    return figures


# -- report -----------------------------------------------------------------------------------
def report(figures: Figures, config: CampaignConfig) -> list[str]:
    """The printed figures, one per line."""
    f = figures
    per_job = f.ambiguous / f.jobs if f.jobs else 0.0
    faults = config.faults
    lines = [
        "kill campaign: practice-bot under SIGKILL and Graph faults",
        f"  config: messages={config.messages} kills={config.kills} "
        f"min_kills={config.min_kills} max_seconds={config.max_seconds:g} "
        f"seed={config.seed} concurrency={config.concurrency} "
        f"offered_rate={config.offered_rate:.1f}/s sends_per_second={config.sends_per_second:g}",
        f"  faults: 5xx={faults.server_error:.0%} hang={faults.hang:.0%} "
        f"(then reset after {faults.hang_seconds:g} s) reset={faults.reset:.0%} "
        f"130429={faults.throughput:.0%} 131047={faults.window_closed:.0%}",
        "",
        f"messages acknowledged      {f.acknowledged} / {f.messages}",
        f"replies delivered          {f.replies_delivered}  (distinct senders, DELIVERED >= 1)",
        f"LOST                       {f.lost}  (target 0)",
        f"DOUBLED                    {f.doubled}  (senders with DELIVERED >= 2)",
        f"AMBIGUOUS                  {f.ambiguous}  = {f.ambiguous_ratio:.3%} of "
        f"{f.graph_requests} send requests, {per_job:.3%} of {f.jobs} jobs "
        f"(target <= {AMBIGUOUS_TARGET:.1%}); jobs resent: {f.resent_jobs}",
        f"DOUBLED OUTSIDE AMBIGUOUS  {f.doubled_outside_ambiguous}  (target 0)",
        f"STUCK                      {f.stuck}  (jobs not done after the drain; target 0)",
        f"failed by 131047           {f.failed_permanent}; failed otherwise: {f.failed_other}",
        f"failed by status           {f.failed_by_status}  (records failed: "
        f"{f.failed_status_shown_failed}, claims released: {f.failed_status_claim_released})",
        f"5xx to signed webhooks     {f.webhook_5xx}  (target 0); 4xx: {f.webhook_4xx}; "
        f"connection errors: {f.connection_errors}; timeouts: {f.webhook_timeouts}; "
        f"gave up: {f.gave_up}",
        f"integrity_check            {f.integrity}",
        f"kills                      {f.kills}  (start failures: {f.start_failures}; "
        f"kill -> healthy p50 {f.restart_p50:.2f} s, max {f.restart_max:.2f} s)",
        f"wall time                  {f.wall_seconds:.1f} s  (kill phase "
        f"{f.kill_phase_seconds:.1f} s, drain {f.drain_seconds:.1f} s)",
        "",
        f"job outcomes               {json.dumps(f.job_outcomes)}",
        f"graph requests by fault    {json.dumps(f.graph_kinds)}",
        f"message webhook answers    {json.dumps(f.webhook_answers)}",
        f"status webhook answers     {json.dumps(f.status_answers)}  "
        f"(queued {f.statuses_queued}, acknowledged {f.statuses_delivered})",
        f"per-sender joins           without job {f.senders_without_job}, several jobs "
        f"{f.senders_with_several_jobs}, contact records != 1: {f.contact_rows_not_one}, "
        f"orphan sends {f.orphan_sends}, untagged sends {f.untagged_sends}",
        f"bot log events             {json.dumps(f.log_events)}",
    ]
    if f.examples:
        lines.append(f"example job ids            {json.dumps(f.examples)}")
    for name, patterns in f.histories.items():
        lines.append(f"{'Graph history, ' + name:<27}{json.dumps(patterns)}")
    lines.extend(f"resent {timeline}" for timeline in f.resend_timelines)
    lines.append("")
    results = f.checks()
    lines.extend(f"  [{'PASS' if ok else 'FAIL'}] {name}" for name, ok in results)
    verdict = all(ok for _, ok in results)
    lines.append(f"RESULT: {'PASS' if verdict else 'FAIL'}")
    return lines


def _config(args: argparse.Namespace) -> CampaignConfig:
    if args.quick:
        kills = args.kills if args.kills_given else 12
        messages = args.messages if args.messages_given else 400
        max_seconds = args.max_seconds if args.max_seconds_given else 60 + DRAIN + CLEANUP_BUDGET
    else:
        kills, messages, max_seconds = args.kills, args.messages, args.max_seconds
    faults = Faults(
        server_error=args.p_5xx,
        hang=args.p_hang,
        reset=args.p_reset,
        throughput=args.p_130429,
        window_closed=args.p_131047,
        status_failed=args.p_status_failed,
        hang_seconds=args.hang_seconds,
    )
    return CampaignConfig(
        kills=kills,
        min_kills=kills if args.min_kills is None else min(args.min_kills, kills),
        messages=messages,
        max_seconds=max_seconds,
        concurrency=args.concurrency,
        rate=args.rate,
        sends_per_second=args.sends_per_second,
        seed=args.seed,
        faults=faults,
        data_dir=args.data_dir,
        keep=args.keep,
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--kills", type=int, default=200, help="SIGKILLs to deliver")
    parser.add_argument(
        "--min-kills",
        type=int,
        default=None,
        help="stop killing once every message is acknowledged and this many kills are done "
        "(default: --kills)",
    )
    parser.add_argument("--messages", type=int, default=5000, help="distinct senders")
    parser.add_argument("--max-seconds", type=float, default=900.0, help="hard bound on the run")
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=16, help="webhooks in flight")
    parser.add_argument("--rate", type=float, default=None, help="messages offered per second")
    parser.add_argument("--sends-per-second", type=float, default=500.0)
    parser.add_argument("--p-5xx", type=float, default=0.10)
    parser.add_argument("--p-hang", type=float, default=0.05)
    parser.add_argument("--p-reset", type=float, default=0.05)
    parser.add_argument("--p-130429", type=float, default=0.02)
    parser.add_argument("--p-131047", type=float, default=0.01)
    parser.add_argument("--hang-seconds", type=float, default=9.0)
    parser.add_argument(
        "--p-status-failed",
        type=float,
        default=0.0,
        help="of the sends answered 200, the share later reported failed by a status",
    )
    parser.add_argument("--data-dir", type=Path, default=None, help="keep the store here")
    parser.add_argument("--keep", action="store_true", help="keep the temp data directory")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    raw = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(raw)
    args.kills_given = any(a.startswith("--kills") for a in raw)
    args.messages_given = any(a.startswith("--messages") for a in raw)
    args.max_seconds_given = any(a.startswith("--max-seconds") for a in raw)
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the campaign, print the figures; 0 when every target holds."""
    args = parse_args(argv)
    config = _config(args)
    with contextlib.ExitStack() as stack:
        if config.data_dir is not None:
            data_dir = config.data_dir
            data_dir.mkdir(parents=True, exist_ok=True)
        else:
            temp = tempfile.mkdtemp(prefix="kill-campaign-")
            data_dir = Path(temp)
            if not config.keep:
                stack.callback(shutil.rmtree, data_dir, ignore_errors=True)
        print(f"data directory: {data_dir}", flush=True)
        print(
            f"messages={config.messages} kills={config.kills} max_seconds={config.max_seconds:g}"
            f" (kill phase <= {config.kill_budget:.0f} s, drain <= {DRAIN:.0f} s)",
            flush=True,
        )
        figures = asyncio.run(run_campaign(config, data_dir))
        lines = report(figures, config)
        print("\n".join(lines), flush=True)
        if args.json is not None:
            payload: dict[str, Any] = {
                name: getattr(figures, name) for name in Figures.__dataclass_fields__
            }
            payload["ambiguous_ratio"] = figures.ambiguous_ratio
            args.json.write_text(json.dumps(payload, indent=2, default=str) + "\n")
        return 0 if lines[-1] == "RESULT: PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
