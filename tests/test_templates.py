"""Reply templates: placeholders, validation positions, limits, overrides, reload, preview."""

from __future__ import annotations

import asyncio
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from structlog.testing import capture_logs

from adapters import REGISTRY
from bot.errors import TemplateError
from bot.events import Channel
from bot.hours import Schedule, parse_closed_dates, parse_opening_hours
from bot.languages import ENGLISH
from bot.replies import Reply
from bot.templates import (
    InvalidTemplatesError,
    LiveTemplates,
    PracticeInfo,
    TemplateKind,
    TemplateSet,
    check_templates,
    preview,
)
from bot.wording import URGENT_HELP_BY_NATION
from tests.helpers.wording import is_wording_note

SHIPPED = Path(__file__).resolve().parents[1] / "templates"
LONDON = ZoneInfo("Europe/London")
EXAMPLE_HOURS = "Mon-Thu 08:30-13:00,14:00-17:30; Fri 08:30-16:00; Sat 09:00-12:00"
OPEN_AT = datetime(2026, 12, 22, 10, 30, tzinfo=LONDON)  # a Tuesday morning
CLOSED_AT = datetime(2026, 12, 24, 18, 30, tzinfo=LONDON)  # Christmas Eve evening

PRACTICE = PracticeInfo(
    name="Riverside Dental Practice",
    phone="+44 20 7946 0123",
    email="reception@riversidedental.co.uk",
    booking_url="https://riversidedental.co.uk/book",
    website="https://riversidedental.co.uk",
    urgent_help=URGENT_HELP_BY_NATION["GB-ENG"],
)
PHONE_ONLY = PracticeInfo(
    name="Riverside Dental Practice",
    phone="+44 20 7946 0123",
    urgent_help=URGENT_HELP_BY_NATION["GB-ENG"],
)
CHANNELS = REGISTRY.adapters


def _schedule(closed: str = "") -> Schedule:
    return Schedule(
        parse_opening_hours(EXAMPLE_HOURS), LONDON, parse_closed_dates(closed), "GB-ENG"
    )


def _write(directory: Path, name: str, text: str | bytes) -> Path:
    path = directory / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def _folder(tmp_path: Path, reply: str = "Hello {phone}", closed: str = "Closed {phone}") -> Path:
    _write(tmp_path, "reply.txt", reply)
    _write(tmp_path, "closed.txt", closed)
    return tmp_path


def _load(directory: Path, practice: PracticeInfo = PRACTICE) -> TemplateSet:
    return TemplateSet.load(directory, practice, _schedule(), CHANNELS)


def _errors(directory: Path, practice: PracticeInfo = PRACTICE) -> list[str]:
    return check_templates(directory, practice, _schedule(), CHANNELS)[0]


def _warnings(directory: Path, practice: PracticeInfo = PRACTICE) -> list[str]:
    """The warnings of ``check`` but the wording ones (tests/test_wording.py has those)."""
    warnings = check_templates(directory, practice, _schedule(), CHANNELS)[1]
    return [w for w in warnings if not is_wording_note(w)]


def _bump_mtime(path: Path, seconds: int) -> None:
    """Move a file's mtime forward so a change is seen without sleeping."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + seconds * 1_000_000_000))


# --- shipped templates ---------------------------------------------------------------------


@pytest.mark.parametrize("channel", list(Channel))
@pytest.mark.parametrize("at", [OPEN_AT, CLOSED_AT], ids=["open", "closed"])
def test_shipped_templates_fit_every_channel(channel: Channel, at: datetime) -> None:
    """The shipped texts fit each channel's limit and its button form with typical values."""
    reply = _load(SHIPPED).render(channel, at)
    limit = CHANNELS[channel].text_limit
    assert 0 < limit.measure(reply.text) <= limit.limit
    assert len(reply.text) <= 640  # Messenger's button template, the smallest button form
    assert len(reply.text.encode()) <= 1000


def test_shipped_templates_validate_without_warnings() -> None:
    """The shipped folder has no errors or warnings, also without optional details."""
    assert check_templates(SHIPPED, PRACTICE, _schedule(), CHANNELS) == ([], [])
    assert check_templates(SHIPPED, PHONE_ONLY, _schedule(), CHANNELS) == ([], [])


def test_shipped_reply_says_automatic_and_no_clinical_advice() -> None:
    """The open reply discloses automation and asks for no health details."""
    text = _load(SHIPPED).render(Channel.WHATSAPP, OPEN_AT).text
    assert "automatic reply" in text
    assert "clinical advice" in text
    assert "health details" in text
    assert PRACTICE.phone in text
    assert f"Book online: {PRACTICE.booking_url}" in text


def test_shipped_closed_signposts_emergencies_and_next_opening() -> None:
    """The closed reply gives the next opening, NHS 111 and 999."""
    reply = _load(SHIPPED).render(Channel.MESSENGER, CLOSED_AT)
    assert reply.source == "closed.txt"
    assert "automatic reply" in reply.text
    assert "We open again on Tuesday 29 December at 08:30." in reply.text
    assert "NHS 111" in reply.text
    assert "999" in reply.text


