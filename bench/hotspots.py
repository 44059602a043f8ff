"""Where the time goes: a summary of a py-spy ``--format raw`` profile (collapsed stacks).

Each line of the file is ``frame;frame;...;frame COUNT`` with frames like
``transaction (bot/store/sqlite.py:263)``. *Self* time is the share of samples whose innermost
frame is the function; *inclusive* time the share of samples that have it anywhere on the stack.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Hotspots", "format_hotspots", "summarize"]

_LINE = re.compile(r":\d+\)$")
OURS = ("bot/", "adapters/")


@dataclass(frozen=True, slots=True)
class Hotspots:
    """Sample counts per function (line numbers dropped)."""

    samples: int
    self_counts: Counter[str]
    inclusive: Counter[str]


def summarize(path: Path) -> Hotspots:
    """Read a raw py-spy profile."""
    self_counts: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    samples = 0
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            stack, _, count_text = line.rstrip("\n").rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            count = int(count_text)
            frames = [_LINE.sub(")", frame) for frame in stack.split(";")]
            samples += count
            self_counts[frames[-1]] += count
            for frame in set(frames):
                inclusive[frame] += count
    return Hotspots(samples, self_counts, inclusive)


def _ours(frame: str) -> bool:
    return any(f"({prefix}" in frame for prefix in OURS)


def format_hotspots(spots: Hotspots, top: int = 20) -> list[str]:
    """Lines: the top functions by self time, then our own functions by inclusive time."""
    if not spots.samples:
        return ["no samples (is py-spy allowed to attach? it needs ptrace rights)"]
    lines = [f"{spots.samples} samples; self time (innermost frame):"]
    lines += [
        f"  {100 * n / spots.samples:5.1f}%  {frame}"
        for frame, n in spots.self_counts.most_common(top)
    ]
    lines.append("inclusive time, bot/ and adapters/ only:")
    ours = [(frame, n) for frame, n in spots.inclusive.most_common() if _ours(frame)]
    lines += [f"  {100 * n / spots.samples:5.1f}%  {frame}" for frame, n in ours[:top]]
    return lines
