"""The practice manager's contact chart (SPEC §10): contacts per UTC day as inline SVG.

Drawn on the server as plain markup because the page's Content-Security-Policy allows no script
and no inline style: presentation attributes only. The chart sees counts and nothing else, so no
pseudonym or anything about one person can reach the page.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from html import escape

from bot.events import Channel, EventKind, Outcome
from bot.store import ContactRecord

__all__ = [
    "CHANNEL_COLOURS",
    "NAMES",
    "DayCounts",
    "contacts_chart",
    "daily_counts",
    "totals",
]

CHANNELS = tuple(channel.value for channel in Channel)  # also the stacking order, bottom up
OUTCOMES = tuple(outcome.value for outcome in Outcome)
NAMES = {"whatsapp": "WhatsApp", "messenger": "Messenger", "instagram": "Instagram"}
# Okabe-Ito blue, vermillion and bluish green: told apart with any colour-vision deficiency and
# at least 3:1 against white (WCAG 1.4.11); the legend and tooltips say it again in words.
CHANNEL_COLOURS: Mapping[str, str] = {
    "whatsapp": "#0072B2",
    "messenger": "#D55E00",
    "instagram": "#009E73",
}
# Month names spelt out here: strftime's %b follows the server's locale.
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
WIDTH, HEIGHT = 720, 280  # viewBox units; the element scales to its container's width
LEFT, RIGHT, TOP, BOTTOM = 48, 28, 40, 28  # room for the labels at the edges
PLOT_W, PLOT_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
TEXT = 'font-family="system-ui, sans-serif" font-size="12" fill="#333"'


@dataclass(frozen=True, slots=True)
class DayCounts:
    """One UTC day's contacts, counted per channel and per outcome (every key present)."""

    day: date
    by_channel: Mapping[str, int]
    by_outcome: Mapping[str, int]

    @property
    def total(self) -> int:
        """Contacts that day: each contact has exactly one channel."""
        return sum(self.by_channel.values())


def daily_counts(records: Iterable[ContactRecord], days: int, today: date) -> list[DayCounts]:
    """The last ``days`` UTC days ending ``today``, oldest first, with empty days as zeros.

    Counts as ``contacts summary`` does: by the record's UTC day, leaving out the test messages
    of ``practice-bot simulate``; records outside the period are ignored.
    """
    if days < 1:
        raise ValueError(f"days must be at least 1, not {days}")
    first = today - timedelta(days=days - 1)
    channels = [dict.fromkeys(CHANNELS, 0) for _ in range(days)]
    outcomes = [dict.fromkeys(OUTCOMES, 0) for _ in range(days)]
    for record in records:
        index = (datetime.fromtimestamp(record.time, UTC).date() - first).days
        if record.kind == EventKind.TEST or not 0 <= index < days:
            continue
        channels[index][record.channel] = channels[index].get(record.channel, 0) + 1
        outcomes[index][record.outcome] = outcomes[index].get(record.outcome, 0) + 1
    return [DayCounts(first + timedelta(days=i), channels[i], outcomes[i]) for i in range(days)]


