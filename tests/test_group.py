"""A dental group in one deployment (SPEC §9): the shipped three-practice example, served.

Each practice gets its own token; the fake Graph API accepts only those, so a reply sent
with the wrong practice's token would fail.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from adapters import REGISTRY
from bot.events import Channel
from bot.practices import GroupFiles
from bot.worker import WorkerConfig
from tests.helpers.fake_graph import Action, FakeGraph, RecordedRequest
from tests.helpers.group import (
    CARDIFF_INSTAGRAM,
    OPEN,
    TOKENS,
    WHATSAPP,
    group_files,
    served_group,
)
from tests.helpers.service import (
    APP_SECRET,
    Clock,
    Service,
    running_service,
)


@pytest.fixture
def main_env(tmp_path: Path, group_graph: FakeGraph) -> Path:
    """The group's main env file over a copy of the shipped example."""
    return group_files(tmp_path, group_graph.url)


def _whatsapp_text(body: dict[str, Any]) -> str:
    """The reply's text in a WhatsApp send: plain, or the body of its booking button."""
    text: str = body["text"]["body"] if "text" in body else body["interactive"]["body"]["text"]
    return text


@asynccontextmanager
async def _serving(
    main: Path, *, worker: WorkerConfig | None = None, template_poll: float = 0.05
) -> AsyncIterator[Service]:
    """The group served as ``serve`` serves it (following its files), on a Tuesday morning
    when every practice is open."""
    served = served_group(main)
    async with running_service(
        served[0].settings,
        Clock(OPEN),
        group=served,
        group_files=GroupFiles(main, main.parent / "practices"),
        worker=worker,
        template_poll=template_poll,
    ) as service:
        yield service


async def _until(condition: Callable[[], bool], within: float = 5.0) -> None:
    """Wait until ``condition()`` holds; fail after ``within`` seconds."""
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 - the service changes it; no event to wait on
            await asyncio.sleep(0.02)


def _serves(service: Service, slug: str) -> Callable[[], bool]:
    return lambda: slug in {p.slug for p in service.runtime.practices.served}


async def _post(service: Service, number: str, sender: str) -> None:
    """A patient's WhatsApp text to ``number``, acknowledged; the worker sends in its time."""
    body = REGISTRY.adapters[Channel.WHATSAPP].simulated_message(
        number, sender, f"mid.{number}.{sender}", service.clock.now - 5
    )
    assert (await service.post(body)).status == 200


async def _message(service: Service, channel: Channel, account: str, sender: str) -> None:
    """A patient's text message to ``account``, sent now, and every reply it leads to."""
    body = REGISTRY.adapters[channel].simulated_message(
        account, sender, f"mid.{account}.{sender}", service.clock.now - 5
    )
    assert (await service.post(body)).status == 200
    await service.drain()


async def test_group_each_practice_replies_from_its_own_number_with_its_own_token(
    main_env: Path, group_graph: FakeGraph
) -> None:
    """A message to each practice's number is answered from that number, with its token."""
    async with _serving(main_env) as service:
        for number in WHATSAPP.values():
            await _message(service, Channel.WHATSAPP, number, "447700900123")
    sent = {r.path: (r.authorization, _whatsapp_text(r.json)) for r in group_graph.requests}
    for slug, number in WHATSAPP.items():
        token, text = sent[f"/v25.0/{number}/messages"]
        assert token == f"Bearer token-{slug}"
        assert f"Example Smiles {slug.replace('-', ' ').title()}" in text


async def test_group_practice_text_overrides_the_groups(
    main_env: Path, group_graph: FakeGraph
) -> None:
    """Cardiff Bay's own Instagram texts (Welsh, then English) are used for its Instagram;
    WhatsApp gets the group's, in both languages too."""
    async with _serving(main_env) as service:
        await _message(service, Channel.INSTAGRAM, CARDIFF_INSTAGRAM, "7000000000000001")
        await _message(service, Channel.WHATSAPP, WHATSAPP["cardiff-bay"], "447700900123")
    instagram, whatsapp = group_graph.requests
    text = instagram.json["message"]["text"]
    assert text.startswith("Example Smiles Cardiff Bay: diolch am eich neges ar Instagram.")
    assert "\n\nThanks for your message to Example" in text
    assert _whatsapp_text(whatsapp.json).startswith(
        "Example Smiles Cardiff Bay: diolch am eich neges."
    )
    assert "\n\nThank you for contacting Example Smiles" in _whatsapp_text(whatsapp.json)


async def test_group_unknown_account_is_skipped_and_counted(
    main_env: Path, group_graph: FakeGraph
) -> None:
    """A message to a number no practice claims gets no reply and is counted as such."""
    async with _serving(main_env) as service:
        await _message(service, Channel.WHATSAPP, "109999999999999", "447700900123")
        metrics = service.runtime.metrics.render().decode()
        records = await service.store.contacts(None, None)
    assert group_graph.requests == []
    assert records == []
    counted = (
        'practice_bot_events_total{channel="whatsapp",decision="skipped",'
        'kind="unknown_account",practice=""}'
    )
    assert f"{counted} 1.0" in metrics


