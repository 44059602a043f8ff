"""Group commit: webhooks that arrive together share one transaction, failures stay isolated."""

from __future__ import annotations

import asyncio
import time
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest

from bot.errors import StoreUnavailable
from bot.events import Channel, ContactKind, PatientEvent
from bot.ingest import (
    Decision,
    GroupCommit,
    IngestPolicy,
    PracticeRules,
    Prepared,
    PreparedStatus,
    new_tag,
    our_tag,
    prepare,
)
from bot.pseudonym import Keyring
from bot.store.sql import SqlIngestTx
from bot.store.sqlite import SQLiteStore

NOW = 1767261660.0
RULES = PracticeRules(practice="", cooldown=24 * 3600, staff_quiet=24 * 3600, max_age=23 * 3600)
POLICY = IngestPolicy(routes={(Channel.WHATSAPP, "109876543210987"): RULES}, app_id=None)
KEYRING = Keyring("k" * 40)


class CountingStore(SQLiteStore):
    """The real SQLite store, counting the transactions it opens."""

    transactions = 0

    def transaction(self) -> AbstractAsyncContextManager[SqlIngestTx]:
        self.transactions += 1
        return super().transaction()


def _work(sender: str, message_id: str) -> list[Prepared]:
    event = PatientEvent(
        channel=Channel.WHATSAPP,
        account_id="109876543210987",
        contact_id=sender,
        contact_kind=ContactKind.PHONE,
        message_id=message_id,
        timestamp=NOW - 10,
    )
    return prepare([event], POLICY, KEYRING).work


@pytest.fixture
async def store(tmp_path: Path) -> CountingStore:
    """An opened counting store."""
    opened = CountingStore(str(tmp_path / "bot.sqlite3"))
    await opened.open()
    return opened


async def test_group_commit_concurrent_webhooks_share_a_transaction(store: CountingStore) -> None:
    """Twenty webhooks recorded at once take far fewer than twenty transactions."""
    group = GroupCommit(store, lambda: NOW)
    results = await asyncio.gather(
        *(group.record(_work(f"44770090{i:04d}", f"wamid.G{i}")) for i in range(20))
    )
    await store.close()
    assert [decision for result in results for decision in result] == [Decision.REPLY] * 20
    assert store.transactions <= 2


async def test_group_commit_bad_item_fails_alone(store: CountingStore) -> None:
    """An item that breaks its transaction fails alone; the others in its batch are recorded."""
    group = GroupCommit(store, lambda: NOW)
    # A tag the store cannot encode (a lone surrogate) bypasses prepare's shape check here.
    bad: list[Prepared] = [PreparedStatus(channel=Channel.WHATSAPP, tag="pb-\ud800")]
    results = await asyncio.gather(
        group.record(_work("447700900001", "wamid.OK1")),
        group.record(bad),
        group.record(_work("447700900002", "wamid.OK2")),
        return_exceptions=True,
    )
    rows = store.db.execute("SELECT COUNT(*) FROM contact_log").fetchone()[0]
    await store.close()
    assert isinstance(results[1], UnicodeEncodeError)
    assert rows == 2


async def test_group_commit_store_down_fails_every_caller(store: CountingStore) -> None:
    """When the store cannot write, every webhook in the batch gets StoreUnavailable."""
    group = GroupCommit(store, lambda: NOW)
    store.db.execute("PRAGMA query_only = ON")
    results = await asyncio.gather(
        *(group.record(_work(f"44770091{i:04d}", f"wamid.D{i}")) for i in range(3)),
        return_exceptions=True,
    )
    await store.close()
    assert all(isinstance(result, StoreUnavailable) for result in results)


def test_new_tag_has_our_shape() -> None:
    """A fresh job tag is recognised as ours when Meta echoes it back."""
    tag = new_tag()
    assert our_tag(tag) == tag


def test_new_tag_later_sorts_after_earlier() -> None:
    """Tags sort by creation time, so the store's tag index grows at one end."""
    first = new_tag()
    time.sleep(0.002)
    assert new_tag() > first
