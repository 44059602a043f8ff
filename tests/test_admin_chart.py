"""The manager's contact chart: counts per UTC day drawn as accessible, script-free SVG."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime

import pytest

from bot.admin.chart import CHANNEL_COLOURS, DayCounts, contacts_chart, daily_counts
from bot.store import ContactRecord

SVG = "{http://www.w3.org/2000/svg}"
TODAY = date(2025, 12, 30)
PSEUDONYM = "9f8e7d6c5b4a39281706f5e4d3c2b1a0"


def _record(
    day: date,
    channel: str = "whatsapp",
    outcome: str = "replied",
    *,
    kind: str = "message",
    hour: int = 12,
) -> ContactRecord:
    moment = datetime(day.year, day.month, day.day, hour, tzinfo=UTC)
    return ContactRecord(moment.timestamp(), channel, PSEUDONYM, kind, outcome)


def _day(day: int, whatsapp: int = 0, messenger: int = 0, instagram: int = 0) -> DayCounts:
    channels = {"whatsapp": whatsapp, "messenger": messenger, "instagram": instagram}
    return DayCounts(date(2025, 12, day), channels, {"replied": sum(channels.values())})


def _parse(svg: str) -> ET.Element:
    """The chart as an element tree: strict XML, so a stray ``<`` or ``&`` fails the test."""
    return ET.fromstring(svg)  # noqa: S314 - our own output in a test, not untrusted input


def _bars(svg: str) -> list[ET.Element]:
    """Each day's bar group: a ``<g>`` under the root with its tooltip ``<title>``."""
    return _parse(svg).findall(f"{SVG}g")


def _y_labels(root: ET.Element) -> list[str | None]:
    """The y axis labels, bottom up: the only right-aligned text."""
    return [t.text for t in root.iter(f"{SVG}text") if t.attrib.get("text-anchor") == "end"]


def _heights(group: ET.Element) -> dict[str, float]:
    """A bar's segment heights by channel, found by their colour."""
    channel_of = {colour: channel for channel, colour in CHANNEL_COLOURS.items()}
    return {
        channel_of[rect.attrib["fill"]]: float(rect.attrib["height"])
        for rect in group.findall(f"{SVG}rect")
        if rect.attrib["fill"] in channel_of
    }


def test_daily_counts_zero_fills_every_day_of_the_period() -> None:
    """Thirty days ending today come back oldest first, each with every channel and outcome."""
    days = daily_counts([], 30, TODAY)
    assert (days[0].day, days[-1].day) == (date(2025, 12, 1), TODAY)
    assert len(days) == 30
    assert all(sum(d.by_channel.values()) == 0 and len(d.by_channel) == 3 for d in days)
    assert all(sum(d.by_outcome.values()) == 0 and len(d.by_outcome) == 8 for d in days)


def test_daily_counts_puts_counts_on_their_utc_day_and_channel() -> None:
    """A record counts once, on its UTC day, under its channel and its outcome."""
    records = [
        _record(date(2025, 12, 29), "messenger", "cooldown", hour=23),
        _record(date(2025, 12, 29), "messenger"),
        _record(date(2025, 12, 30), "instagram", "failed", hour=0),
    ]
    days = {d.day: d for d in daily_counts(records, 30, TODAY)}
    assert days[date(2025, 12, 29)].by_channel == {"whatsapp": 0, "messenger": 2, "instagram": 0}
    assert days[date(2025, 12, 29)].by_outcome["cooldown"] == 1
    assert days[date(2025, 12, 29)].by_outcome["replied"] == 1
    assert days[TODAY].by_channel["instagram"] == 1
    assert days[TODAY].by_outcome["failed"] == 1


def test_daily_counts_leaves_out_tests_and_days_outside_the_period() -> None:
    """Simulated messages and records before the first day or after today are not counted."""
    records = [
        _record(TODAY, kind="test"),
        _record(date(2025, 11, 30)),
        _record(date(2025, 12, 31)),
    ]
    assert sum(d.total for d in daily_counts(records, 30, TODAY)) == 0


