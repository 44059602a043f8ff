"""What a patient would get at a given moment, per channel: the text, its file, its buttons."""

from __future__ import annotations

from datetime import datetime

from bot.adapter import Adapter, utf16_length
from bot.events import Channel
from bot.hours import DAY_NAMES, MONTH_NAMES, format_next_opening
from bot.replies import Reply
from bot.templates.files import TemplateSet

__all__ = ["preview"]


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


def preview(templates: TemplateSet, channel: Channel | None, at: datetime) -> str:
    """What a patient would get at ``at``: per channel (or all three), text, file and buttons."""
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
    blocks = [f"At {when} {state}."]
    for each in [channel] if channel is not None else list(templates.channels):
        adapter = templates.channels[each]
        reply = templates.render(each, at)
        limit = adapter.text_limit
        rule = "=" * 8
        blocks.append(
            f"{rule} {limit.label}: from {reply.source}, "
            f"{limit.measure(reply.text)} of {limit.limit} {limit.unit} "
            f"({limit.counting}) {rule}\n"
            f"{reply.text}\n"
            f"{'-' * 8} {_buttons_text(adapter, reply)}"
        )
    return "\n\n".join(blocks)
