"""Log lines reach the stream whole, in order, and (batched) once per turn of the loop."""

from __future__ import annotations

import asyncio
import io
import json
import logging

import structlog

from bot.logging import LineWriter, configure_logging, dropped_keys, flush_logs, request_line


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


def test_request_line_matches_structlog_line() -> None:
    """The webhook line's own route writes exactly what structlog writes for the same fields."""
    stream = io.StringIO()
    configure_logging("info", "json", stream)
    fields = {"channel": "whatsapp", "status": 200, "duration_ms": 1.5, "events": 1}
    request_line(dict(fields))
    structlog.get_logger("bot.app").info("webhook", **fields)
    fast, slow = _lines(stream)
    assert str(fast.pop("timestamp")) <= str(slow.pop("timestamp"))
    assert (fast, list(fast)) == (slow, list(slow))


def test_request_line_drops_unreviewed_keys() -> None:
    """A key outside the allow-list is dropped and counted on this route too."""
    stream = io.StringIO()
    configure_logging("info", "json", stream)
    before = dropped_keys()
    request_line({"channel": "whatsapp", "body": "canary-request-line"})
    assert "canary-request-line" not in stream.getvalue()
    assert dropped_keys() == before + 1


def test_request_line_follows_the_level() -> None:
    """At LOG_LEVEL=warning the INFO webhook line is not written."""
    stream = io.StringIO()
    configure_logging("warning", "json", stream)
    request_line({"channel": "whatsapp", "status": 200})
    assert stream.getvalue() == ""
    configure_logging("info", "json", io.StringIO())


def test_request_line_console_format_goes_through_structlog() -> None:
    """In the console format the line is rendered by structlog's console renderer."""
    stream = io.StringIO()
    configure_logging("info", "console", stream)
    request_line({"channel": "whatsapp", "status": 200})
    assert "webhook" in stream.getvalue()
    assert not stream.getvalue().startswith("{")
    configure_logging("info", "json", io.StringIO())
