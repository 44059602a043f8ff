"""Channel adapters and the one registry through which the core reaches them."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from adapters import instagram, messenger, whatsapp
from adapters._meta.adapter import MetaAdapter
from adapters._meta.signature import handshake_challenge, verify_signature
from bot.events import Channel

if TYPE_CHECKING:
    from adapters._meta.graph import GraphTransport

__all__ = ["REGISTRY", "MetaPlatform"]


class MetaPlatform:
    """``bot.adapter.Platform`` for Meta: the three adapters, signatures, the Graph transport."""

    def __init__(self, adapters: Sequence[MetaAdapter]) -> None:
        self._adapters = {adapter.channel: adapter for adapter in adapters}
        self._by_object = {adapter.object_name: adapter for adapter in adapters}

    @property
    def adapters(self) -> Mapping[Channel, MetaAdapter]:
        """Every channel's adapter."""
        return self._adapters

    def for_object(self, name: str) -> MetaAdapter | None:
        """The adapter owning a webhook body's ``object``, or ``None``."""
        return self._by_object.get(name)

    def verify_signature(self, secrets: Sequence[bytes], body: bytes, header: str | None) -> None:
        """Meta's ``X-Hub-Signature-256`` check (``adapters._meta.signature``)."""
        verify_signature(secrets, body, header)

    def handshake_challenge(self, query: Mapping[str, str], verify_token: bytes) -> str | None:
        """Meta's GET subscription handshake (``adapters._meta.signature``)."""
        return handshake_challenge(query, verify_token)

    def open_transport(self) -> GraphTransport:
        """A Graph transport with a session of its own, closed when its block ends."""
        # aiohttp is loaded by the service only, so the other commands start quickly.
        from adapters._meta.graph import GraphTransport  # noqa: PLC0415

        return GraphTransport.open()

    def replace(self, channel: Channel, **changes: Any) -> MetaPlatform:
        """A platform whose ``channel`` adapter has ``changes`` (e.g. another ``parse``)."""
        adapters = dict(self._adapters)
        adapters[channel] = dataclasses.replace(adapters[channel], **changes)
        return MetaPlatform(list(adapters.values()))


REGISTRY = MetaPlatform([whatsapp.ADAPTER, messenger.ADAPTER, instagram.ADAPTER])