def test_daily_counts_rejects_an_empty_period() -> None:
    """Zero days is a caller's mistake, not an empty chart."""
    with pytest.raises(ValueError, match="at least 1"):
        daily_counts([], 0, TODAY)


def test_contacts_chart_parses_as_xml() -> None:
    """The output is one well-formed ``<svg>`` element that scales with its container."""
    root = _parse(contacts_chart([_day(1, 3, 2, 1), _day(2, 0, 1, 0)]))
    assert root.tag == f"{SVG}svg"
    assert root.attrib["width"] == "100%"
    assert root.attrib["viewBox"] == "0 0 720 280"


def test_contacts_chart_has_role_title_and_totals_in_words() -> None:
    """Screen readers get role img, the title, and the period's totals per channel."""
    days = [_day(d) for d in range(1, 31)]
    days[4] = _day(5, 200, 80, 32)
    root = _parse(contacts_chart(days, title="Contacts <this> month"))
    assert root.attrib["role"] == "img"
    title, desc = root.find(f"{SVG}title"), root.find(f"{SVG}desc")
    assert title is not None
    assert title.text == "Contacts <this> month"
    assert desc is not None
    assert desc.text is not None
    assert desc.text.startswith(
        "312 contacts in the last 30 days: WhatsApp 200, Messenger 80, Instagram 32."
    )
    assert root.attrib["aria-labelledby"] == f"{title.attrib['id']} {desc.attrib['id']}"


def test_contacts_chart_bar_has_tooltip_with_day_and_counts() -> None:
    """Each day's bar carries a ``<title>`` naming the day and its counts."""
    (bar,) = _bars(contacts_chart([_day(3, 8, 3, 1)]))
    tooltip = bar.find(f"{SVG}title")
    assert tooltip is not None
    assert tooltip.text == (
        "3 Dec 2025: 12 contacts (WhatsApp 8, Messenger 3, Instagram 1; replied 12)"
    )


def test_contacts_chart_bar_heights_are_proportional_to_counts() -> None:
    """Segment heights keep the ratios of the counts, across channels and across days."""
    first, second = _bars(contacts_chart([_day(1, 8, 4, 2), _day(2, 4, 0, 0)]))
    heights = _heights(first)
    assert heights["whatsapp"] == pytest.approx(2 * heights["messenger"], abs=0.02)
    assert heights["messenger"] == pytest.approx(2 * heights["instagram"], abs=0.02)
    assert _heights(second) == {"whatsapp": pytest.approx(heights["whatsapp"] / 2, abs=0.02)}


def test_contacts_chart_gridlines_are_round_numbers() -> None:
    """The y axis is labelled at a 1-2-5 step from zero up past the busiest day."""
    root = _parse(contacts_chart([_day(1, 31, 6, 0)]))
    assert _y_labels(root) == ["0", "10", "20", "30", "40"]


def test_contacts_chart_empty_period_says_so() -> None:
    """An all-zero period draws no bars and a clear label instead of dividing by zero."""
    svg = contacts_chart([_day(d) for d in range(1, 31)])
    root = _parse(svg)
    assert _bars(svg) == []
    assert "No contacts in the last 30 days" in [t.text for t in root.iter(f"{SVG}text")]
    assert _y_labels(root) == ["0"]
    desc = root.find(f"{SVG}desc")
    assert desc is not None
    assert desc.text == "0 contacts in the last 30 days: WhatsApp 0, Messenger 0, Instagram 0."


def test_contacts_chart_shows_no_pseudonym() -> None:
    """Only counts reach the markup: no pseudonym of any record appears in it."""
    records = [_record(TODAY, channel) for channel in CHANNEL_COLOURS]
    svg = contacts_chart(daily_counts(records, 30, TODAY))
    assert PSEUDONYM not in svg
    assert PSEUDONYM[:8] not in svg


def test_contacts_chart_uses_no_script_or_inline_style() -> None:
    """The page's CSP forbids inline script and style: presentation attributes only."""
    svg = contacts_chart([_day(1, 3, 2, 1)])
    root = _parse(svg)
    assert not [e for e in root.iter() if e.tag in {f"{SVG}script", f"{SVG}style"}]
    assert not [e for e in root.iter() if "style" in e.attrib or "onload" in e.attrib]
