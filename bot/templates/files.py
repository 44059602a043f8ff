"""The reply texts as files: which files there are, loading, validation and rendering.

Files in ``TEMPLATES_DIR`` (SPEC §5): ``reply.txt`` (open), ``closed.txt`` (closed), optional
``reply.<channel>.txt`` / ``closed.<channel>.txt`` overrides. Validation runs at start-up, on
reload and for ``practice-bot check``. Each channel's limits and button form come from its
adapter, the same rules a send follows; template text is not patient data, but logs still
carry only file names and ``line:col`` positions.
"""

from __future__ import annotations

import enum
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bot.adapter import Adapter, utf16_length
from bot.events import Channel
from bot.hours import LONGEST_NEXT_OPENING, Closure, Schedule, format_next_opening
from bot.replies import Reply
from bot.templates.closures import CLOSURES_FILE, closure_key, parse_closures
from bot.templates.syntax import (
    CONTACT_PLACEHOLDERS,
    InvalidTemplatesError,
    Problem,
    Template,
    parse_template,
)
from bot.wording import wording_notes

__all__ = [
    "PracticeInfo",
    "TemplateKind",
    "TemplateSet",
    "check_templates",
    "files_in_force",
]

_MAX_FILE_BYTES = 64 * 1024
_BOM = b"\xef\xbb\xbf"


class TemplateKind(enum.StrEnum):
    """Which text: ``reply`` during opening hours, ``closed`` otherwise."""

    REPLY = "reply"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class PracticeInfo:
    """The practice's details shown in replies (PRACTICE_* settings); ``None`` = not set."""

    name: str
    phone: str
    email: str | None = None
    booking_url: str | None = None
    website: str | None = None
    urgent_help: str = ""  # completes "For urgent help, …" (bot.wording); "" when none is known
    strict_wording: bool = False  # WORDING_CHECKS=strict: a text missing a point is an error


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
        if isinstance(exc, FileNotFoundError) and path.is_symlink():
            message = (
                "cannot be read: it is a link to a file that does not exist; "
                "replace the link with the text itself"
            )
        else:
            message = f"cannot be read ({exc.strerror or type(exc).__name__})"
        return None, [Problem(shown, 1, 1, message)]
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


def _file_name(kind: TemplateKind, channel: Channel | None = None, closure: str = "") -> str:
    """``reply.txt``, ``closed.whatsapp.txt``, or a closure's ``closed.christmas.txt``."""
    stem = f"{kind}.{closure}" if closure else str(kind)
    return f"{stem}.txt" if channel is None else f"{stem}.{channel}.txt"


_KNOWN_FILES = frozenset(
    [_file_name(k) for k in TemplateKind]
    + [_file_name(k, c) for k in TemplateKind for c in Channel]
)
# The longest a closure's label makes {closed_reason}, for the length checks.
_LONGEST_REASON = "Christmas Day (substitute day)"


def _closure_files(closures: Iterable[Closure]) -> frozenset[str]:
    """The closed texts the labelled ``closures`` may have."""
    keys = {closure_key(c.label) for c in closures if c.label}
    return frozenset(
        name
        for key in keys
        for name in (
            _file_name(TemplateKind.CLOSED, closure=key),
            *(_file_name(TemplateKind.CLOSED, c, key) for c in Channel),
        )
    )


_DESCRIPTIONS = {
    TemplateKind.REPLY: "the reply sent during opening hours",
    TemplateKind.CLOSED: "the reply sent while the practice is closed",
}


def _values(
    practice: PracticeInfo, opening_hours: str, next_opening: str, closed_reason: str
) -> dict[str, str]:
    return {
        "practice_name": practice.name,
        "phone": practice.phone,
        "email": practice.email or "",
        "booking_url": practice.booking_url or "",
        "website": practice.website or "",
        "opening_hours": opening_hours,
        "next_opening": next_opening,
        "closed_reason": closed_reason,
        "urgent_help": practice.urgent_help,
    }


@dataclass(slots=True)
class _Validated:
    """What reading a folder of texts found: the texts, the schedule with the manager's
    closures, the closures file as written, and every problem and warning."""

    templates: dict[str, Template]
    schedule: Schedule
    closures_text: str | None
    problems: list[Problem]
    warnings: list[str]


