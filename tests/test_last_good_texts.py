"""A text never takes the service down: the last good set is kept in the store (SPEC §10)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from tests.helpers.fake_graph import FakeGraph
from tests.helpers.process import BotProcess, whatsapp_text
from tests.helpers.service import REPO, make_settings, running_service

BROKEN = "Thank you for contacting {practice_name}.\nCall us on {phnoe}.\n"
ALWAYS_OPEN = "Mon-Sun 00:00-24:00"


@pytest.fixture
def texts(tmp_path: Path) -> Path:
    """A copy of the shipped texts the test may break."""
    folder = tmp_path / "templates"
    shutil.copytree(REPO / "templates", folder)
    return folder


def _sent_text(body: dict[str, dict[str, str]]) -> str:
    """A WhatsApp send's text: plain, or the body of its booking button."""
    return body["text"]["body"] if "text" in body else body["interactive"]["body"]["text"]  # type: ignore[index]


async def test_serve_with_broken_texts_serves_the_last_good_set(
    tmp_path: Path, texts: Path, graph: FakeGraph
) -> None:
    """Broken at start-up: the service starts, stays ready naming the problem, and replies
    with the text that was good before."""
    bot = BotProcess(tmp_path, graph.url, TEMPLATES_DIR=str(texts), OPENING_HOURS=ALWAYS_OPEN)
    first_line = (texts / "reply.txt").read_text().splitlines()[0]
    try:
        await bot.start()  # keeps the shipped texts as the last good set
        await bot.stop()
        (texts / "reply.txt").write_text(BROKEN)
        await bot.start()
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{bot.url}/readyz") as response:
                ready = (response.status, await response.text())
            body = whatsapp_text("447700900123", "wamid.LASTGOOD", time.time() - 5)
            assert await bot.post(session, body) == 200
            [request] = await graph.wait_for_requests(1)
    finally:
        await bot.stop()
    assert ready[0] == 200
    assert f"{texts / 'reply.txt'}:2:12: unknown placeholder {{phnoe}}" in ready[1]
    expected = first_line.replace("{practice_name}", "Crash Test Dental")
    assert _sent_text(request.json).splitlines()[0] == expected


def test_serve_with_broken_texts_and_none_kept_exits_2(tmp_path: Path, texts: Path) -> None:
    """Broken texts and no good set ever kept: ``serve`` refuses to start, naming the file."""
    (texts / "reply.txt").write_text(BROKEN)
    bot = BotProcess(tmp_path, "http://127.0.0.1:9", TEMPLATES_DIR=str(texts))
    result = subprocess.run(
        [sys.executable, "-m", "bot", "serve"],
        env=bot.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert f"{texts / 'reply.txt'}:2:12: unknown placeholder {{phnoe}}" in result.stderr
    assert "no good set of texts has been kept" in result.stderr


async def test_serve_last_good_set_that_no_longer_fits_exits_2(
    tmp_path: Path, texts: Path, graph: FakeGraph
) -> None:
    """A set kept before Welsh was added cannot serve a cy,en practice with a broken Welsh
    text: ``serve`` exits 2 and says why the kept set did not help."""
    bot = BotProcess(tmp_path, graph.url, TEMPLATES_DIR=str(texts))
    try:
        await bot.start()  # keeps the English-only set
    finally:
        await bot.stop()
    (texts / "reply.cy.txt").write_text(BROKEN)
    serve = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "serve",
        env={**bot.env, "REPLY_LANGUAGES": "cy,en"},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(serve.communicate(), timeout=60)
    assert serve.returncode == 2
    assert "the last good set kept for the practice does not pass today's checks" in (
        stderr.decode()
    )


async def test_good_texts_same_set_again_keeps_its_first_time(tmp_path: Path, texts: Path) -> None:
    """The store keeps the texts in force; saving the same set later changes nothing."""
    settings = make_settings(tmp_path, templates_dir=texts)
    async with running_service(settings, run_worker=False) as service:
        first = await service.store.saved_texts("")
        assert first is not None
        current = service.runtime.templates.current.texts
        await service.store.save_texts({"": current}, first.saved_at + 60)
        again = await service.store.saved_texts("")
    assert first.texts["reply.txt"] == (texts / "reply.txt").read_text()
    assert again == first


async def test_good_texts_a_live_edit_is_kept(tmp_path: Path, texts: Path) -> None:
    """A good edit applied live becomes the last good set."""
    settings = make_settings(tmp_path, templates_dir=texts)
    edited = (texts / "reply.txt").read_text() + "\nWe are here to help.\n"
    async with running_service(settings, run_worker=False) as service:
        (texts / "reply.txt").write_text(edited)
        async with asyncio.timeout(5):
            while service.runtime.templates.current.texts["reply.txt"] != edited:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)  # the watcher keeps it just after applying it
        saved = await service.store.saved_texts("")
    assert saved is not None
    assert saved.texts["reply.txt"] == edited
