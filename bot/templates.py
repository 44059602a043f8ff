"""The practice manager's reply texts: loading, validation, rendering, live reload, preview.

SPEC §5 is the contract. Files in ``TEMPLATES_DIR``: ``reply.txt`` (open), ``closed.txt``
(closed), optional ``reply.<channel>.txt`` / ``closed.<channel>.txt`` overrides. Placeholders are
``{name}`` from a fixed list; ``{{`` and ``}}`` are literal braces; anything else in braces is an
error reported as ``path:line:col: message`` (columns count characters from 1).

Rendering rules:

- A line whose placeholders are all empty is dropped (no booking URL: no "Book online:" line).
- When dropping a line leaves two blank lines next to each other, only one is kept; blank lines
  the manager typed next to each other are left alone.
- Trailing spaces on each line, blank lines at the start and whitespace at the end are removed.

Validation runs at start-up, on reload and for ``practice-bot check``; template text is not
patient data, but logs still carry only file names and ``line:col`` positions.
"""

from __future__ import annotations

import asyncio
import difflib
import enum
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

import structlog

from bot.errors import TemplateError
from bot.events import Channel
from bot.hours import (
    DAY_NAMES,
    LONGEST_NEXT_OPENING,
    MONTH_NAMES,
    Schedule,
    format_next_opening,
)
from bot.replies import Reply

__all__ = [
    "BOOK_ONLINE_TITLE",
    "BUTTON_TITLE_LIMIT",
    "CALL_US_TITLE",
    "CHANNEL_LIMITS",
    "CONTACT_PLACEHOLDERS",
    "MESSENGER_BUTTON_TEXT_LIMIT",
    "PLACEHOLDERS",
    "WHATSAPP_BUTTON_BODY_LIMIT",
    "ChannelLimit",
    "InvalidTemplatesError",
    "LiveTemplates",
    "PracticeInfo",
    "Problem",
    "Template",
    "TemplateKind",
    "TemplateSet",
    "check_templates",
    "parse_template",
    "preview",
    "uses_buttons",
]

_log = structlog.get_logger(__name__)

PLACEHOLDERS = (
    "practice_name",
    "phone",
    "email",
    "booking_url",
    "website",
    "opening_hours",
    "next_opening",
)
CONTACT_PLACEHOLDERS = ("phone", "email", "booking_url")

BOOK_ONLINE_TITLE = "Book online"
CALL_US_TITLE = "Call us"
BUTTON_TITLE_LIMIT = 20  # WhatsApp display_text and Messenger button titles
WHATSAPP_BUTTON_BODY_LIMIT = 1024  # cta_url interactive body
MESSENGER_BUTTON_TEXT_LIMIT = 640  # button template text

_MAX_FILE_BYTES = 64 * 1024
_BOM = b"\xef\xbb\xbf"
_PLACEHOLDER_LIST = ", ".join(f"{{{name}}}" for name in PLACEHOLDERS)


class TemplateKind(enum.StrEnum):
    """Which text: ``reply`` during opening hours, ``closed`` otherwise."""

    REPLY = "reply"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class ChannelLimit:
    """The longest text a channel accepts, in its own unit."""

    label: str  # for messages: "WhatsApp"
    limit: int
    unit: Literal["characters", "bytes"]

    def measure(self, text: str) -> int:
        """Length of ``text`` in this channel's unit (Instagram counts UTF-8 bytes)."""
        return len(text.encode()) if self.unit == "bytes" else len(text)


CHANNEL_LIMITS: Mapping[Channel, ChannelLimit] = {
    Channel.WHATSAPP: ChannelLimit("WhatsApp", 4096, "characters"),
    Channel.MESSENGER: ChannelLimit("Messenger", 2000, "characters"),
    Channel.INSTAGRAM: ChannelLimit("Instagram", 1000, "bytes"),
}


@dataclass(frozen=True, slots=True)
class PracticeInfo:
    """The practice's details shown in replies (PRACTICE_* settings); ``None`` = not set."""

    name: str
    phone: str
    email: str | None = None
    booking_url: str | None = None
    website: str | None = None


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
            problem = _name_problem(inner)
            if problem is None:
                flush()
                parts.append(_Field(inner))
            else:
                problems.append(Problem(path, line, col, problem))
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
        else:
            buffer.append(char)
            col, i = col + 1, i + 1
    flush()
    lines.append(tuple(parts))
    return lines, problems


def parse_template(text: str, path: str) -> Template:
    """Parse template ``text`` (already decoded) shown in messages as ``path``.

    Raises:
        InvalidTemplatesError: for any brace that is not a known placeholder or a literal brace.
    """
    lines, problems = _scan(text.replace("\r\n", "\n").replace("\r", "\n"), path)
    if problems:
        raise InvalidTemplatesError(problems)
    return Template(name=Path(path).name, path=path, lines=tuple(lines))


