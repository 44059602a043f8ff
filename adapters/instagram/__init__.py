"""Instagram messaging: webhooks of ``object: "instagram"`` and plain-text replies."""

from __future__ import annotations

from adapters._meta.adapter import MetaAdapter
from adapters.instagram.parse import parse
from adapters.instagram.send import build_send
from bot.events import Channel

__all__ = ["ADAPTER"]

ADAPTER = MetaAdapter(Channel.INSTAGRAM, "instagram", parse, build_send)
