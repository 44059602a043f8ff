"""``closures.txt``: the days the practice manager closes the practice, in their own file.

One closure per line: a date or a range, then an optional label::

    # Christmas and New Year
    2026-12-24..2027-01-02 Christmas
    2027-04-06

Everything after a ``#`` is a comment. A labelled closure may have its own closed text,
``closed.<key>.txt`` (and ``closed.<key>.<channel>.txt``), where the key is the label in lower
case with every run of other characters as one dash: ``Staff training`` is
``closed.staff-training.txt``. The label is what ``{closed_reason}`` says.
"""

from __future__ import annotations

import re

from bot.hours import Closure, parse_day
from bot.templates.syntax import Problem

__all__ = ["CLOSURES_FILE", "closure_key", "parse_closures"]

CLOSURES_FILE = "closures.txt"
_LINE = re.compile(
    r"(?P<first>\S+?)(?:\.\.(?P<last>\S+))?(?:[ \t]+(?P<label>.*))?", flags=re.DOTALL
)
_LONGEST_LABEL = 60
_EXAMPLE = "2026-12-24..2027-01-02 Christmas, or one day such as 2027-04-06"


def closure_key(label: str) -> str:
    """The part of a closed text's file name that picks it for a closure labelled ``label``."""
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


def parse_closures(text: str, path: str) -> tuple[list[Closure], list[Problem]]:
    """The closures in ``text`` (a ``closures.txt`` shown as ``path``), and every problem,
    each at its line and column."""
    closures: list[Closure] = []
    problems: list[Problem] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].rstrip()
        indent = len(line) - len(line.lstrip())
        line = line.strip()
        if not line:
            continue
        match = _LINE.fullmatch(line)
        if match is None:  # pragma: no cover - the pattern matches any non-blank line
            continue
        column = indent + 1
        try:
            first = parse_day(match["first"])
            last = parse_day(match["last"]) if match["last"] is not None else first
        except ValueError as error:
            problems.append(Problem(path, number, column, f"{error}; a line reads {_EXAMPLE}"))
            continue
        label = " ".join((match["label"] or "").split())
        if last < first:
            problems.append(
                Problem(
                    path,
                    number,
                    column,
                    "the range ends before it starts; write the earlier date first",
                )
            )
        elif label and not closure_key(label):
            problems.append(
                Problem(
                    path,
                    number,
                    column + match.start("label"),
                    "a label needs a letter or a digit (it names the closure's own closed text)",
                )
            )
        elif len(label) > _LONGEST_LABEL:
            problems.append(
                Problem(
                    path,
                    number,
                    column + match.start("label"),
                    f"the label is {len(label)} characters; keep it to {_LONGEST_LABEL}",
                )
            )
        else:
            closures.append(Closure(first, last, label))
    return closures, problems