def _decode(data: bytes, path: str) -> tuple[str | None, Problem | None]:
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        line = data.count(b"\n", 0, exc.start) + 1
        col = len(data[line_start : exc.start].decode("utf-8")) + 1
        return None, Problem(
            path,
            line,
            col,
            f"not UTF-8 text (byte 0x{data[exc.start]:02X} is not valid here); "
            "save the file with UTF-8 encoding",
        )


def _load_file(path: Path) -> tuple[Template | None, list[Problem]]:
    shown = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return None, [Problem(shown, 1, 1, f"cannot be read ({reason})")]
    if len(data) > _MAX_FILE_BYTES:
        return None, [Problem(shown, 1, 1, f"file is too large (over {_MAX_FILE_BYTES} bytes)")]
    text, problem = _decode(data, shown)
    if text is None:
        return None, [problem] if problem else []
    if not text.strip():
        return None, [Problem(shown, 1, 1, "the file is empty; write the message patients get")]
    try:
        return parse_template(text, shown), []
    except InvalidTemplatesError as exc:
        return None, list(exc.details)


def _file_name(kind: TemplateKind, channel: Channel | None = None) -> str:
    return f"{kind}.txt" if channel is None else f"{kind}.{channel}.txt"


_KNOWN_FILES = frozenset(
    [_file_name(k) for k in TemplateKind]
    + [_file_name(k, c) for k in TemplateKind for c in Channel]
)
_DESCRIPTIONS = {
    TemplateKind.REPLY: "the reply sent during opening hours",
    TemplateKind.CLOSED: "the reply sent while the practice is closed",
}


def _values(practice: PracticeInfo, opening_hours: str, next_opening: str) -> dict[str, str]:
    return {
        "practice_name": practice.name,
        "phone": practice.phone,
        "email": practice.email or "",
        "booking_url": practice.booking_url or "",
        "website": practice.website or "",
        "opening_hours": opening_hours,
        "next_opening": next_opening,
    }


def uses_buttons(channel: Channel, reply: Reply) -> bool:
    """Whether ``channel`` sends ``reply`` in its button form (SPEC §5) rather than plain text."""
    if not reply.booking_url:
        return False
    if channel is Channel.WHATSAPP:
        return len(reply.text) <= WHATSAPP_BUTTON_BODY_LIMIT
    if channel is Channel.MESSENGER:
        return len(reply.text) <= MESSENGER_BUTTON_TEXT_LIMIT
    return False  # Instagram: always plain text


class TemplateSet:
    """Loaded, validated template files for one practice and schedule; use :meth:`load`."""

    def __init__(
        self,
        *,
        directory: Path,
        practice: PracticeInfo,
        schedule: Schedule,
        templates: Mapping[str, Template],
        warnings: Sequence[str] = (),
    ) -> None:
        self.directory = directory
        self.practice = practice
        self.schedule = schedule
        self._templates = dict(templates)
        self._warnings = list(warnings)
        self._opening_hours = schedule.describe()

    @classmethod
    def load(cls, directory: Path, practice: PracticeInfo, schedule: Schedule) -> TemplateSet:
        """Read and validate every template file in ``directory``.

        Raises:
            InvalidTemplatesError: a :class:`~bot.errors.TemplateError` listing every problem.
        """
        templates, problems, warnings = _validate(directory, practice, schedule)
        if problems:
            raise InvalidTemplatesError(problems)
        return cls(
            directory=directory,
            practice=practice,
            schedule=schedule,
            templates=templates,
            warnings=warnings,
        )

    @property
    def warnings(self) -> list[str]:
        """Problems that do not stop the service (the CLI adds ``warning: ``)."""
        return list(self._warnings)

    @property
    def files(self) -> tuple[str, ...]:
        """The template file names loaded, sorted."""
        return tuple(sorted(self._templates))

    def template(self, channel: Channel, kind: TemplateKind) -> Template:
        """The template ``channel`` uses for ``kind``: its override if present, else the base."""
        return self._templates.get(_file_name(kind, channel)) or self._templates[_file_name(kind)]

    def render(self, channel: Channel, at: datetime) -> Reply:
        """The reply for ``channel`` at the aware moment ``at`` (closed text when closed)."""
        kind = TemplateKind.REPLY if self.schedule.is_open(at) else TemplateKind.CLOSED
        return self.render_kind(channel, kind, at)

    def render_kind(self, channel: Channel, kind: TemplateKind, at: datetime) -> Reply:
        """The ``kind`` text for ``channel`` at ``at``, whatever the opening hours say."""
        template = self.template(channel, kind)
        next_opening = ""
        if "next_opening" in template.placeholders:
            moment = self.schedule.next_opening(at)
            next_opening = format_next_opening(moment) if moment is not None else ""
        text = template.render(_values(self.practice, self._opening_hours, next_opening))
        return Reply(
            text=text,
            booking_url=self.practice.booking_url or None,
            phone=self.practice.phone or None,
            source=template.name,
        )


