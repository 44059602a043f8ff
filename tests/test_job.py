"""A reply job's life (bot/job.py): the next step of a claimed job, and its invariants under
random claims, crashes, answers and statuses, run through the real SQLite store.

The property test stands in for Meta with a scripted transport: each request it is given is
delivered, refused, lost after being written (ambiguous), or the process dies with it on the
wire, before or after Meta got it. A status webhook for a delivered request may come at any
point, or never. Processes die and restart with a new lease owner. Whatever happens:

- a job reaches Meta at most twice, and twice only after one counted resend;
- a request is only written while its job is SENDING and not settled, even when a status
  comes in while the worker waits to retry;
- a job ends once, and every job ends once the sends succeed and the clock moves on.
"""

from __future__ import annotations

import asyncio
import itertools
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters import REGISTRY
from bot.adapter import Outbound, SendConfig, SendResult
from bot.errors import DeliveryError, ErrorClass, GraphError
from bot.events import Channel, ContactKind, EventKind, Outcome, PatientEvent
from bot.ingest import IngestPolicy, PracticeRules, PreparedStatus, apply, prepare
from bot.job import (
    SETTLE_WINDOW,
    Delivery,
    End,
    Job,
    JobState,
    Queue,
    Send,
    WaitToSettle,
    next_step,
)
from bot.metrics import Metrics
from bot.pseudonym import Keyring
from bot.replies import Reply
from bot.retry import RetryPolicy
from bot.store.sqlite import SQLiteStore

NOW = 1_767_261_600.0
MAX_AGE = 23 * 3600.0
LEASE = 60.0
ACCOUNT = "109876543210987"
KEYRING = Keyring("k" * 40)
POLICY = IngestPolicy(
    routes={
        (Channel.WHATSAPP, ACCOUNT): PracticeRules(
            practice="", cooldown=0.0, staff_quiet=0.0, max_age=MAX_AGE
        )
    },
    app_id=None,
)
CONFIG = SendConfig(
    channel=Channel.WHATSAPP,
    account_id=ACCOUNT,
    token="t",
    graph_api_url="http://graph.invalid",
    instagram_api_url="http://graph.invalid",
    api_version="v25.0",
)


class OnePractice:
    """The senders of a practice that answers WhatsApp with one fixed text."""

    max_age = MAX_AGE

    def send_config(self, queue: Queue) -> SendConfig | None:
        return CONFIG if queue == Queue("", Channel.WHATSAPP) else None

    def render(self, queue: Queue, at: datetime) -> Reply:
        return Reply(text="Automatic reply", phone="+441234567890")


SENDERS = OnePractice()
RETRIES = RetryPolicy(max_attempts=3, initial=0.0, max_wait=0.0, jitter=0.0, deadline=60.0)


def _job(**changes: object) -> Job:
    values: dict[str, object] = {
        "id": 1,
        "tag": "t1",
        "channel": Channel.WHATSAPP,
        "contact": "c1",
        "contact_kind": ContactKind.PHONE,
        "recipient": b"sealed",
        "contact_log_id": 1,
        "received_at": NOW - 5,
        "state": JobState.PENDING,
        "attempts": 1,
        "send_started_at": None,
        "settled": False,
        "resent": False,
    }
    values.update(changes)
    return Job(**values)  # type: ignore[arg-type]


def _step(job: Job, now: float = NOW) -> object:
    return next_step(job, now, settle_window=SETTLE_WINDOW, max_age=MAX_AGE)


# -- next_step: the rules in order ------------------------------------------------------------


def test_next_step_pending_job_sends() -> None:
    """A fresh job is sent, not as a resend."""
    assert _step(_job()) == Send(resend=False)


def test_next_step_settled_job_ends_replied() -> None:
    """A job Meta reported as delivered ends replied, whatever its state."""
    assert _step(_job(state=JobState.AMBIGUOUS, settled=True)) == End(Outcome.REPLIED)


def test_next_step_settled_resent_job_ends_ambiguous() -> None:
    """A settled job whose resend went out ends ambiguous: the patient may have two."""
    assert _step(_job(settled=True, resent=True)) == End(Outcome.AMBIGUOUS)


