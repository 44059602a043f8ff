"""Channel adapters and the one registry through which the core reaches them."""

from __future__ import annotations

from adapters.instagram import InstagramAdapter
from adapters.messenger import MessengerAdapter
from adapters.whatsapp import WhatsAppAdapter
from bot.adapter import Adapter
from bot.events import Channel

__all__ = ["BY_OBJECT", "REGISTRY"]

REGISTRY: dict[Channel, Adapter] = {
    Channel.WHATSAPP: WhatsAppAdapter(),
    Channel.MESSENGER: MessengerAdapter(),
    Channel.INSTAGRAM: InstagramAdapter(),
}

BY_OBJECT: dict[str, Adapter] = {adapter.object_name: adapter for adapter in REGISTRY.values()}