class TemplateSet:
    """Loaded, validated template files for one practice and schedule; use :meth:`load`.

    ``channels`` are the adapters whose rules the texts were checked against; ``schedule``
    includes the closures of the folder's ``closures.txt``.
    """

    def __init__(
        self,
        *,
        directory: Path,
        practice: PracticeInfo,
        schedule: Schedule,
        channels: Mapping[Channel, Adapter],
        templates: Mapping[str, Template],
        warnings: Sequence[str] = (),
        closures_text: str | None = None,
    ) -> None:
        self.directory = directory
        self.practice = practice
        self.schedule = schedule
        self.channels = channels
        self._templates = dict(templates)
        self._warnings = list(warnings)
        self._opening_hours = schedule.describe()
        self._closures_text = closures_text

    @classmethod
    def load(
        cls,
        directory: Path,
        practice: PracticeInfo,
        schedule: Schedule,
        channels: Mapping[Channel, Adapter],
        *,
        overlays: Sequence[Path] = (),
    ) -> TemplateSet:
        """Read and validate every template file in ``directory``; a file of the same name in
        one of ``overlays`` (a practice's own folder) is read instead, the first one winning.

        Raises:
            InvalidTemplatesError: a :class:`~bot.errors.TemplateError` listing every problem.
        """
        found = _validate(directory, practice, schedule, channels, overlays)
        if found.problems:
            raise InvalidTemplatesError(found.problems)
        return cls(
            directory=directory,
            practice=practice,
            schedule=found.schedule,
            channels=channels,
            templates=found.templates,
            warnings=found.warnings,
            closures_text=found.closures_text,
        )

    @property
    def warnings(self) -> list[str]:
        """Problems that do not stop the service (the CLI adds ``warning: ``)."""
        return list(self._warnings)

    @property
    def files(self) -> tuple[str, ...]:
        """The template file names loaded, sorted."""
        return tuple(sorted(self._templates))

    @property
    def texts(self) -> dict[str, str]:
        """Each file of the set and its text, as written (``closures.txt`` included): what
        the store keeps of a good set."""
        texts = {name: template.source for name, template in self._templates.items()}
        if self._closures_text is not None:
            texts[CLOSURES_FILE] = self._closures_text
        return dict(sorted(texts.items()))

    @classmethod
    def from_texts(
        cls,
        texts: Mapping[str, str],
        practice: PracticeInfo,
        schedule: Schedule,
        channels: Mapping[Channel, Adapter],
    ) -> TemplateSet:
        """A set saved earlier (:attr:`texts`), validated again as if it were a folder.

        Raises:
            InvalidTemplatesError: it does not validate with today's settings either.
        """
        with tempfile.TemporaryDirectory(prefix="last-good-texts-") as folder:
            for name, text in texts.items():
                (Path(folder) / Path(name).name).write_text(text, encoding="utf-8")
            return cls.load(Path(folder), practice, schedule, channels)

    def template(self, channel: Channel, kind: TemplateKind, closure: str = "") -> Template:
        """The template ``channel`` uses for ``kind``: the closure's own text (by its key)
        if there is one, then the channel's override, then the base."""
        found = self._templates.get
        if closure:
            own = found(_file_name(kind, channel, closure)) or found(
                _file_name(kind, None, closure)
            )
            if own is not None:
                return own
        return found(_file_name(kind, channel)) or self._templates[_file_name(kind)]

    def render(self, channel: Channel, at: datetime) -> Reply:
        """The reply for ``channel`` at the aware moment ``at`` (closed text when closed)."""
        kind = TemplateKind.REPLY if self.schedule.is_open(at) else TemplateKind.CLOSED
        return self.render_kind(channel, kind, at)

    def render_kind(self, channel: Channel, kind: TemplateKind, at: datetime) -> Reply:
        """The ``kind`` text for ``channel`` at ``at``, whatever the opening hours say."""
        closure = None
        if kind is TemplateKind.CLOSED:
            closure = self.schedule.closure_on(at.astimezone(self.schedule.tz).date())
        template = self.template(channel, kind, closure_key(closure.label) if closure else "")
        next_opening = ""
        if "next_opening" in template.placeholders:
            moment = self.schedule.next_opening(at)
            next_opening = format_next_opening(moment) if moment is not None else ""
        reason = ""
        if "closed_reason" in template.placeholders:
            reason = self.schedule.closed_reason(at)
        values = _values(self.practice, self._opening_hours, next_opening, reason)
        text = template.render(values)
        return Reply(
            text=text,
            booking_url=self.practice.booking_url or None,
            phone=self.practice.phone or None,
            source=template.name,
        )


