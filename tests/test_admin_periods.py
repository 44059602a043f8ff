"""The next days as open and closed periods for the manager's page (bot/admin/periods.py)."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.admin.periods import Period, describe, periods
from bot.hours import Closure, Schedule, parse_closed_dates, parse_opening_hours

LONDON = ZoneInfo("Europe/London")
OUTSIDE = "outside opening hours"


def _schedule(hours: str = "Mon-Fri 08:30-17:00", closed: str = "") -> Schedule:
    return Schedule(parse_opening_hours(hours), LONDON, parse_closed_dates(closed), "GB-ENG")


def _london(month: int, day: int, hour: int = 0, minute: int = 0, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=LONDON)


def _walls(found: list[Period]) -> list[tuple[str, str, str]]:
    """Each period as (start, end, state) in wall-clock text, state "open" or the reason."""
    return [
        (f"{p.start:%a %H:%M}", f"{p.end:%a %H:%M}", "open" if p.open else p.reason) for p in found
    ]


def test_periods_ordinary_week_alternates_open_and_closed() -> None:
    """Each weekday is closed until opening, open for the session, closed after it."""
    found = periods(_schedule(), _london(6, 1), days=7)
    expected = [("Mon 00:00", "Mon 08:30", OUTSIDE)]
    for day, following in itertools.pairwise(["Mon", "Tue", "Wed", "Thu", "Fri", "Mon"]):
        expected.append((f"{day} 08:30", f"{day} 17:00", "open"))
        expected.append(
            (f"{day} 17:00", f"{following} {'00:00' if day == 'Fri' else '08:30'}", OUTSIDE)
        )
    assert _walls(found) == expected


def test_periods_labelled_closure_shows_its_label() -> None:
    """Days of a labelled closure carry its label and say it comes from closures.txt."""
    closure = Closure(date(2026, 6, 2), date(2026, 6, 3), "Staff training")
    found = periods(_schedule().with_closures([closure]), _london(6, 1, 17), days=2)
    assert _walls(found) == [
        ("Mon 17:00", "Tue 00:00", OUTSIDE),
        ("Tue 00:00", "Wed 17:00", "Staff training (closures.txt)"),
    ]
    assert [p.label for p in found] == ["", "Staff training"]


def test_periods_unlabelled_closed_date_says_closed_date() -> None:
    """A CLOSED_DATES day is a closed date with no label, even over a bank holiday."""
    found = periods(_schedule(closed="2026-05-25"), _london(5, 25), days=1)
    assert [(p.reason, p.label) for p in found] == [("closed date", "")]


def test_periods_bank_holidays_show_their_names() -> None:
    """Christmas 2026 in England: each bank holiday is its own period, named."""
    found = periods(_schedule(), _london(12, 24, 17), days=5)
    assert _walls(found) == [
        ("Thu 17:00", "Fri 00:00", OUTSIDE),
        ("Fri 00:00", "Sat 00:00", "bank holiday: Christmas Day"),
        ("Sat 00:00", "Sun 00:00", "bank holiday: Boxing Day"),
        ("Sun 00:00", "Mon 00:00", OUTSIDE),
        ("Mon 00:00", "Tue 00:00", "bank holiday: Boxing Day (observed)"),
        ("Tue 00:00", "Tue 08:30", OUTSIDE),
        ("Tue 08:30", "Tue 17:00", "open"),
    ]


@pytest.mark.parametrize(
    "hours",
    [
        "Mon-Fri 08:30-17:00",
        "Mon-Thu 08:30-13:00,14:00-17:30; Sat 09:00-12:00",
        "Mon-Sun 20:00-02:00",
    ],
)
@pytest.mark.parametrize("start", [_london(3, 20, 13, 7), _london(10, 20, 1, 30), _london(12, 20)])
def test_periods_cover_the_range_contiguously(hours: str, start: datetime) -> None:
    """From start to 14 days later, each period ends where the next starts and states agree
    with is_open; no two neighbours tell the same thing."""
    schedule = _schedule(hours)
    found = periods(schedule, start)
    assert found[0].start.astimezone(UTC) == start.astimezone(UTC)
    assert found[-1].end == start + timedelta(days=14)
    for earlier, later in itertools.pairwise(found):
        assert earlier.end.astimezone(UTC) == later.start.astimezone(UTC)
        assert (earlier.open, earlier.reason) != (later.open, later.reason)
    for period in found:
        assert period.start.astimezone(UTC) < period.end.astimezone(UTC)
        last_minute = period.end.astimezone(UTC) - timedelta(minutes=1)
        assert schedule.is_open(period.start) is period.open
        assert schedule.is_open(last_minute) is period.open


def test_periods_clocks_going_forward_keep_wall_times() -> None:
    """On 29 March 2026 the night is an hour shorter but opening times stay 09:00-17:00."""
    found = periods(_schedule("Mon-Sun 09:00-17:00"), _london(3, 28, 17), days=1)
    assert _walls(found) == [
        ("Sat 17:00", "Sun 09:00", OUTSIDE),
        ("Sun 09:00", "Sun 17:00", "open"),
    ]
    assert found[0].end - found[0].start == timedelta(hours=16)  # wall-time difference
    assert found[0].end.astimezone(UTC) - found[0].start.astimezone(UTC) == timedelta(hours=15)


def test_periods_clocks_going_back_keep_wall_times() -> None:
    """On 25 October 2026 an overnight session ends at 02:00 GMT, after the repeated hour."""
    found = periods(_schedule("Sat 20:00-02:00"), _london(10, 24, 20), days=1)
    assert _walls(found)[0] == ("Sat 20:00", "Sun 02:00", "open")
    assert found[0].end.utcoffset() == timedelta(0)
    assert found[0].end.astimezone(UTC) - found[0].start.astimezone(UTC) == timedelta(hours=7)


def test_periods_past_midnight_session_runs_into_a_bank_holiday() -> None:
    """The session starting on Christmas Eve runs until 02:00 on Christmas Day, then none."""
    found = periods(_schedule("Mon-Sun 20:00-02:00"), _london(12, 24), days=2)
    assert _walls(found) == [
        ("Thu 00:00", "Thu 02:00", "open"),
        ("Thu 02:00", "Thu 20:00", OUTSIDE),
        ("Thu 20:00", "Fri 02:00", "open"),
        ("Fri 02:00", "Sat 00:00", "bank holiday: Christmas Day"),
    ]


def test_periods_merge_a_weekend_into_one_period() -> None:
    """Friday evening to Monday morning outside hours is one closed period."""
    found = periods(_schedule(), _london(6, 5, 17), days=3)
    assert _walls(found)[0] == ("Fri 17:00", "Mon 08:30", OUTSIDE)


def test_periods_merge_back_to_back_sessions() -> None:
    """Sessions that meet at midnight show as one open period."""
    found = periods(_schedule("Mon-Sun 00:00-24:00"), _london(6, 1), days=3)
    assert [(p.open, p.start, p.end) for p in found] == [(True, _london(6, 1), _london(6, 4))]


def test_periods_naive_start_is_refused() -> None:
    """A start without a time zone cannot be placed on the practice's clock."""
    with pytest.raises(ValueError, match="time zone"):
        periods(_schedule(), datetime(2026, 6, 1))  # noqa: DTZ001


def test_describe_christmas_closure() -> None:
    """A closure spanning days shows both ends with dates and its reason."""
    christmas = Closure(date(2026, 12, 24), date(2027, 1, 2), "Christmas")
    found = periods(_schedule().with_closures([christmas]), _london(12, 23, 17), days=12)
    assert [describe(p) for p in found] == [
        "Wed 23 Dec 17:00 \u2013 Thu 24 Dec 00:00: closed \u2014 outside opening hours",
        "Thu 24 Dec 00:00 \u2013 Sun 3 Jan 00:00: closed \u2014 Christmas (closures.txt)",
        "Sun 3 Jan 00:00 \u2013 Mon 4 Jan 08:30: closed \u2014 outside opening hours",
        "Mon 4 Jan 08:30 \u2013 17:00: open",
    ]


def test_describe_open_period_within_a_day() -> None:
    """An open period ending on its own day shows the end as a time only."""
    found = periods(_schedule(), _london(6, 1, 8, 30), days=1)
    assert describe(found[0]) == "Mon 1 Jun 08:30 \u2013 17:00: open"
