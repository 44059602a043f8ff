"""Messenger Platform webhooks (``object: "page"``) to neutral events.

Event reference: https://developers.facebook.com/documentation/business-messaging/messenger-platform/webhooks/webhook-events/
The rules Messenger shares with Instagram live in ``adapters._meta.messaging``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters._meta.messaging import parse_entries
from bot.events import Channel, Event

__all__ = ["parse"]


def parse(payload: Mapping[str, Any]) -> list[Event]:
    """Every event in a decoded Messenger webhook body; never raises."""
    return parse_entries(payload, channel=Channel.MESSENGER)
