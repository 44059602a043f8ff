"""Opening hours, closures and bank holidays: is the practice open at a given moment?

Sessions are local wall-clock times in ``PRACTICE_TIMEZONE`` (SPEC §2). The rules chosen here:

- A session belongs to the day it starts on. An overnight session (``Mon 20:00-02:00``) starts
  on the named day and ends on the next day.
- A session does not open on a day listed in ``CLOSED_DATES`` or on a bank holiday. An overnight
  session that started on an open day runs to its end even when the next day is closed (the
  evening before Christmas Day keeps its night session until 02:00); a session that would start
  on a closed day does not happen at all.
- Daylight saving: a wall-clock time becomes the first instant at which the clock shows that time
  or later. A time skipped when the clocks go forward (01:30 on the last Sunday of March in
  Europe/London) becomes the moment the clocks jump (02:00 BST); a time repeated when they go
  back is its first occurrence. A session that lies wholly inside the skipped hour does not happen.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays

from bot.languages import ENGLISH, Language

__all__ = [
    "DAY_NAMES",
    "DEFAULT_BANK_HOLIDAYS",
    "DEFAULT_OPENING_HOURS",
    "EN_DASH",
    "MONTH_NAMES",
    "OpeningHours",
    "Schedule",
    "Session",
    "check_bank_holidays",
    "format_next_opening",
    "parse_closed_dates",
    "parse_opening_hours",
]

EN_DASH = "\u2013"
DEFAULT_OPENING_HOURS = "Mon-Fri 09:00-17:00"
DEFAULT_BANK_HOLIDAYS = "GB-ENG"

DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)

_MINUTES_PER_DAY = 24 * 60
_MINUTES_PER_WEEK = 7 * _MINUTES_PER_DAY
_SEARCH_DAYS = 400

_DAY_ALIASES: dict[str, int] = {}
for _index, _name in enumerate(DAY_NAMES):
    _DAY_ALIASES[_name.lower()] = _index
    _DAY_ALIASES[_name[:3].lower()] = _index
_DAY_ALIASES.update({"tues": 1, "thur": 3, "thurs": 3})

_TIME = re.compile(r"(\d{1,2}):(\d{2})")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_REGION = re.compile(r"([A-Za-z]{2})(?:-([A-Za-z0-9]+))?")


@dataclass(frozen=True, slots=True, order=True)
class Session:
    """One opening period: starts on ``weekday`` at ``start`` minutes after midnight.

    ``end`` is in minutes after the same midnight and always greater than ``start``; an
    overnight session has ``end`` above 1440 (``20:00-02:00`` is ``start=1200, end=1560``).
    """

    weekday: int  # 0 = Monday
    start: int
    end: int

    def times_text(self) -> str:
        """The session as ``08:30-13:00`` with an en dash (an overnight end shows next-day time)."""
        return f"{_clock(self.start)}{EN_DASH}{_clock(self.end)}"


@dataclass(frozen=True, slots=True)
class OpeningHours:
    """A week of sessions, sorted by weekday and start; built by :func:`parse_opening_hours`."""

    sessions: tuple[Session, ...]

    def on_weekday(self, weekday: int) -> tuple[Session, ...]:
        """The sessions that start on ``weekday`` (0 = Monday), in start order."""
        return tuple(s for s in self.sessions if s.weekday == weekday)

    def describe(self, language: Language = ENGLISH) -> str:
        """Human text, e.g. ``Monday to Thursday 08:30-13:00 and 14:00-17:30; Friday 08:30-16:00``
        (Welsh: ``Dydd Llun-Dydd Iau 08:30-13:00, 14:00-17:30; Dydd Gwener 08:30-16:00``).

        Days with the same sessions are grouped; times are joined by an en dash.
        """
        by_day = [tuple(s.times_text() for s in self.on_weekday(d)) for d in range(7)]
        groups: dict[tuple[str, ...], list[int]] = {}
        for day, times in enumerate(by_day):
            if times:
                groups.setdefault(times, []).append(day)
        parts = [
            f"{_describe_days(days, language)} {language.times(list(times))}"
            for times, days in groups.items()
        ]
        return "; ".join(parts)


def _clock(minutes: int) -> str:
    if minutes == _MINUTES_PER_DAY:
        return "24:00"
    minutes %= _MINUTES_PER_DAY
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _describe_days(days: list[int], language: Language) -> str:
    if len(days) == 7:
        return language.every_day
    runs: list[list[int]] = []
    for day in days:
        if runs and runs[-1][-1] == day - 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    if len(runs) > 1 and runs[0][0] == 0 and runs[-1][-1] == 6:
        # A run over the weekend into Monday reads as one range: "Friday to Monday".
        runs = [runs[-1] + runs[0], *runs[1:-1]]
    return language.days(runs)


def _parse_day(text: str, group: str) -> int:
    day = _DAY_ALIASES.get(text.strip().lower())
    if day is None:
        raise ValueError(
            f"unknown day {text.strip()!r} in {group!r}; use Mon, Tue, Wed, Thu, Fri, Sat or Sun"
        )
    return day


def _parse_days(text: str, group: str) -> list[int]:
    days: list[int] = []
    for item in text.split(","):
        if not item.strip():
            raise ValueError(f"missing day name in {group!r}")
        if "-" in item:
            first_text, _, last_text = item.partition("-")
            first, last = _parse_day(first_text, group), _parse_day(last_text, group)
            span = (last - first) % 7  # Sat-Sun and Fri-Mon wrap around the week end
            days.extend((first + i) % 7 for i in range(span + 1))
        else:
            days.append(_parse_day(item, group))
    return days


def _parse_time(text: str, group: str, *, end: bool) -> int:
    match = _TIME.fullmatch(text.strip())
    hint = "use HH:MM from 00:00 to 23:59" + (" (or 24:00 as a closing time)" if end else "")
    if match is None:
        raise ValueError(f"{text.strip()!r} is not a time in {group!r}; {hint}")
    hours, minutes = int(match[1]), int(match[2])
    if minutes > 59 or hours > 24 or (hours == 24 and (minutes or not end)):
        raise ValueError(f"{text.strip()!r} is not a time of day in {group!r}; {hint}")
    return hours * 60 + minutes


def _parse_sessions(text: str, group: str) -> list[tuple[int, int]]:
    result: list[tuple[int, int]] = []
    for item in text.split(","):
        bounds = re.split(rf"\s*[-{EN_DASH}]\s*", item.strip())
        if len(bounds) != 2:
            raise ValueError(
                f"{item.strip()!r} in {group!r} is not an opening time; write it like 09:00-17:00"
            )
        start = _parse_time(bounds[0], group, end=False)
        end = _parse_time(bounds[1], group, end=True)
        if end == start:
            raise ValueError(
                f"{item.strip()!r} in {group!r} opens and closes at the same time; "
                "use 00:00-24:00 for a whole day"
            )
        if end < start:
            end += _MINUTES_PER_DAY  # overnight: ends on the next day
        result.append((start, end))
    return result


def _check_overlaps(sessions: Sequence[Session]) -> None:
    spans: list[tuple[int, int, Session]] = []
    for s in sessions:
        begin = s.weekday * _MINUTES_PER_DAY + s.start
        finish = s.weekday * _MINUTES_PER_DAY + s.end
        spans.append((begin, finish, s))
        if finish > _MINUTES_PER_WEEK:  # Sunday night into Monday morning
            spans.append((begin - _MINUTES_PER_WEEK, finish - _MINUTES_PER_WEEK, s))
    spans.sort(key=lambda span: (span[0], span[1]))
    for (_, finish, earlier), (begin, _, later) in itertools.pairwise(spans):
        if begin < finish:
            raise ValueError(
                f"{DAY_NAMES[later.weekday]} {later.times_text()} overlaps "
                f"{DAY_NAMES[earlier.weekday]} {earlier.times_text()}"
            )


def parse_opening_hours(spec: str) -> OpeningHours:
    """Parse ``Mon-Thu 08:30-13:00,14:00-17:30; Fri 08:30-16:00; Sat 09:00-12:00``.

    Groups are separated by ``;``. Each group is days (``Mon``, ``Mon-Fri``, ``Fri-Mon``,
    ``Mon,Wed``; full names too) then one or more sessions separated by ``,``. ``24:00`` may
    end a session; an end earlier than the start is an overnight session.

    Raises:
        ValueError: with a plain-English message naming the bad part.
    """
    sessions: list[Session] = []
    groups = [g.strip() for g in spec.split(";")]
    if not any(groups):
        raise ValueError("no opening hours given; write them like Mon-Fri 09:00-17:00")
    for group in groups:
        if not group:
            continue  # a trailing or doubled ';' is harmless
        digit = re.search(r"\d", group)
        if digit is None:
            raise ValueError(f"{group!r} has no opening times; write it like Mon-Fri 09:00-17:00")
        days_text, times_text = group[: digit.start()].strip(), group[digit.start() :]
        if not days_text:
            raise ValueError(f"{group!r} does not start with a day; write it like Mon 09:00-17:00")
        days = _parse_days(days_text, group)
        for start, end in _parse_sessions(times_text, group):
            sessions.extend(Session(day, start, end) for day in days)
    _check_overlaps(sessions)
    return OpeningHours(tuple(sorted(set(sessions))))


def parse_closed_dates(spec: str) -> tuple[tuple[date, date], ...]:
    """Parse ``2026-12-24..2027-01-02, 2027-04-06`` into inclusive (first, last) day ranges.

    Raises:
        ValueError: for a malformed date or a range that ends before it starts.
    """
    ranges: list[tuple[date, date]] = []
    for item in spec.split(","):
        text = item.strip()
        if not text:
            continue
        first_text, dots, last_text = text.partition("..")
        first = _parse_date(first_text.strip(), text)
        last = _parse_date(last_text.strip(), text) if dots else first
        if last < first:
            raise ValueError(f"{text!r} ends before it starts; write the earlier date first")
        ranges.append((first, last))
    return tuple(ranges)


def _parse_date(text: str, item: str) -> date:
    return parse_day(text, f" in {item!r}")


def parse_day(text: str, where: str = "") -> date:
    """``YYYY-MM-DD`` as a date; ``where`` (`` in '…'``) places it in the error.

    Raises:
        ValueError: not written as YYYY-MM-DD, or no such day.
    """
    if _DATE.fullmatch(text) is None:
        raise ValueError(f"{text!r}{where} is not a date; write dates as YYYY-MM-DD")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r}{where} is not a real date") from None


def _parse_region(code: str) -> tuple[str, str | None] | None:
    """``None`` for ``none``; else (country, subdivision) as the holidays library spells them."""
    text = code.strip()
    if text.lower() == "none":
        return None
    match = _REGION.fullmatch(text)
    if match is None:
        raise ValueError(
            f"{text!r} is not a region code; use GB-ENG, GB-WLS, GB-SCT, GB-NIR, "
            "another country code such as IE or DE-BY, or none"
        )
    country, subdiv = match[1].upper(), match[2]
    supported: dict[str, list[str]] = holidays.list_supported_countries()
    if country not in supported:
        raise ValueError(f"no bank holiday calendar for country {country!r}")
    if subdiv is None:
        return country, None
    known = {s.upper(): s for s in supported[country]}
    if subdiv.upper() not in known:
        choices = sorted(known.values())
        hint = f"; use one of {', '.join(choices)}" if 0 < len(choices) <= 20 else ""
        raise ValueError(f"country {country} has no region {subdiv!r}{hint}")
    return country, known[subdiv.upper()]


def check_bank_holidays(code: str) -> None:
    """Accept ``GB-ENG``, ``GB-WLS``, ``GB-SCT``, ``GB-NIR``, ``CC``, ``CC-SUBDIV`` or ``none``.

    Raises:
        ValueError: when the holidays library has no calendar for the code.
    """
    _parse_region(code)


def _wall_to_instant(wall: datetime, tz: ZoneInfo) -> datetime:
    """The first instant (UTC) at which the clock in ``tz`` shows ``wall`` or later."""
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == wall:
        return first  # exists; fold=0 is the first of two repeated times
    # ``wall`` is skipped by a spring-forward gap: the answer is the moment the clocks jump.
    # fold=1 maps it with the later offset (an instant before the jump), fold=0 with the
    # earlier one (after the jump); bisect between them to the second.
    before = int(wall.replace(tzinfo=tz, fold=1).timestamp())
    after = int(first.timestamp())
    offset_after = first.astimezone(tz).utcoffset()
    while after - before > 1:
        middle = (before + after) // 2
        if datetime.fromtimestamp(middle, tz).utcoffset() == offset_after:
            after = middle
        else:
            before = middle
    return datetime.fromtimestamp(after, UTC)


@dataclass(frozen=True, slots=True)
class Closure:
    """Days the practice is closed, first to last inclusive, with the manager's label
    (``Christmas``; empty for ``CLOSED_DATES``)."""

    first: date
    last: date
    label: str = ""
    # The label in other reply languages, by code: ``Christmas | cy: Nadolig``.
    translations: tuple[tuple[str, str], ...] = ()

    def label_in(self, language: str) -> str:
        """The label in ``language``: as written for English, else its translation or empty."""
        if language == ENGLISH.code:
            return self.label
        return dict(self.translations).get(language, "")

    def covers(self, day: date) -> bool:
        """Whether ``day`` is one of its days."""
        return self.first <= day <= self.last


@dataclass(slots=True)
class Schedule:
    """Opening hours in a zone, minus closures (``CLOSED_DATES`` and ``closures.txt``) and
    bank holidays."""

    hours: OpeningHours
    tz: ZoneInfo
    closed_dates: Sequence[tuple[date, date]] = ()
    bank_holidays: str = DEFAULT_BANK_HOLIDAYS
    closures: Sequence[Closure] = ()  # the manager's, from closures.txt
    _region: tuple[str, str | None] | None = field(init=False, repr=False, compare=False)
    _holiday_years: dict[int, dict[date, str]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._region = _parse_region(self.bank_holidays)
        self._holiday_years = {}

    def with_closures(self, closures: Sequence[Closure]) -> Schedule:
        """This schedule with the manager's ``closures`` as well (the bank holidays kept)."""
        merged = Schedule(self.hours, self.tz, self.closed_dates, self.bank_holidays, closures)
        merged._holiday_years = self._holiday_years  # the same calendar: share what it learnt
        return merged

    def closure_on(self, day: date) -> Closure | None:
        """The closure ``day`` falls in: a labelled one first, then any other."""
        found = [c for c in self.closures if c.covers(day)]
        found += [Closure(first, last) for first, last in self.closed_dates if first <= day <= last]
        for closure in sorted(found, key=lambda c: not c.label):
            return closure
        return None

    def closed_reason(self, at: datetime, language: Language = ENGLISH) -> str:
        """Why patients are told the practice is closed at ``at``, for ``{closed_reason}``
        in ``language``: the closure's label, the bank holiday's name, or empty (open,
        outside the opening hours, an unlabelled closure, or no name in that language)."""
        if self.is_open(at):
            return ""
        day = self._local_day(at)
        closure = self.closure_on(day)
        if closure is not None and closure.label:
            return closure.label_in(language.code)
        name = self.holiday_name(day)
        return language.holiday(name) if name is not None else ""

    def closed_reasons(self, language: Language, around: date) -> list[str]:
        """Every ``{closed_reason}`` this schedule can give in ``language`` in the year of
        ``around`` and the next: the closures' labels and the bank holidays' names."""
        labels = [closure.label_in(language.code) for closure in self.closures]
        names = [
            language.holiday(name)
            for year in (around.year, around.year + 1)
            for name in self._holidays(year).values()
        ]
        return [reason for reason in (*labels, *names) if reason]

    def _holidays(self, year: int) -> dict[date, str]:
        """The public holidays of ``year`` in the configured region, by day (cached)."""
        if self._region is None:
            return {}
        found = self._holiday_years.get(year)
        if found is None:
            country, subdiv = self._region
            calendar = holidays.country_holidays(country, subdiv=subdiv, years=year)
            found = {d: str(name) for d, name in calendar.items() if d.year == year}
            self._holiday_years[year] = found
        return found

    def holiday_name(self, day: date) -> str | None:
        """The public holiday on ``day`` in the configured region, by name."""
        return self._holidays(day.year).get(day)

    def is_bank_holiday(self, day: date) -> bool:
        """Whether ``day`` is a public holiday in the configured region."""
        return self.holiday_name(day) is not None

    def is_closed_date(self, day: date) -> bool:
        """Whether ``day`` falls in one of the practice's own closures."""
        return any(first <= day <= last for first, last in self.closed_dates) or any(
            closure.covers(day) for closure in self.closures
        )

    def is_closed_on(self, day: date) -> bool:
        """Whether no session starts on ``day``: a closed date or a bank holiday."""
        return self.is_closed_date(day) or self.is_bank_holiday(day)

    def why_closed(self, at: datetime) -> str | None:
        """Why the practice is closed at ``at``, in a manager's words; None while it is open."""
        if self.is_open(at):
            return None
        day = self._local_day(at)
        closure = self.closure_on(day)
        if closure is not None and closure.label:
            return f"it is closed for {closure.label} (closures.txt)"
        if closure is not None:
            return "it is one of the practice's closed dates (CLOSED_DATES or closures.txt)"
        name = self.holiday_name(day)
        if name is not None:
            return f"it is a bank holiday ({name})"
        return "it is outside the opening hours"

    def _sessions_from(self, day: date) -> Iterable[tuple[datetime, datetime]]:
        """(start, end) instants in UTC of sessions starting on ``day`` and later, in order."""
        midnight = datetime.combine(day, time())
        for offset in range(_SEARCH_DAYS + 2):
            current = day + timedelta(days=offset)
            if self.is_closed_on(current):
                continue
            base = midnight + timedelta(days=offset)
            for session in self.hours.on_weekday(current.weekday()):
                start = _wall_to_instant(base + timedelta(minutes=session.start), self.tz)
                end = _wall_to_instant(base + timedelta(minutes=session.end), self.tz)
                if end > start:  # a session wholly inside a skipped hour does not happen
                    yield start, end

    def _local_day(self, at: datetime) -> date:
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError("a time zone is needed to compare with opening hours")
        return at.astimezone(self.tz).date()

    def is_open(self, at: datetime) -> bool:
        """Whether a session is in progress at the aware moment ``at``."""
        day = self._local_day(at)
        for start, end in self._sessions_from(day - timedelta(days=1)):
            if start > at:
                return False
            if at < end:
                return True
        return False

    def next_opening(self, at: datetime) -> datetime | None:
        """The start of the next session at or after ``at``, in the practice zone.

        A session already in progress at ``at`` is not counted. ``None`` when nothing opens
        within about 400 days (for example every session falls on closed dates).
        """
        day = self._local_day(at)
        limit = at + timedelta(days=_SEARCH_DAYS)
        for start, _ in self._sessions_from(day - timedelta(days=1)):
            if start > limit:
                return None
            if start >= at:
                return start.astimezone(self.tz)
        return None

    def describe(self, language: Language = ENGLISH) -> str:
        """The opening hours as text for the ``{opening_hours}`` placeholder."""
        return self.hours.describe(language)


def format_next_opening(dt: datetime, language: Language = ENGLISH) -> str:
    """``Tuesday 2 January at 08:30`` (``Dydd Sadwrn 2 Ionawr am 08:30``): no leading zero
    on the day, wall time of ``dt``."""
    return language.date_and_time(dt)
