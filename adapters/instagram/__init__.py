"""Instagram messaging: webhooks of ``object: "instagram"`` and plain-text replies."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from adapters.instagram.parse import parse
from adapters.instagram.send import build_send
from bot.adapter import Outbound, SendConfig
from bot.events import Channel, ContactKind, Event
from bot.replies import Reply

__all__ = ["InstagramAdapter"]


class InstagramAdapter:
    """The Instagram adapter, for Instagram Login or Facebook Login: parser and request builder."""

    channel: ClassVar[Channel] = Channel.INSTAGRAM
    object_name: ClassVar[str] = "instagram"

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
        """The request that sends ``reply`` as plain text; ``tag`` only with Facebook Login."""
        return build_send(
            reply, config=config, recipient_id=recipient_id, contact_kind=contact_kind, tag=tag
        )
