"""Facebook Messenger: webhooks of ``object: "page"`` and Send API replies."""

from __future__ import annotations

from adapters._meta.adapter import MetaAdapter
from adapters._meta.simulated import messaging_text
from adapters.messenger.parse import parse
from adapters.messenger.send import BUTTON_TEXT_LIMIT, TEXT_LIMIT, build_send, buttons
from bot.events import Channel

__all__ = ["ADAPTER"]

ADAPTER = MetaAdapter(
    channel=Channel.MESSENGER,
    object_name="page",
    text_limit=TEXT_LIMIT,
    button_text_limit=BUTTON_TEXT_LIMIT,
    buttons=buttons,
    parse=parse,
    build_send=build_send,
    simulated_message=messaging_text("page"),
)
