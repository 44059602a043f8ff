"""The syntax of a reply text: placeholders, literal braces, and where a mistake is.

Placeholders are ``{name}`` from a fixed list; ``{{`` and ``}}`` are literal braces; anything
else in braces is an error reported as ``path:line:col: message`` (columns count characters
from 1), in words a practice manager can act on. So is a control character other than tab
and line ends (C0, DEL, C1, bidirectional overrides): editors hide it, and patients would get
it in their reply.

Rendering rules (:meth:`Template.render`):

- A line whose placeholders are all empty is dropped (no booking URL: no "Book online:" line).
- When dropping a line leaves two blank lines next to each other, only one is kept; blank lines
  the manager typed next to each other are left alone.
- Trailing spaces on each line, blank lines at the start and whitespace at the end are removed.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bot.errors import TemplateError

__all__ = [
    "CONTACT_PLACEHOLDERS",
    "PLACEHOLDERS",
    "InvalidTemplatesError",
    "Problem",
    "Template",
    "parse_template",
]

PLACEHOLDERS = (
    "practice_name",
    "phone",
    "email",
    "booking_url",
    "website",
    "opening_hours",
    "next_opening",
    "closed_reason",
    "urgent_help",
)
CONTACT_PLACEHOLDERS = ("phone", "email", "booking_url")
_PLACEHOLDER_LIST = ", ".join(f"{{{name}}}" for name in PLACEHOLDERS)
# C0 but tab and newline, DEL and C1; and the bidirectional overrides and isolates, which
# reorder how a line is shown (a phone number could read differently from what is sent).
_CONTROL_CHARS = frozenset(
    chr(c)
    for c in [*range(0x20), *range(0x7F, 0xA0), *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
) - {"\t", "\n"}


@dataclass(frozen=True, slots=True)
class Problem:
    """One validation problem at a position; ``str()`` gives ``path:line:col: message``."""

    path: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: {self.message}"

    @property
    def position(self) -> str:
        """``file.txt:line:col`` without the message: what logs may carry."""
        return f"{Path(self.path).name}:{self.line}:{self.col}"


class InvalidTemplatesError(TemplateError):
    """Templates that do not validate, with the problems kept structured as well."""

    def __init__(self, details: Sequence[Problem]) -> None:
        super().__init__([str(p) for p in details])
        self.details = tuple(details)

    @property
    def files(self) -> list[str]:
        """The file names with problems, in order of first mention."""
        return list(dict.fromkeys(Path(p.path).name for p in self.details))


@dataclass(frozen=True, slots=True)
class _Field:
    name: str


_Part = str | _Field


@dataclass(frozen=True, slots=True)
class Template:
    """One parsed template file: lines of literal text and placeholders."""

    name: str  # file name, e.g. "closed.whatsapp.txt"
    path: str  # as shown in messages, e.g. "templates/closed.whatsapp.txt"
    lines: tuple[tuple[_Part, ...], ...]
    source: str = field(default="", repr=False, compare=False)  # the file's text, as written

    @property
    def placeholders(self) -> frozenset[str]:
        """Every placeholder name the template uses."""
        return frozenset(p.name for line in self.lines for p in line if isinstance(p, _Field))

    def render(self, values: Mapping[str, str]) -> str:
        """The text with placeholders filled in, following the module's line rules."""
        out: list[str] = []
        dropped = False
        for line in self.lines:
            fields = [values[p.name] for p in line if isinstance(p, _Field)]
            if fields and not any(v.strip() for v in fields):
                dropped = True
                continue
            text = "".join(values[p.name] if isinstance(p, _Field) else p for p in line).rstrip()
            if not text and out and not out[-1] and dropped:
                continue  # a dropped line would leave a double blank line
            out.append(text)
            dropped = False
        while out and not out[0]:
            out.pop(0)
        return "\n".join(out).rstrip()


