"""The one adapter shape all three channels share, and the button form's rule."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from bot.adapter import Button, Outbound, SendConfig, TextLimit, utf16_length
from bot.events import Channel, ContactKind, Event
from bot.replies import Reply

__all__ = [
    "BUTTON_TITLE_LIMIT",
    "BuildSend",
    "MetaAdapter",
    "fits_button_form",
]

BUTTON_TITLE_LIMIT = 20  # WhatsApp display_text and Messenger button titles


def fits_button_form(reply: Reply, text_limit: int) -> bool:
    """A reply goes with buttons when there is a booking link and its text fits the form."""
    return bool(reply.booking_url) and utf16_length(reply.text) <= text_limit


class BuildSend(Protocol):
    """A channel's request builder (see ``bot.adapter.Adapter.build_send``)."""

    def __call__(
        self,
        reply: Reply,
        *,
        config: SendConfig,
        recipient_id: str,
        contact_kind: ContactKind,
        tag: str,
    ) -> Outbound: ...


def _no_buttons(_reply: Reply) -> tuple[Button, ...]:
    return ()


@dataclass(frozen=True, slots=True, kw_only=True)
class MetaAdapter:
    """A Meta product: the payload ``object`` it owns, its reply rules, parser and send builder.

    ``buttons`` is the channel's one rule for the button form: ``build_send`` shapes its
    request from it, and previews and checks describe it, so they always agree.
    """

    channel: Channel
    object_name: str
    text_limit: TextLimit
    button_text_limit: int | None = None
    buttons: Callable[[Reply], tuple[Button, ...]] = _no_buttons
    parse: Callable[[Mapping[str, Any]], list[Event]]
    build_send: BuildSend
    simulated_message: Callable[[str, str, str, float], dict[str, Any]]
