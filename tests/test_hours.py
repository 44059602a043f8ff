"""Opening hours, closed dates, bank holidays and daylight saving (bot/hours.py)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.hours import (
    DEFAULT_OPENING_HOURS,
    Schedule,
    Session,
    check_bank_holidays,
    format_next_opening,
    parse_closed_dates,
    parse_opening_hours,
)
from bot.languages import ENGLISH, WELSH, Language

LONDON = ZoneInfo("Europe/London")
EXAMPLE_HOURS = "Mon-Thu 08:30-13:00,14:00-17:30; Fri 08:30-16:00; Sat 09:00-12:00"


def _schedule(
    hours: str = EXAMPLE_HOURS,
    closed: str = "",
    bank_holidays: str = "GB-ENG",
) -> Schedule:
    return Schedule(parse_opening_hours(hours), LONDON, parse_closed_dates(closed), bank_holidays)


def _london(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=LONDON)


def _utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def _dashed(text: str) -> str:
    """Expected text with the en dash describe() puts between times (``09:00-12:00``)."""
    return re.sub(r"(\d)-(\d)", "\\1\u2013\\2", text)


# --- parsing -----------------------------------------------------------------------------


def test_parse_opening_hours_split_sessions() -> None:
    """A lunch break gives two sessions per day; each group keeps its own times."""
    hours = parse_opening_hours(EXAMPLE_HOURS)
    assert hours.on_weekday(0) == (Session(0, 510, 780), Session(0, 840, 1050))
    assert hours.on_weekday(3) == (Session(3, 510, 780), Session(3, 840, 1050))
    assert hours.on_weekday(4) == (Session(4, 510, 960),)
    assert hours.on_weekday(5) == (Session(5, 540, 720),)
    assert hours.on_weekday(6) == ()


@pytest.mark.parametrize(
    ("spec", "weekdays"),
    [
        ("Mon-Fri 09:00-17:00", {0, 1, 2, 3, 4}),
        ("Sat-Sun 10:00-12:00", {5, 6}),
        ("Fri-Mon 10:00-12:00", {4, 5, 6, 0}),
        ("Mon,Wed,Fri 10:00-12:00", {0, 2, 4}),
        ("monday - wednesday 10:00-12:00", {0, 1, 2}),
        ("Tues 10:00-12:00; Thurs 10:00-12:00", {1, 3}),
    ],
)
def test_parse_opening_hours_day_forms(spec: str, weekdays: set[int]) -> None:
    """Ranges (also wrapping over the weekend), lists and full or short names name the days."""
    assert {s.weekday for s in parse_opening_hours(spec).sessions} == weekdays


def test_parse_opening_hours_overnight_range() -> None:
    """An end earlier than the start runs into the next day."""
    hours = parse_opening_hours("Mon-Sun 20:00-02:00")
    assert hours.on_weekday(6) == (Session(6, 1200, 1560),)


def test_parse_opening_hours_24_00_end() -> None:
    """24:00 is accepted as a closing time."""
    assert parse_opening_hours("Fri 18:00-24:00").sessions == (Session(4, 1080, 1440),)


def test_parse_opening_hours_default() -> None:
    """The default spec is Monday to Friday, nine to five."""
    hours = parse_opening_hours(DEFAULT_OPENING_HOURS)
    assert hours.sessions == tuple(Session(d, 540, 1020) for d in range(5))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "no opening hours given"),
        ("Fry 09:00-12:00", "unknown day 'Fry' in 'Fry 09:00-12:00'"),
        ("Mon 25:00-26:00", "'25:00' is not a time of day in 'Mon 25:00-26:00'"),
        ("Mon 09:60-10:00", "'09:60' is not a time of day"),
        ("Mon 24:00-02:00", "'24:00' is not a time of day"),
        ("Mon 9am-5pm", "'9am' is not a time in 'Mon 9am-5pm'"),
        ("Mon 09:00", "'09:00' in 'Mon 09:00' is not an opening time"),
        ("Mon 09:00-09:00", "opens and closes at the same time"),
        ("09:00-17:00", "'09:00-17:00' does not start with a day"),
        ("Mon-Fri", "'Mon-Fri' has no opening times"),
        ("Mon-Fri 09:00-17:00; Sat", "'Sat' has no opening times"),
        ("Mon 09:00-12:00,11:00-13:00", _dashed("Monday 11:00-13:00 overlaps Monday 09:00-12:00")),
        (
            "Sun 20:00-03:00; Mon 02:00-05:00",
            _dashed("Monday 02:00-05:00 overlaps Sunday 20:00-03:00"),
        ),
        (",Mon 09:00-12:00", "missing day name"),
    ],
)
def test_parse_opening_hours_rejects(spec: str, message: str) -> None:
    """Bad specs raise ValueError with a message naming the bad part."""
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_opening_hours(spec)


@pytest.mark.parametrize(
    ("spec", "text"),
    [
        (
            EXAMPLE_HOURS,
            "Monday to Thursday 08:30-13:00 and 14:00-17:30; Friday 08:30-16:00; "
            "Saturday 09:00-12:00",
        ),
        ("Mon-Fri 09:00-17:00", "Monday to Friday 09:00-17:00"),
        ("Mon-Sun 20:00-02:00", "Every day 20:00-02:00"),
        ("Sat-Sun 10:00-11:00", "Saturday and Sunday 10:00-11:00"),
        (
            "Fri-Mon 09:00-12:00; Tue-Thu 08:00-18:00",
            "Friday to Monday 09:00-12:00; Tuesday to Thursday 08:00-18:00",
        ),
        ("Mon,Wed 09:00-24:00", "Monday and Wednesday 09:00-24:00"),
        ("Tue 09:00-12:00; Mon 09:00-12:00", "Monday and Tuesday 09:00-12:00"),
    ],
)
def test_describe_groups_days(spec: str, text: str) -> None:
    """describe() groups days with the same sessions into plain English."""
    assert _schedule(spec).describe() == _dashed(text)


def test_parse_closed_dates_ranges_and_days() -> None:
    """Inclusive ranges and single days are parsed in order."""
    assert parse_closed_dates("2026-12-24..2027-01-02, 2027-04-06") == (
        (date(2026, 12, 24), date(2027, 1, 2)),
        (date(2027, 4, 6), date(2027, 4, 6)),
    )


def test_parse_closed_dates_empty() -> None:
    """An empty setting means no closed dates."""
    assert parse_closed_dates("") == ()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("2027-01-02..2026-12-24", "ends before it starts"),
        ("2026-02-30", "'2026-02-30' in '2026-02-30' is not a real date"),
        ("2026-1-5", "is not a date; write dates as YYYY-MM-DD"),
        ("tomorrow", "'tomorrow' in 'tomorrow' is not a date"),
        ("2026-12-24..", "'' in '2026-12-24..' is not a date"),
    ],
)
def test_parse_closed_dates_rejects(spec: str, message: str) -> None:
    """Malformed dates and backwards ranges raise ValueError naming the bad part."""
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_closed_dates(spec)


# --- bank holidays -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code", ["GB-ENG", "GB-WLS", "GB-SCT", "GB-NIR", "GB", "IE", "DE-BY", "gb-sct", "none", "None"]
)
def test_check_bank_holidays_accepts(code: str) -> None:
    """Regions the holidays library knows, and none, are accepted."""
    check_bank_holidays(code)


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("GB-XX", "country GB has no region 'XX'; use one of ENG, NIR, SCT, WLS"),
        ("ZZ", "no bank holiday calendar for country 'ZZ'"),
        ("England", "'England' is not a region code"),
        ("", "'' is not a region code"),
    ],
)
def test_check_bank_holidays_rejects(code: str, message: str) -> None:
    """Unknown countries and regions raise ValueError with a plain message."""
    with pytest.raises(ValueError, match=re.escape(message)):
        check_bank_holidays(code)


_REGIONS = ("GB-ENG", "GB-WLS", "GB-SCT", "GB-NIR")


@pytest.mark.parametrize(
    ("day", "regions"),
    [
        (date(2026, 1, 1), {"GB-ENG", "GB-WLS", "GB-SCT", "GB-NIR"}),
        (date(2026, 1, 2), {"GB-SCT"}),
        (date(2026, 3, 17), {"GB-NIR"}),
        (date(2026, 4, 3), {"GB-ENG", "GB-WLS", "GB-SCT", "GB-NIR"}),
        (date(2026, 4, 6), {"GB-ENG", "GB-WLS", "GB-NIR"}),
        (date(2026, 7, 13), {"GB-NIR"}),
        (date(2026, 8, 3), {"GB-SCT"}),
        (date(2026, 8, 31), {"GB-ENG", "GB-WLS", "GB-NIR"}),
        (date(2026, 11, 30), {"GB-SCT"}),
        (date(2026, 12, 28), {"GB-ENG", "GB-WLS", "GB-SCT", "GB-NIR"}),
        (date(2027, 1, 4), {"GB-SCT"}),
        (date(2027, 3, 17), {"GB-NIR"}),
        (date(2027, 3, 29), {"GB-ENG", "GB-WLS", "GB-NIR"}),
        (date(2027, 7, 12), {"GB-NIR"}),
        (date(2027, 8, 2), {"GB-SCT"}),
        (date(2027, 11, 30), {"GB-SCT"}),
        (date(2027, 12, 27), {"GB-ENG", "GB-WLS", "GB-SCT", "GB-NIR"}),
        (date(2027, 6, 15), set()),
    ],
)
def test_is_bank_holiday_by_uk_region(day: date, regions: set[str]) -> None:
    """Each UK nation has its own bank holidays in 2026 and 2027 (Wales follows England)."""
    found = {code for code in _REGIONS if _schedule(bank_holidays=code).is_bank_holiday(day)}
    assert found == regions


def test_is_bank_holiday_none_ignores_holidays() -> None:
    """With BANK_HOLIDAYS=none even Christmas Day is an ordinary day."""
    schedule = _schedule("Mon-Sun 09:00-17:00", bank_holidays="none")
    assert not schedule.is_bank_holiday(date(2026, 12, 25))
    assert schedule.is_open(_london(2026, 12, 25, 10, 0))


def test_is_bank_holiday_across_new_year() -> None:
    """Lookups in consecutive years each use their own year's calendar."""
    schedule = _schedule()
    assert schedule.is_bank_holiday(date(2026, 12, 28))
    assert schedule.is_bank_holiday(date(2027, 1, 1))
    assert not schedule.is_bank_holiday(date(2026, 12, 29))
    assert not schedule.is_bank_holiday(date(2027, 1, 4))


