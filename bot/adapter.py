"""What the core needs from the channel adapters, and the values that pass between them.

An ``Adapter`` is one Meta product: ``parse`` turns a verified, decoded webhook object into
neutral events; ``build_send`` turns a neutral reply into one Graph API request. It also owns
its channel's rules for a reply (the text limit and its unit, whether a reply fits the button
form and which buttons it then carries), so a preview, ``check`` and a send all ask one place.

The ``Platform`` is the one registry through which the core reaches the adapters, together
with what all channels share: the webhook signature, the subscription handshake and the
``Transport`` that posts requests. ``adapters.REGISTRY`` is the implementation; the CLI passes
it to whatever needs it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from bot.events import Channel, ContactKind, Event
from bot.replies import Reply

__all__ = [
    "Adapter",
    "Button",
    "Outbound",
    "Platform",
    "SendConfig",
    "SendResult",
    "TextLimit",
    "Transport",
    "Usage",
    "utf16_length",
]


def utf16_length(text: str) -> int:
    """Characters as Meta's limits count them: UTF-16 code units, so an emoji counts two.

    Meta does not say how it counts its "characters"; servers written in JavaScript or Java
    count code units, and that count is never below the number of code points, so a text
    measured this way is never refused for its length.
    """
    return len(text.encode("utf-16-le", errors="surrogatepass")) // 2


@dataclass(frozen=True, slots=True)
class TextLimit:
    """The longest text a channel accepts, in its own unit."""

    label: str  # the channel as a practice manager knows it, e.g. "WhatsApp"
    limit: int
    unit: Literal["characters", "bytes"]

    def measure(self, text: str) -> int:
        """Length of ``text`` in this channel's unit (Instagram counts UTF-8 bytes)."""
        return len(text.encode()) if self.unit == "bytes" else utf16_length(text)

    @property
    def counting(self) -> str:
        """How the unit counts, in a practice manager's words."""
        if self.unit == "bytes":
            return "letters such as é count double and an emoji four times"
        return "an emoji counts as two characters"


@dataclass(frozen=True, slots=True)
class Button:
    """One button of a reply's button form, as the patient sees it."""

    title: str
    action: Literal["opens", "calls"]  # opens a web address, or calls a phone number
    target: str  # the address or the number


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


@dataclass(frozen=True, slots=True)
class Usage:
    """How much of the rate limit a channel has used, as Graph reports it with each answer.

    ``percent``: the highest share of any limit in use (100 or more: throttled);
    ``regain_after``: seconds until Meta lets the channel send again (0: not blocked).
    """

    percent: float
    regain_after: float = 0.0


@dataclass(frozen=True, slots=True)
class SendResult:
    """Meta accepted the send; ``message_id`` (``wamid…`` / ``m_…``) when its answer had one.

    The id is hidden from ``repr``: a WhatsApp ``wamid`` embeds the phone number.
    """

    message_id: str | None
    usage: Usage | None = None

    def __repr__(self) -> str:
        shown = "None" if self.message_id is None else "'…'"
        return f"SendResult(message_id={shown}, usage={self.usage!r})"


class Adapter(Protocol):
    """One Meta product: parses its webhook objects, knows its reply rules, shapes its sends."""

    @property
    def channel(self) -> Channel:
        """The channel this adapter serves."""
        ...

    @property
    def object_name(self) -> str:
        """The payload's ``object`` this adapter owns: routes POST /webhook bodies here."""
        ...

    @property
    def text_limit(self) -> TextLimit:
        """The longest plain-text reply the channel accepts."""
        ...

    @property
    def button_text_limit(self) -> int | None:
        """The longest text the button form carries (characters); ``None``: never buttons."""
        ...

    def buttons(self, reply: Reply) -> tuple[Button, ...]:
        """The buttons ``reply`` is sent with; empty when it goes as plain text."""
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

    def simulated_message(
        self, account_id: str, sender_id: str, message_id: str, at: float, /
    ) -> dict[str, Any]:
        """A webhook body as Meta sends it for a text message to ``account_id``."""
        ...


class Transport(Protocol):
    """Posts one Graph API request: one attempt, no retries (``bot.retry`` decides those).

    Raises ``GraphError`` for Meta's error answers, ``DeliveryError(ambiguous=True)`` when the
    request was written and its answer lost, and a plain ``DeliveryError`` for everything
    that certainly did not reach Meta (no connection, a request that cannot be encoded).
    """

    async def post(self, outbound: Outbound) -> SendResult:
        """POST ``outbound``; Meta's message id on success."""
        ...


class Platform(Protocol):
    """The registry of adapters, and what every channel of the platform shares."""

    @property
    def adapters(self) -> Mapping[Channel, Adapter]:
        """Every channel's adapter."""
        ...

    def for_object(self, name: str) -> Adapter | None:
        """The adapter owning a webhook body's ``object``, or ``None`` for an unknown one."""
        ...

    def verify_signature(self, secrets: Sequence[bytes], body: bytes, header: str | None) -> None:
        """Accept ``body`` only with a valid ``X-Hub-Signature-256`` (raises ``SignatureError``)."""
        ...

    def handshake_challenge(self, query: Mapping[str, str], verify_token: bytes) -> str | None:
        """The challenge to echo for a valid subscription handshake, else ``None``."""
        ...

    def open_transport(self) -> AbstractAsyncContextManager[Transport]:
        """The transport of one process, open for the life of the block."""
        ...
