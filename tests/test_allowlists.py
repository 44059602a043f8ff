"""Reviewed allow-lists: what the store may hold and what a log line may say.

Each list below is a privacy review written down. A new column, table or log key fails these
tests until someone adds it here, with the reason it holds no content and no raw identifier
(and the matching line in docs/privacy.md).
"""

from __future__ import annotations

import asyncio
import importlib
import io
import json
import socket
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import structlog

from adapters import REGISTRY, MetaPlatform
from adapters._meta.graph import GraphTransport
from bot.adapter import Outbound, SendConfig
from bot.errors import DeliveryError
from bot.events import (
    Channel,
    ContactKind,
    Echo,
    Event,
    EventKind,
    PatientEvent,
    Skipped,
    StatusUpdate,
)
from bot.ingest import PracticeRules, PreparedEcho, PreparedPatient, PreparedStatus
from bot.job import Job, JobState, NewJob
from bot.logging import ALLOWED_KEYS, dropped_keys
from bot.pseudonym import Keyring
from bot.retry import RetryPolicy
from bot.settings import Settings
from bot.store import open_store
from bot.store.sqlite import SQLiteStore
from tests.helpers.fake_graph import Action, FakeGraph
from tests.helpers.fixtures import all_fixtures, fixture_bytes
from tests.helpers.logs import captured_logs
from tests.helpers.service import (
    PSEUDONYM_KEY,
    VERIFY_TOKEN,
    Clock,
    Service,
    make_settings,
    running_service,
    with_parser,
)
from tests.helpers.stores import postgres_schema

CANARY = "CANARY-allowlist-7f1c"

# -- the store ----------------------------------------------------------------------------

# Every table and column either backend may create, and what it holds. Nothing here is
# content; the only raw identifier is reply_jobs.recipient, sealed and erased when the job ends.
REVIEWED_SCHEMA: dict[str, dict[str, str]] = {
    "schema_info": {
        "key": "fixed word ('version', 'deletions_counted_since')",
        "value": "schema version number, or the UTC day deletions began to be counted",
    },
    "seen_messages": {
        "key": "keyed hash of a message id (or of channel, sender, kind, time): dedupe, 8 days",
        "seen_at": "when it was first seen (Unix time)",
    },
    "cooldowns": {
        "channel": "whatsapp / messenger / instagram",
        "contact": "pseudonym",
        "claimed_at": "time of the last claimed reply",
        "job_tag": "random tag of the pending reply job, NULL once it ended",
    },
    "staff_activity": {
        "channel": "whatsapp / messenger / instagram",
        "contact": "pseudonym",
        "quiet_until": "end of the quiet period after a staff reply",
    },
    "contact_log": {
        "id": "row number",
        "time": "when the event was recorded (UTC)",
        "channel": "whatsapp / messenger / instagram",
        "pseudonym": "keyed hash of the sender id",
        "kind": "message / welcome / postback",
        "outcome": "pending / replied / dry_run / cooldown / stale / staff_active / failed / ...",
        "template": "file name of the text sent (e.g. closed.instagram.txt); NULL when none was",
        "practice": "slug of the practice in a group deployment ('' for a single practice)",
    },
    "reply_jobs": {
        "id": "row number",
        "tag": "random job tag sent with the reply and echoed back by Meta",
        "channel": "whatsapp / messenger / instagram",
        "contact": "pseudonym",
        "contact_kind": "phone / bsuid / scoped: how to address the recipient",
        "recipient": "AES-GCM-sealed raw recipient id while pending; NULL once the job ends",
        "contact_log_id": "the contact_log row this job answers",
        "received_at": "the inbound message's own timestamp (for the 24 h window)",
        "created_at": "when the job was queued",
        "due_at": "when it is next due",
        "state": "pending / sending / ambiguous / done",
        "attempts": "how many times a worker claimed it",
        "lease_owner": "random id of the worker holding it",
        "lease_until": "when that lease expires",
        "send_started_at": "when the last send began",
        "settled": "a status or echo confirmed an ambiguous send",
        "resent": "the one ambiguous resend happened",
        "delivery_failed": "a failed status said the reply never reached the patient",
        "outcome": "how the job ended",
        "finished_at": "when it ended (kept 8 days)",
        "practice": "slug of the practice whose reply it is ('' for a single practice)",
    },
    "sent_messages": {
        "key": "keyed hash of a message id the bot's own send returned (8 days)",
        "sent_at": "when it was sent",
    },
    "contact_links": {
        "channel": "whatsapp",
        "pseudonym": "pseudonym of one of a person's ids (phone number or BSUID)",
        "person": "the pseudonym that person's records and periods are kept under",
        "linked_at": "when the link was last named by an event (kept for the retention period)",
    },
    "good_texts": {
        "practice": "the practice's slug ('' with one practice)",
        "saved_at": "when this set of texts first validated",
        "texts": "the manager's reply texts, file name and text: no patient's words",
    },
    "deletion_counts": {
        "practice": "the practice's slug ('' with one practice)",
        "reason": "erasure / retention: why contact records were deleted",
        "day": "the UTC day they were deleted (YYYY-MM-DD)",
        "runs": "how many erasure requests, or retention runs that deleted something",
        "records": "how many contact records they deleted: a number, never whose",
    },
}


