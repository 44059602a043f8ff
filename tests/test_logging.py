"""Log lines reach the stream whole, in order, and (batched) once per turn of the loop."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from pathlib import Path

import structlog

from bot.logging import REQUEST_ID, LineWriter, configure_logging, flush_logs
from tests.helpers.fake_graph import FakeGraph
from tests.helpers.fixtures import fixture_bytes
from tests.helpers.service import make_settings, running_service


class CountingStream(io.StringIO):
    """A text stream that counts its writes."""

    writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def _events(stream: io.StringIO) -> list[str]:
    return [json.loads(line)["event"] for line in stream.getvalue().splitlines()]


def test_line_writer_unbatched_writes_each_line_at_once() -> None:
    """Without batching every line is on the stream as soon as it is logged."""
    stream = CountingStream()
    writer = LineWriter(stream)
    writer.msg("one")
    assert stream.getvalue() == "one\n"
    writer.msg("two")
    assert (stream.getvalue(), stream.writes) == ("one\ntwo\n", 2)


async def test_line_writer_batched_writes_one_turns_lines_together() -> None:
    """Batched, the lines of one turn of the loop arrive together, in order, a turn later."""
    stream = CountingStream()
    writer = LineWriter(stream, batched=True)
    for line in ("a", "b", "c"):
        writer.msg(line)
    assert stream.getvalue() == ""
    await asyncio.sleep(0)
    assert (stream.getvalue(), stream.writes) == ("a\nb\nc\n", 1)


def test_line_writer_batched_outside_a_loop_writes_at_once() -> None:
    """With no event loop running (start-up, tools), a batched writer writes straight away."""
    stream = CountingStream()
    LineWriter(stream, batched=True).msg("start-up")
    assert stream.getvalue() == "start-up\n"


async def test_line_writer_flush_writes_waiting_lines() -> None:
    """flush() empties the batch now, as the service does before it exits."""
    stream = CountingStream()
    writer = LineWriter(stream, batched=True)
    writer.msg("last words")
    writer.flush()
    assert stream.getvalue() == "last words\n"
    await asyncio.sleep(0)
    assert stream.getvalue() == "last words\n"  # the scheduled flush finds nothing to add


async def test_configure_logging_batched_keeps_library_records_in_order() -> None:
    """Records from other libraries share the batch, so lines keep the order they happened in."""
    stream = io.StringIO()
    configure_logging("info", "json", stream, batched=True)
    try:
        structlog.get_logger("bot.test").info("first")
        logging.getLogger("aiohttp.test").warning("from a library")
        structlog.get_logger("bot.test").info("third")
        await asyncio.sleep(0)
        assert _events(stream) == ["first", "library_log", "third"]
    finally:
        flush_logs()
        configure_logging("info", "json", io.StringIO())


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_configure_logging_cached_logger_uses_the_configured_chain() -> None:
    """With cached loggers (as ``serve`` runs) a line still passes the allow-list, as JSON."""
    stream = io.StringIO()
    configure_logging("info", "json", stream, cache=True)
    try:
        logger = structlog.get_logger("bot.test.cached")
        logger.info("webhook", channel="whatsapp", body="canary-cached")
        logger.info("webhook", channel="messenger")
        first, second = _lines(stream)
        assert (first["channel"], first["dropped_keys"]) == ("whatsapp", 1)
        assert second["channel"] == "messenger"
        assert "canary-cached" not in stream.getvalue()
    finally:
        configure_logging("info", "json", io.StringIO())


def test_configure_logging_bound_context_reaches_every_line() -> None:
    """Context bound for a webhook (its request id) is on each line logged meanwhile, only."""
    stream = io.StringIO()
    configure_logging("info", "json", stream)
    try:
        logger = structlog.get_logger("bot.test")
        bound = REQUEST_ID.set("r-1")
        logger.info("webhook")
        logging.getLogger("aiohttp.test").warning("from a library")
        REQUEST_ID.reset(bound)
        logger.info("reply_ended")
        inside, library, outside = _lines(stream)
        assert inside["request_id"] == library["request_id"] == "r-1"
        assert "request_id" not in outside
    finally:
        configure_logging("info", "json", io.StringIO())


def test_configure_logging_level_filters_info() -> None:
    """At LOG_LEVEL=warning the INFO webhook line is not written."""
    stream = io.StringIO()
    configure_logging("warning", "json", stream)
    structlog.get_logger("bot.app").info("webhook", channel="whatsapp", status=200)
    assert stream.getvalue() == ""
    configure_logging("info", "json", io.StringIO())


async def test_webhook_lines_carry_their_own_request_id(tmp_path: Path) -> None:
    """Each webhook's log line carries a request id of its own."""
    stream = io.StringIO()
    configure_logging("info", "json", stream)
    try:
        async with FakeGraph() as graph:
            settings = make_settings(tmp_path, graph.url)
            async with running_service(settings, run_worker=False) as service:
                await service.post(fixture_bytes("whatsapp", "text"))
                await service.post(b"[]")  # signed, but not an object: 400
    finally:
        configure_logging("info", "json", io.StringIO())
    webhooks = [line for line in _lines(stream) if line["event"] == "webhook"]
    ids = [line["request_id"] for line in webhooks]
    assert [line["status"] for line in webhooks] == [200, 400]
    assert len(set(ids)) == 2
    assert all(isinstance(request_id, str) and request_id for request_id in ids)
