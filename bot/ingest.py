"""Who gets a reply: the policy of SPEC §4, decided at ingest in one transaction.

``prepare`` is pure: it drops events for channels that are off or for another account, and
turns the rest into pseudonymous work items (keyed hashes, sealed recipient, a fresh job tag).
``apply`` runs those items against one store transaction. For a patient event the rules are
checked in the order of ``RULES``; the first that holds decides, and only an event that passes
them all claims the cooldown row and gets a reply job.
"""

from __future__ import annotations

import asyncio
import enum
import random
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace

from bot.errors import ErrorClass, StoreConflict, StoreUnavailable
from bot.events import (
    Channel,
    ContactKind,
    Echo,
    Event,
    EventKind,
    Link,
    Outcome,
    Skipped,
    StatusUpdate,
    event_kind,
    is_test_sender,
)
from bot.job import NewJob
from bot.pseudonym import Keyring
from bot.store import CONFLICT_RETRIES, IngestTx, Store, conflict_pause

__all__ = [
    "RULES",
    "Decision",
    "GroupCommit",
    "IngestPolicy",
    "PracticeRules",
    "Prepared",
    "PreparedEcho",
    "PreparedLink",
    "PreparedPatient",
    "PreparedStatus",
    "PreparedWebhook",
    "apply",
    "prepare",
]

UNKNOWN_ACCOUNT = "unknown_account"  # metrics kind of an event no practice of a group claims

# An Instagram echo carries no tag: one to a recipient the bot sent to this recently is ours.
INSTAGRAM_ECHO_WINDOW = 120.0


class Decision(enum.StrEnum):
    """What ingest decided for one event (metrics label ``decision``)."""

    REPLY = "reply"
    DUPLICATE = "duplicate"
    STALE = "stale"
    STAFF_ACTIVE = "staff_active"
    COOLDOWN = "cooldown"
    STAFF_ECHO = "staff_echo"
    OWN_ECHO = "own_echo"
    STATUS = "status"
    SKIPPED = "skipped"
    OFF = "off"  # channel off, or an event for another number / page / account


@dataclass(frozen=True, slots=True, kw_only=True)
class PracticeRules:
    """One practice's numbers for the rules, from its settings (all in seconds)."""

    practice: str  # its slug; "" when the deployment serves one practice
    cooldown: float
    staff_quiet: float
    max_age: float


@dataclass(frozen=True, slots=True, kw_only=True)
class IngestPolicy:
    """Where each event belongs, and the rules it meets there.

    ``routes`` maps a channel and the practice's own number, page or account id (the id an
    event was sent to) to that practice's rules; only channels that are on have routes. In
    a group (``group``), an event for an id no practice claims is an ``unknown_account``.
    """

    routes: Mapping[tuple[Channel, str], PracticeRules]
    app_id: str | None
    group: bool = False


# Two pseudonyms of one person; the first one's history wins when both have some.
Pseudonyms = tuple[str, str]


