"""structlog, configured once: JSON lines (or console) on stdout, nothing personal in them.

The last processor before the renderer is an allow-list of event keys: a key nobody reviewed
is dropped and counted, so logging a whole object by mistake cannot leak it. Exceptions are
reduced to their type and frames (file, line, function): exception messages and locals can
hold request bodies (``JSONDecodeError.doc``), so they are never rendered.
"""

from __future__ import annotations

import logging
import sys
import traceback
from types import TracebackType
from typing import TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

__all__ = ["ALLOWED_KEYS", "configure_logging", "debug_enabled", "dropped_keys"]

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
        # lifecycle, configuration and templates
        "host",
        "port",
        "store",
        "channels",
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
    }
)

_dropped = {"count": 0}
_state = {"debug": True}  # until configured, structlog's defaults print everything


def debug_enabled() -> bool:
    """True when DEBUG lines are written (lets hot paths skip building them)."""
    return _state["debug"]


def dropped_keys() -> int:
    """How many keys the allow-list has dropped since start-up."""
    return _dropped["count"]


def _allow_list(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    unknown = [key for key in event_dict if key not in ALLOWED_KEYS]
    if unknown:
        for key in unknown:
            del event_dict[key]
        _dropped["count"] += len(unknown)
        event_dict["dropped_keys"] = len(unknown)
    return event_dict


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


def _stdlib_message(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    # Records from other libraries (aiohttp, asyncio) carry free text that may interpolate
    # values; keep only the logger name and level and a fixed event name.
    record = event_dict.get("_record")
    if isinstance(record, logging.LogRecord):
        event_dict["event"] = "library_log"
        event_dict["logger"] = record.name
    return event_dict


_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def configure_logging(level: str = "info", fmt: str = "json", stream: TextIO | None = None) -> None:
    """Configure structlog and route the standard library's loggers through it."""
    out = stream if stream is not None else sys.stdout
    _state["debug"] = _LEVELS[level] <= logging.DEBUG
    renderer: Processor = (
        structlog.dev.ConsoleRenderer(colors=False)
        if fmt == "console"
        else structlog.processors.JSONRenderer()
    )
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _exception_summary,
    ]
    structlog.configure(
        processors=[*shared, _allow_list, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.WriteLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[_stdlib_message, *shared],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _allow_list,
            renderer,
        ],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(_LEVELS[level])