def test_is_open_scottish_bank_holiday_only_in_scotland() -> None:
    """2 January 2026 closes a Scottish practice and not an English one."""
    at = _london(2026, 1, 2, 10, 0)
    assert not _schedule(bank_holidays="GB-SCT").is_open(at)
    assert _schedule(bank_holidays="GB-ENG").is_open(at)


# --- is_open -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (_london(2026, 6, 1, 8, 29), False),
        (_london(2026, 6, 1, 8, 30), True),
        (_london(2026, 6, 1, 12, 59), True),
        (_london(2026, 6, 1, 13, 0), False),
        (_london(2026, 6, 1, 13, 59), False),
        (_london(2026, 6, 1, 14, 0), True),
        (_london(2026, 6, 1, 17, 29), True),
        (_london(2026, 6, 1, 17, 30), False),
        (_london(2026, 6, 5, 15, 59), True),
        (_london(2026, 6, 5, 16, 0), False),
        (_london(2026, 6, 6, 11, 0), True),
        (_london(2026, 6, 7, 11, 0), False),
        (_utc(2026, 6, 1, 7, 30), True),
        (_utc(2026, 6, 1, 7, 29), False),
        (_utc(2026, 12, 1, 8, 30), True),
        (_utc(2026, 12, 1, 8, 29), False),
        (datetime(2026, 6, 1, 3, 30, tzinfo=ZoneInfo("America/New_York")), True),
    ],
)
def test_is_open_lunch_break_table(at: datetime, expected: bool) -> None:
    """Sessions are local wall-clock times, whatever zone the moment is given in."""
    assert _schedule().is_open(at) is expected


