"""Neutral events: what an adapter extracts from a Meta webhook, and nothing more.

An adapter turns a verified body into a list of these. They carry no content at all: no text,
captions, media, names or usernames. Raw identifiers are needed to reply and to pseudonymise,
so they are here, but hidden from ``repr`` so an accidental log line cannot show them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import assert_never

from bot.errors import ErrorClass

__all__ = [
    "TEST_SENDER_PREFIX",
    "Channel",
    "ContactKind",
    "Echo",
    "Event",
    "EventKind",
    "Link",
    "Outcome",
    "PatientEvent",
    "Skipped",
    "StatusUpdate",
    "event_kind",
    "is_test_sender",
]

# ``practice-bot simulate`` writes as a sender no real id can be: WhatsApp ids are phone
# numbers (no country code starts with 0) or BSUIDs (letters first), and Messenger PSIDs and
# Instagram IGSIDs are numbers without leading zeros.
TEST_SENDER_PREFIX = "0000"


def is_test_sender(contact_id: str) -> bool:
    """Whether ``contact_id`` is the made-up sender of ``practice-bot simulate``."""
    return contact_id.startswith(TEST_SENDER_PREFIX)


class Channel(enum.StrEnum):
    """The three inboxes; these names are used in the CLI, exports, metrics and logs."""

    WHATSAPP = "whatsapp"
    MESSENGER = "messenger"
    INSTAGRAM = "instagram"

    @property
    def links_ids(self) -> bool:
        """Whether one person can arrive under two ids: WhatsApp's phone number and BSUID."""
        return self is Channel.WHATSAPP


class EventKind(enum.StrEnum):
    """The contact-log kind of a patient event (SPEC §6)."""

    MESSAGE = "message"
    WELCOME = "welcome"  # WhatsApp request_welcome
    POSTBACK = "postback"  # Messenger / Instagram button or icebreaker tap
    TEST = "test"  # ``practice-bot simulate``: never sent to Meta, left out of summaries


class Outcome(enum.StrEnum):
    """The contact-log outcome of a patient event (SPEC §6); a reply job ends with one."""

    PENDING = "pending"
    REPLIED = "replied"
    DRY_RUN = "dry_run"
    COOLDOWN = "cooldown"
    STALE = "stale"
    STAFF_ACTIVE = "staff_active"
    FAILED = "failed"
    AMBIGUOUS = "ambiguous"


class ContactKind(enum.StrEnum):
    """How the raw contact id must be addressed when sending."""

    PHONE = "phone"  # WhatsApp wa_id: sent as ``to``
    BSUID = "bsuid"  # WhatsApp business-scoped user id: sent as ``recipient``
    SCOPED = "scoped"  # Messenger PSID or Instagram IGSID


@dataclass(frozen=True, slots=True)
class Link:
    """Two ids that one event says name one person (SPEC §4), raw and so hidden from ``repr``.

    A phone number and a BSUID given together, or a user's old and new BSUID. The first is
    the id the person's history is kept under when both already have one.
    """

    first_id: str = field(repr=False)
    first_kind: ContactKind
    second_id: str = field(repr=False)
    second_kind: ContactKind


@dataclass(frozen=True, slots=True, kw_only=True)
class PatientEvent:
    """A genuine inbound patient event that may earn an auto-reply (SPEC §4)."""

    channel: Channel
    account_id: str  # the practice's own number / page / account id the event was sent to
    contact_id: str = field(repr=False)  # wa_id, BSUID, PSID or IGSID exactly as received
    contact_kind: ContactKind
    message_id: str | None = field(repr=False)  # wamid / mid; None when the event has none
    timestamp: float  # Unix seconds, from the signed payload
    kind: EventKind = EventKind.MESSAGE
    link: Link | None = None  # the sender's phone number and BSUID, when both are given


@dataclass(frozen=True, slots=True, kw_only=True)
class Echo:
    """A message the business sent, reported back: the bot's own reply or a human's.

    ``app_id`` is the sending app (Messenger / Instagram echoes); ``tag`` is the echo's
    ``metadata`` (the bot puts its job tag there); ``smb`` marks a WhatsApp
    ``smb_message_echoes`` item, which is always a human using the WhatsApp Business app.
    """

    channel: Channel
    account_id: str
    contact_id: str = field(repr=False)  # the patient the message went to
    contact_kind: ContactKind
    message_id: str | None = field(repr=False)
    timestamp: float
    app_id: str | None = None
    tag: str | None = field(default=None, repr=False)
    smb: bool = False
    link: Link | None = None  # the patient's phone number and BSUID, when both are given


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusUpdate:
    """A WhatsApp status of a message the business sent; its tag names the reply job.

    A ``failed`` status carries Meta's first error code and the class it falls in, so an
    account-level problem that only statuses report raises the alert a send error would.
    """

    channel: Channel
    account_id: str
    status: str  # sent / delivered / read / failed / played
    tag: str | None = field(default=None, repr=False)  # biz_opaque_callback_data
    timestamp: float
    error_code: int | None = None
    error_class: ErrorClass | None = None
    link: Link | None = None  # the recipient's phone number and BSUID, when both are given

    @property
    def failed(self) -> bool:
        """Meta reports the message was not delivered."""
        return self.status == "failed"


@dataclass(frozen=True, slots=True, kw_only=True)
class Skipped:
    """Anything acknowledged and not acted on; ``kind`` is a fixed Meta field name or type.

    ``kind`` must come from the adapter's own vocabulary (e.g. ``"reaction"``, ``"read"``,
    ``"standby"``, ``"unknown"``), never from a key or value the sender chose. A skipped
    event may still say that two ids are one person (a WhatsApp ``system`` message).
    """

    channel: Channel
    kind: str
    account_id: str | None = None
    link: Link | None = None


Event = PatientEvent | Echo | StatusUpdate | Skipped


def event_kind(event: Event) -> str:
    """An event's kind as metrics and logs name it: fixed words only, never sender input."""
    match event:
        case PatientEvent():
            return event.kind.value
        case Skipped():
            return event.kind
        case Echo():
            return "echo"
        case StatusUpdate():
            return "status"
        case _:
            assert_never(event)