def _present(directory: Path) -> set[str]:
    """The names in ``directory`` to treat as files: regular files, and entries that fail.

    A link to nothing, or an entry that cannot be looked at, counts as present so that
    loading it reports the problem by name; skipping it would quietly put the base text in
    place of a broken override. Folders and pipes (or links to them) are left out: reading
    one would fail or block.
    """
    names: set[str] = set()
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                try:
                    usable = entry.is_file() or (entry.is_symlink() and not Path(entry).exists())
                except OSError:
                    usable = True
                if usable:
                    names.add(entry.name)
    except OSError:
        return set()
    return names


def files_in_force(directory: Path, overlays: Sequence[Path] = ()) -> dict[str, Path]:
    """Each file name present, with the folder it is read from: the first overlay that has
    it, else ``directory``."""
    found: dict[str, Path] = {}
    for folder in (*overlays, directory):
        for name in _present(folder):
            found.setdefault(name, folder)
    return found


def _validate(
    directory: Path,
    practice: PracticeInfo,
    schedule: Schedule,
    channels: Mapping[Channel, Adapter],
    overlays: Sequence[Path] = (),
) -> _Validated:
    templates: dict[str, Template] = {}
    problems: list[Problem] = []
    warnings: list[str] = []
    folder_of = files_in_force(directory, overlays)
    present = set(folder_of)
    for kind in TemplateKind:
        name = _file_name(kind)
        if name not in present:
            where = "" if directory.is_dir() else f"; the folder {directory} does not exist"
            problems.append(
                Problem(
                    str(directory / name), 1, 1, f"file not found ({_DESCRIPTIONS[kind]}){where}"
                )
            )
    closures: list[Closure] = []
    closures_text = None
    if CLOSURES_FILE in present:
        closures_text, closures, file_problems = _load_closures(
            folder_of[CLOSURES_FILE] / CLOSURES_FILE
        )
        problems.extend(file_problems)
        schedule = schedule.with_closures(closures)
    known = _KNOWN_FILES | _closure_files(closures)
    warnings.extend(
        f"{folder_of[name] / name}: this file is not used; the names that are used are "
        "reply.txt, closed.txt and reply.<channel>.txt / closed.<channel>.txt "
        "for whatsapp, messenger or instagram, closures.txt, and closed.<label>.txt for a "
        "closure labelled in closures.txt"
        for name in sorted(present)
        if name.endswith(".txt") and name not in known and name != CLOSURES_FILE
    )
    for name in sorted(known & present):
        template, file_problems = _load_file(folder_of[name] / name)
        problems.extend(file_problems)
        if template is not None:
            templates[name] = template

    opening_hours = schedule.describe()
    longest = _values(practice, opening_hours, LONGEST_NEXT_OPENING, _LONGEST_REASON)
    for template in templates.values():
        problems.extend(_content_problems(template, longest))
        closed = template.name.startswith(f"{TemplateKind.CLOSED}.")
        for note in wording_notes(template.source, closed=closed):
            if practice.strict_wording:
                problems.append(Problem(template.path, 1, 1, note))
            else:
                warnings.append(f"{template.path}:1:1: {note}")
    keys = {(kind, "") for kind in TemplateKind} | {
        (TemplateKind.CLOSED, closure_key(c.label)) for c in closures if c.label
    }
    checked: set[tuple[str, Channel]] = set()
    for kind, key in sorted(keys):
        for channel, adapter in channels.items():
            found = templates.get
            template = (
                (
                    (found(_file_name(kind, channel, key)) or found(_file_name(kind, None, key)))
                    if key
                    else None
                )
                or found(_file_name(kind, channel))
                or found(_file_name(kind))
            )
            if template is None or (template.name, channel) in checked:
                continue
            checked.add((template.name, channel))
            problem, warning = _length_checks(template, kind, adapter, practice, longest)
            problems.extend(problem)
            warnings.extend(warning)
    return _Validated(templates, schedule, closures_text, problems, warnings)