def test_is_open_naive_datetime_rejected() -> None:
    """A moment without a zone cannot be placed in the practice's day."""
    with pytest.raises(ValueError, match="time zone"):
        _schedule().is_open(datetime(2026, 6, 1, 10, 0))  # noqa: DTZ001


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (_london(2026, 6, 2, 1, 59), True),
        (_london(2026, 6, 2, 2, 0), False),
        (_london(2026, 6, 2, 19, 59), False),
        (_london(2026, 6, 2, 20, 0), True),
        (_london(2026, 6, 2, 23, 59), True),
        (_london(2026, 6, 8, 1, 0), True),
    ],
)
def test_is_open_overnight_range(at: datetime, expected: bool) -> None:
    """An overnight session runs from the evening into the next morning, also Sunday to Monday."""
    assert _schedule("Mon-Sun 20:00-02:00", bank_holidays="none").is_open(at) is expected


def test_is_open_overnight_session_into_closed_day_runs_to_its_end() -> None:
    """The session that started on 24 December runs until 02:00 on the closed 25th."""
    schedule = _schedule("Mon-Sun 20:00-02:00", closed="2026-12-25", bank_holidays="none")
    assert schedule.is_open(_london(2026, 12, 25, 1, 59))
    assert not schedule.is_open(_london(2026, 12, 25, 2, 0))


