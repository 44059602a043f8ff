"""Crash safety with a real subprocess: SIGKILL loses nothing, SIGTERM stops cleanly."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time
from collections import Counter
from pathlib import Path

import aiohttp
import pytest

from tests.helpers.fake_graph import FakeGraph
from tests.helpers.process import BotProcess, whatsapp_text

pytestmark = pytest.mark.slow


async def test_serve_sigterm_exits_zero_within_ten_seconds(
    tmp_path: Path, graph: FakeGraph
) -> None:
    """SIGTERM stops the service with exit code 0 well inside Docker's 10 s grace."""
    bot = BotProcess(tmp_path, graph.url)
    try:
        await bot.start()
        started = time.monotonic()
        bot.signal(signal.SIGTERM)
        assert await bot.wait(10) == 0
        assert time.monotonic() - started < 10
    finally:
        await bot.stop()


async def test_serve_kill9_after_acknowledgements_replies_exactly_once(
    tmp_path: Path, graph: FakeGraph
) -> None:
    """100 patients acknowledged, the process SIGKILLed, restarted: exactly 100 replies."""
    # A slow pace keeps most jobs unsent when the kill comes; the restart sends at full speed.
    bot = BotProcess(tmp_path, graph.url, WHATSAPP_SENDS_PER_SECOND="0.2")
    senders = [f"4477009{i:05d}" for i in range(100)]
    try:
        await bot.start()
        now = time.time()
        async with aiohttp.ClientSession() as session:
            statuses = await asyncio.gather(
                *(
                    bot.post(session, whatsapp_text(s, f"wamid.KILL{i}", now))
                    for i, s in enumerate(senders)
                )
            )
        assert set(statuses) == {200}
        # The first job went out at once; let it end so no send is in flight at the kill.
        await graph.wait_for_requests(1)
        await asyncio.sleep(0.5)
        bot.signal(signal.SIGKILL)
        await bot.wait(5)
        sent_before = len(graph.requests)
        assert sent_before < 100
        await bot.start(WHATSAPP_SENDS_PER_SECOND="80")
        await graph.wait_for_requests(100, within=30)
        await asyncio.sleep(0.5)  # anything doubled would arrive now
    finally:
        await bot.stop()
    recipients = Counter(request.json["to"] for request in graph.requests)
    assert set(recipients) == set(senders)
    assert max(recipients.values()) == 1
    db = sqlite3.connect(tmp_path / "practice-bot.sqlite3")
    try:
        outcomes = Counter(row[0] for row in db.execute("SELECT outcome FROM contact_log"))
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        db.close()
    assert outcomes == {"replied": 100}