# --- rendering -----------------------------------------------------------------------------


def test_render_chooses_reply_or_closed_by_schedule(tmp_path: Path) -> None:
    """reply.txt while open, closed.txt while closed, with source naming the file."""
    templates = _load(_folder(tmp_path))
    assert templates.render(Channel.WHATSAPP, OPEN_AT).source == "reply.txt"
    assert templates.render(Channel.WHATSAPP, CLOSED_AT).source == "closed.txt"


def test_render_reply_carries_contact_routes(tmp_path: Path) -> None:
    """The Reply carries booking URL and phone for the adapters' buttons."""
    reply = _load(_folder(tmp_path)).render(Channel.MESSENGER, OPEN_AT)
    assert reply == Reply(
        text="Hello +44 20 7946 0123",
        booking_url=PRACTICE.booking_url,
        phone=PRACTICE.phone,
        source="reply.txt",
    )


def test_render_channel_override_chosen(tmp_path: Path) -> None:
    """A per-channel file replaces the base file on that channel only."""
    directory = _folder(tmp_path)
    _write(directory, "reply.whatsapp.txt", "WhatsApp {phone}")
    _write(directory, "closed.instagram.txt", "Instagram closed {phone}")
    templates = _load(directory)
    assert templates.render(Channel.WHATSAPP, OPEN_AT).source == "reply.whatsapp.txt"
    assert templates.render(Channel.WHATSAPP, OPEN_AT).text == "WhatsApp +44 20 7946 0123"
    assert templates.render(Channel.MESSENGER, OPEN_AT).source == "reply.txt"
    assert templates.render(Channel.INSTAGRAM, CLOSED_AT).source == "closed.instagram.txt"
    assert templates.render(Channel.WHATSAPP, CLOSED_AT).source == "closed.txt"


def test_render_kind_ignores_schedule(tmp_path: Path) -> None:
    """render_kind gives the asked-for text whatever the time."""
    templates = _load(_folder(tmp_path))
    reply = templates.render_kind(Channel.WHATSAPP, TemplateKind.CLOSED, OPEN_AT)
    assert reply.source == "closed.txt"


def test_render_empty_placeholder_line_dropped(tmp_path: Path) -> None:
    """Without a booking URL the 'Book online:' line disappears and no button URL is set."""
    directory = _folder(tmp_path, reply="Call {phone}\nBook online: {booking_url}\nBye")
    reply = _load(directory, PHONE_ONLY).render(Channel.WHATSAPP, OPEN_AT)
    assert reply.text == "Call +44 20 7946 0123\nBye"
    assert reply.booking_url is None


def test_render_line_with_some_values_kept(tmp_path: Path) -> None:
    """A line is kept when at least one of its placeholders has a value."""
    directory = _folder(tmp_path, reply="Ring {phone} or book at {booking_url}")
    reply = _load(directory, PHONE_ONLY).render(Channel.WHATSAPP, OPEN_AT)
    assert reply.text == "Ring +44 20 7946 0123 or book at"


def test_render_dropped_line_does_not_double_blank_lines(tmp_path: Path) -> None:
    """Dropping a line between two blank lines leaves a single blank line."""
    directory = _folder(tmp_path, reply="Call {phone}\n\nBook online: {booking_url}\n\nBye")
    reply = _load(directory, PHONE_ONLY).render(Channel.WHATSAPP, OPEN_AT)
    assert reply.text == "Call +44 20 7946 0123\n\nBye"


def test_render_typed_blank_lines_kept(tmp_path: Path) -> None:
    """Blank lines the manager typed are kept as they are."""
    directory = _folder(tmp_path, reply="Call {phone}\n\n\nBye")
    assert (
        _load(directory).render(Channel.WHATSAPP, OPEN_AT).text == "Call +44 20 7946 0123\n\n\nBye"
    )


def test_render_trims_edges_and_trailing_spaces(tmp_path: Path) -> None:
    """Leading blank lines, trailing spaces and trailing whitespace are removed."""
    directory = _folder(tmp_path, reply="\n\nCall {phone}   \nBye\t\n\n\n")
    assert _load(directory).render(Channel.WHATSAPP, OPEN_AT).text == "Call +44 20 7946 0123\nBye"


def test_render_literal_braces(tmp_path: Path) -> None:
    """{{ and }} become single braces, also around a placeholder name."""
    directory = _folder(tmp_path, reply="Use {{phone}} like this: {{ {phone} }}")
    text = _load(directory).render(Channel.WHATSAPP, OPEN_AT).text
    assert text == "Use {phone} like this: { +44 20 7946 0123 }"


def test_render_all_placeholders(tmp_path: Path) -> None:
    """Every placeholder is filled from the practice and the schedule."""
    directory = _folder(
        tmp_path,
        closed="{practice_name}|{phone}|{email}|{booking_url}|{website}\n"
        "{opening_hours}\n{next_opening}",
    )
    text = _load(directory).render(Channel.WHATSAPP, CLOSED_AT).text
    assert text.splitlines() == [
        "Riverside Dental Practice|+44 20 7946 0123|reception@riversidedental.co.uk|"
        "https://riversidedental.co.uk/book|https://riversidedental.co.uk",
        _schedule().describe(),
        "Tuesday 29 December at 08:30",
    ]


