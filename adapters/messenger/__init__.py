"""Facebook Messenger: webhooks of ``object: "page"`` and Send API replies."""

from __future__ import annotations

from adapters._meta.adapter import MetaAdapter
from adapters.messenger.parse import parse
from adapters.messenger.send import build_send
from bot.events import Channel

__all__ = ["ADAPTER"]

ADAPTER = MetaAdapter(Channel.MESSENGER, "page", parse, build_send)
