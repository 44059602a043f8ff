"""The reply texts as files: which files there are, loading, validation and rendering.

Files in ``TEMPLATES_DIR`` (SPEC §5): ``reply.txt`` (open), ``closed.txt`` (closed), optional
``reply.<channel>.txt`` / ``closed.<channel>.txt`` overrides; a closure's ``closed.<key>.txt``;
and for each other language of ``REPLY_LANGUAGES`` (SPEC §11) the same names with its code
before the app, ``reply.cy.txt``, ``closed.cy.whatsapp.txt``, ``closed.christmas.cy.txt``. A
reply carries each language's text in order, a blank line between them, and the limits apply
to the whole. Validation runs at start-up, on reload and for ``practice-bot check``. Each
channel's limits and button form come from its adapter, the same rules a send follows;
template text is not patient data, but logs still carry only file names and ``line:col``
positions.
"""

from __future__ import annotations

import enum
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from bot.adapter import Adapter, utf16_length
from bot.events import Channel
from bot.hours import Closure, Schedule, format_next_opening
from bot.languages import DEFAULT_LANGUAGES, ENGLISH, LANGUAGES, Language
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
    "TextParts",
    "check_templates",
    "files_in_force",
    "text_name",
    "text_parts",
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
    languages: tuple[str, ...] = DEFAULT_LANGUAGES  # REPLY_LANGUAGES, in the reply's order
    # {urgent_help} in the other languages, by code (English is ``urgent_help``).
    translated_urgent_help: Mapping[str, str] = field(default_factory=dict)

    def urgent_help_in(self, language: Language) -> str:
        """``{urgent_help}`` in ``language`` (the English wording when it has none)."""
        return self.translated_urgent_help.get(language.code, self.urgent_help)

    @property
    def reply_languages(self) -> tuple[Language, ...]:
        """The languages of every reply, in order."""
        return tuple(LANGUAGES[code] for code in self.languages)


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


def text_name(
    kind: TemplateKind,
    channel: Channel | None = None,
    closure: str = "",
    language: Language = ENGLISH,
) -> str:
    """``reply.txt``, ``closed.whatsapp.txt``, a closure's ``closed.christmas.txt``, or
    Welsh ``reply.cy.txt`` / ``closed.cy.instagram.txt``."""
    stem = f"{kind}.{closure}" if closure else str(kind)
    stem += language.file_part
    return f"{stem}.txt" if channel is None else f"{stem}.{channel}.txt"


@dataclass(frozen=True, slots=True)
class TextParts:
    """What a text's file name says: when it is sent, in which language, on which app."""

    kind: TemplateKind
    closure: str  # the closure's key, "" for every day
    language: Language
    channel: Channel | None  # None: every app without a text of its own


def text_parts(name: str) -> TextParts | None:
    """``closed.christmas.cy.instagram.txt`` read back into its parts (the inverse of
    :func:`text_name`); ``None`` for a name that is not a text's."""
    if not name.endswith(".txt"):
        return None
    parts = name.removesuffix(".txt").split(".")
    if parts[0] not in set(TemplateKind) or len(parts) > 4 or not all(parts):
        return None
    kind = TemplateKind(parts.pop(0))
    channel = Channel(parts.pop()) if parts and parts[-1] in set(Channel) else None
    language = ENGLISH
    if parts and parts[-1] in LANGUAGES and parts[-1] != ENGLISH.code:
        language = LANGUAGES[parts.pop()]
    closure = parts[0] if parts else ""
    if len(parts) > 1 or (closure and (kind is TemplateKind.REPLY or not _is_key(closure))):
        return None
    return TextParts(kind, closure, language, channel)


def _is_key(text: str) -> bool:
    """Whether ``text`` can be a closure's key (never a language's or an app's name)."""
    return closure_key(text) == text and text not in LANGUAGES and text not in set(Channel)


