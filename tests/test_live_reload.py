"""Template edits reach a running service without a restart; broken edits keep the last good."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from bot.settings import Settings
from tests.helpers.fake_graph import FakeGraph
from tests.helpers.fixtures import fixture_bytes
from tests.helpers.service import Service, running_service


async def _wait_for_reload(service: Service, before: int) -> None:
    for _ in range(100):
        metrics = await (await service.client.get("/metrics")).text()
        total = sum(
            float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith("practice_bot_template_reloads_total")
        )
        if total > before:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the template watcher did not notice the edit")


def _edit(path: Path, text: str) -> None:
    stat = path.stat()
    path.write_text(text, encoding="utf-8")
    # Make sure the change is visible even on file systems with coarse timestamps.
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


async def _reply_sent(service: Service, graph: FakeGraph) -> str:
    """The text of the reply an Instagram patient gets now (the service is closed then)."""
    await service.post(fixture_bytes("instagram", "text"))
    await service.drain()
    text: str = graph.requests[-1].json["message"]["text"]
    return text


async def test_live_reload_good_edit_changes_the_next_reply(
    settings: Settings, graph: FakeGraph
) -> None:
    """An edited closed.txt is used for the next reply without a restart."""
    closed = Path(settings.templates_dir) / "closed.txt"
    async with running_service(settings) as service:
        _edit(closed, "EDITED automatic reply. Please call {phone}.\n")
        await _wait_for_reload(service, 0)
        assert await _reply_sent(service, graph) == (
            "EDITED automatic reply. Please call +44 20 7946 0000."
        )


async def test_live_reload_broken_edit_keeps_last_good_reply(
    settings: Settings, graph: FakeGraph
) -> None:
    """A broken edit is refused: patients keep getting the last good text and /readyz says so."""
    closed = Path(settings.templates_dir) / "closed.txt"
    async with running_service(settings) as service:
        _edit(closed, "GOOD text. Call {phone}.\n")
        await _wait_for_reload(service, 0)
        _edit(closed, "BROKEN text {phone\n")
        await _wait_for_reload(service, 1)
        readyz = await service.client.get("/readyz")
        assert readyz.status == 200
        assert "closed.txt" in await readyz.text()
        assert await _reply_sent(service, graph) == "GOOD text. Call +44 20 7946 0000."


async def test_live_reload_dangling_link_keeps_reloading(
    settings: Settings, graph: FakeGraph
) -> None:
    """A link to nothing in the folder does not stop later edits from reaching patients."""
    templates = Path(settings.templates_dir)
    async with running_service(settings) as service:
        (templates / "extra.txt").symlink_to("missing")
        await _wait_for_reload(service, 0)
        _edit(templates / "closed.txt", "EDITED after the link. Please call {phone}.\n")
        await _wait_for_reload(service, 1)
        assert await _reply_sent(service, graph) == (
            "EDITED after the link. Please call +44 20 7946 0000."
        )


async def test_live_reload_dangling_override_link_named_in_readyz(
    settings: Settings, graph: FakeGraph
) -> None:
    """An override that becomes a link to nothing is refused and /readyz names it."""
    templates = Path(settings.templates_dir)
    async with running_service(settings) as service:
        (templates / "reply.whatsapp.txt").symlink_to("missing")
        await _wait_for_reload(service, 0)
        readyz = await service.client.get("/readyz")
        assert readyz.status == 200
        assert "reply.whatsapp.txt" in await readyz.text()