def test_is_open_overnight_session_on_closed_day_does_not_start() -> None:
    """No session starts on a closed day, so its night has no opening either."""
    schedule = _schedule("Mon-Sun 20:00-02:00", closed="2026-12-25", bank_holidays="none")
    assert not schedule.is_open(_london(2026, 12, 25, 21, 0))
    assert not schedule.is_open(_london(2026, 12, 26, 1, 0))
    assert schedule.is_open(_london(2026, 12, 26, 20, 0))


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (_london(2026, 12, 23, 17, 29), True),
        (_london(2026, 12, 24, 10, 0), False),
        (_london(2026, 12, 31, 10, 0), False),
        (_london(2027, 1, 2, 10, 0), False),
        (_london(2027, 1, 4, 8, 30), True),
    ],
)
def test_is_open_closure_spanning_new_year(at: datetime, expected: bool) -> None:
    """A closed-date range over New Year closes every day in it, both ends included."""
    assert _schedule(closed="2026-12-24..2027-01-02").is_open(at) is expected


# --- daylight saving -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        # Spring forward 2026-03-29: 01:00 GMT becomes 02:00 BST; 01:30 does not exist.
        (_utc(2026, 3, 29, 0, 59), False),
        (_utc(2026, 3, 29, 1, 0), True),
        (_utc(2026, 3, 29, 1, 59), True),
        (_utc(2026, 3, 29, 2, 0), False),
        # Same in 2027 (28 March).
        (_utc(2027, 3, 28, 0, 59), False),
        (_utc(2027, 3, 28, 1, 0), True),
        (_utc(2027, 3, 28, 2, 0), False),
        # Fall back 2026-10-25: 01:30 BST is 00:30 UTC; closes at 03:00 GMT, 2.5 hours later.
        (_utc(2026, 10, 25, 0, 29), False),
        (_utc(2026, 10, 25, 0, 30), True),
        (_utc(2026, 10, 25, 1, 15), True),
        (_utc(2026, 10, 25, 2, 59), True),
        (_utc(2026, 10, 25, 3, 0), False),
        # Fall back 2027-10-31.
        (_utc(2027, 10, 31, 0, 30), True),
        (_utc(2027, 10, 31, 3, 0), False),
    ],
)
def test_is_open_session_in_dst_change_hours(at: datetime, expected: bool) -> None:
    """A 01:30-03:00 session opens at the spring jump and at the first 01:30 in autumn."""
    assert _schedule("Mon-Sun 01:30-03:00", bank_holidays="none").is_open(at) is expected


def test_next_opening_skipped_time_is_the_jump() -> None:
    """A start time skipped by the clocks going forward becomes 02:00 BST."""
    schedule = _schedule("Mon-Sun 01:30-03:00", bank_holidays="none")
    opening = schedule.next_opening(_london(2026, 3, 29, 0, 0))
    assert opening == _utc(2026, 3, 29, 1, 0)
    assert opening is not None
    assert format_next_opening(opening) == "Sunday 29 March at 02:00"


def test_next_opening_repeated_time_is_the_first() -> None:
    """A start time repeated when the clocks go back is its first occurrence (BST)."""
    schedule = _schedule("Mon-Sun 01:30-03:00", bank_holidays="none")
    opening = schedule.next_opening(_london(2026, 10, 25, 0, 0))
    assert opening is not None
    # Aware datetimes in a repeated hour never compare equal across zones (PEP 495).
    assert opening.timestamp() == _utc(2026, 10, 25, 0, 30).timestamp()
    assert opening.isoformat() == "2026-10-25T01:30:00+01:00"


def test_is_open_session_ending_in_repeated_hour_ends_first_time() -> None:
    """A session closing at 01:30 on the autumn change closes at the first 01:30."""
    schedule = _schedule("Sun 00:00-01:30", bank_holidays="none")
    assert schedule.is_open(_utc(2026, 10, 25, 0, 29))
    assert not schedule.is_open(_utc(2026, 10, 25, 0, 45))
    assert not schedule.is_open(_utc(2026, 10, 25, 1, 15))


def test_is_open_session_ending_in_skipped_hour_ends_at_the_jump() -> None:
    """A session closing at 01:30 on the spring change closes when the clocks jump."""
    schedule = _schedule("Sun 00:00-01:30", bank_holidays="none")
    assert schedule.is_open(_utc(2026, 3, 29, 0, 59))
    assert not schedule.is_open(_utc(2026, 3, 29, 1, 0))