def _text_files(languages: Iterable[Language], closures: Iterable[Closure] = ()) -> set[str]:
    """Every text name in ``languages``: base, per app, and per labelled closure."""
    keys = ["", *dict.fromkeys(closure_key(c.label) for c in closures if c.label)]
    return {
        text_name(kind, channel, key, language)
        for language in languages
        for key in keys
        for kind in (TemplateKind if not key else [TemplateKind.CLOSED])
        for channel in (None, *Channel)
    }


_DESCRIPTIONS = {
    TemplateKind.REPLY: "the reply sent during opening hours",
    TemplateKind.CLOSED: "the reply sent while the practice is closed",
}


def _values(
    practice: PracticeInfo,
    language: Language,
    opening_hours: str,
    next_opening: str,
    closed_reason: str,
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
        "urgent_help": practice.urgent_help_in(language),
    }


@dataclass(frozen=True, slots=True)
class _Longest:
    """What makes a text longest in one language: its opening hours, and every
    ``{closed_reason}`` the schedule can give (which is longest depends on how a channel
    counts)."""

    language: Language
    opening_hours: str
    reasons: tuple[str, ...]

    @classmethod
    def of(cls, schedule: Schedule, language: Language) -> _Longest:
        today = datetime.now(schedule.tz).date()
        reasons = tuple(schedule.closed_reasons(language, today))
        return cls(language, schedule.describe(language), reasons)

    def values(self, practice: PracticeInfo, measure: Callable[[str], int] = len) -> dict[str, str]:
        """The placeholders' values, the longest as ``measure`` counts them (a channel's
        limit: characters, UTF-16 units or bytes)."""
        reason = max(self.reasons, key=measure, default="")
        longest_date = self.language.longest_date_and_time
        return _values(practice, self.language, self.opening_hours, longest_date, reason)


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
        self._opening_hours = {
            language.code: schedule.describe(language) for language in practice.reply_languages
        }
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

    def template(
        self,
        channel: Channel,
        kind: TemplateKind,
        closure: str = "",
        language: Language = ENGLISH,
    ) -> Template:
        """The template ``channel`` uses for ``kind`` in ``language``: the closure's own text
        (by its key) if there is one, then the channel's override, then the base."""
        found = _chosen(self._templates, channel, kind, closure, language)
        if found is None:  # pragma: no cover - load() refuses a set without its base texts
            raise KeyError(text_name(kind, language=language))
        return found

    def render(self, channel: Channel, at: datetime) -> Reply:
        """The reply for ``channel`` at the aware moment ``at`` (closed text when closed)."""
        kind = TemplateKind.REPLY if self.schedule.is_open(at) else TemplateKind.CLOSED
        return self.render_kind(channel, kind, at)

    def render_kind(self, channel: Channel, kind: TemplateKind, at: datetime) -> Reply:
        """The ``kind`` text for ``channel`` at ``at``, whatever the opening hours say."""
        closure = None
        if kind is TemplateKind.CLOSED:
            closure = self.schedule.closure_on(at.astimezone(self.schedule.tz).date())
        key = closure_key(closure.label) if closure else ""
        texts, names = [], []
        for language in self.practice.reply_languages:
            template = self.template(channel, kind, key, language)
            texts.append(self._render(template, language, at))
            names.append(template.name)
        return _reply(self.practice, LANGUAGE_GAP.join(texts), SOURCE_JOIN.join(names))

    def _render(self, template: Template, language: Language, at: datetime) -> str:
        next_opening = ""
        if "next_opening" in template.placeholders:
            moment = self.schedule.next_opening(at)
            next_opening = format_next_opening(moment, language) if moment is not None else ""
        reason = ""
        if "closed_reason" in template.placeholders:
            reason = self.schedule.closed_reason(at, language)
        hours = self._opening_hours[language.code]
        return template.render(_values(self.practice, language, hours, next_opening, reason))