def _validate(
    directory: Path, practice: PracticeInfo, schedule: Schedule
) -> tuple[dict[str, Template], list[Problem], list[str]]:
    templates: dict[str, Template] = {}
    problems: list[Problem] = []
    warnings: list[str] = []
    try:
        present = {p.name for p in directory.iterdir() if p.is_file()}
    except OSError:
        present = set()
    for kind in TemplateKind:
        name = _file_name(kind)
        if name not in present:
            where = "" if directory.is_dir() else f"; the folder {directory} does not exist"
            problems.append(
                Problem(
                    str(directory / name), 1, 1, f"file not found ({_DESCRIPTIONS[kind]}){where}"
                )
            )
    warnings.extend(
        f"{directory / name}: this file is not used; the names that are used are "
        "reply.txt, closed.txt and reply.<channel>.txt / closed.<channel>.txt "
        "for whatsapp, messenger or instagram"
        for name in sorted(present)
        if name.endswith(".txt") and name not in _KNOWN_FILES
    )
    for name in sorted(_KNOWN_FILES & present):
        template, file_problems = _load_file(directory / name)
        problems.extend(file_problems)
        if template is not None:
            templates[name] = template

    opening_hours = schedule.describe()
    longest = _values(practice, opening_hours, LONGEST_NEXT_OPENING)
    for template in templates.values():
        problems.extend(_content_problems(template, longest))
    for kind in TemplateKind:
        for channel in Channel:
            template = templates.get(_file_name(kind, channel)) or templates.get(_file_name(kind))
            if template is None:
                continue
            problem, warning = _length_checks(template, kind, channel, practice, longest)
            problems.extend(problem)
            warnings.extend(warning)
    return templates, problems, warnings


def _content_problems(template: Template, values: Mapping[str, str]) -> Iterable[Problem]:
    used = template.placeholders
    if not any(name in used and values[name].strip() for name in CONTACT_PLACEHOLDERS):
        available = [f"{{{n}}}" for n in CONTACT_PLACEHOLDERS if values[n].strip()]
        choices = " or ".join(available) if available else "{phone}"
        yield Problem(
            template.path,
            1,
            1,
            f"the message gives patients no way to reach the practice; include {choices}",
        )


def _length_checks(
    template: Template,
    kind: TemplateKind,
    channel: Channel,
    practice: PracticeInfo,
    values: Mapping[str, str],
) -> tuple[list[Problem], list[str]]:
    limit = CHANNEL_LIMITS[channel]
    text = template.render(values)
    size = limit.measure(text)
    problems: list[Problem] = []
    warnings: list[str] = []
    if size > limit.limit:
        advice = "shorten it"
        if template.name == _file_name(kind):
            advice += f", or add {_file_name(kind, channel)} with a shorter text for {limit.label}"
        problems.append(
            Problem(
                template.path,
                1,
                1,
                f"too long for {limit.label}: {size} {limit.unit} when sent "
                f"(with the longest next-opening date), the limit is {limit.limit}; {advice}",
            )
        )
        return problems, warnings
    if not practice.booking_url:
        return problems, warnings
    button_limit = {
        Channel.WHATSAPP: WHATSAPP_BUTTON_BODY_LIMIT,
        Channel.MESSENGER: MESSENGER_BUTTON_TEXT_LIMIT,
    }.get(channel)
    if button_limit is not None and len(text) > button_limit:
        warnings.append(
            f"{template.path}: on {limit.label} this text is {len(text)} characters, over the "
            f"{button_limit} that fit with a '{BOOK_ONLINE_TITLE}' button, so {limit.label} "
            "patients get plain text without the button"
        )
    return problems, warnings


def check_templates(
    directory: Path, practice: PracticeInfo, schedule: Schedule
) -> tuple[list[str], list[str]]:
    """(errors, warnings) for ``practice-bot check``: every problem, nothing raised."""
    _, problems, warnings = _validate(directory, practice, schedule)
    return [str(p) for p in problems], warnings


_Fingerprint = frozenset[tuple[str, int, int, int]]


def _fingerprint(directory: Path) -> _Fingerprint:
    """(name, mtime_ns, size, inode) of every ``.txt`` file: stat calls only."""
    try:
        with os.scandir(directory) as entries:
            return frozenset(
                (e.name, s.st_mtime_ns, s.st_size, s.st_ino)
                for e in entries
                if e.name.endswith(".txt")
                for s in [e.stat()]
            )
    except OSError:
        return frozenset()