async def test_group_one_person_writing_to_two_practices_is_two_contacts(
    main_env: Path, group_graph: FakeGraph
) -> None:
    """The same number writing to two practices gets each practice's reply: two contacts."""
    async with _serving(main_env) as service:
        for slug in ("leeds-riverside", "glasgow-west"):
            await _message(service, Channel.WHATSAPP, WHATSAPP[slug], "447700900123")
        records = await service.store.contacts(None, None)
    assert len(group_graph.requests) == 2
    assert sorted(r.practice for r in records) == ["glasgow-west", "leeds-riverside"]
    assert len({r.pseudonym for r in records}) == 2


def _cli(main: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args, "--env-file", str(main)],
        env={"PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_group_forget_and_export_are_per_practice(
    main_env: Path, group_graph: FakeGraph
) -> None:
    """forget --practice erases one practice's records of a person; export names practices."""
    async with _serving(main_env) as service:
        for slug in ("leeds-riverside", "glasgow-west"):
            await _message(service, Channel.WHATSAPP, WHATSAPP[slug], "447700900123")
    assert len(group_graph.requests) == 2
    forget = ["contacts", "forget", "--channel", "whatsapp", "--sender-id", "447700900123"]
    unnamed = _cli(main_env, *forget)
    assert unnamed.returncode == 2
    assert "--practice: name one of the group's practices" in unnamed.stderr
    forgotten = _cli(main_env, *forget, "--practice", "leeds-riverside")
    assert forgotten.stdout.strip() == "deleted 1", forgotten.stderr
    exported = json.loads(_cli(main_env, "contacts", "export", "--format", "json").stdout)
    assert [row["practice"] for row in exported] == ["glasgow-west"]
    assert list(exported[0]) == [
        "time",
        "practice",
        "channel",
        "pseudonym",
        "kind",
        "outcome",
        "template",
    ]


def _leeds_throttled_once(usage: str) -> Callable[[RecordedRequest], Action | None]:
    """Leeds's first send answers that its number is over Meta's limit for a minute."""
    answered: list[int] = []

    def decide(request: RecordedRequest) -> Action | None:
        if request.node != WHATSAPP["leeds-riverside"] or answered:
            return None
        answered.append(request.index)
        return Action.ok(headers={"X-Business-Use-Case-Usage": usage})

    return decide


async def test_group_throttled_practice_does_not_slow_another(
    main_env: Path, group_graph: FakeGraph
) -> None:
    """Meta throttles Leeds's number: Leeds's next reply waits, Glasgow's goes at once."""
    leeds = WHATSAPP["leeds-riverside"]
    group_graph.decide = _leeds_throttled_once(
        f'{{"{leeds}":[{{"type":"whatsapp_business_messaging","call_count":100,'
        '"total_cputime":1,"total_time":1,"estimated_time_to_regain_access":1}]}'
    )
    async with _serving(main_env) as service:
        await _message(service, Channel.WHATSAPP, leeds, "447700900001")
        await _post(service, leeds, "447700900002")
        await _post(service, WHATSAPP["glasgow-west"], "447700900003")
        await group_graph.wait_for_requests(2)
        await asyncio.sleep(0.3)
        metrics = service.runtime.metrics.render().decode()
    assert [r.node for r in group_graph.requests] == [leeds, WHATSAPP["glasgow-west"]]
    usage = 'practice_bot_graph_usage_percent{channel="whatsapp",practice="leeds-riverside"}'
    assert f"{usage} 100.0" in metrics


async def test_group_hanging_practice_does_not_hold_up_another(
    main_env: Path, group_graph: FakeGraph
) -> None:
    """Leeds's sends hang: they hold only their share of the worker, so Glasgow is answered."""
    leeds = WHATSAPP["leeds-riverside"]
    group_graph.decide = lambda r: Action.hang(2.0) if r.node == leeds else None
    slots = WorkerConfig(poll_interval=0.05, max_inflight=4, queue_inflight=2)
    async with _serving(main_env, worker=slots) as service:
        for i in range(6):
            await _post(service, leeds, f"4477009000{i:02d}")
        await group_graph.wait_for_requests(2)
        await _post(service, WHATSAPP["glasgow-west"], "447700900099")
        first = await group_graph.wait_for_requests(3, within=1.0)
    assert [r.node for r in first[:3]] == [leeds, leeds, WHATSAPP["glasgow-west"]]


