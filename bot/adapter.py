"""The interface every channel adapter implements, and the send-side value objects.

An adapter is two pure functions and a request builder: ``parse`` turns a verified, decoded
webhook object into neutral events; ``build_send`` turns a neutral reply into one Graph API
request. The HTTP work (one shared session, retries, error mapping) lives in
``adapters._meta.graph``; the core reaches adapters only through ``adapters.REGISTRY``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.events import Channel, ContactKind, Event
from bot.replies import Reply

__all__ = ["Adapter", "Outbound", "SendConfig"]


@dataclass(frozen=True, slots=True, kw_only=True)
class SendConfig:
    """Where and how one channel sends; built from the settings once at start-up."""

    channel: Channel
    account_id: str  # WHATSAPP_PHONE_NUMBER_ID / MESSENGER_PAGE_ID / INSTAGRAM_ACCOUNT_ID
    token: str | None = field(repr=False)  # None: the channel is in dry-run
    graph_api_url: str  # GRAPH_API_URL, no trailing slash
    instagram_api_url: str  # INSTAGRAM_API_URL, no trailing slash
    api_version: str  # GRAPH_API_VERSION, e.g. "v25.0"
    instagram_login: str = "instagram"  # "instagram" or "facebook"


@dataclass(frozen=True, slots=True, kw_only=True)
class Outbound:
    """One Graph API request, ready to POST with ``Authorization: Bearer <token>``."""

    url: str
    token: str = field(repr=False)
    body: dict[str, Any] = field(repr=False)


class Adapter(Protocol):
    """One Meta product: parses its webhook objects and shapes its send requests."""

    @property
    def channel(self) -> Channel:
        """The channel this adapter serves."""
        ...

    @property
    def object_name(self) -> str:
        """The payload's ``object`` this adapter owns: routes POST /webhook bodies here."""
        ...

    def parse(self, payload: Mapping[str, Any]) -> list[Event]:
        """Every event in a decoded webhook body; never raises, never keeps content."""
        ...

    def build_send(
        self,
        reply: Reply,
        *,
        config: SendConfig,
        recipient_id: str,
        contact_kind: ContactKind,
        tag: str,
    ) -> Outbound:
        """The request that sends ``reply`` to ``recipient_id``, carrying the job's ``tag``."""
        ...
