"""structlog, configured once: JSON lines (or console) on stdout, nothing personal in them.

The last processor before the renderer is an allow-list of event keys: a key nobody reviewed
is dropped and counted, so logging a whole object by mistake cannot leak it. Exceptions are
reduced to their type and frames (file, line, function): exception messages and locals can
hold request bodies (``JSONDecodeError.doc``), so they are never rendered.
"""

from __future__ import annotations

import asyncio
import atexit
import contextvars
import logging
import sys
import threading
import time
import traceback
from types import TracebackType
from typing import Any, TextIO

import orjson
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

__all__ = [
    "ALLOWED_KEYS",
    "REQUEST_ID",
    "AllowList",
    "LineWriter",
    "Timestamper",
    "configure_logging",
    "debug_enabled",
    "dropped_keys",
    "flush_logs",
]

# Every key a log line may carry. Adding one is a privacy review: see docs/privacy.md.
ALLOWED_KEYS: frozenset[str] = frozenset(
    {
        # structlog / stdlib bookkeeping
        "event",
        "level",
        "timestamp",
        "logger",
        "error_type",
        "frames",
        # request
        "request_id",
        "method",
        "route",
        "status",
        "duration_ms",
        "channel",
        "practice",  # a configured practice's slug (its folder name), never from a payload
        "events",
        "kinds",
        "decisions",
        "outcome",
        "reason",
        # worker and delivery
        "job",
        "attempt",
        "error_class",
        "code",
        "subcode",
        "http_status",
        "wait_s",
        "due_in_s",
        "claimed",
        "owner",
        "queue_depth",
        "template",
        # lifecycle, configuration and templates
        "host",
        "port",
        "store",
        "channels",
        "templates",
        "version",
        "file",
        "line",
        "col",
        "problems",
        "count",
        "contacts",
        "seen",
        "jobs",
        "other",
        "result",
        "signal",
        "dropped_keys",
        "files",
        "positions",
        "practices",
        "added",
        "changed",
        "removed",
        "variables",
        "saved_at",
        # the manager's page
        "who",
        "action",
    }
)


REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
"""The id of the webhook being handled; every line logged meanwhile carries it.

One variable read by one processor: structlog's general ``bind_contextvars`` and
``merge_contextvars`` walk the whole context for every line, which cost about 26,000
instructions per webhook (``bench/instructions.py``), nearly a tenth of the log line's price.
"""