@dataclass(frozen=True, slots=True, kw_only=True)
class PreparedPatient:
    """A patient event ready for the rules: hashes only, recipient sealed.

    ``contact`` is the sender's pseudonym; ``apply`` replaces it with the person's (the
    pseudonym their linked ids share) before the rules run.
    """

    channel: Channel
    rules: PracticeRules
    contact: str
    link: Pseudonyms | None = None
    contact_kind: ContactKind
    dedupe_key: str
    timestamp: float
    kind: EventKind
    tag: str = field(repr=False)
    recipient: bytes = field(repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class PreparedEcho:
    """A message the business sent, to tell the bot's own replies from staff's."""

    channel: Channel
    rules: PracticeRules
    contact: str
    link: Pseudonyms | None = None
    timestamp: float
    from_bot_app: bool
    tag: str | None = field(repr=False)
    message_key: str | None
    smb: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class PreparedStatus:
    """A WhatsApp status naming one of our jobs (it reached the patient, or it failed),
    or naming the recipient's phone number and BSUID together."""

    channel: Channel
    tag: str | None = field(repr=False)
    failed: bool = False
    link: Pseudonyms | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PreparedLink:
    """An event that earns no reply but says two pseudonyms are one person."""

    channel: Channel
    link: Pseudonyms


Prepared = PreparedPatient | PreparedEcho | PreparedStatus | PreparedLink


_TAG = re.compile(r"pb-[0-9a-f]{24}")


def new_tag() -> str:
    """An opaque job tag sent with the reply and echoed back by Meta.

    Twelve hex digits of the time in milliseconds, then twelve random ones: tags sort by
    creation, so the store's unique index on them grows at one end (one page per batch of
    jobs, not one page per job) and two tags in the same millisecond still differ. A tag
    guards nothing (a status that names it must be signed by Meta), it only has to be
    unique, so its random part comes from ``random``, without a system call per job.
    """
    noise = random.getrandbits(48)  # uniqueness, not secrecy
    return f"pb-{time.time_ns() // 1_000_000:012x}{noise:012x}"


def our_tag(tag: str | None) -> str | None:
    """``tag`` if it has the shape of one of ours; anything else can't settle a job."""
    return tag if tag is not None and _TAG.fullmatch(tag) else None


@dataclass(slots=True)
class PreparedWebhook:
    """A webhook's events, sorted: work for the store, and what was decided without it.

    ``kinds`` names each item of ``work`` as metrics and logs do (``bot.events.event_kind``),
    with the slug of the practice it belongs to ("" when none does, or with one practice).
    """

    work: list[Prepared] = field(default_factory=list)
    kinds: list[tuple[str, str]] = field(default_factory=list)
    decided: list[tuple[str, str, Decision]] = field(default_factory=list)
    # Failed statuses for a practice's account whose error only a person can fix: the
    # practice and the code of each.
    alerts: list[tuple[str, int | None]] = field(default_factory=list)

    def add(self, event: Event, item: Prepared, practice: str) -> None:
        """Queue ``item``, made from ``event`` for ``practice``, for the store."""
        self.work.append(item)
        self.kinds.append((practice, event_kind(event)))

    def decide(self, event: Event, decision: Decision, practice: str) -> None:
        """Record ``event`` as decided without the store."""
        self.decided.append((practice, event_kind(event), decision))


def _pseudonyms(
    keyring: Keyring, channel: Channel, link: Link | None, practice: str
) -> Pseudonyms | None:
    """The pseudonyms of a link's two ids, in its order."""
    if link is None:
        return None
    first = keyring.contact(channel, link.first_id, link.first_kind, practice)
    return first, keyring.contact(channel, link.second_id, link.second_kind, practice)


def prepare(events: Iterable[Event], policy: IngestPolicy, keyring: Keyring) -> PreparedWebhook:
    """Sort events into store work and events decided without the store."""
    prepared = PreparedWebhook()
    for event in events:
        rules = (
            policy.routes.get((event.channel, event.account_id))
            if event.account_id is not None
            else None
        )
        scope = rules.practice if rules is not None else ""
        if isinstance(event, StatusUpdate):
            if rules is not None and event.error_class is ErrorClass.ALERT:
                prepared.alerts.append((scope, event.error_code))
            tag = our_tag(event.tag)
            if rules is not None and (tag or event.link):
                status = PreparedStatus(
                    channel=event.channel,
                    tag=tag,
                    failed=event.failed,
                    link=_pseudonyms(keyring, event.channel, event.link, scope),
                )
                prepared.add(event, status, scope)
            else:
                prepared.decide(event, Decision.STATUS, scope)
            continue
        if isinstance(event, Skipped):
            link = _pseudonyms(keyring, event.channel, event.link, scope) if rules else None
            if link is not None:
                prepared.add(event, PreparedLink(channel=event.channel, link=link), scope)
            else:
                prepared.decide(event, Decision.SKIPPED, scope)
            continue
        if rules is None:
            if policy.group:
                # Sent to a number, page or account no practice of the group claims.
                prepared.decided.append(("", UNKNOWN_ACCOUNT, Decision.SKIPPED))
            else:
                prepared.decide(event, Decision.OFF, scope)
            continue
        contact = keyring.contact(event.channel, event.contact_id, event.contact_kind, scope)
        link = _pseudonyms(keyring, event.channel, event.link, scope)
        if isinstance(event, Echo):
            prepared.add(
                event,
                PreparedEcho(
                    channel=event.channel,
                    rules=rules,
                    contact=contact,
                    link=link,
                    timestamp=event.timestamp,
                    from_bot_app=bool(policy.app_id) and event.app_id == policy.app_id,
                    tag=our_tag(event.tag),
                    message_key=(
                        keyring.message(event.channel, event.message_id)
                        if event.message_id
                        else None
                    ),
                    smb=event.smb,
                ),
                scope,
            )
            continue
        dedupe_key = (
            keyring.message(event.channel, event.message_id)
            if event.message_id
            else keyring.event(event.channel, contact, event.kind.value, event.timestamp)
        )
        tag = new_tag()
        prepared.add(
            event,
            PreparedPatient(
                channel=event.channel,
                rules=rules,
                contact=contact,
                link=link,
                contact_kind=event.contact_kind,
                dedupe_key=dedupe_key,
                timestamp=event.timestamp,
                kind=EventKind.TEST if is_test_sender(event.contact_id) else event.kind,
                tag=tag,
                recipient=keyring.seal(event.contact_id, tag),
            ),
            scope,
        )
    return prepared


@dataclass(frozen=True, slots=True)
class _Context:
    tx: IngestTx
    now: float


Rule = Callable[[_Context, PreparedPatient], Awaitable[bool]]


async def _seen_before(ctx: _Context, item: PreparedPatient) -> bool:
    return not await ctx.tx.mark_seen(item.dedupe_key, ctx.now)


async def _too_old(ctx: _Context, item: PreparedPatient) -> bool:
    return ctx.now - item.timestamp > item.rules.max_age


async def _staff_answered(ctx: _Context, item: PreparedPatient) -> bool:
    return await ctx.tx.staff_quiet(item.channel, item.contact, ctx.now)


async def _cooling_down(ctx: _Context, item: PreparedPatient) -> bool:
    free_before = ctx.now - item.rules.cooldown
    claimed = await ctx.tx.claim_cooldown(
        item.channel, item.contact, ctx.now, free_before, item.tag
    )
    return not claimed


# SPEC §4, in order: the first rule that holds decides; an event passing all gets a reply.
# A duplicate leaves no record at all; every other decision writes one contact-log row.
RULES: tuple[tuple[Decision, Outcome | None, Rule], ...] = (
    (Decision.DUPLICATE, None, _seen_before),
    (Decision.STALE, Outcome.STALE, _too_old),
    (Decision.STAFF_ACTIVE, Outcome.STAFF_ACTIVE, _staff_answered),
    (Decision.COOLDOWN, Outcome.COOLDOWN, _cooling_down),
)


async def _person(ctx: _Context, channel: Channel, contact: str, link: Pseudonyms | None) -> str:
    """The pseudonym a person's cooldown, staff-quiet rows and records are kept under.

    Linking first means an event that names both of a person's ids joins their histories
    before any rule reads them.
    """
    if link is not None:
        return await ctx.tx.link(channel, link[0], link[1], ctx.now)
    if channel.links_ids:
        return await ctx.tx.person(channel, contact, ctx.now)
    return contact


async def _patient(ctx: _Context, item: PreparedPatient) -> Decision:
    person = await _person(ctx, item.channel, item.contact, item.link)
    if person != item.contact:
        item = replace(item, contact=person)
    practice = item.rules.practice
    for decision, outcome, rule in RULES:
        if await rule(ctx, item):
            if outcome is not None:
                await ctx.tx.add_contact(
                    ctx.now, item.channel, item.contact, item.kind, outcome, practice=practice
                )
            return decision
    log_id = await ctx.tx.add_contact(
        ctx.now, item.channel, item.contact, item.kind, Outcome.PENDING, practice=practice
    )
    job = NewJob(
        tag=item.tag,
        channel=item.channel,
        contact=item.contact,
        contact_kind=item.contact_kind,
        recipient=item.recipient,
        received_at=item.timestamp,
        created_at=ctx.now,
        practice=practice,
    )
    await ctx.tx.add_job(job, log_id)
    return Decision.REPLY


async def _is_bot_echo(ctx: _Context, item: PreparedEcho) -> bool:
    if item.smb:
        return False  # the WhatsApp Business app on a phone: always a person
    if item.tag is not None and await ctx.tx.settle_tag(item.tag, ctx.now):
        return True
    if item.from_bot_app:
        return True
    if item.message_key is not None and await ctx.tx.is_sent_message(item.message_key):
        return True
    if item.channel is Channel.INSTAGRAM:
        since = min(ctx.now, item.timestamp) - INSTAGRAM_ECHO_WINDOW
        return await ctx.tx.settle_recent_send(item.channel, item.contact, since, ctx.now)
    return False


async def _echo(ctx: _Context, item: PreparedEcho) -> Decision:
    if await _is_bot_echo(ctx, item):
        return Decision.OWN_ECHO
    person = await _person(ctx, item.channel, item.contact, item.link)
    if item.rules.staff_quiet > 0:
        quiet_until = item.timestamp + item.rules.staff_quiet
        await ctx.tx.mark_staff(item.channel, person, quiet_until)
    return Decision.STAFF_ECHO


async def apply(tx: IngestTx, items: Iterable[Prepared], now: float) -> list[Decision]:
    """Run every prepared item in one transaction; returns each item's decision, in order."""
    ctx = _Context(tx, now)
    decisions: list[Decision] = []
    for item in items:
        if isinstance(item, PreparedPatient):
            decisions.append(await _patient(ctx, item))
        elif isinstance(item, PreparedEcho):
            decisions.append(await _echo(ctx, item))
        elif isinstance(item, PreparedStatus):
            if item.link is not None:
                await tx.link(item.channel, item.link[0], item.link[1], now)
            if item.tag is not None:
                settle = tx.fail_tag if item.failed else tx.settle_tag
                await settle(item.tag, now)
            decisions.append(Decision.STATUS)
        else:
            await tx.link(item.channel, item.link[0], item.link[1], now)
            decisions.append(Decision.SKIPPED)
    return decisions


Decided = list[Decision]


class GroupCommit:
    """Records webhooks that arrive together in one transaction: one fsync for many.

    Each caller still waits for the commit that holds its own events, so "persist, then
    acknowledge" holds; only the cost of the commit is shared. If a batch fails for a reason
    other than the store, its webhooks are retried one by one so one bad item cannot fail
    the others.
    """

    def __init__(
        self,
        store: Store,
        clock: Callable[[], float],
        *,
        max_batch: int = 256,
    ) -> None:
        self._store = store
        self._clock = clock
        self._max_batch = max_batch
        self._waiting: list[tuple[list[Prepared], asyncio.Future[Decided]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def record(self, work: list[Prepared]) -> Decided:
        """Apply ``work`` in a shared transaction; returns once it is committed.

        Raises:
            StoreUnavailable: the store could not record (the webhook answers 503).
        """
        future: asyncio.Future[Decided] = asyncio.get_running_loop().create_future()
        self._waiting.append((work, future))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush(), name="group-commit")
        return await future

    async def _flush(self) -> None:
        try:
            while self._waiting:
                # A few turns of the loop let webhooks already arriving join this batch: one
                # turn reads their bytes, the next runs their handlers up to ``record``.
                for _ in range(3):
                    await asyncio.sleep(0)
                batch = self._waiting[: self._max_batch]
                del self._waiting[: self._max_batch]
                await self._commit(batch)
        finally:
            self._flusher = None

    async def _commit(self, batch: list[tuple[list[Prepared], asyncio.Future[Decided]]]) -> None:
        results: list[Decided] = []
        for attempt in range(CONFLICT_RETRIES + 1):
            now = self._clock()
            try:
                async with self._store.transaction() as tx:
                    results = [await apply(tx, work, now) for work, _ in batch]
                break
            except StoreConflict:
                if attempt == CONFLICT_RETRIES:
                    _fail(batch, StoreUnavailable("store conflict persisted"))
                    return
                await conflict_pause(attempt)
            except StoreUnavailable as error:
                _fail(batch, StoreUnavailable(str(error)))
                return
            except Exception as error:  # noqa: BLE001 - isolate the item that broke, see below
                if len(batch) == 1:
                    _fail(batch, error)
                    return
                for item in batch:
                    await self._commit([item])
                return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)


def _fail(batch: list[tuple[list[Prepared], asyncio.Future[Decided]]], error: Exception) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(error)
