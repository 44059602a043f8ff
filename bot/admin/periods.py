"""The next days as open and closed periods, each with its reason (SPEC §10).

The manager's page shows when patients get ``reply.txt`` and when a closed text, and why. The
reasons follow :meth:`bot.hours.Schedule.why_closed`: closed time takes the reason of the local
calendar day it falls on (a labelled closure, then any other closed date, then a bank holiday,
else outside opening hours), which is also the day whose closure picks ``closed.<key>.txt``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from bot.hours import DAY_NAMES, EN_DASH, MONTH_NAMES, Schedule

__all__ = ["Period", "describe", "periods"]

EM_DASH = "\u2014"


@dataclass(frozen=True, slots=True)
class Period:
    """A stretch during which patients get the same kind of text for the same reason."""

    start: datetime  # aware, in the practice's zone
    end: datetime  # aware, exclusive
    open: bool
    reason: str  # "" when open
    label: str  # the closure's label ("" if none): its closed.<key>.txt may be used


def periods(schedule: Schedule, start: datetime, days: int = 14) -> list[Period]:
    """[start, start + ``days`` calendar days on the practice's clock) as consecutive periods,
    neighbours with the same state, reason and label merged.

    Raises:
        ValueError: ``start`` is naive or ``days`` is negative.
    """
    if start.tzinfo is None or start.utcoffset() is None:
        raise ValueError("a time zone is needed to compare with opening hours")
    if days < 0:
        raise ValueError("days must not be negative")
    # All arithmetic in UTC: aware datetimes sharing a ZoneInfo compare and subtract as wall
    # times, which is wrong across a clock change.
    local = start.astimezone(schedule.tz)
    begin = start.astimezone(UTC)
    wall_end = local.replace(tzinfo=None) + timedelta(days=days)
    finish = wall_end.replace(tzinfo=schedule.tz, fold=0).astimezone(UTC)
    found: list[Period] = []
    cursor = begin
    # Walk the sessions rather than scan minutes. Schedule has no public iterator of sessions
    # and bot/hours.py is not ours to change, so use its _sessions_from generator (the one
    # is_open and next_opening walk): sessions in start order, closed days and sessions inside
    # a skipped hour already left out. From the day before: an overnight session reaches in.
    sessions = schedule._sessions_from(local.date() - timedelta(days=1))
    for session_start, session_end in sessions:
        if session_start >= finish:
            break
        opens, closes = max(session_start, cursor), min(session_end, finish)
        if opens >= closes:
            continue
        found.extend(_closed(schedule, cursor, opens))
        found.append(_period(schedule, opens, closes, is_open=True))
        cursor = closes
    found.extend(_closed(schedule, cursor, finish))
    return _merged(found)


def _closed(schedule: Schedule, begin: datetime, finish: datetime) -> Iterator[Period]:
    """The closed time [begin, finish) cut at local midnights, each part with its day's reason."""
    day = begin.astimezone(schedule.tz).date()
    while begin < finish:
        midnight = datetime.combine(day + timedelta(days=1), time(), tzinfo=schedule.tz)
        # Counting days (not re-reading begin's date) always moves on, even where the clocks go
        # back over midnight and a local date comes round twice.
        end = min(finish, midnight.astimezone(UTC))
        if end > begin:
            reason, label = _reason(schedule, day)
            yield _period(schedule, begin, end, is_open=False, reason=reason, label=label)
            begin = end
        day += timedelta(days=1)


def _reason(schedule: Schedule, day: date) -> tuple[str, str]:
    """(reason, label) for closed time on ``day``, in why_closed's order."""
    closure = schedule.closure_on(day)
    if closure is not None and closure.label:
        return f"{closure.label} (closures.txt)", closure.label
    if closure is not None:
        return "closed date", ""
    name = schedule.holiday_name(day)
    if name is not None:
        return f"bank holiday: {name}", ""
    return "outside opening hours", ""


def _period(
    schedule: Schedule,
    start: datetime,
    end: datetime,
    *,
    is_open: bool,
    reason: str = "",
    label: str = "",
) -> Period:
    tz = schedule.tz
    return Period(start.astimezone(tz), end.astimezone(tz), is_open, reason, label)


def _merged(found: list[Period]) -> list[Period]:
    """Join neighbours that tell the manager the same thing; they are contiguous already."""
    merged: list[Period] = []
    for period in found:
        last = merged[-1] if merged else None
        if last is not None and (last.open, last.reason, last.label) == (
            period.open,
            period.reason,
            period.label,
        ):
            merged[-1] = Period(last.start, period.end, last.open, last.reason, last.label)
        else:
            merged.append(period)
    return merged


def describe(period: Period) -> str:
    """``Thu 24 Dec 00:00 - Sun 3 Jan 00:00: closed - Christmas (closures.txt)``, with an en
    dash between the times and an em dash before the reason; an end on the start's day shows
    only its time."""
    same_day = period.end.date() == period.start.date()
    end = f"{period.end:%H:%M}" if same_day else _moment(period.end)
    state = "open" if period.open else f"closed {EM_DASH} {period.reason}"
    return f"{_moment(period.start)} {EN_DASH} {end}: {state}"


def _moment(at: datetime) -> str:
    return f"{DAY_NAMES[at.weekday()][:3]} {at.day} {MONTH_NAMES[at.month - 1][:3]} {at:%H:%M}"
