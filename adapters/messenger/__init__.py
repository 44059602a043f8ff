"""Facebook Messenger: webhooks of ``object: "page"`` and Send API replies."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from adapters.messenger.parse import parse
from adapters.messenger.send import build_send
from bot.adapter import Outbound, SendConfig
from bot.events import Channel, ContactKind, Event
from bot.replies import Reply

__all__ = ["MessengerAdapter"]


class MessengerAdapter:
    """The Messenger adapter: a pure parser and a request builder."""

    channel: ClassVar[Channel] = Channel.MESSENGER
    object_name: ClassVar[str] = "page"

    def parse(self, payload: Mapping[str, Any]) -> list[Event]:
        """Every event in a decoded webhook body; never raises, never keeps content."""
        return parse(payload)

    def build_send(
        self,
        reply: Reply,
        *,
        config: SendConfig,
        recipient_id: str,
        contact_kind: ContactKind,
        tag: str,
    ) -> Outbound:
        """The Send API request that sends ``reply``, tagged with ``tag``."""
        return build_send(
            reply, config=config, recipient_id=recipient_id, contact_kind=contact_kind, tag=tag
        )
