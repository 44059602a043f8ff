"""Log output captured exactly as the CLI configures it."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import structlog

from bot.logging import configure_logging

__all__ = ["captured_logs"]


@contextmanager
def captured_logs(level: str = "debug", fmt: str = "json") -> Iterator[io.StringIO]:
    """Configure logging as ``serve`` does, into a buffer; restore everything afterwards."""
    root = logging.getLogger()
    handlers, root_level = root.handlers[:], root.level
    stream = io.StringIO()
    configure_logging(level, fmt, stream=stream)
    try:
        yield stream
    finally:
        structlog.reset_defaults()
        root.handlers[:] = handlers
        root.setLevel(root_level)
