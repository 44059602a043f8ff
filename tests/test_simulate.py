"""``practice-bot simulate`` against the real ``serve``, as the IT person runs it."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.helpers.fake_graph import FakeGraph
from tests.helpers.process import BotProcess


def _cli(bot: BotProcess, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m bot`` with the service's own environment, as ``compose exec`` would."""
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        env=bot.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def _simulate(bot: BotProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(_cli, bot, "simulate", *args)


@pytest.fixture
async def dry_run_bot(tmp_path: Path, graph: FakeGraph) -> AsyncIterator[BotProcess]:
    """The real service with WhatsApp on but no token: dry-run, as before Meta is connected."""
    bot = BotProcess(tmp_path, graph.url, WHATSAPP_ACCESS_TOKEN="")
    await bot.start()
    yield bot
    await bot.stop()


async def test_simulate_prints_answer_decision_template_outcome_and_text(
    dry_run_bot: BotProcess,
) -> None:
    """A simulated WhatsApp message is answered 200, replied to in dry-run, and the reply shown."""
    result = await _simulate(dry_run_bot, "--channel", "whatsapp")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"sent a signed test message to {dry_run_bot.url}/webhook: HTTP 200"
    assert lines[1] == "decision: reply"
    assert lines[2] in {"template: reply.txt", "template: closed.txt"}
    assert lines[3].startswith("outcome: dry-run")
    assert lines[4] == "reply, as the patient would see it:"
    assert "Crash Test Dental" in result.stdout


async def test_simulate_record_is_kind_test_and_left_out_of_summary(
    dry_run_bot: BotProcess,
) -> None:
    """The test message is exported with kind test and left out of the summary's counts."""
    assert (await _simulate(dry_run_bot, "--channel", "whatsapp")).returncode == 0
    exported = json.loads(_cli(dry_run_bot, "contacts", "export", "--format", "json").stdout)
    assert [(row["kind"], row["outcome"]) for row in exported] == [("test", "dry_run")]
    assert exported[0]["template"] in {"reply.txt", "closed.txt"}
    summary = _cli(dry_run_bot, "contacts", "summary").stdout
    assert "no contacts in the last 14 days (1 test messages left out)" in summary


async def test_simulate_never_sends_to_meta(tmp_path: Path, graph: FakeGraph) -> None:
    """With a real token configured, the test message's reply still never reaches Graph."""
    bot = BotProcess(tmp_path, graph.url)
    await bot.start()
    try:
        result = await _simulate(bot, "--channel", "whatsapp")
    finally:
        await bot.stop()
    assert result.returncode == 0, result.stderr
    assert "outcome: dry-run" in result.stdout
    assert graph.requests == []


async def test_simulate_channel_that_is_off_names_the_variable(dry_run_bot: BotProcess) -> None:
    """Simulating a channel with no account id says which variable turns it on (exit 2)."""
    result = await _simulate(dry_run_bot, "--channel", "messenger")
    assert result.returncode == 2
    assert result.stderr.strip().endswith(
        "MESSENGER_PAGE_ID: not set, so messenger is off; set it first"
    )


def test_simulate_without_a_running_service_says_so(tmp_path: Path) -> None:
    """With nothing listening, simulate says it cannot reach the service (exit 2)."""
    bot = BotProcess(tmp_path, "http://127.0.0.1:9")
    result = _cli(bot, "simulate", "--channel", "whatsapp")
    assert result.returncode == 2
    assert f"--url: cannot reach the service at {bot.url}/webhook" in result.stderr