def test_next_opening_session_inside_skipped_hour_does_not_happen() -> None:
    """A 01:00-02:00 session on the spring-forward Sunday is skipped to the next week."""
    schedule = _schedule("Sun 01:00-02:00", bank_holidays="none")
    assert schedule.next_opening(_london(2026, 3, 28, 12, 0)) == _utc(2026, 4, 5, 0, 0)


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (_utc(2026, 3, 27, 9, 0), True),  # Friday before: 09:00 GMT
        (_utc(2026, 3, 30, 7, 59), False),  # Monday after: 08:59 BST
        (_utc(2026, 3, 30, 8, 0), True),  # 09:00 BST
        (_utc(2026, 10, 23, 15, 59), True),  # Friday before: 16:59 BST
        (_utc(2026, 10, 23, 16, 0), False),
        (_utc(2026, 10, 26, 8, 59), False),  # Monday after: 08:59 GMT
        (_utc(2026, 10, 26, 9, 0), True),
        (_utc(2027, 3, 29, 8, 0), True),
        (_utc(2027, 11, 1, 9, 0), True),
    ],
)
def test_is_open_follows_local_clock_across_dst(at: datetime, expected: bool) -> None:
    """Nine to five stays nine to five local time on both sides of each change."""
    assert _schedule("Mon-Fri 09:00-17:00", bank_holidays="none").is_open(at) is expected


def test_is_open_overnight_across_spring_forward() -> None:
    """A Saturday 22:00-04:00 session over the spring change closes at 04:00 BST."""
    schedule = _schedule("Sat 22:00-04:00", bank_holidays="none")
    assert schedule.is_open(_utc(2026, 3, 29, 2, 59))
    assert not schedule.is_open(_utc(2026, 3, 29, 3, 0))


# --- next_opening ---------------------------------------------------------------------------


def test_next_opening_skips_christmas_bank_holidays() -> None:
    """On Christmas Eve evening the default hours next open after the Boxing Day substitute."""
    schedule = _schedule(DEFAULT_OPENING_HOURS)
    opening = schedule.next_opening(_london(2026, 12, 24, 18, 30))
    assert opening is not None
    assert format_next_opening(opening) == "Tuesday 29 December at 09:00"


def test_next_opening_after_new_year_closure() -> None:
    """A closure to 2 January 2027 (a Saturday) means Monday 4 January at 08:30."""
    schedule = _schedule(closed="2026-12-24..2027-01-02")
    opening = schedule.next_opening(_london(2026, 12, 23, 18, 0))
    assert opening is not None
    assert format_next_opening(opening) == "Monday 4 January at 08:30"


def test_next_opening_in_practice_zone() -> None:
    """The result is in the practice's zone even when asked in UTC."""
    opening = _schedule().next_opening(_utc(2026, 6, 6, 12, 0))
    assert opening == _london(2026, 6, 8, 8, 30)
    assert opening is not None
    assert opening.tzinfo == LONDON


def test_next_opening_during_lunch_is_afternoon() -> None:
    """Closed for lunch, the next opening is the afternoon session."""
    assert _schedule().next_opening(_london(2026, 6, 1, 13, 15)) == _london(2026, 6, 1, 14, 0)


def test_next_opening_at_session_start_is_that_start() -> None:
    """A session starting exactly at the moment counts (at or after)."""
    at = _london(2026, 6, 1, 8, 30)
    assert _schedule().next_opening(at) == at


def test_next_opening_none_when_closed_for_a_long_time() -> None:
    """With everything closed for over 400 days there is no next opening."""
    schedule = _schedule(closed="2026-01-01..2028-01-31")
    assert schedule.next_opening(_london(2026, 1, 1, 0, 0)) is None


def test_next_opening_found_far_ahead() -> None:
    """A long closure still finds the first session after it, a year ahead."""
    schedule = _schedule(closed="2026-01-01..2027-01-01")
    assert schedule.next_opening(_london(2026, 1, 1, 0, 0)) == _london(2027, 1, 2, 9, 0)


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (_london(2027, 1, 2, 8, 30), "Saturday 2 January at 08:30"),
        (_london(2026, 12, 29, 9, 0), "Tuesday 29 December at 09:00"),
        (_london(2026, 9, 30, 23, 59), "Wednesday 30 September at 23:59"),
    ],
)
def test_format_next_opening_text(moment: datetime, text: str) -> None:
    """Weekday, day without a leading zero, month name and 24-hour time, in English."""
    assert format_next_opening(moment) == text


@pytest.mark.parametrize("language", [ENGLISH, WELSH], ids=["en", "cy"])
def test_format_next_opening_longest_is_longest(language: Language) -> None:
    """No date in several years formats longer than the language's longest, which the
    texts' length checks use."""
    start = _london(2026, 1, 1, 23, 59)
    texts = (format_next_opening(start + timedelta(days=n), language) for n in range(7 * 366))
    assert max(len(text) for text in texts) == len(language.longest_date_and_time)
