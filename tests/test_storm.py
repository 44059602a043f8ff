"""A duplicate storm: every message delivered 1-5 times, concurrently, out of order, to replicas."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from pathlib import Path

import asyncpg
import pytest

from tests.helpers.fake_graph import FakeGraph
from tests.helpers.process import whatsapp_text
from tests.helpers.service import FIXTURE_TIME, Clock, Service, make_settings, running_service
from tests.helpers.stores import postgres_schema

MESSAGES = 1000
PATIENTS = 400


async def _storm(replicas: list[Service], seed: int) -> None:
    rng = random.Random(seed)
    bodies = [
        whatsapp_text(f"44770091{i % PATIENTS:04d}", f"wamid.STORM{i}", FIXTURE_TIME)
        for i in range(MESSAGES)
    ]
    deliveries = [body for body in bodies for _ in range(rng.randint(1, 5))]
    rng.shuffle(deliveries)
    limit = asyncio.Semaphore(64)

    async def deliver(body: bytes) -> int:
        async with limit:
            response = await rng.choice(replicas).post(body)
            return response.status

    statuses = await asyncio.gather(*(deliver(body) for body in deliveries))
    assert set(statuses) == {200}
    for replica in replicas:
        await replica.drain(30)


@pytest.mark.postgres
async def test_storm_two_replicas_on_postgres_reply_once_per_patient(
    tmp_path: Path, graph: FakeGraph
) -> None:
    """1,000 messages from 400 patients, redelivered and spread over two replicas: 400 replies."""
    async with postgres_schema() as url:
        settings = make_settings(tmp_path, graph.url, database_url=url)
        clock = Clock()
        async with (
            running_service(settings, clock) as first,
            running_service(settings, clock) as second,
        ):
            await _storm([first, second], seed=7)
        conn = await asyncpg.connect(url)
        try:
            outcomes = Counter(
                row["outcome"] for row in await conn.fetch("SELECT outcome FROM contact_log")
            )
        finally:
            await conn.close()
    recipients = Counter(request.json["to"] for request in graph.requests)
    assert len(recipients) == PATIENTS
    assert max(recipients.values()) == 1
    assert outcomes == {"replied": PATIENTS, "cooldown": MESSAGES - PATIENTS}


async def test_storm_one_replica_on_sqlite_reply_once_per_patient(
    tmp_path: Path, graph: FakeGraph
) -> None:
    """The same storm on the embedded store: 400 replies, one record per distinct message."""
    settings = make_settings(tmp_path, graph.url)
    async with running_service(settings) as service:
        await _storm([service], seed=11)
    recipients = Counter(request.json["to"] for request in graph.requests)
    assert len(recipients) == PATIENTS
    assert max(recipients.values()) == 1
