"""Instagram messaging: webhooks of ``object: "instagram"`` and plain-text replies."""

from __future__ import annotations

from adapters._meta.adapter import MetaAdapter
from adapters._meta.simulated import messaging_text
from adapters.instagram.parse import parse
from adapters.instagram.send import TEXT_LIMIT, build_send
from bot.events import Channel

__all__ = ["ADAPTER"]

ADAPTER = MetaAdapter(
    channel=Channel.INSTAGRAM,
    object_name="instagram",
    text_limit=TEXT_LIMIT,
    parse=parse,
    build_send=build_send,
    simulated_message=messaging_text("instagram"),
)
