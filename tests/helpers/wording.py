"""Telling the wording checks' notes (SPEC §11) from the other warnings of ``check``."""

from __future__ import annotations

from bot.wording import LONGEST_WORDS

__all__ = ["is_wording_note"]


def is_wording_note(warning: str) -> bool:
    """Whether ``warning`` is a wording check's: a missing point, or a text too long."""
    return ": it no longer says " in warning or f"under {LONGEST_WORDS} words" in warning