async def test_group_metrics_count_replies_per_practice(
    main_env: Path, group_graph: FakeGraph
) -> None:
    """Replies and events carry the practice's slug as a label."""
    async with _serving(main_env) as service:
        await _message(service, Channel.WHATSAPP, WHATSAPP["cardiff-bay"], "447700900123")
        metrics = service.runtime.metrics.render().decode()
    assert len(group_graph.requests) == 1
    assert (
        'practice_bot_replies_total{channel="whatsapp",outcome="replied",practice="cardiff-bay"}'
        " 1.0"
    ) in metrics
    assert (
        'practice_bot_events_total{channel="whatsapp",decision="reply",kind="message",'
        'practice="cardiff-bay"} 1.0'
    ) in metrics


def _add_practice(main: Path, slug: str, number: str) -> None:
    """A new practice folder, written as an IT person would."""
    folder = main.parent / "practices" / slug
    folder.mkdir()
    (folder / "practice.env").write_text(
        f"PRACTICE_NAME=Example Smiles {slug.replace('-', ' ').title()}\n"
        "PRACTICE_PHONE=+44 113 496 0999\n"
        f"WHATSAPP_PHONE_NUMBER_ID={number}\n"
        f"WHATSAPP_ACCESS_TOKEN={TOKENS[0]}\n"
    )


async def test_group_practice_added_while_running_is_answered(
    main_env: Path, group_graph: FakeGraph
) -> None:
    """A practice folder added while the service runs is served without a restart."""
    async with _serving(main_env) as service:
        _add_practice(main_env, "york-minster", "109876543210004")
        await _until(_serves(service, "york-minster"))
        await _message(service, Channel.WHATSAPP, "109876543210004", "447700900123")
    [request] = group_graph.requests
    assert request.node == "109876543210004"
    assert "Example Smiles York Minster" in _whatsapp_text(request.json)


async def test_group_practice_removed_while_running_is_no_longer_answered(
    main_env: Path, group_graph: FakeGraph
) -> None:
    """A practice folder removed while the service runs: its number is an unknown account."""
    async with _serving(main_env) as service:
        shutil.rmtree(main_env.parent / "practices" / "glasgow-west")
        await _until(lambda: not _serves(service, "glasgow-west")())
        await _message(service, Channel.WHATSAPP, WHATSAPP["glasgow-west"], "447700900123")
    assert group_graph.requests == []


async def test_group_broken_practice_file_keeps_the_group_as_it_was(
    main_env: Path, group_graph: FakeGraph
) -> None:
    """A practice file with an app-level setting is refused: readiness names file and variable,
    and every practice is still answered as before."""
    leeds = main_env.parent / "practices" / "leeds-riverside" / "practice.env"
    async with _serving(main_env) as service:
        leeds.write_text(leeds.read_text() + "DATABASE_URL=sqlite:///elsewhere.sqlite3\n")
        await _until(lambda: bool(service.runtime.group_problems))
        ready = await (await service.client.get("/readyz")).text()
        await _message(service, Channel.WHATSAPP, WHATSAPP["leeds-riverside"], "447700900123")
    assert ready.startswith("ok; practices edit not applied")
    assert f"{leeds}: DATABASE_URL" in ready
    assert [r.node for r in group_graph.requests] == [WHATSAPP["leeds-riverside"]]


async def test_group_sighup_applies_a_changed_practice_at_once(
    main_env: Path, group_graph: FakeGraph
) -> None:
    """SIGHUP reloads the group's files without waiting for the next look at them."""
    glasgow = main_env.parent / "practices" / "glasgow-west" / "practice.env"
    async with _serving(main_env, template_poll=3600) as service:
        glasgow.write_text(glasgow.read_text().replace("Glasgow West", "Glasgow Byres Road"))
        os.kill(os.getpid(), signal.SIGHUP)
        await _until(
            lambda: any(
                p.settings.practice_name == "Example Smiles Glasgow Byres Road"
                for p in service.runtime.practices.served
            )
        )
        await _message(service, Channel.WHATSAPP, WHATSAPP["glasgow-west"], "447700900123")
    [request] = group_graph.requests
    assert "Example Smiles Glasgow Byres Road" in _whatsapp_text(request.json)


async def test_group_app_level_change_waits_for_a_restart(
    main_env: Path, group_graph: FakeGraph
) -> None:
    """A new app secret in the main file is named as needing a restart; the old one still
    verifies webhooks meanwhile."""
    async with _serving(main_env) as service:
        before = service.runtime.practices
        text = main_env.read_text()  # noqa: ASYNC240 - a test's small file
        main_env.write_text(text.replace(APP_SECRET, "new"))  # noqa: ASYNC240
        with capture_logs() as logs:
            await _until(lambda: service.runtime.practices is not before)
        await _message(service, Channel.WHATSAPP, WHATSAPP["leeds-riverside"], "447700900123")
    assert {"event": "restart_needed", "variables": ["META_APP_SECRET"]}.items() <= next(
        line for line in logs if line["event"] == "restart_needed"
    ).items()
    assert len(group_graph.requests) == 1
