"""WhatsApp Cloud API: webhooks of ``object: "whatsapp_business_account"`` and text sends."""

from __future__ import annotations

from adapters._meta.adapter import MetaAdapter
from adapters.whatsapp.parse import parse
from adapters.whatsapp.send import build_send
from bot.events import Channel

__all__ = ["ADAPTER"]

ADAPTER = MetaAdapter(Channel.WHATSAPP, "whatsapp_business_account", parse, build_send)
