"""The manager's closures: ``closures.txt``, a closure's own closed text, ``{closed_reason}``."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from adapters import REGISTRY
from bot.events import Channel
from bot.hours import Closure, Schedule, parse_opening_hours
from bot.templates import LiveTemplates, PracticeInfo, TemplateSet, check_templates
from bot.templates.closures import closure_key, parse_closures
from tests.helpers.wording import is_wording_note

LONDON = ZoneInfo("Europe/London")
PRACTICE = PracticeInfo(name="Riverside Dental Practice", phone="+44 20 7946 0123")
CHANNELS = REGISTRY.adapters
WEEKDAYS = "Mon-Fri 09:00-17:00"
CHRISTMAS_DAY = datetime(2026, 12, 25, 11, 0, tzinfo=LONDON)  # a Friday, and a bank holiday
NEW_YEARS_EVE = datetime(2026, 12, 31, 11, 0, tzinfo=LONDON)  # a Thursday, no bank holiday
EASTER_MONDAY = datetime(2027, 3, 29, 11, 0, tzinfo=LONDON)
A_TUESDAY_EVENING = datetime(2027, 3, 23, 19, 0, tzinfo=LONDON)
CLOSED = "We are closed.\nCall {phone}.\nClosed for: {closed_reason}\n"


def _schedule() -> Schedule:
    return Schedule(parse_opening_hours(WEEKDAYS), LONDON, (), "GB-ENG")


def _folder(tmp_path: Path, closures: str | None = None, **files: str) -> Path:
    """The two texts, ``closures`` as closures.txt, and ``files`` (``closed__christmas`` is
    written as closed.christmas.txt)."""
    (tmp_path / "reply.txt").write_text("Hello, call {phone}")
    (tmp_path / "closed.txt").write_text(CLOSED)
    if closures is not None:
        (tmp_path / "closures.txt").write_text(closures)
    for name, text in files.items():
        (tmp_path / (name.replace("__", ".").replace("_", "-") + ".txt")).write_text(text)
    return tmp_path


def _load(directory: Path) -> TemplateSet:
    return TemplateSet.load(directory, PRACTICE, _schedule(), CHANNELS)


def test_parse_closures_reads_ranges_days_labels_and_comments() -> None:
    """A range with a label, a single day, comments and blank lines."""
    text = "# our closures\n\n2026-12-24..2027-01-02 Christmas  break # festive\n2027-04-06\n"
    closures, problems = parse_closures(text, "closures.txt")
    assert problems == []
    assert closures == [
        Closure(date(2026, 12, 24), date(2027, 1, 2), "Christmas break"),
        Closure(date(2027, 4, 6), date(2027, 4, 6)),
    ]


def test_parse_closures_names_line_and_column_of_each_problem() -> None:
    """A date that is not one, an impossible date and a reversed range: each at its place."""
    text = "2026-12-24\n  24/12/2026 Christmas\n2027-02-30\n2027-01-02..2026-12-24\n"
    _, problems = parse_closures(text, "closures.txt")
    assert [str(p).split(":")[:3] for p in problems] == [
        ["closures.txt", "2", "3"],
        ["closures.txt", "3", "1"],
        ["closures.txt", "4", "1"],
    ]
    assert "'24/12/2026' is not a date" in str(problems[0])
    assert "'2027-02-30' is not a real date" in str(problems[1])
    assert "ends before it starts" in str(problems[2])


def test_closure_key_is_the_label_in_file_name_form() -> None:
    """``Staff training`` picks ``closed.staff-training.txt``."""
    assert closure_key("Staff  Training!") == "staff-training"


def test_closures_file_closes_its_days(tmp_path: Path) -> None:
    """A weekday in closures.txt gets the closed text."""
    texts = _load(_folder(tmp_path, "2026-12-31 New Year's Eve\n"))
    assert texts.render(Channel.WHATSAPP, NEW_YEARS_EVE).source == "closed.txt"


def test_closure_own_text_is_used_during_that_closure(tmp_path: Path) -> None:
    """During the closure labelled Christmas, closed.christmas.txt is sent."""
    folder = _folder(
        tmp_path,
        "2026-12-24..2027-01-02 Christmas\n",
        closed__christmas="Merry Christmas from us; call {phone} if it is urgent.",
    )
    texts = _load(folder)
    assert texts.render(Channel.INSTAGRAM, NEW_YEARS_EVE).source == "closed.christmas.txt"
    assert texts.render(Channel.INSTAGRAM, A_TUESDAY_EVENING).source == "closed.txt"


def test_closure_channel_text_wins_over_its_text(tmp_path: Path) -> None:
    """closed.christmas.instagram.txt is Instagram's during Christmas; others get the closure's."""
    folder = _folder(
        tmp_path,
        "2026-12-24..2027-01-02 Christmas\n",
        closed__christmas="Christmas: call {phone}.",
        closed__christmas__instagram="Christmas on Instagram: call {phone}.",
    )
    texts = _load(folder)
    assert texts.render(Channel.INSTAGRAM, NEW_YEARS_EVE).source == "closed.christmas.instagram.txt"
    assert texts.render(Channel.WHATSAPP, NEW_YEARS_EVE).source == "closed.christmas.txt"


def test_closed_reason_is_the_closures_label(tmp_path: Path) -> None:
    """{closed_reason} says the closure's label."""
    texts = _load(_folder(tmp_path, "2026-12-24..2027-01-02 Christmas\n"))
    assert "Closed for: Christmas" in texts.render(Channel.WHATSAPP, NEW_YEARS_EVE).text


