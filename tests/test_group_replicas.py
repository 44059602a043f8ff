"""A dental group on PostgreSQL served by two replicas (SPEC §8, §9): every rule holds across
them, practice by practice.

Two app instances in one process share one PostgreSQL schema and serve two practices of the
shipped example group; the fake Graph API accepts each practice's token and no other.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from adapters import REGISTRY
from bot.events import Channel
from tests.helpers.fake_graph import FakeGraph
from tests.helpers.group import OPEN, WHATSAPP, group_files, served_group
from tests.helpers.service import Clock, Service, running_service
from tests.helpers.stores import postgres_schema

PRACTICES = ("leeds-riverside", "glasgow-west")
MESSAGES = 200  # per practice
PATIENTS = 80  # per practice: the same 80 numbers write to both practices
SENDER = "447700900123"


@dataclass(frozen=True, slots=True)
class Replicas:
    """Two replicas of one group deployment and the URL of the schema they share."""

    first: Service
    second: Service
    url: str


@asynccontextmanager
async def _replicas(tmp_path: Path, graph_url: str) -> AsyncIterator[Replicas]:
    """The example group stored in a fresh PostgreSQL schema, served by two replicas at once,
    on a Tuesday morning when every practice is open."""
    async with postgres_schema() as url:
        main = group_files(tmp_path, graph_url)
        lines = main.read_text().splitlines()
        main.write_text(
            "\n".join(f"DATABASE_URL={url}" if x.startswith("DATABASE_URL=") else x for x in lines)
            + "\n"
        )
        served = served_group(main)
        assert served[0].settings.database_url == url
        clock = Clock(OPEN)
        async with (
            running_service(served[0].settings, clock, group=served) as first,
            running_service(served[0].settings, clock, group=served) as second,
        ):
            yield Replicas(first, second, url)


def _message(slug: str, sender: str, message_id: str, timestamp: float) -> dict[str, Any]:
    """A patient's WhatsApp text to ``slug``'s number."""
    return REGISTRY.adapters[Channel.WHATSAPP].simulated_message(
        WHATSAPP[slug], sender, message_id, timestamp
    )


def _staff_echo(slug: str, recipient: str, timestamp: float) -> dict[str, Any]:
    """Staff answering ``recipient`` by hand in the WhatsApp Business app of ``slug``'s number."""
    echo = {
        "from": "15550001234",
        "to": recipient,
        "id": f"wamid.STAFF.{slug}.{recipient}",
        "timestamp": str(int(timestamp)),
        "type": "text",
        "text": {"body": "staff reply"},
    }
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001234", "phone_number_id": WHATSAPP[slug]},
        "message_echoes": [echo],
    }
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {"id": "184725930012345", "changes": [{"field": "smb_message_echoes", "value": value}]}
        ],
    }


async def _post(service: Service, body: dict[str, Any]) -> None:
    assert (await service.post(body)).status == 200


async def _rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    conn = await asyncpg.connect(url)
    try:
        return [tuple(row.values()) for row in await conn.fetch(sql)]
    finally:
        await conn.close()


async def _drain(replicas: Replicas, timeout: float = 15.0) -> None:
    """Until every reply job has ended: a worker's ``drain`` returns while its own run loop
    may still be claiming a job, so the shared store, not either worker, says when all is sent."""
    deadline = time.monotonic() + timeout
    while True:
        await replicas.first.drain(timeout)
        await replicas.second.drain(timeout)
        open_jobs = await _rows(
            replicas.url, "SELECT id, practice, state FROM reply_jobs WHERE state <> 'done'"
        )
        if not open_jobs:
            return
        assert time.monotonic() < deadline, f"reply jobs still open: {open_jobs}"
        await asyncio.sleep(0.02)


def _sends(graph: FakeGraph) -> list[tuple[str, str | None, str]]:
    """Every send as (from number, bearer token, to)."""
    return [(r.node or "", r.authorization, r.json["to"]) for r in graph.requests]


async def _log(url: str) -> list[tuple[Any, ...]]:
    """The contact log as (practice, pseudonym, outcome), oldest first."""
    return await _rows(url, "SELECT practice, pseudonym, outcome FROM contact_log ORDER BY id")


def _token_of(slug: str) -> str:
    return f"Bearer token-{slug}"


def _from_practice(sends: Sequence[tuple[str, str | None, str]], slug: str) -> list[str]:
    """The recipients of ``slug``'s sends, each checked to carry that practice's token."""
    own = [(token, to) for number, token, to in sends if number == WHATSAPP[slug]]
    assert {token for token, _ in own} <= {_token_of(slug)}
    return [to for _, to in own]