def test_render_no_next_opening_drops_line(tmp_path: Path) -> None:
    """When nothing opens within 400 days, the next-opening line is left out."""
    directory = _folder(tmp_path, closed="Closed.\nWe open {next_opening}.\nCall {phone}")
    schedule = _schedule(closed="2026-01-01..2028-12-31")
    templates = TemplateSet.load(directory, PRACTICE, schedule, CHANNELS)
    assert templates.render(Channel.WHATSAPP, CLOSED_AT).text == "Closed.\nCall +44 20 7946 0123"


def test_render_utc_moment_uses_practice_zone(tmp_path: Path) -> None:
    """A UTC moment is judged by the practice's local hours (08:30 BST is 07:30 UTC)."""
    templates = _load(_folder(tmp_path))
    assert templates.render(Channel.WHATSAPP, datetime(2026, 6, 1, 7, 30, tzinfo=UTC)).source == (
        "reply.txt"
    )


# --- validation: syntax positions -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "position", "message"),
    [
        (
            "Hello\nWe are here.\nRing us now: {phon}\n{phone}",
            "3:14",
            "unknown placeholder {phon}; use one of {practice_name}, {phone}, {email}, "
            "{booking_url}, {website}, {opening_hours}, {next_opening}",
        ),
        ("Call {phone}\nSee {}", "2:5", "empty placeholder {}"),
        ("Call {phone} {0}", "1:14", "unknown placeholder {0}"),
        ("Call {phone} {a.b}", "1:14", "unknown placeholder {a.b}"),
        ("Call {phone!r}", "1:6", "placeholder {phone!r} has extra formatting"),
        ("Call {phone:>20}", "1:6", "write just {phone}"),
        ("Call { Phone }", "1:6", "write the placeholder as {phone}"),
        ("Call {phone}\nPrices {from 10", "2:8", "'{' is not closed by '}' on the same line"),
        ("Call {phone}\nPrices {from\n10}", "2:8", "'{' is not closed"),
        ("Call {phone} }", "1:14", "'}' without a matching '{'"),
        ("Call {phone}}", "1:13", "'}' without a matching '{'"),
        ("Call {{phone}", "1:13", "'}' without a matching '{'"),
        ("Caf\u00e9 \u2013 {phon} {phone}", "1:8", "did you mean {phone}?"),
        ("Call {phone}\r\nSee {emial}\r\n", "2:5", "unknown placeholder {emial}"),
    ],
)
def test_check_syntax_error_position(
    tmp_path: Path, text: str, position: str, message: str
) -> None:
    """Each kind of brace mistake is reported at its file:line:col with a plain message."""
    directory = _folder(tmp_path, reply=text)
    errors = _errors(directory)
    prefix = f"{directory / 'reply.txt'}:{position}: "
    assert [e for e in errors if e.startswith(prefix) and message in e], errors


def test_check_reports_every_mistake_in_a_file(tmp_path: Path) -> None:
    """Several mistakes in one file are all reported, in order."""
    directory = _folder(tmp_path, reply="{phone} {x}\n{y} }")
    path = directory / "reply.txt"
    positions = [e.split(": ", 1)[0] for e in _errors(directory)]
    assert positions == [f"{path}:1:9", f"{path}:2:1", f"{path}:2:5"]


def test_check_error_in_override_names_override(tmp_path: Path) -> None:
    """A mistake in closed.whatsapp.txt is reported against that file."""
    directory = _folder(tmp_path)
    _write(directory, "closed.whatsapp.txt", "Closed\nCall {phone}\nOpen {next_opening\n")
    assert _errors(directory) == [
        f"{directory / 'closed.whatsapp.txt'}:3:6: '{{' is not closed by '}}' on the same line; "
        "write {{ to show a '{' in the message"
    ]