def _reviewed() -> dict[str, set[str]]:
    return {table: set(columns) for table, columns in REVIEWED_SCHEMA.items()}


async def test_allowlist_sqlite_schema_is_the_reviewed_one(tmp_path: Path) -> None:
    """Every SQLite table and column is in the reviewed list, and there are no others."""
    store = SQLiteStore(str(tmp_path / "store.sqlite3"))
    await store.open()
    try:
        db = store.db
        objects = db.execute(
            "SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
        ).fetchall()
        tables = [name for kind, name in objects if kind == "table"]
        found = {
            table: {row[1] for row in db.execute(f"PRAGMA table_info({table})")} for table in tables
        }
    finally:
        await store.close()
    assert {kind for kind, _ in objects} == {"table", "index"}  # no views or triggers
    assert found == _reviewed()


async def test_allowlist_postgres_schema_is_the_reviewed_one() -> None:
    """Every PostgreSQL table and column is in the reviewed list, and there are no others."""
    try:
        importlib.import_module("bot.store.postgres")
    except ModuleNotFoundError:
        pytest.skip("bot.store.postgres does not exist yet")
    async with postgres_schema() as url:
        store = open_store(url)
        await store.open()
        try:
            conn = await asyncpg.connect(url)
            try:
                columns = await conn.fetch(
                    "SELECT table_name, column_name FROM information_schema.columns "
                    "WHERE table_schema = current_schema()"
                )
                kinds = await conn.fetch(
                    "SELECT DISTINCT table_type FROM information_schema.tables "
                    "WHERE table_schema = current_schema()"
                )
                triggers = await conn.fetchval(
                    "SELECT COUNT(*) FROM information_schema.triggers "
                    "WHERE trigger_schema = current_schema()"
                )
            finally:
                await conn.close()
        finally:
            await store.close()
    found: dict[str, set[str]] = {}
    for row in columns:
        found.setdefault(row["table_name"], set()).add(row["column_name"])
    assert [row["table_type"] for row in kinds] == ["BASE TABLE"]
    assert triggers == 0
    assert found == _reviewed()


# -- log keys -----------------------------------------------------------------------------