def _load_closures(path: Path) -> tuple[str | None, list[Closure], list[Problem]]:
    """``closures.txt``: its text as written, its closures and its problems."""
    shown = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        return None, [], [Problem(shown, 1, 1, f"cannot be read ({exc.strerror or 'error'})")]
    if len(data) > _MAX_FILE_BYTES:
        return None, [], [Problem(shown, 1, 1, f"file is too large (over {_MAX_FILE_BYTES} bytes)")]
    text, problem = _decode(data, shown)
    if text is None:
        return None, [], [problem] if problem else []
    closures, problems = parse_closures(text, shown)
    return text, closures, problems


def _content_problems(template: Template, values: Mapping[str, str]) -> Iterable[Problem]:
    used = template.placeholders
    if "urgent_help" in used and not values["urgent_help"].strip():
        line, column = _position(template, "{urgent_help}")
        yield Problem(
            template.path,
            line,
            column,
            "{urgent_help} has no wording for this practice: there is a default for England, "
            "Wales and Scotland (BANK_HOLIDAYS), not for Northern Ireland or elsewhere, where "
            "urgent dental care is arranged locally; set URGENT_HELP to what patients should "
            "do, e.g. URGENT_HELP=call the out-of-hours dental service on 028 9000 0000",
        )
    if not any(name in used and values[name].strip() for name in CONTACT_PLACEHOLDERS):
        available = [f"{{{n}}}" for n in CONTACT_PLACEHOLDERS if values[n].strip()]
        choices = " or ".join(available) if available else "{phone}"
        yield Problem(
            template.path,
            1,
            1,
            f"the message gives patients no way to reach the practice; include {choices}",
        )


def _position(template: Template, needle: str) -> tuple[int, int]:
    """Line and column of ``needle`` in the template's text as written (1, 1 if absent)."""
    for number, line in enumerate(template.source.splitlines(), start=1):
        column = line.find(needle)
        if column >= 0:
            return number, column + 1
    return 1, 1


def _length_checks(
    template: Template,
    kind: TemplateKind,
    adapter: Adapter,
    practice: PracticeInfo,
    values: Mapping[str, str],
) -> tuple[list[Problem], list[str]]:
    limit = adapter.text_limit
    text = template.render(values)
    size = limit.measure(text)
    if size > limit.limit:
        advice = "shorten it"
        if template.name == _file_name(kind):
            advice += (
                f", or add {_file_name(kind, adapter.channel)} with a shorter text for "
                f"{limit.label}"
            )
        problem = Problem(
            template.path,
            1,
            1,
            f"too long for {limit.label}: {size} {limit.unit} when sent "
            f"(with the longest next-opening date), the limit is {limit.limit}; {advice} "
            f"({limit.counting})",
        )
        return [problem], []
    reply = Reply(text=text, booking_url=practice.booking_url, phone=practice.phone)
    short = adapter.buttons(Reply(text="", booking_url=practice.booking_url, phone=practice.phone))
    if not short or adapter.buttons(reply):
        return [], []
    return [], [
        f"{template.path}: on {limit.label} this text is {utf16_length(text)} characters, over the "
        f"{adapter.button_text_limit} that fit with a '{short[0].title}' button, so "
        f"{limit.label} patients get plain text without the button"
    ]


def check_templates(
    directory: Path,
    practice: PracticeInfo,
    schedule: Schedule,
    channels: Mapping[Channel, Adapter],
    *,
    overlays: Sequence[Path] = (),
) -> tuple[list[str], list[str]]:
    """(errors, warnings) for ``practice-bot check``: every problem, nothing raised."""
    found = _validate(directory, practice, schedule, channels, overlays)
    return [str(p) for p in found.problems], found.warnings
