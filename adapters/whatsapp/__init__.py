"""WhatsApp Cloud API: webhooks of ``object: "whatsapp_business_account"`` and replies."""

from __future__ import annotations

from adapters._meta.adapter import MetaAdapter
from adapters._meta.simulated import whatsapp_text
from adapters.whatsapp.parse import parse
from adapters.whatsapp.send import BUTTON_TEXT_LIMIT, TEXT_LIMIT, build_send, buttons
from bot.events import Channel

__all__ = ["ADAPTER"]

ADAPTER = MetaAdapter(
    channel=Channel.WHATSAPP,
    object_name="whatsapp_business_account",
    text_limit=TEXT_LIMIT,
    button_text_limit=BUTTON_TEXT_LIMIT,
    buttons=buttons,
    parse=parse,
    build_send=build_send,
    simulated_message=whatsapp_text,
)