def _request_id(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    request_id = REQUEST_ID.get()
    if request_id is not None:
        event_dict["request_id"] = request_id
    return event_dict


def debug_enabled() -> bool:
    """True when DEBUG lines are written (lets hot paths skip building them)."""
    return logging.getLogger().isEnabledFor(logging.DEBUG)


class AllowList:
    """The last processor before rendering: drops keys nobody reviewed, and counts them."""

    __slots__ = ("dropped",)

    def __init__(self) -> None:
        self.dropped = 0

    def __call__(self, _: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        unknown = [key for key in event_dict if key not in ALLOWED_KEYS]
        if unknown:
            for key in unknown:
                del event_dict[key]
            self.dropped += len(unknown)
            event_dict["dropped_keys"] = len(unknown)
        return event_dict


def dropped_keys() -> int:
    """How many keys the configured allow-list has dropped since logging was configured."""
    for processor in structlog.get_config()["processors"]:
        if isinstance(processor, AllowList):
            return processor.dropped
    return 0


def _frames(tb: TracebackType | None) -> list[str]:
    return [
        f"{frame.filename.rsplit('/', 2)[-1]}:{frame.lineno}:{frame.name}"
        for frame in traceback.extract_tb(tb, limit=20)
    ]


def _exception_summary(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    exc_info = event_dict.pop("exc_info", None)
    event_dict.pop("exception", None)
    event_dict.pop("stack_info", None)
    if exc_info:
        if exc_info is True:
            exc_info = sys.exc_info()
        elif isinstance(exc_info, BaseException):
            exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
        if isinstance(exc_info, tuple) and exc_info[0] is not None:
            event_dict["error_type"] = exc_info[0].__name__
            event_dict["frames"] = _frames(exc_info[2])
    return event_dict


class Timestamper:
    """ISO 8601 UTC with microseconds, as structlog's TimeStamper writes it, minus its cost.

    The date and time of day are formatted once per second; a line only adds the fraction.
    """

    __slots__ = ("_second", "_text")

    def __init__(self) -> None:
        self._second = -1
        self._text = ""

    def __call__(self, _: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        event_dict["timestamp"] = f"{self._text}.{int((now - second) * 1_000_000):06d}Z"
        return event_dict


def _json(event_dict: EventDict, **kwargs: Any) -> str:
    """One JSON line by orjson, several times quicker than ``json.dumps``.

    Values it does not know go through structlog's fallback (``default``).
    """
    return orjson.dumps(event_dict, default=kwargs.get("default"), option=_JSON_OPTIONS).decode()


_JSON_OPTIONS = orjson.OPT_NON_STR_KEYS


def _stdlib_message(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    # Records from other libraries (aiohttp, asyncio) carry free text that may interpolate
    # values; keep only the logger name and level and a fixed event name.
    record = event_dict.get("_record")
    if isinstance(record, logging.LogRecord):
        event_dict["event"] = "library_log"
        event_dict["logger"] = record.name
    return event_dict


class LineWriter:
    """Where every log line goes: structlog's loggers and the standard library's handler alike.

    Unbatched, a line is written and flushed at once. Batched (``practice-bot serve``), the
    lines of one turn of the event loop are written together at the start of the next turn:
    one system call for a whole burst of webhooks instead of one per line, the order kept,
    nothing held back longer than a turn of the loop. Outside a running loop (start-up,
    shutdown, other threads) lines are written at once. :meth:`flush` empties the batch.
    """

    def __init__(self, stream: TextIO, *, batched: bool = False) -> None:
        self._stream = stream
        self._batched = batched
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._loop_thread = threading.main_thread().ident

    def msg(self, message: str) -> None:
        """Write one line (structlog calls this for every level)."""
        if self._batched and threading.get_ident() == self._loop_thread:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                pass
            else:
                with self._lock:
                    self._lines.append(message)
                    first = len(self._lines) == 1
                if first:
                    loop.call_soon(self.flush)
                return
        with self._lock:
            self._write([*self._take(), message])

    log = debug = info = warn = warning = error = critical = exception = fatal = msg

    def flush(self) -> None:
        """Write the lines waiting for the next turn of the loop."""
        with self._lock:
            self._write(self._take())

    def _take(self) -> list[str]:
        lines, self._lines = self._lines, []
        return lines

    def _write(self, lines: list[str]) -> None:
        if lines:
            self._stream.write("\n".join(lines) + "\n")
            self._stream.flush()

    def __call__(self, *_: Any) -> LineWriter:
        """As structlog's logger factory: every logger shares this writer."""
        return self


class _WriterHandler(logging.Handler):
    """The standard library's records, formatted by structlog, through the same writer."""

    def __init__(self, writer: LineWriter) -> None:
        super().__init__()
        self.writer = writer

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.writer.msg(self.format(record))
        except Exception:  # noqa: BLE001 - logging must never raise into the caller
            self.handleError(record)


def flush_logs() -> None:
    """Write any batched lines now (before the process exits)."""
    writer = structlog.get_config()["logger_factory"]
    if isinstance(writer, LineWriter):
        writer.flush()


atexit.register(flush_logs)


_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def configure_logging(
    level: str = "info",
    fmt: str = "json",
    stream: TextIO | None = None,
    *,
    batched: bool = False,
    cache: bool = False,
) -> None:
    """Configure structlog and route the standard library's loggers through it.

    ``batched`` writes the lines of one turn of the event loop together (see
    :class:`LineWriter`); ``cache`` lets each logger build its bound logger once, on first
    use, so it must be the last configuration of the process. The service uses both; tools
    and tests read lines as they come and may configure again.
    """
    out = stream if stream is not None else sys.stdout
    flush_logs()
    writer = LineWriter(out, batched=batched)
    renderer: Processor = (
        structlog.dev.ConsoleRenderer(colors=False)
        if fmt == "console"
        else structlog.processors.JSONRenderer(serializer=_json)
    )
    shared: list[Processor] = [
        _request_id,
        structlog.processors.add_log_level,
        Timestamper(),
        _exception_summary,
    ]
    allow_list = AllowList()
    structlog.configure(
        processors=[*shared, allow_list, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        # One writer for every logger: the default factory builds a new one per log call.
        logger_factory=writer,
        cache_logger_on_first_use=cache,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[_stdlib_message, *shared],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            allow_list,
            renderer,
        ],
    )
    handler = _WriterHandler(writer)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(_LEVELS[level])