class LiveTemplates:
    """The last good :class:`TemplateSet`, reloaded when the files change.

    A failed reload keeps the last good set; ``error`` and ``failed_files`` say what is wrong
    until a later edit validates.
    """

    def __init__(
        self,
        directory: Path,
        practice: PracticeInfo,
        schedule: Schedule,
        *,
        on_reload: Callable[[bool], None] | None = None,
    ) -> None:
        """Load the templates now.

        Raises:
            InvalidTemplatesError: when the files do not validate at start-up.
        """
        self.directory = directory
        self.practice = practice
        self.schedule = schedule
        self.on_reload = on_reload
        self.error: InvalidTemplatesError | None = None
        self.failed_files: list[str] = []
        self._seen = _fingerprint(directory)
        self._current = TemplateSet.load(directory, practice, schedule)

    @property
    def current(self) -> TemplateSet:
        """The templates in use: the last set that validated."""
        return self._current

    def render(self, channel: Channel, at: datetime) -> Reply:
        """Render with the templates in use (see :meth:`TemplateSet.render`)."""
        return self._current.render(channel, at)

    def reload(self) -> bool:
        """Re-read the folder if any ``.txt`` file changed, was added or removed.

        Returns True when a changed set validated and is now in use; False when nothing
        changed or the change failed (the last good set stays; see ``error``).
        """
        seen = _fingerprint(self.directory)
        if seen == self._seen:
            return False
        self._seen = seen
        try:
            loaded = TemplateSet.load(self.directory, self.practice, self.schedule)
        except InvalidTemplatesError as exc:
            self.error = exc
            self.failed_files = exc.files
            _log.warning(
                "templates_reload_failed",
                files=exc.files,
                positions=[p.position for p in exc.details],
            )
            self._notify(ok=False)
            return False
        self._current = loaded
        self.error = None
        self.failed_files = []
        _log.info("templates_reloaded", files=list(loaded.files))
        self._notify(ok=True)
        return True

    def _notify(self, *, ok: bool) -> None:
        if self.on_reload is not None:
            self.on_reload(ok)

    async def watch(self, interval: float = 1.0) -> None:
        """Poll the folder every ``interval`` seconds until cancelled (a background task)."""
        while True:
            await asyncio.sleep(interval)
            self.reload()


def _plain_reason(channel: Channel, reply: Reply) -> str:
    if channel is Channel.INSTAGRAM:
        return "Instagram replies are always plain text"
    if not reply.booking_url:
        return "PRACTICE_BOOKING_URL is not set"
    limit = (
        WHATSAPP_BUTTON_BODY_LIMIT if channel is Channel.WHATSAPP else MESSENGER_BUTTON_TEXT_LIMIT
    )
    return f"the text is {len(reply.text)} characters, over the {limit} that fit with buttons"


def _buttons_text(channel: Channel, reply: Reply) -> str:
    if not uses_buttons(channel, reply):
        return f"No buttons, sent as plain text: {_plain_reason(channel, reply)}."
    if channel is Channel.WHATSAPP:
        return f"Button: [{BOOK_ONLINE_TITLE}] opens {reply.booking_url}"
    return (
        f"Buttons: [{BOOK_ONLINE_TITLE}] opens {reply.booking_url}  "
        f"[{CALL_US_TITLE}] calls {reply.phone}"
    )


def preview(templates: TemplateSet, channel: Channel | None, at: datetime) -> str:
    """What a patient would get at ``at``: per channel (or all three), text, file and buttons."""
    schedule = templates.schedule
    local = at.astimezone(schedule.tz)
    when = (
        f"{DAY_NAMES[local.weekday()]} {local.day} {MONTH_NAMES[local.month - 1]} "
        f"{local.year} {local:%H:%M} {local.tzname()}"
    )
    if schedule.is_open(at):
        state = "the practice is open"
    else:
        state = "the practice is closed"
        moment = schedule.next_opening(at)
        if moment is not None:
            state += f"; it next opens {format_next_opening(moment)}"
    blocks = [f"At {when} {state}."]
    for each in [channel] if channel is not None else list(Channel):
        reply = templates.render(each, at)
        limit = CHANNEL_LIMITS[each]
        rule = "=" * 8
        blocks.append(
            f"{rule} {limit.label}: from {reply.source}, "
            f"{limit.measure(reply.text)} of {limit.limit} {limit.unit} {rule}\n"
            f"{reply.text}\n"
            f"{'-' * 8} {_buttons_text(each, reply)}"
        )
    return "\n\n".join(blocks)