@pytest.mark.postgres
async def test_group_replicas_storm_replies_once_per_patient_per_practice(
    tmp_path: Path, group_graph: FakeGraph
) -> None:
    """A redelivered storm to two practices over two replicas: one reply per patient each."""
    rng = random.Random(15)
    bodies = [
        _message(slug, f"44770091{i % PATIENTS:04d}", f"wamid.{slug}.{i}", OPEN - 60)
        for slug in PRACTICES
        for i in range(MESSAGES)
    ]
    deliveries = [body for body in bodies for _ in range(rng.randint(1, 5))]
    rng.shuffle(deliveries)
    limit = asyncio.Semaphore(64)
    async with _replicas(tmp_path, group_graph.url) as replicas:

        async def deliver(body: dict[str, Any]) -> int:
            async with limit:
                replica = rng.choice((replicas.first, replicas.second))
                return (await replica.post(body)).status

        statuses = await asyncio.gather(*(deliver(body) for body in deliveries))
        assert set(statuses) == {200}
        await _drain(replicas)
        log = await _log(replicas.url)
        jobs = await _rows(
            replicas.url,
            "SELECT practice, state, outcome, count(*) FROM reply_jobs GROUP BY 1, 2, 3",
        )
    sends = _sends(group_graph)
    assert len(sends) == 2 * PATIENTS
    patients = {f"44770091{i:04d}" for i in range(PATIENTS)}
    for slug in PRACTICES:
        recipients = Counter(_from_practice(sends, slug))
        assert set(recipients) == patients
        assert max(recipients.values()) == 1
    assert Counter((practice, outcome) for practice, _, outcome in log) == {
        (slug, outcome): count
        for slug in PRACTICES
        for outcome, count in (("replied", PATIENTS), ("cooldown", MESSAGES - PATIENTS))
    }
    pseudonyms = {slug: {p for practice, p, _ in log if practice == slug} for slug in PRACTICES}
    assert [len(pseudonyms[slug]) for slug in PRACTICES] == [PATIENTS, PATIENTS]
    assert not pseudonyms[PRACTICES[0]] & pseudonyms[PRACTICES[1]]
    assert sorted(jobs) == sorted((slug, "done", "replied", PATIENTS) for slug in PRACTICES)


@pytest.mark.postgres
async def test_group_replicas_one_sender_to_two_practices_is_two_contacts(
    tmp_path: Path, group_graph: FakeGraph
) -> None:
    """One number writing to two practices, at once, through different replicas: two replies."""
    async with _replicas(tmp_path, group_graph.url) as replicas:
        first, second = PRACTICES
        await asyncio.gather(
            _post(replicas.first, _message(first, SENDER, "wamid.TWO.1", OPEN - 5)),
            _post(replicas.second, _message(second, SENDER, "wamid.TWO.2", OPEN - 5)),
        )
        await _drain(replicas)
        log = await _log(replicas.url)
    sends = _sends(group_graph)
    assert sorted(sends) == sorted((WHATSAPP[s], _token_of(s), SENDER) for s in PRACTICES)
    assert sorted((practice, outcome) for practice, _, outcome in log) == sorted(
        (slug, "replied") for slug in PRACTICES
    )
    assert len({pseudonym for _, pseudonym, _ in log}) == 2


@pytest.mark.postgres
async def test_group_replicas_cooldown_holds_across_replicas_per_practice(
    tmp_path: Path, group_graph: FakeGraph
) -> None:
    """After one replica replies for a practice, the other holds its cooldown, not the other's."""
    first, second = PRACTICES
    async with _replicas(tmp_path, group_graph.url) as replicas:
        await _post(replicas.first, _message(first, SENDER, "wamid.COOL.1", OPEN - 60))
        await _drain(replicas)
        replicas.first.clock.advance(60)
        await _post(replicas.second, _message(first, SENDER, "wamid.COOL.2", OPEN))
        await _post(replicas.second, _message(second, SENDER, "wamid.COOL.3", OPEN))
        await _drain(replicas)
        log = await _log(replicas.url)
    assert _sends(group_graph) == [
        (WHATSAPP[first], _token_of(first), SENDER),
        (WHATSAPP[second], _token_of(second), SENDER),
    ]
    assert [(practice, outcome) for practice, _, outcome in log] == [
        (first, "replied"),
        (first, "cooldown"),
        (second, "replied"),
    ]


@pytest.mark.postgres
async def test_group_replicas_staff_quiet_holds_across_replicas_per_practice(
    tmp_path: Path, group_graph: FakeGraph
) -> None:
    """Staff answering for one practice via one replica quiets that practice alone on the other."""
    first, second = PRACTICES
    async with _replicas(tmp_path, group_graph.url) as replicas:
        await _post(replicas.first, _staff_echo(first, SENDER, OPEN - 60))
        await _post(replicas.second, _message(first, SENDER, "wamid.QUIET.1", OPEN - 5))
        await _post(replicas.second, _message(second, SENDER, "wamid.QUIET.2", OPEN - 5))
        await _drain(replicas)
        log = await _log(replicas.url)
    assert _sends(group_graph) == [(WHATSAPP[second], _token_of(second), SENDER)]
    assert [(practice, outcome) for practice, _, outcome in log] == [
        (first, "staff_active"),
        (second, "replied"),
    ]