# Every key a log line may carry: fixed words, numbers, channel names, pseudonymous job ids.
REVIEWED_LOG_KEYS = frozenset(
    {
        # structlog / stdlib bookkeeping
        "event",  # a fixed event name; stdlib records become "library_log"
        "level",
        "timestamp",
        "logger",  # the stdlib logger's name (aiohttp.server, asyncio, ...)
        "error_type",  # an exception's class name, never its message
        "frames",  # file:line:function of a traceback, never locals
        # request
        "request_id",
        "method",
        "route",  # the route pattern (/webhook), never the path or query string
        "status",
        "duration_ms",
        "channel",
        "events",
        "kinds",  # counts per event kind, from the adapters' fixed vocabulary
        "decisions",
        "outcome",
        "reason",  # a fixed word
        # worker and delivery
        "job",  # the job's row number
        "attempt",
        "error_class",
        "code",  # Meta's numeric error code
        "subcode",
        "http_status",
        "wait_s",
        "due_in_s",
        "claimed",
        "owner",  # random worker id
        "queue_depth",
        "template",
        # lifecycle, configuration and templates
        "host",
        "port",
        "store",
        "channels",
        "templates",
        "version",
        "file",  # a template file name
        "line",
        "col",
        "problems",
        "count",
        "contacts",
        "seen",
        "jobs",
        "other",
        "result",
        "signal",
        "dropped_keys",
        "files",
        "positions",
        # a group: the slugs of configured practices (folder names), never from a payload
        "practice",
        "practices",
        "added",
        "changed",
        "removed",
        "variables",  # names of settings that need a restart, never their values
        "saved_at",  # when the last good set of texts was kept
        "who",  # the manager's page: "admin" or a practice's slug, never a person's name
        "action",  # sign_in, sign_out, save, export
    }
)


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_allowlist_log_keys_are_the_reviewed_ones() -> None:
    """ALLOWED_KEYS in bot/logging.py is exactly the reviewed set."""
    assert set(ALLOWED_KEYS) == set(REVIEWED_LOG_KEYS)


def test_allowlist_unknown_log_key_is_dropped_and_counted() -> None:
    """A key nobody reviewed is removed from the line, counted, and the line says so."""
    with captured_logs() as stream:
        before = dropped_keys()
        structlog.get_logger("tests.allowlist").info(
            "probe", channel="whatsapp", body=CANARY, payload={"text": CANARY}
        )
        after = dropped_keys()
    [line] = _lines(stream)
    assert after == before + 2
    assert set(line) == {"event", "level", "timestamp", "channel", "dropped_keys"}
    assert (line["event"], line["channel"], line["dropped_keys"]) == ("probe", "whatsapp", 2)
    assert CANARY not in stream.getvalue()


# -- keys actually emitted end to end -------------------------------------------------------


@asynccontextmanager
async def _serving(
    settings: Settings,
    clock: Clock,
    *,
    run_worker: bool = True,
    platform: MetaPlatform = REGISTRY,
) -> AsyncIterator[Service]:
    """The real app with the access logger ``serve`` uses, on loopback."""
    async with running_service(
        settings, clock, run_worker=run_worker, platform=platform
    ) as service:
        yield service


async def _eventually(check: Callable[[], bool], *, tries: int = 200) -> None:
    for _ in range(tries):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")


async def _exercise(service: Service, graph: FakeGraph, templates: Path) -> None:
    """Everything the service logs about: requests, refusals, sends, failures, reloads."""
    client = service.client
    handshake = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "42"}
    assert (await client.get("/webhook", params=handshake)).status == 200
    assert (await client.get("/webhook", params={"hub.mode": "x"})).status == 403
    assert (await client.get("/nowhere")).status == 404
    assert (await client.post("/webhook", data=b"{}")).status == 401
    assert (await service.post(b"{}", secret="wrong")).status == 403
    assert (await service.post(b"not json")).status == 400
    assert (await service.post({"object": "user"})).status == 200
    graph.script(
        Action.error(503, 2),
        Action.ok(),
        Action.error(400, 131026),
        Action.error(401, 190),
        Action.error(429, 130429, retry_after=3600),
        Action.reset(),
    )
    for channel, case in all_fixtures():
        assert (await service.post(fixture_bytes(channel, case))).status == 200
    await service.drain()
    reply = templates / "reply.txt"
    original = reply.read_text(encoding="utf-8")
    reply.write_text(original + "\nSee you soon.\n", encoding="utf-8")
    await _eventually(lambda: _reloads(service, "ok") == 1)
    reply.write_text("{not_a_placeholder}\n", encoding="utf-8")
    await _eventually(lambda: _reloads(service, "failed") == 1)
    reply.write_text(original, encoding="utf-8")
    await _eventually(lambda: _reloads(service, "ok") == 2)
    for path in ("/metrics", "/healthz", "/readyz"):
        assert (await client.get(path)).status == 200
    service.clock.advance(3601)
    await service.drain()