def test_check_invalid_utf8_position(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 are reported at the line and column of the first bad byte."""
    directory = _folder(tmp_path)
    _write(directory, "closed.txt", b"Closed {phone}\nCaf\xe9 open soon\n")
    assert _errors(directory) == [
        f"{directory / 'closed.txt'}:2:4: not UTF-8 text (byte 0xE9 is not valid here); "
        "save the file with UTF-8 encoding"
    ]


def test_check_invalid_utf8_column_counts_characters(tmp_path: Path) -> None:
    """Columns before a bad byte count characters, not bytes."""
    directory = _folder(tmp_path)
    _write(directory, "closed.txt", "Caf\u00e9 ".encode() + b"\xff {phone}")
    assert _errors(directory)[0].startswith(f"{directory / 'closed.txt'}:1:6: not UTF-8")


def test_check_bom_stripped(tmp_path: Path) -> None:
    """A UTF-8 byte order mark is ignored, for text and for columns."""
    directory = _folder(tmp_path)
    _write(directory, "reply.txt", b"\xef\xbb\xbfHello {phone}")
    assert _load(directory).render(Channel.WHATSAPP, OPEN_AT).text == "Hello +44 20 7946 0123"
    _write(directory, "reply.txt", b"\xef\xbb\xbf{phon} {phone}")
    assert _errors(directory)[0].startswith(f"{directory / 'reply.txt'}:1:1: unknown placeholder")


def _control(path: Path, line: int, col: int, char: str) -> str:
    """The error a control character at ``line``:``col`` of ``path`` gets."""
    return (
        f"{path}:{line}:{col}: invisible control character U+{ord(char):04X} is not allowed; "
        "retype this part of the line"
    )


def test_check_nul_refused_at_its_position(tmp_path: Path) -> None:
    """A NUL character is refused at its file:line:col in plain words."""
    directory = _folder(tmp_path, reply="Hello\nCall {phone}\x00 now")
    assert _errors(directory) == [_control(directory / "reply.txt", 2, 13, "\x00")]


def test_check_escape_sequence_refused_at_each_escape(tmp_path: Path) -> None:
    """Each ESC of a colour sequence is refused at its own line:col."""
    directory = _folder(tmp_path, reply="Hello\nWe are here.\nCall: \x1b[31m{phone}\x1b[0m")
    path = directory / "reply.txt"
    assert _errors(directory) == [_control(path, 3, 7, "\x1b"), _control(path, 3, 19, "\x1b")]


def test_check_bell_refused_at_its_position(tmp_path: Path) -> None:
    """A BEL character in an override is refused at its line:col."""
    directory = _folder(tmp_path)
    _write(directory, "closed.whatsapp.txt", "Closed.\r\nCall {phone}\x07\r\n")
    assert _errors(directory) == [_control(directory / "closed.whatsapp.txt", 2, 13, "\x07")]


@pytest.mark.parametrize(
    "char",
    ["\x01", "\x0b", "\x0c", "\x1f", "\x7f", "\x80", "\x9f", "\u202e", "\u2066", "\u2069"],
    ids=lambda char: f"U+{ord(char):04X}",
)
def test_check_other_control_characters_refused(tmp_path: Path, char: str) -> None:
    """The rest of C0, DEL, C1 and the bidirectional overrides are refused, by code."""
    directory = _folder(tmp_path, reply=f"Call {char}{{phone}}")
    assert _errors(directory) == [_control(directory / "reply.txt", 1, 6, char)]


def test_check_control_character_in_braces_not_echoed(tmp_path: Path) -> None:
    """A control character inside braces is reported by position, never copied into the report."""
    directory = _folder(tmp_path, reply="Call {pho\x1bne} or {phone}")
    assert _errors(directory) == [_control(directory / "reply.txt", 1, 10, "\x1b")]


def test_check_tab_allowed(tmp_path: Path) -> None:
    """A tab is ordinary text: no error, and it is sent as typed."""
    directory = _folder(tmp_path, reply="Call\t{phone}\tany time")
    assert _errors(directory) == []
    text = _load(directory).render(Channel.WHATSAPP, OPEN_AT).text
    assert text == "Call\t+44 20 7946 0123\tany time"


# --- validation: files and content ----------------------------------------------------------


def test_check_missing_required_file(tmp_path: Path) -> None:
    """A missing closed.txt is reported at 1:1 of that path."""
    _write(tmp_path, "reply.txt", "Hello {phone}")
    assert _errors(tmp_path) == [
        f"{tmp_path / 'closed.txt'}:1:1: file not found "
        "(the reply sent while the practice is closed)"
    ]


def test_check_missing_folder(tmp_path: Path) -> None:
    """A missing folder reports both required files and says the folder is missing."""
    directory = tmp_path / "nowhere"
    errors = _errors(directory)
    assert [e.split(": ", 1)[0] for e in errors] == [
        f"{directory / 'reply.txt'}:1:1",
        f"{directory / 'closed.txt'}:1:1",
    ]
    assert all(f"the folder {directory} does not exist" in e for e in errors)


@pytest.mark.parametrize("content", ["", "  \n\n\t\n"])
def test_check_empty_file(tmp_path: Path, content: str) -> None:
    """An empty or whitespace-only file is an error for the whole file."""
    directory = _folder(tmp_path, reply=content)
    assert _errors(directory) == [
        f"{directory / 'reply.txt'}:1:1: the file is empty; write the message patients get"
    ]


def test_check_no_contact_route(tmp_path: Path) -> None:
    """A text without {phone}, {email} or {booking_url} gives patients no way to reach anyone."""
    directory = _folder(tmp_path, reply="Hello from {practice_name}. {website}")
    assert _errors(directory) == [
        f"{directory / 'reply.txt'}:1:1: the message gives patients no way to reach the "
        "practice; include {phone} or {email} or {booking_url}"
    ]


def test_check_contact_route_must_have_a_value(tmp_path: Path) -> None:
    """{email} alone does not count when no email address is set."""
    directory = _folder(tmp_path, closed="Closed. Email {email}")
    practice = PracticeInfo(name="P", phone="", booking_url="https://example.org/book")
    assert _errors(directory, practice) == [
        f"{directory / 'closed.txt'}:1:1: the message gives patients no way to reach the "
        "practice; include {booking_url}",
        f"{directory / 'reply.txt'}:1:1: the message gives patients no way to reach the "
        "practice; include {booking_url}",
    ]


def test_load_raises_template_error(tmp_path: Path) -> None:
    """TemplateSet.load raises a bot.errors.TemplateError carrying every problem line."""
    directory = _folder(tmp_path, reply="{phon}", closed="{phone} }")
    with pytest.raises(TemplateError) as caught:
        _load(directory)
    assert [p.split(": ", 1)[0] for p in caught.value.problems] == [
        f"{directory / 'closed.txt'}:1:9",
        f"{directory / 'reply.txt'}:1:1",
    ]
    assert isinstance(caught.value, InvalidTemplatesError)
    assert caught.value.files == ["closed.txt", "reply.txt"]


def _not_used(path: Path) -> str:
    return (
        f"{path}: this file is not used; the names that are used are reply.txt, closed.txt and "
        "reply.<channel>.txt / closed.<channel>.txt for whatsapp, messenger or instagram, "
        "closures.txt, closed.<label>.txt for a closure labelled in closures.txt, and each of "
        "these with .cy before the app for Welsh (REPLY_LANGUAGES)"
    )


def test_check_unknown_txt_file_warns(tmp_path: Path) -> None:
    """A misspelt override is not used, and a warning says so."""
    directory = _folder(tmp_path)
    _write(directory, "reply.whatsap.txt", "Typo {phone}")
    _write(directory, "notes.md", "not a template")
    assert _warnings(directory) == [_not_used(directory / "reply.whatsap.txt")]


def test_check_dangling_override_link_reported(tmp_path: Path) -> None:
    """An override that is a link to nothing is an error naming it, not silently skipped."""
    directory = _folder(tmp_path)
    (directory / "reply.whatsapp.txt").symlink_to("missing.txt")
    assert _errors(directory) == [
        f"{directory / 'reply.whatsapp.txt'}:1:1: cannot be read: it is a link to a file that "
        "does not exist; replace the link with the text itself"
    ]


def test_check_dangling_unknown_link_warns(tmp_path: Path) -> None:
    """A link to nothing under an unused name gets the same not-used warning as a file."""
    directory = _folder(tmp_path)
    (directory / "extra.txt").symlink_to("missing")
    assert _errors(directory) == []
    assert _warnings(directory) == [_not_used(directory / "extra.txt")]


# --- validation: lengths and button warnings --------------------------------------------------


def test_check_whatsapp_limit_boundary(tmp_path: Path) -> None:
    """4096 characters fit WhatsApp; 4097 do not (other channels have short overrides)."""
    directory = _folder(tmp_path)
    for channel in ("messenger", "instagram"):
        _write(directory, f"reply.{channel}.txt", "Short {phone}")
    body = "{phone}\n"
    filler = 4096 - len(PRACTICE.phone) - 1
    _write(directory, "reply.txt", body + "x" * filler)
    assert _errors(directory) == []
    _write(directory, "reply.txt", body + "x" * (filler + 1))
    assert _errors(directory) == [
        f"{directory / 'reply.txt'}:1:1: too long for WhatsApp: 4097 characters when sent "
        "(with the longest next-opening date), the limit is 4096; shorten it, or add "
        "reply.whatsapp.txt with a shorter text for WhatsApp (an emoji counts as two characters)"
    ]


def test_check_messenger_limit_in_override(tmp_path: Path) -> None:
    """An override over Messenger's 2000 characters is reported against the override."""
    directory = _folder(tmp_path)
    _write(directory, "closed.messenger.txt", "{phone}\n" + "x" * 2000)
    errors = _errors(directory)
    assert len(errors) == 1
    assert errors[0].startswith(
        f"{directory / 'closed.messenger.txt'}:1:1: too long for Messenger: 2017 characters"
    )
    assert errors[0].endswith("the limit is 2000; shorten it (an emoji counts as two characters)")


def test_check_instagram_limit_counts_bytes(tmp_path: Path) -> None:
    """600 accented letters are 1200 bytes: too long for Instagram, fine for Messenger."""
    directory = _folder(tmp_path, reply="{phone}\n" + "\u00e9" * 600)
    errors = _errors(directory)
    assert len(errors) == 1
    assert "too long for Instagram: 1217 bytes" in errors[0]
    assert "add reply.instagram.txt with a shorter text for Instagram" in errors[0]


def test_check_emoji_counts_as_two_characters(tmp_path: Path) -> None:
    """An emoji is two of Meta's characters: 1,000 emoji and a phone line are over 2,000."""
    directory = _folder(tmp_path)
    _write(directory, "reply.messenger.txt", "{phone}\n" + "\U0001f600" * 1000)
    errors = _errors(directory)
    assert len(errors) == 1
    assert "too long for Messenger: 2017 characters" in errors[0]


def test_check_instagram_limit_says_how_bytes_count(tmp_path: Path) -> None:
    """The Instagram length problem explains the unit in a manager's words."""
    directory = _folder(tmp_path, reply="{phone}\n" + "\u00e9" * 600)
    assert _errors(directory)[0].endswith(
        "(letters such as é count double and an emoji four times)"
    )


def test_check_instagram_override_fixes_length(tmp_path: Path) -> None:
    """A shorter reply.instagram.txt makes a long reply.txt acceptable."""
    directory = _folder(tmp_path, reply="{phone}\n" + "\u00e9" * 600)
    _write(directory, "reply.instagram.txt", "Short {phone}")
    assert _errors(directory) == []


def test_check_length_uses_longest_next_opening(tmp_path: Path) -> None:
    """A text that fits with today's date but not with the longest possible one is refused."""
    directory = _folder(tmp_path)
    head = "{phone} {next_opening}\n"
    fixed = len(PRACTICE.phone) + 2
    text = head + "x" * (1000 - fixed - len(ENGLISH.longest_date_and_time) + 1)
    _write(directory, "closed.instagram.txt", text)
    templates_errors = _errors(directory)
    assert len(templates_errors) == 1
    assert "too long for Instagram: 1001 bytes" in templates_errors[0]


def test_check_whatsapp_button_warning(tmp_path: Path) -> None:
    """Over 1024 characters with a booking URL warns that WhatsApp loses its button."""
    directory = _folder(tmp_path)
    _write(directory, "reply.whatsapp.txt", "{phone}\n" + "x" * 1008)
    assert _errors(directory) == []
    assert _warnings(directory) == [
        f"{directory / 'reply.whatsapp.txt'}: on WhatsApp this text is 1025 characters, over "
        "the 1024 that fit with a 'Book online' button, so WhatsApp patients get plain text "
        "without the button"
    ]


def test_check_messenger_button_warning(tmp_path: Path) -> None:
    """Over 640 characters with a booking URL warns that Messenger loses its buttons."""
    directory = _folder(tmp_path)
    _write(directory, "closed.messenger.txt", "{phone}\n" + "x" * 624)
    assert _warnings(directory) == [
        f"{directory / 'closed.messenger.txt'}: on Messenger this text is 641 characters, over "
        "the 640 that fit with a 'Book online' button, so Messenger patients get plain text "
        "without the button"
    ]


def test_check_no_button_warning_without_booking_url(tmp_path: Path) -> None:
    """Without a booking URL there are no buttons to lose, so no warning."""
    directory = _folder(tmp_path)
    _write(directory, "reply.whatsapp.txt", "{phone}\n" + "x" * 1100)
    assert _warnings(directory, PHONE_ONLY) == []


# --- live reload ----------------------------------------------------------------------------


def test_live_templates_keeps_last_good_after_broken_edit(tmp_path: Path) -> None:
    """A broken edit on disk leaves the last good text in use and names the file."""
    directory = _folder(tmp_path, reply="Good {phone}")
    results: list[bool] = []
    live = LiveTemplates(
        directory, PRACTICE, _schedule(), channels=CHANNELS, on_reload=results.append
    )
    path = _write(directory, "reply.txt", "Broken {phon}")
    _bump_mtime(path, 10)
    assert live.reload() is False
    assert live.render(Channel.WHATSAPP, OPEN_AT).text == "Good +44 20 7946 0123"
    assert live.failed_files == ["reply.txt"]
    assert live.error is not None
    assert live.error.problems[0].startswith(f"{path}:1:8: unknown placeholder {{phon}}")
    assert results == [False]


def test_live_templates_picks_up_good_edit(tmp_path: Path) -> None:
    """A fixed edit after a broken one is loaded and clears the error."""
    directory = _folder(tmp_path, reply="Good {phone}")
    results: list[bool] = []
    live = LiveTemplates(
        directory, PRACTICE, _schedule(), channels=CHANNELS, on_reload=results.append
    )
    path = _write(directory, "reply.txt", "Broken {phon}")
    _bump_mtime(path, 10)
    live.reload()
    _write(directory, "reply.txt", "Better {phone}")
    _bump_mtime(path, 20)
    assert live.reload() is True
    assert live.render(Channel.WHATSAPP, OPEN_AT).text == "Better +44 20 7946 0123"
    assert live.error is None
    assert live.failed_files == []
    assert results == [False, True]


def test_live_templates_same_size_edit_seen(tmp_path: Path) -> None:
    """An edit that keeps the size is still seen through its mtime."""
    directory = _folder(tmp_path, reply="Good {phone}")
    live = LiveTemplates(directory, PRACTICE, _schedule(), channels=CHANNELS)
    path = _write(directory, "reply.txt", "Fine {phone}")
    _bump_mtime(path, 10)
    assert live.reload() is True
    assert live.current.render(Channel.WHATSAPP, OPEN_AT).text == "Fine +44 20 7946 0123"


def test_live_templates_no_change_no_reload(tmp_path: Path) -> None:
    """Without changes, reload() does nothing and the callback is not called."""
    directory = _folder(tmp_path)
    results: list[bool] = []
    live = LiveTemplates(
        directory, PRACTICE, _schedule(), channels=CHANNELS, on_reload=results.append
    )
    before = live.current
    assert live.reload() is False
    assert live.current is before
    assert results == []


def test_live_templates_added_and_removed_override(tmp_path: Path) -> None:
    """Adding an override file is picked up, and removing it goes back to the base file."""
    directory = _folder(tmp_path)
    live = LiveTemplates(directory, PRACTICE, _schedule(), channels=CHANNELS)
    override = _write(directory, "reply.messenger.txt", "Messenger {phone}")
    assert live.reload() is True
    assert live.render(Channel.MESSENGER, OPEN_AT).source == "reply.messenger.txt"
    override.unlink()
    assert live.reload() is True
    assert live.render(Channel.MESSENGER, OPEN_AT).source == "reply.txt"


def test_live_templates_removed_required_file_keeps_last_good(tmp_path: Path) -> None:
    """Deleting closed.txt fails the reload and keeps the closed text in use."""
    directory = _folder(tmp_path)
    live = LiveTemplates(directory, PRACTICE, _schedule(), channels=CHANNELS)
    (directory / "closed.txt").unlink()
    assert live.reload() is False
    assert live.failed_files == ["closed.txt"]
    assert live.render(Channel.WHATSAPP, CLOSED_AT).text == "Closed +44 20 7946 0123"


def test_live_templates_broken_at_start_raises(tmp_path: Path) -> None:
    """Broken templates at start-up raise TemplateError: there is no good set to keep."""
    directory = _folder(tmp_path, reply="{phon}")
    with pytest.raises(TemplateError):
        LiveTemplates(directory, PRACTICE, _schedule(), channels=CHANNELS)


def test_live_templates_failure_log_has_positions_only(tmp_path: Path) -> None:
    """The failure log names files and line:col, not the message or the template text."""
    directory = _folder(tmp_path)
    live = LiveTemplates(directory, PRACTICE, _schedule(), channels=CHANNELS)
    path = _write(directory, "reply.txt", "Secret words {phon}")
    _bump_mtime(path, 10)
    with capture_logs() as logs:
        live.reload()
    assert logs == [
        {
            "event": "templates_reload_failed",
            "log_level": "warning",
            "files": ["reply.txt"],
            "positions": ["reply.txt:1:14"],
        }
    ]


def test_live_templates_success_log(tmp_path: Path) -> None:
    """A good reload logs the file names in use."""
    directory = _folder(tmp_path)
    live = LiveTemplates(directory, PRACTICE, _schedule(), channels=CHANNELS)
    _bump_mtime(directory / "reply.txt", 10)
    with capture_logs() as logs:
        live.reload()
    assert logs == [
        {"event": "templates_reloaded", "log_level": "info", "files": ["closed.txt", "reply.txt"]}
    ]


def test_live_templates_dangling_link_does_not_stop_reload(tmp_path: Path) -> None:
    """After a link to nothing appears, later edits to other files are still applied."""
    directory = _folder(tmp_path)
    live = LiveTemplates(directory, PRACTICE, _schedule(), channels=CHANNELS)
    (directory / "extra.txt").symlink_to("missing")
    assert live.reload() is True
    path = _write(directory, "reply.txt", "Edited {phone}")
    _bump_mtime(path, 10)
    assert live.reload() is True
    assert live.render(Channel.WHATSAPP, OPEN_AT).text == "Edited +44 20 7946 0123"


def test_live_templates_dangling_override_link_keeps_last_good(tmp_path: Path) -> None:
    """An override turned into a link to nothing fails the reload, names it, keeps the text."""
    directory = _folder(tmp_path)
    live = LiveTemplates(directory, PRACTICE, _schedule(), channels=CHANNELS)
    link = directory / "reply.whatsapp.txt"
    link.symlink_to("missing.txt")
    assert live.reload() is False
    assert live.failed_files == ["reply.whatsapp.txt"]
    assert live.error is not None
    assert live.error.problems == [
        f"{link}:1:1: cannot be read: it is a link to a file that does not exist; "
        "replace the link with the text itself"
    ]
    assert live.render(Channel.WHATSAPP, OPEN_AT).text == "Hello +44 20 7946 0123"


def test_live_templates_dangling_link_target_created_applies(tmp_path: Path) -> None:
    """Creating the file a dangling override link points to is seen and applied."""
    directory = _folder(tmp_path)
    live = LiveTemplates(directory, PRACTICE, _schedule(), channels=CHANNELS)
    (directory / "reply.whatsapp.txt").symlink_to("whatsapp-text")
    live.reload()
    _write(directory, "whatsapp-text", "WhatsApp {phone}")
    assert live.reload() is True
    assert live.render(Channel.WHATSAPP, OPEN_AT).text == "WhatsApp +44 20 7946 0123"


async def test_live_templates_watch_applies_edit(tmp_path: Path) -> None:
    """The watch task notices an edit on its next poll."""
    directory = _folder(tmp_path)
    reloaded = asyncio.Event()
    live = LiveTemplates(
        directory, PRACTICE, _schedule(), channels=CHANNELS, on_reload=lambda _: reloaded.set()
    )
    task = asyncio.create_task(live.watch(0.01))
    try:
        path = _write(directory, "reply.txt", "Edited {phone}")
        _bump_mtime(path, 10)
        async with asyncio.timeout(5):
            await reloaded.wait()
        assert live.render(Channel.WHATSAPP, OPEN_AT).text == "Edited +44 20 7946 0123"
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


# --- preview --------------------------------------------------------------------------------


def test_preview_whatsapp_closed_with_button() -> None:
    """The WhatsApp preview shows the file, the exact text and the Book online button."""
    templates = _load(SHIPPED)
    reply = templates.render(Channel.WHATSAPP, CLOSED_AT)
    out = preview(templates, Channel.WHATSAPP, CLOSED_AT)
    assert out.startswith(
        "At Thursday 24 December 2026 18:30 GMT the practice is closed: it is outside the "
        "opening hours; it next opens Tuesday 29 December at 08:30.\n"
    )
    assert f"WhatsApp: from closed.txt, {len(reply.text)} of 4096 characters" in out
    assert f"\n{reply.text}\n" in out
    assert f"Button: [Book online] opens {PRACTICE.booking_url}" in out
    assert "Messenger" not in out


def test_preview_messenger_shows_both_buttons() -> None:
    """Messenger shows Book online and Call us when the text fits 640 characters."""
    out = preview(_load(SHIPPED), Channel.MESSENGER, OPEN_AT)
    assert "Messenger: from reply.txt" in out
    assert f"[Book online] opens {PRACTICE.booking_url}" in out
    assert f"[Call us] calls {PRACTICE.phone}" in out


def test_preview_instagram_plain_text_in_bytes() -> None:
    """Instagram is always plain text and its size is given in bytes."""
    templates = _load(SHIPPED)
    reply = templates.render(Channel.INSTAGRAM, CLOSED_AT)
    out = preview(templates, Channel.INSTAGRAM, CLOSED_AT)
    assert f"{len(reply.text.encode())} of 1000 bytes" in out
    assert "No buttons, sent as plain text: Instagram replies are always plain text." in out


def test_preview_all_channels() -> None:
    """Without a channel the preview covers all three."""
    out = preview(_load(SHIPPED), None, OPEN_AT)
    assert "At Tuesday 22 December 2026 10:30 GMT the practice is open.\n" in out
    assert [line.split(":")[0] for line in out.splitlines() if line.startswith("=")] == [
        "======== WhatsApp",
        "======== Messenger",
        "======== Instagram",
    ]


def test_preview_without_booking_url_says_why_no_buttons() -> None:
    """With no booking URL the preview explains the plain-text form."""
    out = preview(_load(SHIPPED, PHONE_ONLY), Channel.MESSENGER, OPEN_AT)
    assert "No buttons, sent as plain text: PRACTICE_BOOKING_URL is not set." in out
    assert "Book online:" not in out


def test_preview_long_text_says_why_no_button(tmp_path: Path) -> None:
    """A WhatsApp text over 1024 characters is previewed as plain text with the reason."""
    directory = shutil.copytree(SHIPPED, tmp_path / "templates")
    _write(directory, "reply.whatsapp.txt", "{phone}\n" + "x" * 1100)
    out = preview(_load(directory), Channel.WHATSAPP, OPEN_AT)
    assert "the text is 1117 characters, over the 1024 that fit with buttons" in out


# -- a practice's own folder over the group's ------------------------------------------------


def _group_and_practice(tmp_path: Path) -> tuple[Path, Path]:
    """The group's folder (reply.txt and closed.txt) and an empty folder of one practice."""
    (tmp_path / "group").mkdir()
    (tmp_path / "own").mkdir()
    return _folder(tmp_path / "group", reply="Group reply {phone}"), tmp_path / "own"


def test_overlay_file_replaces_the_groups_file_of_that_name(tmp_path: Path) -> None:
    """A practice's own reply.instagram.txt is used for Instagram; the rest is the group's."""
    group, own = _group_and_practice(tmp_path)
    _write(own, "reply.instagram.txt", "Our own Instagram reply {phone}")
    templates = TemplateSet.load(group, PRACTICE, _schedule(), CHANNELS, overlays=(own,))
    assert templates.render(Channel.INSTAGRAM, OPEN_AT).text.startswith("Our own Instagram")
    assert templates.render(Channel.WHATSAPP, OPEN_AT).text.startswith("Group reply")


def test_overlay_broken_file_is_reported_with_its_own_path(tmp_path: Path) -> None:
    """A broken text in a practice's folder is reported at that folder's path."""
    group, own = _group_and_practice(tmp_path)
    _write(own, "closed.txt", "Closed {phnoe}")
    errors, _ = check_templates(group, PRACTICE, _schedule(), CHANNELS, overlays=(own,))
    assert errors[0].startswith(f"{own / 'closed.txt'}:1:8: unknown placeholder")


def test_live_templates_reload_an_edit_in_the_overlay(tmp_path: Path) -> None:
    """An edit in a practice's own folder is picked up like one in the group's."""
    group, own = _group_and_practice(tmp_path)
    live = LiveTemplates(group, PRACTICE, _schedule(), channels=CHANNELS, overlays=(own,))
    _write(own, "reply.txt", "Practice reply {phone}")
    assert live.reload() is True
    assert live.render(Channel.WHATSAPP, OPEN_AT).text.startswith("Practice reply")
