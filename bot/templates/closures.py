"""``closures.txt``: the days the practice manager closes the practice, in their own file.

One closure per line: a date or a range, then an optional label::

    # Christmas and New Year
    2026-12-24..2027-01-02 Christmas
    2027-04-06

Everything after a ``#`` is a comment. A labelled closure may have its own closed text,
``closed.<key>.txt`` (and ``closed.<key>.<channel>.txt``), where the key is the label in lower
case with every run of other characters as one dash: ``Staff training`` is
``closed.staff-training.txt``. The label is what ``{closed_reason}`` says; with Welsh replies
(``REPLY_LANGUAGES``) the Welsh follows a bar, ``Christmas | cy: Nadolig``.
"""

from __future__ import annotations

import re

from bot.events import Channel
from bot.hours import Closure, parse_day
from bot.languages import ENGLISH, LANGUAGES, parse_translation
from bot.templates.syntax import Problem

__all__ = ["CLOSURES_FILE", "closure_key", "parse_closures"]

CLOSURES_FILE = "closures.txt"
_LINE = re.compile(
    r"(?P<first>\S+?)(?:\.\.(?P<last>\S+))?(?:[ \t]+(?P<label>.*))?", flags=re.DOTALL
)
_LONGEST_LABEL = 60
_EXAMPLE = "2026-12-24..2027-01-02 Christmas, or one day such as 2027-04-06"
# A key that is a language or an app would read as one in a file name: closed.cy.txt.
_TAKEN_KEYS = frozenset(LANGUAGES) | {c.value for c in Channel}


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
        label_column = column + (match.start("label") if match["label"] else 0)
        label, *others = (match["label"] or "").split("|")
        label = " ".join(label.split())
        translations, problem = _translations(others, path, number, label_column + len(label))
        if problem is not None:
            problems.append(problem)
        elif translations and not label:
            problems.append(
                Problem(
                    path,
                    number,
                    label_column,
                    "write the English label before the bar, e.g. 'Christmas | cy: Nadolig': "
                    "it names the closure's own texts",
                )
            )
        elif last < first:
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
                    label_column,
                    "a label needs a letter or a digit (it names the closure's own closed text)",
                )
            )
        elif closure_key(label) in _TAKEN_KEYS:
            problems.append(
                Problem(
                    path,
                    number,
                    label_column,
                    f"the label {label!r} is also the name of a language or an app in text "
                    "file names; add a word, e.g. 'Closed for training'",
                )
            )
        elif len(label) > _LONGEST_LABEL:
            problems.append(
                Problem(
                    path,
                    number,
                    label_column,
                    f"the label is {len(label)} characters; keep it to {_LONGEST_LABEL}",
                )
            )
        else:
            closures.append(Closure(first, last, label, translations))
    return closures, problems


def _translations(
    parts: list[str], path: str, line: int, column: int
) -> tuple[tuple[tuple[str, str], ...], Problem | None]:
    """The label's other languages, ``| cy: Nadolig``; or the first problem with them."""
    found: dict[str, str] = {}
    for part in parts:
        translation = parse_translation(part)
        if translation is None:
            others = ", ".join(c for c in LANGUAGES if c != ENGLISH.code)
            message = (
                "after '|' write a language and the label in it, e.g. "
                f"'Christmas | cy: Nadolig' (languages: {others})"
            )
            return (), Problem(path, line, column, message)
        code, text = translation
        if not text or len(text) > _LONGEST_LABEL or code in found:
            message = (
                f"give the {LANGUAGES[code].name} label once, 1 to {_LONGEST_LABEL} characters"
            )
            return (), Problem(path, line, column, message)
        found[code] = text
        column += len(part) + 1
    return tuple(found.items()), None
