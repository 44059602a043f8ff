"""Start-up self-checks: the safe HTTP parser and library versions are really in use."""

from __future__ import annotations

import aiohttp
from aiohttp import http_parser

__all__ = ["MIN_AIOHTTP", "startup_problems"]

MIN_AIOHTTP = (3, 14, 3)  # first release without the known request-smuggling advisories


def _version(text: str) -> tuple[int, ...]:
    parts: list[int] = []
    for piece in text.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def startup_problems() -> list[str]:
    """Lines describing unsafe runtime conditions; empty when all is well."""
    problems: list[str] = []
    if _version(aiohttp.__version__) < MIN_AIOHTTP:
        wanted = ".".join(map(str, MIN_AIOHTTP))
        problems.append(f"aiohttp: version {aiohttp.__version__} is older than {wanted}")
    if http_parser.HttpRequestParser.__module__ != "aiohttp._http_parser":
        problems.append(
            "aiohttp: the C HTTP parser is not in use (AIOHTTP_NO_EXTENSIONS set or no wheel); "
            "the pure-Python parser has had request-smuggling bugs"
        )
    return problems