def test_next_step_ambiguous_job_waits_inside_the_window() -> None:
    """Until the settle window has passed since the send, an unsettled job waits for it."""
    job = _job(state=JobState.SENDING, send_started_at=NOW - 10)
    assert _step(job) == WaitToSettle(NOW - 10 + SETTLE_WINDOW)


def test_next_step_ambiguous_job_resends_after_the_window() -> None:
    """After the window an unsettled ambiguous job is resent once."""
    job = _job(state=JobState.AMBIGUOUS, send_started_at=NOW - SETTLE_WINDOW)
    assert _step(job) == Send(resend=True)


def test_next_step_resent_job_never_sends_a_third_time() -> None:
    """Once the resend has been made, an unsettled job ends ambiguous."""
    job = _job(state=JobState.AMBIGUOUS, send_started_at=NOW - 200, resent=True)
    assert _step(job) == End(Outcome.AMBIGUOUS)


def test_next_step_old_job_ends_stale() -> None:
    """A job older than the reply window ends stale instead of sending."""
    assert _step(_job(received_at=NOW - MAX_AGE - 1)) == End(Outcome.STALE)


# -- the property test ------------------------------------------------------------------------


class Crash(BaseException):
    """The process died (SIGKILL): nothing after this point of the run happens."""


# What Meta does with one request: (reached Meta, how the bot sees it).
ANSWERS = {
    "ok": (True, "answer"),
    "refused_5xx": (False, "transient"),
    "refused_5xx_delivered": (True, "transient"),  # Meta may deliver and still answer 5xx
    "refused_131047": (False, "permanent"),
    "lost_delivered": (True, "ambiguous"),
    "lost_undelivered": (False, "ambiguous"),
    "crash_delivered": (True, "crash"),
    "crash_undelivered": (False, "crash"),
}


@dataclass
class Meta:
    """The scripted Graph API: answers requests in script order, then "ok"."""

    store: SQLiteStore
    script: list[str]
    delivered: int = 0
    reached: int = 0  # requests that may have reached Meta: delivered or not known
    violations: list[str] = field(default_factory=list)

    def _check_on_the_wire(self) -> None:
        row = self.store.db.execute("SELECT state, settled FROM reply_jobs").fetchone()
        if row != ("sending", 0):
            self.violations.append(f"request written while the job was {row}")

    async def post(self, outbound: Outbound) -> SendResult:
        self._check_on_the_wire()
        answer = self.script.pop(0) if self.script else "ok"
        delivers, seen = ANSWERS[answer]
        self.delivered += delivers
        self.reached += seen in ("answer", "ambiguous", "crash")
        if seen == "answer":
            return SendResult("wamid.SENT")
        if seen == "transient":
            raise GraphError(status=503, code=2, subcode=None, error_class=ErrorClass.TRANSIENT)
        if seen == "permanent":
            raise GraphError(
                status=400, code=131047, subcode=None, error_class=ErrorClass.PERMANENT
            )
        if seen == "ambiguous":
            raise DeliveryError("lost", error_class=ErrorClass.TRANSIENT, ambiguous=True)
        raise Crash


