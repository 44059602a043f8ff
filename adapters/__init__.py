"""Channel adapters and the one registry through which the core reaches them."""

from __future__ import annotations

from adapters import instagram, messenger, whatsapp
from bot.adapter import Adapter
from bot.events import Channel

__all__ = ["BY_OBJECT", "REGISTRY"]

REGISTRY: dict[Channel, Adapter] = {
    Channel.WHATSAPP: whatsapp.ADAPTER,
    Channel.MESSENGER: messenger.ADAPTER,
    Channel.INSTAGRAM: instagram.ADAPTER,
}

BY_OBJECT: dict[str, Adapter] = {adapter.object_name: adapter for adapter in REGISTRY.values()}