def _reply(practice: PracticeInfo, text: str, source: str = "") -> Reply:
    """``text`` as the practice's reply: its contact routes for the buttons, which are worded
    in the reply's first language."""
    first = practice.reply_languages[0]
    return Reply(
        text=text,
        booking_url=practice.booking_url or None,
        phone=practice.phone or None,
        source=source,
        book_title=first.book_online,
        call_title=first.call_us,
    )


# Between the languages of one reply, and between their file names in the contact log.
LANGUAGE_GAP = "\n\n"
SOURCE_JOIN = "+"


def _chosen(
    templates: Mapping[str, Template],
    channel: Channel,
    kind: TemplateKind,
    closure: str,
    language: Language,
) -> Template | None:
    """The first of the closure's text for the channel, the closure's text, the channel's
    text and the base text that ``templates`` holds, in ``language``."""
    names = [text_name(kind, channel, language=language), text_name(kind, language=language)]
    if closure:
        names[:0] = [
            text_name(kind, channel, closure, language),
            text_name(kind, None, closure, language),
        ]
    return next((templates[name] for name in names if name in templates), None)


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
    languages = practice.reply_languages
    for language in languages:
        for kind in TemplateKind:
            name = text_name(kind, language=language)
            if name not in present:
                problems.append(_missing(directory, name, kind, language, practice))
    closures: list[Closure] = []
    closures_text = None
    if CLOSURES_FILE in present:
        closures_text, closures, file_problems = _load_closures(
            folder_of[CLOSURES_FILE] / CLOSURES_FILE
        )
        problems.extend(file_problems)
        schedule = schedule.with_closures(closures)
    # Another language's texts are left alone until REPLY_LANGUAGES names it: the shipped
    # folder holds Welsh texts that an English-only practice never sends.
    used = _text_files(languages, closures)
    warnings.extend(
        f"{folder_of[name] / name}: this file is not used; the names that are used are "
        "reply.txt, closed.txt and reply.<channel>.txt / closed.<channel>.txt "
        "for whatsapp, messenger or instagram, closures.txt, closed.<label>.txt for a "
        "closure labelled in closures.txt, and each of these with .cy before the app for "
        "Welsh (REPLY_LANGUAGES)"
        for name in sorted(present - _text_files(LANGUAGES.values(), closures))
        if name.endswith(".txt") and name != CLOSURES_FILE
    )
    warnings.extend(_untranslated_closures(closures, languages, folder_of))
    for name in sorted(used & present):
        template, file_problems = _load_file(folder_of[name] / name)
        problems.extend(file_problems)
        if template is not None:
            templates[name] = template

    longest = {language.code: _Longest.of(schedule, language) for language in languages}
    warnings.extend(_unpaired(templates, languages))
    language_of = {
        name: language for language in languages for name in _text_files([language], closures)
    }
    for template in templates.values():
        values = longest[language_of[template.name].code].values(practice)
        problems.extend(_content_problems(template, values))
        closed = template.name.startswith(f"{TemplateKind.CLOSED}.")
        for note in wording_notes(template.source, closed=closed):
            if practice.strict_wording:
                problems.append(Problem(template.path, 1, 1, note))
            else:
                warnings.append(f"{template.path}:1:1: {note}")
    keys = {(kind, "") for kind in TemplateKind} | {
        (TemplateKind.CLOSED, closure_key(c.label)) for c in closures if c.label
    }
    checked: set[tuple[tuple[str, ...], Channel]] = set()
    for channel, adapter in channels.items():
        measured = {
            code: longest[code].values(practice, adapter.text_limit.measure) for code in longest
        }
        for kind, key in sorted(keys):
            chosen = [_chosen(templates, channel, kind, key, language) for language in languages]
            parts = [
                (t, measured[lang.code]) for t, lang in zip(chosen, languages, strict=True) if t
            ]
            names = tuple(t.name for t, _ in parts)
            if len(parts) < len(languages) or (names, channel) in checked:
                continue  # a missing base text is reported above
            checked.add((names, channel))
            problem, warning = _length_checks(parts, kind, adapter, practice)
            problems.extend(problem)
            warnings.extend(warning)
    return _Validated(templates, schedule, closures_text, problems, warnings)