def test_closed_reason_is_the_bank_holidays_name(tmp_path: Path) -> None:
    """On a bank holiday outside any closure, {closed_reason} names the holiday."""
    texts = _load(_folder(tmp_path))
    assert "Closed for: Easter Monday" in texts.render(Channel.WHATSAPP, EASTER_MONDAY).text


def test_closed_reason_outside_hours_is_empty_and_its_line_goes(tmp_path: Path) -> None:
    """Outside the opening hours {closed_reason} is empty: a line holding only it is left out."""
    text = _load(_folder(tmp_path)).render(Channel.WHATSAPP, A_TUESDAY_EVENING).text
    assert "Closed for" not in text


def test_closure_text_without_its_closure_is_not_used(tmp_path: Path) -> None:
    """closed.easter.txt with no closure labelled Easter: a warning says it is not used."""
    folder = _folder(tmp_path, "2026-12-24 Christmas Eve\n", closed__easter="Easter {phone}")
    errors, warnings = check_templates(folder, PRACTICE, _schedule(), CHANNELS)
    assert errors == []
    unused = [w for w in warnings if not is_wording_note(w)]
    assert [w.split(":")[0] for w in unused] == [str(folder / "closed.easter.txt")]


def test_closure_text_is_checked_like_any_text(tmp_path: Path) -> None:
    """A closure's own text with no way to reach the practice is an error naming it."""
    folder = _folder(tmp_path, "2026-12-24 Christmas Eve\n", closed__christmas_eve="Closed.")
    errors, _ = check_templates(folder, PRACTICE, _schedule(), CHANNELS)
    assert errors == [
        f"{folder / 'closed.christmas-eve.txt'}:1:1: the message gives patients no way to "
        "reach the practice; include {phone}"
    ]


def test_closures_edit_applies_live(tmp_path: Path) -> None:
    """A closure added to closures.txt applies at the next reload, without a restart."""
    folder = _folder(tmp_path, "")
    live = LiveTemplates(folder, PRACTICE, _schedule(), channels=CHANNELS)
    assert live.render(Channel.WHATSAPP, NEW_YEARS_EVE).source == "reply.txt"
    (folder / "closures.txt").write_text("2026-12-31 New Year's Eve\n")
    assert live.reload()
    assert live.render(Channel.WHATSAPP, NEW_YEARS_EVE).source == "closed.txt"


def test_closures_broken_edit_keeps_the_last_good_closures(tmp_path: Path) -> None:
    """A broken closures.txt is refused by name; the closures in force stay."""
    folder = _folder(tmp_path, "2026-12-31 New Year's Eve\n")
    live = LiveTemplates(folder, PRACTICE, _schedule(), channels=CHANNELS)
    (folder / "closures.txt").write_text("2026-12-31 New Year's Eve\n31/12/2026\n")
    assert not live.reload()
    assert live.failed_files == ["closures.txt"]
    assert live.render(Channel.WHATSAPP, NEW_YEARS_EVE).source == "closed.txt"


def test_closures_are_kept_with_the_last_good_set(tmp_path: Path) -> None:
    """The set the store keeps holds closures.txt, and restoring it closes the same days."""
    kept = _load(_folder(tmp_path, "2026-12-31 New Year's Eve\n")).texts
    restored = TemplateSet.from_texts(kept, PRACTICE, _schedule(), CHANNELS)
    assert kept["closures.txt"] == "2026-12-31 New Year's Eve\n"
    assert restored.render(Channel.WHATSAPP, NEW_YEARS_EVE).source == "closed.txt"


def test_closure_on_a_bank_holiday_says_its_label(tmp_path: Path) -> None:
    """Christmas Day inside the Christmas closure: the label, not the holiday's name."""
    texts = _load(_folder(tmp_path, "2026-12-24..2027-01-02 Christmas\n"))
    assert "Closed for: Christmas\n" in texts.render(Channel.WHATSAPP, CHRISTMAS_DAY).text + "\n"