def contacts_chart(
    days: Sequence[DayCounts], *, title: str = "Contacts per day", chart_id: str = "contacts-chart"
) -> str:
    """An ``<svg>`` element: a stacked bar per day by channel, with a legend and axes.

    Screen readers get ``role="img"`` with the totals in words, and each bar carries a
    ``<title>`` tooltip with its day's counts. ``chart_id`` keeps ids unique on the page.
    """
    totals = {c: sum(d.by_channel.get(c, 0) for d in days) for c in CHANNELS}
    total = sum(totals.values())
    period = "the last day" if len(days) == 1 else f"the last {len(days)} days"
    outcomes = {o: sum(d.by_outcome.get(o, 0) for d in days) for o in OUTCOMES}
    desc = f"{_contacts(total)} in {period}: {_per_channel(totals)}."
    if total:
        desc += f" Outcomes: {_per_outcome(outcomes)}."
    peak = max((d.total for d in days), default=0)
    step = _step(peak)
    top = max(step * -(-peak // step), step)  # rounded up to a gridline; never zero
    ident = escape(chart_id)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" '
        f'role="img" aria-labelledby="{ident}-title {ident}-desc">',
        f'<title id="{ident}-title">{escape(title)}</title>',
        f'<desc id="{ident}-desc">{escape(desc)}</desc>',
    ]
    parts.extend(_legend(totals))
    parts.extend(_grid(range(0, top + 1 if total else 1, step), top))  # empty: the baseline
    slot = PLOT_W / max(len(days), 1)
    every = max(1, -(-len(days) // 8))  # at most about eight day labels
    for i, day in enumerate(days):
        x = LEFT + i * slot
        if (len(days) - 1 - i) % every == 0:  # counted back from today, which is always labelled
            label = _day(day.day)
            parts.append(
                f'<text x="{_n(x + slot / 2)}" y="{HEIGHT - 8}" text-anchor="middle" {TEXT}>'
                f"{escape(label)}</text>"
            )
        if total:
            parts.append(_bar(day, x, slot, top))
    if not total:
        parts.append(
            f'<text x="{LEFT + PLOT_W // 2}" y="{TOP + PLOT_H // 2}" text-anchor="middle" '
            f'font-family="system-ui, sans-serif" font-size="16" fill="#333">'
            f"No contacts in {escape(period)}</text>"
        )
    parts.append("</svg>")
    return "\n".join(parts)


def _bar(day: DayCounts, x: float, slot: float, top: int) -> str:
    """One day's stack, bottom up in channel order, under a tooltip that spans the whole slot
    (a transparent rectangle, so even a short or empty bar can be pointed at)."""
    tooltip = f"{_day(day.day)} {day.day.year}: {_contacts(day.total)}"
    if day.total:
        tooltip += f" ({_per_channel(day.by_channel)}; {_per_outcome(day.by_outcome)})"
    parts = [
        f"<g><title>{escape(tooltip)}</title>",
        f'<rect x="{_n(x)}" y="{TOP}" width="{_n(slot)}" height="{PLOT_H}" fill="#fff" '
        f'fill-opacity="0"/>',
    ]
    below = 0
    for channel in CHANNELS:
        count = day.by_channel.get(channel, 0)
        if count:
            low, high = _y(below, top), _y(below + count, top)
            below += count
            parts.append(
                f'<rect x="{_n(x + slot * 0.15)}" y="{_n(high)}" width="{_n(slot * 0.7)}" '
                f'height="{_n(low - high)}" fill="{CHANNEL_COLOURS[channel]}" stroke="#fff" '
                f'stroke-width="0.5"/>'
            )
    parts.append("</g>")
    return "\n".join(parts)


def _legend(totals: Mapping[str, int]) -> list[str]:
    """A colour key with each channel's total, so colour is never the only cue."""
    parts = []
    for i, channel in enumerate(CHANNELS):
        key = LEFT + i * 150
        colour = CHANNEL_COLOURS[channel]
        label = f"{NAMES[channel]} {totals[channel]:,}"
        parts.append(f'<rect x="{key}" y="8" width="12" height="12" fill="{colour}"/>')
        parts.append(f'<text x="{key + 18}" y="18" {TEXT}>{escape(label)}</text>')
    return parts


def _grid(values: range, top: int) -> list[str]:
    """Gridlines labelled with their counts at round ``values`` on a scale up to ``top``."""
    parts = []
    for value in values:
        y = _n(_y(value, top))
        stroke = "#999" if value == 0 else "#ddd"  # the baseline a little darker
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y}" y2="{y}" stroke="{stroke}"/>'
        )
        parts.append(
            f'<text x="{LEFT - 6}" y="{y}" dy="4" text-anchor="end" {TEXT}>{value:,}</text>'
        )
    return parts


def _day(day: date) -> str:
    return f"{day.day} {MONTHS[day.month - 1]}"


def _y(value: int, top: int) -> float:
    """The vertical position of ``value`` on a scale from 0 to ``top`` (SVG's y grows down)."""
    return TOP + PLOT_H - value / top * PLOT_H


def _step(peak: int) -> int:
    """A 1-2-5 gridline step giving at most five gridlines above zero: round numbers read."""
    magnitude = 1
    while True:
        for multiple in (1, 2, 5):
            if peak <= multiple * magnitude * 5:
                return multiple * magnitude
        magnitude *= 10


def _n(value: float) -> str:
    """A coordinate with at most two decimals: shorter markup, no float noise."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _contacts(count: int) -> str:
    return f"{count:,} contact" + ("" if count == 1 else "s")


def _per_channel(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{NAMES[c]} {counts.get(c, 0):,}" for c in CHANNELS)


def _per_outcome(counts: Mapping[str, int]) -> str:
    """Only the outcomes that happened, in words: "replied 10, staff active 2"."""
    return ", ".join(f"{o.replace('_', ' ')} {counts[o]:,}" for o in OUTCOMES if counts.get(o))


def totals(days: Sequence[DayCounts]) -> tuple[dict[str, int], dict[str, int]]:
    """The period's contacts by app (by its name, every app) and by outcome (those that
    happened, in name order): the tables beside the chart."""
    by_app = {
        name: sum(d.by_channel.get(channel, 0) for d in days) for channel, name in NAMES.items()
    }
    by_outcome: dict[str, int] = {}
    for day in days:
        for outcome, count in day.by_outcome.items():
            if count:
                by_outcome[outcome] = by_outcome.get(outcome, 0) + count
    return by_app, dict(sorted(by_outcome.items()))