def _reloads(service: Service, result: str) -> float:
    value = service.runtime.metrics.registry.get_sample_value(
        "practice_bot_template_reloads_total", {"result": result}
    )
    return value or 0.0


async def test_allowlist_end_to_end_run_logs_only_reviewed_keys(tmp_path: Path) -> None:
    """A run through every fixture, failure and refusal emits no key outside ALLOWED_KEYS."""
    clock = Clock()
    with captured_logs("debug") as stream:
        before = dropped_keys()
        async with FakeGraph() as graph:
            settings = make_settings(tmp_path, graph.url)
            async with _serving(settings, clock) as service:
                await _exercise(service, graph, settings.templates_dir)

            def explode(payload: Mapping[str, Any]) -> list[Event]:
                raise RuntimeError(CANARY)

            exploding = with_parser(Channel.INSTAGRAM, explode)
            async with _serving(settings, clock, platform=exploding) as service:
                assert (await service.post(fixture_bytes("instagram", "text"))).status == 200
                store = service.store
                assert isinstance(store, SQLiteStore)
                store.db.execute("PRAGMA query_only = ON")
                assert (await service.post(fixture_bytes("messenger", "text"))).status == 503
                store.db.execute("PRAGMA query_only = OFF")
            # A job queued under one PSEUDONYM_KEY cannot be opened under another.
            rotated = make_settings(tmp_path, graph.url, pseudonym_key=PSEUDONYM_KEY[::-1])
            async with _serving(settings, clock, run_worker=False) as service:
                body = fixture_bytes("whatsapp", "text").replace(b"900123", b"900999")
                assert (await service.post(body.replace(b"MDAwMDEA", b"OTk5OTkA"))).status == 200
            async with _serving(rotated, clock) as service:
                await service.drain()
        after = dropped_keys()
    lines = _lines(stream)
    events = {line["event"] for line in lines}
    assert {
        "webhook",
        "handshake",
        "http_access",
        "retention_purge",
        "reply_ended",
        "graph_retry",
        "send_failed",
        "send_alert",
        "send_deferred",
        "send_ambiguous",
        "reply_requeued",
        "ambiguous_resend",
        "adapter_parse_error",
        "templates_reloaded",
        "templates_reload_failed",
        "recipient_unreadable",
    } <= events
    assert CANARY not in stream.getvalue()
    emitted = {key for line in lines for key in line}
    assert emitted - ALLOWED_KEYS == set()
    assert [line for line in lines if "dropped_keys" in line] == []
    assert after == before


async def _no_sleep(_: float) -> None:
    return None


