"""The webhook path without a server (bot/webhook.py): bytes and a signature in, a result out.

The same checks run through real HTTP in tests/test_app.py; here each answer is read straight
from ``Webhooks.handle`` against the real adapters and a real SQLite store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters import REGISTRY
from bot.events import Channel
from bot.ingest import GroupCommit
from bot.job import Queue
from bot.metrics import Metrics
from bot.practices import Practices, ServedPractice
from bot.pseudonym import Keyring
from bot.store.sqlite import SQLiteStore
from bot.webhook import Webhooks
from tests.helpers.fixtures import fixture_bytes
from tests.helpers.service import APP_SECRET, FIXTURE_TIME, live_templates, make_settings
from tests.helpers.signing import sign


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    """An open SQLite store."""
    opened = SQLiteStore(str(tmp_path / "data" / "store.sqlite3"))
    await opened.open()
    yield opened
    await opened.close()


@pytest.fixture
def webhooks(tmp_path: Path, store: SQLiteStore) -> Webhooks:
    """The webhook path of the service, wired as ``create_app`` wires it."""
    settings = make_settings(tmp_path)
    practice = ServedPractice("", settings, live_templates(settings))
    return Webhooks(
        platform=REGISTRY,
        secrets=settings.app_secrets,
        policy=Practices([practice], app_id=settings.meta_app_id).policy,
        keyring=Keyring(settings.pseudonym_key.get_secret_value()),
        ingest=GroupCommit(store, lambda: FIXTURE_TIME + 60),
        metrics=Metrics(),
    )


async def test_handle_signed_message_is_recorded_with_a_reply_job(
    webhooks: Webhooks, store: SQLiteStore
) -> None:
    """A signed patient message: 200 once it is recorded, with a reply job queued."""
    body = fixture_bytes("whatsapp", "text")
    result = await webhooks.handle(body, sign(body, APP_SECRET))
    assert (result.status, result.channel, result.queues) == (
        200,
        Channel.WHATSAPP,
        frozenset({Queue("", Channel.WHATSAPP)}),
    )
    assert result.fields == {"events": 1, "kinds": "message:1", "decisions": "reply:1"}
    assert store.db.execute("SELECT state FROM reply_jobs").fetchall() == [("pending",)]


async def test_handle_redelivery_queues_nothing(webhooks: Webhooks) -> None:
    """The same message again is acknowledged as a duplicate, with no new reply."""
    body = fixture_bytes("messenger", "text")
    await webhooks.handle(body, sign(body, APP_SECRET))
    result = await webhooks.handle(body, sign(body, APP_SECRET))
    assert (result.status, result.queues, result.fields["decisions"]) == (
        200,
        frozenset(),
        "duplicate:1",
    )


@pytest.mark.parametrize(
    ("header", "status", "reason"),
    [
        (None, 401, "signature_missing"),
        ("sha256=abc", 401, "signature_malformed"),
        ("sha256=" + "0" * 64, 403, "signature_mismatch"),
    ],
)
async def test_handle_bad_signature_is_refused_unrecorded(
    webhooks: Webhooks, store: SQLiteStore, header: str | None, status: int, reason: str
) -> None:
    """No valid signature, no record: 401 for a missing or malformed one, 403 for a wrong one."""
    result = await webhooks.handle(fixture_bytes("whatsapp", "text"), header)
    assert (result.status, result.channel, result.fields) == (status, None, {"reason": reason})
    assert store.db.execute("SELECT COUNT(*) FROM contact_log").fetchone() == (0,)


async def test_handle_signed_body_that_is_not_an_object_is_400(webhooks: Webhooks) -> None:
    """A signed body that is not a JSON object is a bad request, named without its content."""
    result = await webhooks.handle(b"[1, 2]", sign(b"[1, 2]", APP_SECRET))
    assert (result.status, result.fields) == (400, {"reason": "not_object"})


async def test_handle_unknown_object_is_acknowledged_and_skipped(webhooks: Webhooks) -> None:
    """An ``object`` no adapter owns is acknowledged, so Meta does not redeliver it."""
    body = b'{"object": "user", "entry": []}'
    result = await webhooks.handle(body, sign(body, APP_SECRET))
    assert (result.status, result.channel_label, result.fields) == (
        200,
        "unknown",
        {"reason": "unknown_object"},
    )


async def test_handle_store_down_is_503(webhooks: Webhooks, store: SQLiteStore) -> None:
    """When the store cannot record, the answer is 503 and Meta redelivers."""
    store.db.execute("PRAGMA query_only = ON")
    body = fixture_bytes("instagram", "text")
    result = await webhooks.handle(body, sign(body, APP_SECRET))
    assert (result.status, result.fields) == (503, {"reason": "store_unavailable"})
