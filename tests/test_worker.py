"""The worker's scheduling: which queues it asks the store about, and when."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from bot.events import Channel
from bot.job import Job, Queue
from bot.store.sqlite import SQLiteStore
from bot.worker import WorkerConfig
from tests.helpers.fake_graph import FakeGraph
from tests.helpers.process import whatsapp_text
from tests.helpers.service import FIXTURE_TIME, make_settings, running_service


class ClaimCountingStore(SQLiteStore):
    """The real SQLite store, counting claims per channel."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.claims: Counter[Channel | None] = Counter()

    async def claim(
        self, owner: str, now: float, limit: int, lease: float, queue: Queue | None = None
    ) -> list[Job]:
        self.claims[queue.channel if queue is not None else None] += 1
        return await super().claim(owner, now, limit, lease, queue)


async def test_worker_waiting_for_tokens_leaves_idle_channels_alone(
    tmp_path: Path, graph: FakeGraph
) -> None:
    """While WhatsApp replies wait for send tokens, Messenger and Instagram are not queried."""
    settings = make_settings(tmp_path, graph.url, whatsapp_sends_per_second=10)
    store = ClaimCountingStore(str(tmp_path / "data" / "practice-bot.sqlite3"))
    quiet = WorkerConfig(poll_interval=60.0)  # no poll during the test: only wake-ups count
    async with running_service(settings, store=store, worker=quiet) as service:
        for i in range(25):  # 10 go at once, 15 wait for tokens
            body = whatsapp_text(f"4477009{i:05d}", f"wamid.TOKEN{i}", FIXTURE_TIME)
            assert (await service.post(body)).status == 200
        await graph.wait_for_requests(25, within=10.0)
    assert store.claims[Channel.MESSENGER] <= 1  # the first round at start-up only
    assert store.claims[Channel.INSTAGRAM] <= 1


async def test_worker_backlog_is_claimed_in_batches(tmp_path: Path, graph: FakeGraph) -> None:
    """Jobs waiting for send tokens are claimed several per query, not one query per token."""
    settings = make_settings(tmp_path, graph.url, whatsapp_sends_per_second=20)
    store = ClaimCountingStore(str(tmp_path / "data" / "practice-bot.sqlite3"))
    quiet = WorkerConfig(poll_interval=60.0)
    async with running_service(settings, store=store, worker=quiet) as service:
        for i in range(60):  # the bucket holds 20: the other 40 wait for tokens, 2 s at 20/s
            body = whatsapp_text(f"4477009{i:05d}", f"wamid.BATCH{i}", FIXTURE_TIME)
            assert (await service.post(body)).status == 200
        before = store.claims[Channel.WHATSAPP]
        waiting = 60 - len(graph.requests)
        requests = await graph.wait_for_requests(60, within=10.0)
    assert len({r.json["to"] for r in requests if isinstance(r.json, dict)}) == 60
    assert waiting >= 30
    assert store.claims[Channel.WHATSAPP] - before <= waiting // 4  # not one query per token


async def test_worker_lone_job_is_claimed_at_once(tmp_path: Path, graph: FakeGraph) -> None:
    """Without a backlog a new job is claimed and sent straight away, not held for a batch."""
    settings = make_settings(tmp_path, graph.url, whatsapp_sends_per_second=1)
    quiet = WorkerConfig(poll_interval=60.0)
    async with running_service(settings, worker=quiet) as service:
        body = whatsapp_text("447700900001", "wamid.LONE", FIXTURE_TIME)
        assert (await service.post(body)).status == 200
        await graph.wait_for_requests(1, within=0.5)


async def test_worker_slow_pace_backlog_keeps_sending(tmp_path: Path, graph: FakeGraph) -> None:
    """At a pace below a claim batch (4/s), a backlog is still sent, a bucketful at a time."""
    settings = make_settings(tmp_path, graph.url, whatsapp_sends_per_second=4)
    quiet = WorkerConfig(poll_interval=60.0)
    async with running_service(settings, worker=quiet) as service:
        for i in range(12):  # 4 at once, then the backlog at 4 a second
            body = whatsapp_text(f"4477009{i:05d}", f"wamid.SLOW{i}", FIXTURE_TIME)
            assert (await service.post(body)).status == 200
        requests = await graph.wait_for_requests(12, within=6.0)
    assert len({r.json["to"] for r in requests if isinstance(r.json, dict)}) == 12
