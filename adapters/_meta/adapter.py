"""The one adapter shape all three channels share: a parser and a request builder, named."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from bot.adapter import Outbound, SendConfig
from bot.events import Channel, ContactKind, Event
from bot.replies import Reply

__all__ = ["BuildSend", "MetaAdapter"]


class BuildSend(Protocol):
    """A channel's request builder (see ``bot.adapter.Adapter.build_send``)."""

    def __call__(
        self,
        reply: Reply,
        *,
        config: SendConfig,
        recipient_id: str,
        contact_kind: ContactKind,
        tag: str,
    ) -> Outbound: ...


@dataclass(frozen=True, slots=True)
class MetaAdapter:
    """A Meta product: the payload ``object`` it owns, its pure parser and its send builder."""

    channel: Channel
    object_name: str
    parse: Callable[[Mapping[str, Any]], list[Event]]
    build_send: BuildSend