@dataclass
class World:
    """One job's world: the store, Meta, a clock and the process now running."""

    store: SQLiteStore
    meta: Meta
    metrics: Metrics
    now: float = NOW
    owners: Iterator[str] = field(default_factory=lambda: (f"p{i}" for i in itertools.count()))
    owner: str = "p"
    tag: str = ""

    def delivery(self) -> Delivery:
        return Delivery(
            store=self.store,
            transport=self.meta,
            adapters=REGISTRY.adapters,
            senders=lambda: SENDERS,
            keyring=KEYRING,
            metrics=self.metrics,
            retry=RETRIES,
            clock=lambda: self.now,
            sleep=self._sleep,
        )

    async def _sleep(self, _seconds: float) -> None:
        """Waiting between attempts: the process may die, or a status may come in."""
        if self.meta.script and self.meta.script[0] in WHILE_WAITING:
            if self.meta.script.pop(0) == "crash_waiting":
                raise Crash
            await self.status()

    async def ingest(self) -> None:
        event = PatientEvent(
            channel=Channel.WHATSAPP,
            account_id=ACCOUNT,
            contact_id="447700900123",
            contact_kind=ContactKind.PHONE,
            message_id="wamid.IN",
            timestamp=self.now - 1,
            kind=EventKind.MESSAGE,
        )
        work = prepare([event], POLICY, KEYRING).work
        async with self.store.transaction() as tx:
            await apply(tx, work, self.now)
        self.tag = self.store.db.execute("SELECT tag FROM reply_jobs").fetchone()[0]

    async def work(self) -> None:
        """The running process claims what is due and runs it; it may die doing so."""
        for job in await self.store.claim(self.owner, self.now, 8, LEASE):
            try:
                await self.delivery().run(job, self.owner)
            except Crash:
                self.owner = next(self.owners)  # restarted: a new process, a new owner
                return

    async def status(self) -> None:
        """A status webhook for a delivered request (there is none for an undelivered one)."""
        if self.meta.delivered:
            async with self.store.transaction() as tx:
                await apply(tx, [PreparedStatus(channel=Channel.WHATSAPP, tag=self.tag)], self.now)

    def row(self) -> tuple[str, str | None]:
        state, outcome = self.store.db.execute("SELECT state, outcome FROM reply_jobs").fetchone()
        return state, outcome

    def resends(self) -> float:
        value = self.metrics.registry.get_sample_value(
            "practice_bot_ambiguous_resends_total", {"channel": "whatsapp"}
        )
        return value or 0.0

    def ended(self) -> float:
        total = 0.0
        for outcome in Outcome:
            total += (
                self.metrics.registry.get_sample_value(
                    "practice_bot_replies_total", {"channel": "whatsapp", "outcome": outcome}
                )
                or 0.0
            )
        return total


@contextmanager
def _store() -> Iterator[SQLiteStore]:
    with tempfile.TemporaryDirectory() as directory:
        yield SQLiteStore(str(Path(directory) / "jobs.sqlite3"))


WHILE_WAITING = ("crash_waiting", "status_waiting")
_answers = st.sampled_from([*ANSWERS, *WHILE_WAITING])
_operations = st.lists(
    st.one_of(
        st.just("work"),
        st.just("status"),
        st.sampled_from([1.0, 30.0, LEASE + 1, SETTLE_WINDOW + 1, 700.0]),
    ),
    max_size=14,
)


@dataclass(frozen=True)
class Ending:
    """How a job's life ended."""

    state: str
    outcome: str | None
    delivered: int
    ended: float


async def _run(script: list[str], operations: list[str | float]) -> Ending:
    with _store() as store:
        await store.open()
        try:
            world = World(store, Meta(store, list(script)), Metrics())
            await world.ingest()
            for operation in operations:
                if operation == "work":
                    await world.work()
                elif operation == "status":
                    await world.status()
                else:
                    assert isinstance(operation, float)
                    world.now += operation
                _check(world)
            # Then the weather clears: answers are "ok", statuses come, time moves on.
            for _ in range(12):
                if world.row()[0] == JobState.DONE:
                    break
                world.now += SETTLE_WINDOW + LEASE
                await world.status()
                await world.work()
                _check(world)
            state, outcome = world.row()
            return Ending(state, outcome, world.meta.delivered, world.ended())
        finally:
            await store.close()


def _check(world: World) -> None:
    meta = world.meta
    assert meta.violations == []
    assert meta.reached <= 2, "a job reached Meta more than twice"
    assert meta.reached <= 1 + world.resends(), "a second send without a counted resend"
    assert world.ended() <= 1, "a job ended twice"


@settings(
    max_examples=1000,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(script=st.lists(_answers, max_size=8), operations=_operations)
def test_job_invariants_hold_under_random_crashes_answers_and_statuses(
    script: list[str], operations: list[str | float]
) -> None:
    """Two sends at most and only with a counted resend; never sent settled; ends once."""
    ending = asyncio.run(_run(script, operations))
    assert ending.state == JobState.DONE, "every job ends once the weather clears"
    assert ending.ended == 1
    if ending.outcome == Outcome.REPLIED:
        assert ending.delivered >= 1, "replied without a delivered request"
