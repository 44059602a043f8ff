"""What a patient would get at a given moment, per channel: the text, its file, its buttons."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.adapter import Adapter, utf16_length
from bot.events import Channel
from bot.hours import DAY_NAMES, MONTH_NAMES, format_next_opening
from bot.replies import Reply
from bot.templates.files import TemplateSet

__all__ = ["ChannelPreview", "channel_previews", "moment_text", "preview"]


def _plain_reason(adapter: Adapter, reply: Reply) -> str:
    if adapter.button_text_limit is None:
        return f"{adapter.text_limit.label} replies are always plain text"
    if not reply.booking_url:
        return "PRACTICE_BOOKING_URL is not set"
    return (
        f"the text is {utf16_length(reply.text)} characters, over the "
        f"{adapter.button_text_limit} that fit with buttons"
    )


def _buttons_text(adapter: Adapter, reply: Reply) -> str:
    buttons = adapter.buttons(reply)
    if not buttons:
        return f"No buttons, sent as plain text: {_plain_reason(adapter, reply)}."
    shown = "  ".join(f"[{b.title}] {b.action} {b.target}" for b in buttons)
    return f"{'Button' if len(buttons) == 1 else 'Buttons'}: {shown}"


@dataclass(frozen=True, slots=True)
class ChannelPreview:
    """One channel's reply at a moment: the text, the file it came from, its length against
    the channel's limit, and its buttons (or why it has none)."""

    label: str  # "WhatsApp"
    text: str
    source: str
    size: int
    limit: int
    unit: str
    counting: str
    buttons: str


def channel_previews(
    templates: TemplateSet, channel: Channel | None, at: datetime
) -> list[ChannelPreview]:
    """What a patient would get at ``at`` on ``channel`` (or on every channel)."""
    previews = []
    for each in [channel] if channel is not None else list(templates.channels):
        adapter = templates.channels[each]
        reply = templates.render(each, at)
        limit = adapter.text_limit
        previews.append(
            ChannelPreview(
                label=limit.label,
                text=reply.text,
                source=reply.source,
                size=limit.measure(reply.text),
                limit=limit.limit,
                unit=limit.unit,
                counting=limit.counting,
                buttons=_buttons_text(adapter, reply),
            )
        )
    return previews


def moment_text(templates: TemplateSet, at: datetime) -> str:
    """``At Friday 25 December 2026 10:00 GMT the practice is closed: …``."""
    schedule = templates.schedule
    local = at.astimezone(schedule.tz)
    when = (
        f"{DAY_NAMES[local.weekday()]} {local.day} {MONTH_NAMES[local.month - 1]} "
        f"{local.year} {local:%H:%M} {local.tzname()}"
    )
    reason = schedule.why_closed(at)
    if reason is None:
        state = "the practice is open"
    else:
        state = f"the practice is closed: {reason}"
        moment = schedule.next_opening(at)
        if moment is not None:
            state += f"; it next opens {format_next_opening(moment)}"
    return f"At {when} {state}."


def preview(templates: TemplateSet, channel: Channel | None, at: datetime) -> str:
    """What a patient would get at ``at``: per channel (or all three), text, file and buttons."""
    blocks = [moment_text(templates, at)]
    rule = "=" * 8
    blocks.extend(
        f"{rule} {p.label}: from {p.source}, {p.size} of {p.limit} {p.unit} "
        f"({p.counting}) {rule}\n{p.text}\n{'-' * 8} {p.buttons}"
        for p in channel_previews(templates, channel, at)
    )
    return "\n\n".join(blocks)
