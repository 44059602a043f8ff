"""A Meta outage: jobs stay queued (none dropped, none failed) and drain at Meta's pace after."""

from __future__ import annotations

import asyncio
from collections import Counter

from bot.settings import Settings
from bot.store.sqlite import SQLiteStore
from tests.helpers.fake_graph import Action, FakeGraph, RecordedRequest
from tests.helpers.process import whatsapp_text
from tests.helpers.service import FIXTURE_TIME, Clock, running_service


async def test_outage_backlog_stays_pending_then_drains_once_each_at_pace(
    settings: Settings, graph: FakeGraph
) -> None:
    """200 patients during a 503 outage all get exactly one reply after it, paced at 80/s."""
    outage = True

    def decide(_: RecordedRequest) -> Action | None:
        return Action.error(503) if outage else None

    graph.decide = decide
    clock = Clock()
    senders = [f"4477009{i:05d}" for i in range(200)]
    async with running_service(settings, clock) as service:
        statuses = await asyncio.gather(
            *(
                service.post(whatsapp_text(s, f"wamid.OUT{i}", FIXTURE_TIME))
                for i, s in enumerate(senders)
            )
        )
        assert {response.status for response in statuses} == {200}
        await service.drain(30)
        store = service.store
        assert isinstance(store, SQLiteStore)
        states = Counter(
            row[0] for row in store.db.execute("SELECT state FROM reply_jobs").fetchall()
        )
        assert states == {"pending": 200}
        failed_during = len(graph.requests)
        outage = False
        clock.advance(601)
        await service.drain(30)
        delivered = graph.requests[failed_during:]
        outcomes = Counter(
            row[0] for row in store.db.execute("SELECT outcome FROM contact_log").fetchall()
        )
    assert outcomes == {"replied": 200}
    recipients = Counter(r.json["to"] for r in delivered)
    assert set(recipients) == set(senders)
    assert max(recipients.values()) == 1
    # 200 sends at 80/s with one second of burst take at least (200 - 80) / 80 s.
    assert delivered[-1].at - delivered[0].at >= (200 - 80) / 80 * 0.9
