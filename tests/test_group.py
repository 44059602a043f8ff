"""A dental group in one deployment (SPEC §9): the shipped three-practice example, served.

Each practice gets its own token; the fake Graph API accepts only those, so a reply sent
with the wrong practice's token would fail.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from adapters import REGISTRY
from bot.events import Channel
from bot.practices import ServedPractice, load_practices
from bot.templates import LiveTemplates
from tests.helpers.fake_graph import FakeGraph
from tests.helpers.service import (
    APP_SECRET,
    PSEUDONYM_KEY,
    REPO,
    VERIFY_TOKEN,
    Clock,
    Service,
    running_service,
)

SLUGS = ("cardiff-bay", "glasgow-west", "leeds-riverside")
TOKENS = tuple(f"token-{slug}" for slug in SLUGS)
WHATSAPP = {
    "cardiff-bay": "109876543210003",
    "glasgow-west": "109876543210002",
    "leeds-riverside": "109876543210001",
}
CARDIFF_INSTAGRAM = "17841400000000103"
# A Tuesday morning in January: every practice of the example is open.
OPEN = datetime(2026, 1, 6, 10, 0, tzinfo=ZoneInfo("Europe/London")).timestamp()


def _group_files(tmp_path: Path, graph_url: str) -> Path:
    """The example group with live secrets, a token per practice and the fake Graph API."""
    shutil.copytree(REPO / "examples" / "group" / "practices", tmp_path / "practices")
    main = tmp_path / "group.env"
    main.write_text(
        "\n".join(
            [
                f"META_APP_SECRET={APP_SECRET}",
                f"META_VERIFY_TOKEN={VERIFY_TOKEN}",
                f"PSEUDONYM_KEY={PSEUDONYM_KEY}",
                f"GRAPH_API_URL={graph_url}",
                f"INSTAGRAM_API_URL={graph_url}",
                f"DATABASE_URL=sqlite:///{tmp_path}/data/bot.sqlite3",
                f"TEMPLATES_DIR={REPO / 'templates'}",
                f"PRACTICES_DIR={tmp_path / 'practices'}",
                "PRACTICE_EMAIL=reception@example-smiles.co.uk",
                "PRACTICE_BOOKING_URL=https://example-smiles.co.uk/book",
                "OPENING_HOURS=Mon-Fri 08:30-17:00",
                "",
            ]
        )
    )
    for slug, token in zip(SLUGS, TOKENS, strict=True):
        path = tmp_path / "practices" / slug / "practice.env"
        tokens = (
            f"WHATSAPP_ACCESS_TOKEN={token}\nMESSENGER_PAGE_ACCESS_TOKEN={token}\n"
            f"INSTAGRAM_ACCESS_TOKEN={token}\n"
        )
        path.write_text(path.read_text() + tokens)
    return main


def _served(main: Path) -> list[ServedPractice]:
    """The practices as ``serve`` runs them: each with its own live texts."""
    return [
        ServedPractice(
            p.slug,
            p.settings,
            LiveTemplates(
                p.settings.templates_dir,
                p.settings.practice(),
                p.settings.schedule(),
                channels=REGISTRY.adapters,
                overlays=p.templates_dirs[:-1],
            ),
        )
        for p in load_practices(main, main.parent / "practices")
    ]


@pytest.fixture
async def group_graph() -> AsyncIterator[FakeGraph]:
    """A fake Graph API that accepts each practice's token and no other."""
    async with FakeGraph(token=TOKENS) as fake:
        yield fake


@pytest.fixture
def main_env(tmp_path: Path, group_graph: FakeGraph) -> Path:
    """The group's main env file over a copy of the shipped example."""
    return _group_files(tmp_path, group_graph.url)


def _whatsapp_text(body: dict[str, Any]) -> str:
    """The reply's text in a WhatsApp send: plain, or the body of its booking button."""
    text: str = body["text"]["body"] if "text" in body else body["interactive"]["body"]["text"]
    return text


@asynccontextmanager
async def _serving(main: Path) -> AsyncIterator[Service]:
    """The group served, on a Tuesday morning when every practice is open."""
    served = _served(main)
    async with running_service(served[0].settings, Clock(OPEN), group=served) as service:
        yield service


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
    """Cardiff Bay's own Instagram text is used for its Instagram; WhatsApp gets the group's."""
    async with _serving(main_env) as service:
        await _message(service, Channel.INSTAGRAM, CARDIFF_INSTAGRAM, "7000000000000001")
        await _message(service, Channel.WHATSAPP, WHATSAPP["cardiff-bay"], "447700900123")
    instagram, whatsapp = group_graph.requests
    assert instagram.json["message"]["text"].startswith("Thanks for your message to Example")
    assert _whatsapp_text(whatsapp.json).startswith("Thank you for contacting Example Smiles")


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