async def test_allowlist_graph_connect_retry_logs_only_reviewed_keys() -> None:
    """A Graph API that cannot be reached: the retry line carries only reviewed keys."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again below: connections are refused
    outbound = Outbound(
        url=f"http://127.0.0.1:{port}/v25.0/1/messages", token=CANARY, body={"to": CANARY}
    )
    with captured_logs() as stream:
        before = dropped_keys()
        async with GraphTransport.open() as transport:
            with pytest.raises(DeliveryError):
                await RetryPolicy(max_attempts=2).run(
                    lambda: transport.post(outbound), sleep=_no_sleep
                )
        after = dropped_keys()
    lines = _lines(stream)
    assert [line["event"] for line in lines] == ["graph_retry"]
    assert set(lines[0]) - ALLOWED_KEYS == set()
    assert "dropped_keys" not in lines[0]
    assert after == before
    assert CANARY not in stream.getvalue()


# -- neutral events and other objects that carry identifiers ----------------------------------


def _canary_events() -> list[Event]:
    common: dict[str, Any] = {"channel": Channel.WHATSAPP, "account_id": "109876543210987"}
    return [
        PatientEvent(
            **common,
            contact_id=CANARY,
            contact_kind=ContactKind.PHONE,
            message_id=CANARY,
            timestamp=1.0,
            kind=EventKind.MESSAGE,
        ),
        Echo(
            **common,
            contact_id=CANARY,
            contact_kind=ContactKind.BSUID,
            message_id=CANARY,
            timestamp=1.0,
            app_id="1",
            tag=CANARY,
            smb=True,
        ),
        StatusUpdate(**common, status="sent", tag=CANARY, timestamp=1.0),
        Skipped(channel=Channel.MESSENGER, kind="reaction", account_id="1"),
    ]


def test_allowlist_neutral_events_hide_identifiers_from_repr() -> None:
    """contact_id, message_id and tag are repr=False on every neutral event."""
    for event in _canary_events():
        assert is_dataclass(event)
        hidden = {f.name for f in fields(event) if not f.repr}
        assert {"contact_id", "message_id", "tag"} & {f.name for f in fields(event)} <= hidden
        assert CANARY not in repr(event)
        assert CANARY not in str(event)


def test_allowlist_queue_and_send_objects_hide_identifiers_from_repr() -> None:
    """Jobs, prepared items, requests and the keyring never show tags, ids, tokens or keys."""
    sealed = Keyring(PSEUDONYM_KEY).seal(CANARY, "pb-1")
    objects: list[object] = [
        NewJob(
            tag="pb-0001",  # a random job tag, not an identifier: shown
            channel=Channel.MESSENGER,
            contact="0" * 32,
            contact_kind=ContactKind.SCOPED,
            recipient=sealed,
            received_at=1.0,
            created_at=1.0,
        ),
        Job(
            id=1,
            tag=CANARY,
            channel=Channel.MESSENGER,
            contact=CANARY,
            contact_kind=ContactKind.SCOPED,
            recipient=CANARY.encode(),
            contact_log_id=1,
            received_at=1.0,
            state=JobState.PENDING,
            attempts=0,
            send_started_at=None,
            settled=False,
            resent=False,
        ),
        PreparedPatient(
            channel=Channel.MESSENGER,
            rules=PracticeRules(practice="leeds", cooldown=1.0, staff_quiet=1.0, max_age=1.0),
            contact="0" * 32,
            contact_kind=ContactKind.SCOPED,
            dedupe_key="1" * 32,
            timestamp=1.0,
            kind=EventKind.MESSAGE,
            tag=CANARY,
            recipient=CANARY.encode(),
        ),
        PreparedEcho(
            channel=Channel.MESSENGER,
            rules=PracticeRules(practice="leeds", cooldown=1.0, staff_quiet=1.0, max_age=1.0),
            contact="0" * 32,
            timestamp=1.0,
            from_bot_app=False,
            tag=CANARY,
            message_key=None,
            smb=False,
        ),
        PreparedStatus(channel=Channel.WHATSAPP, tag=CANARY),
        Outbound(url="https://graph.example/v25.0/1/messages", token=CANARY, body={"to": CANARY}),
        SendConfig(
            channel=Channel.WHATSAPP,
            account_id="1",
            token=CANARY,
            graph_api_url="https://graph.example",
            instagram_api_url="https://graph.example",
            api_version="v25.0",
        ),
        Keyring(CANARY + "-" * 32),
    ]
    for item in objects:
        assert CANARY not in repr(item), type(item).__name__
