"""Recorded webhook payloads: ``tests/fixtures/<channel>/<case>.json``, byte for byte.

The files keep Meta's escaping (``\\u00e9``, ``\\/``), so ``fixture_bytes`` is what a
signature test must HMAC; ``fixture_json`` is what ``Adapter.parse`` receives.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["CHANNELS", "FIXTURES_DIR", "all_fixtures", "fixture_bytes", "fixture_json"]

FIXTURES_DIR = Path(__file__).resolve().parent.parent / "fixtures"
CHANNELS = ("whatsapp", "messenger", "instagram")


def all_fixtures() -> list[tuple[str, str]]:
    """Every ``(channel, case)`` with a payload file, sorted."""
    return [
        (channel, path.stem)
        for channel in CHANNELS
        for path in sorted((FIXTURES_DIR / channel).glob("*.json"))
    ]


def fixture_bytes(channel: str, case: str) -> bytes:
    """The raw bytes of one recorded payload, as Meta would put them on the wire."""
    if channel not in CHANNELS or (channel, case) not in all_fixtures():
        raise KeyError(f"no fixture {channel}/{case}")
    return (FIXTURES_DIR / channel / f"{case}.json").read_bytes()


def fixture_json(channel: str, case: str) -> dict[str, Any]:
    """One recorded payload decoded as the web layer decodes it: a JSON object."""
    decoded = json.loads(fixture_bytes(channel, case))
    if not isinstance(decoded, dict):
        raise TypeError(f"fixture {channel}/{case} is not a JSON object")
    return decoded