def _name_problem(inner: str) -> str | None:
    """Why ``{inner}`` is not a placeholder, in words a practice manager can act on."""
    if inner in PLACEHOLDERS:
        return None
    if not inner.strip():
        return (
            f"empty placeholder {{{inner}}}; put a name inside, one of {_PLACEHOLDER_LIST} "
            "(write {{ and }} to show braces)"
        )
    cleaned = inner.strip().lower().replace(" ", "_")
    if cleaned in PLACEHOLDERS:
        return f"write the placeholder as {{{cleaned}}}: lower case, no spaces"
    extra = re.match(r"\s*([A-Za-z_]+)\s*[.!:\[]", inner)
    if extra is not None and extra[1].lower() in PLACEHOLDERS:
        return (
            f"placeholder {{{inner}}} has extra formatting, which is not supported; "
            f"write just {{{extra[1].lower()}}}"
        )
    message = f"unknown placeholder {{{inner}}}; use one of {_PLACEHOLDER_LIST}"
    close = difflib.get_close_matches(cleaned, PLACEHOLDERS, n=1)
    if close:
        message += f" (did you mean {{{close[0]}}}?)"
    return message + "; write {{ and }} to show braces"


def _control_problem(path: str, line: int, col: int, char: str) -> Problem:
    return Problem(
        path,
        line,
        col,
        f"invisible control character U+{ord(char):04X} is not allowed; "
        "retype this part of the line",
    )


def _scan(text: str, path: str) -> tuple[list[tuple[_Part, ...]], list[Problem]]:
    """Split ``text`` into lines of literals and placeholders, recording problem positions."""
    lines: list[tuple[_Part, ...]] = []
    parts: list[_Part] = []
    buffer: list[str] = []
    problems: list[Problem] = []
    line, col, i, size = 1, 1, 0, len(text)

    def flush() -> None:
        if buffer:
            parts.append("".join(buffer))
            buffer.clear()

    while i < size:
        char = text[i]
        if char == "\n":
            flush()
            lines.append(tuple(parts))
            parts.clear()
            line, col, i = line + 1, 1, i + 1
        elif char in "{}" and text.startswith(char * 2, i):
            buffer.append(char)  # {{ or }}: a literal brace
            col, i = col + 2, i + 2
        elif char == "{":
            end = i + 1
            while end < size and text[end] not in "{}\n":
                end += 1
            if end == size or text[end] != "}":
                problems.append(
                    Problem(
                        path,
                        line,
                        col,
                        "'{' is not closed by '}' on the same line; "
                        "write {{ to show a '{' in the message",
                    )
                )
                col, i = col + 1, i + 1
                continue
            inner = text[i + 1 : end]
            controls = [
                _control_problem(path, line, col + 1 + at, c)
                for at, c in enumerate(inner)
                if c in _CONTROL_CHARS
            ]
            if controls:
                # Naming the placeholder would echo the control characters into the report.
                problems.extend(controls)
            elif (problem := _name_problem(inner)) is not None:
                problems.append(Problem(path, line, col, problem))
            else:
                flush()
                parts.append(_Field(inner))
            col, i = col + end + 1 - i, end + 1
        elif char == "}":
            problems.append(
                Problem(
                    path,
                    line,
                    col,
                    "'}' without a matching '{'; write }} to show a '}' in the message",
                )
            )
            col, i = col + 1, i + 1
        elif char in _CONTROL_CHARS:
            problems.append(_control_problem(path, line, col, char))
            col, i = col + 1, i + 1
        else:
            buffer.append(char)
            col, i = col + 1, i + 1
    flush()
    lines.append(tuple(parts))
    return lines, problems


def parse_template(text: str, path: str) -> Template:
    """Parse template ``text`` (already decoded) shown in messages as ``path``.

    Raises:
        InvalidTemplatesError: for any brace that is not a known placeholder or a literal
            brace, and for any control character other than tab and line ends.
    """
    lines, problems = _scan(text.replace("\r\n", "\n").replace("\r", "\n"), path)
    if problems:
        raise InvalidTemplatesError(problems)
    return Template(name=Path(path).name, path=path, lines=tuple(lines), source=text)