def _missing(
    directory: Path, name: str, kind: TemplateKind, language: Language, practice: PracticeInfo
) -> Problem:
    where = "" if directory.is_dir() else f"; the folder {directory} does not exist"
    what = _DESCRIPTIONS[kind]
    if len(practice.languages) > 1:
        what += f", in {language.name} (REPLY_LANGUAGES={','.join(practice.languages)})"
    return Problem(str(directory / name), 1, 1, f"file not found ({what}){where}")


def _unpaired(templates: Mapping[str, Template], languages: Sequence[Language]) -> Iterable[str]:
    """A warning for each app's or closure's own text that another reply language lacks:
    that language's general text would go with it in one reply."""
    if len(languages) < 2:
        return
    for name, template in sorted(templates.items()):
        parts = text_parts(name)
        if parts is None or (not parts.closure and parts.channel is None):
            continue
        for other in languages:
            pair = text_name(parts.kind, parts.channel, parts.closure, other)
            if other is not parts.language and pair not in templates:
                yield (
                    f"{template.path}: there is no {other.name} {pair} to go with it, so the "
                    f"reply pairs it with the general {other.name} text; add {pair}"
                )


def _untranslated_closures(
    closures: Sequence[Closure], languages: Sequence[Language], folder_of: Mapping[str, Path]
) -> Iterable[str]:
    """A warning for each labelled closure without a label in one of the reply languages:
    that language's {closed_reason} says nothing during it."""
    for language in languages:
        if language is ENGLISH:
            continue
        for closure in closures:
            if closure.label and not closure.label_in(language.code):
                yield (
                    f"{folder_of[CLOSURES_FILE] / CLOSURES_FILE}: the closure "
                    f"'{closure.label}' has no {language.name} label, so {language.name} "
                    f"replies leave {{closed_reason}} out during it; write e.g. "
                    f"'{closure.label} | {language.code}: …'"
                )


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
    parts: Sequence[tuple[Template, Mapping[str, str]]],
    kind: TemplateKind,
    adapter: Adapter,
    practice: PracticeInfo,
) -> tuple[list[Problem], list[str]]:
    """The reply ``parts`` make together (each text with its language's longest values)
    against the channel's limit and button form; a problem or warning names the first file."""
    limit = adapter.text_limit
    template = parts[0][0]
    text = LANGUAGE_GAP.join(t.render(values) for t, values in parts)
    size = limit.measure(text)
    together = ""
    if len(parts) > 1:
        others = " and ".join(t.name for t, _ in parts[1:])
        together = f" together with {others} (REPLY_LANGUAGES={','.join(practice.languages)})"
    if size > limit.limit:
        advice = "shorten it"
        if template.name == text_name(kind, language=LANGUAGES[practice.languages[0]]):
            language = LANGUAGES[practice.languages[0]]
            advice += (
                f", or add {text_name(kind, adapter.channel, language=language)} with a shorter "
                f"text for {limit.label}"
            )
        problem = Problem(
            template.path,
            1,
            1,
            f"too long for {limit.label}{together}: {size} {limit.unit} when sent "
            f"(with the longest next-opening date), the limit is {limit.limit}; {advice} "
            f"({limit.counting})",
        )
        return [problem], []
    reply = _reply(practice, text)
    short = adapter.buttons(_reply(practice, ""))
    if not short or adapter.buttons(reply):
        return [], []
    return [], [
        f"{template.path}: on {limit.label} this text{together} is {utf16_length(text)} "
        f"characters, over the {adapter.button_text_limit} that fit with a "
        f"'{short[0].title}' button, so {limit.label} patients get plain text without the button"
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
