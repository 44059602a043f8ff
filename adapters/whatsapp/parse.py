"""WhatsApp Cloud API webhooks (``object: "whatsapp_business_account"``) to neutral events.

Shapes: https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/reference/messages
Every ``entry[]``, every ``changes[]`` and every ``messages[]`` / ``statuses[]`` /
``errors[]`` / ``message_echoes[]`` item is read; each yields one event. Only the receiving
number, the contact's ``wa_id`` or BSUID, the message id, the timestamp and the kind leave
this module: never text, captions, media, names, usernames, locations or referral content.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from adapters._meta.errors import as_code, rule_for
from adapters._meta.wire import (
    SkipKind,
    as_id,
    as_mapping,
    dig,
    seconds_from_unix_string,
)
from bot.events import (
    Channel,
    ContactKind,
    Echo,
    Event,
    EventKind,
    Link,
    PatientEvent,
    Skipped,
    StatusUpdate,
)

__all__ = ["parse"]

_CHANNEL = Channel.WHATSAPP

# The statuses Meta reports for a sent message; anything else is skipped as unknown.
_STATUSES = frozenset({"sent", "delivered", "read", "failed", "played"})


@dataclass(frozen=True, slots=True)
class _Value:
    """One ``changes[].value``: the receiving number and the senders it lists."""

    account_id: str | None  # value.metadata.phone_number_id
    own_number: str | None  # value.metadata.display_phone_number
    contacts: tuple[Mapping[str, Any], ...]

    def skipped(self, kind: SkipKind, link: Link | None = None) -> Skipped:
        return Skipped(channel=_CHANNEL, kind=kind, account_id=self.account_id, link=link)

    @property
    def only_contact(self) -> Mapping[str, Any]:
        """The value's single ``contacts[]`` item; empty when it lists none or several.

        Several contacts in one value cannot be told apart from each other's messages, so
        an item is never attributed to another person in a batched value.
        """
        return self.contacts[0] if len(self.contacts) == 1 else {}


def parse(payload: Mapping[str, Any]) -> list[Event]:
    """Every event in a decoded WhatsApp webhook body; never raises."""
    entries = dig(payload, "entry")
    if not isinstance(entries, list):
        return [Skipped(channel=_CHANNEL, kind=SkipKind.MALFORMED)]
    events: list[Event] = []
    for entry in entries:
        changes = dig(entry, "changes")
        if not isinstance(changes, list):
            events.append(Skipped(channel=_CHANNEL, kind=SkipKind.MALFORMED))
            continue
        for change in changes:
            events.extend(_parse_change(change))
    return events


def _parse_change(raw: Any) -> list[Event]:
    field = dig(raw, "field")
    value = as_mapping(dig(raw, "value"))
    if not isinstance(field, str) or value is None:
        return [Skipped(channel=_CHANNEL, kind=SkipKind.MALFORMED)]
    contacts = value.get("contacts")
    context = _Value(
        account_id=as_id(dig(value, "metadata", "phone_number_id")),
        own_number=as_id(dig(value, "metadata", "display_phone_number")),
        contacts=tuple(filter(None, map(as_mapping, contacts)))
        if isinstance(contacts, list)
        else (),
    )
    arrays = _CHANGE_FIELDS.get(field)
    if arrays is None:
        return [context.skipped(SkipKind.UNKNOWN)]
    events: list[Event] = []
    for key, handler in arrays.items():
        items = value.get(key)
        if items is None:
            continue
        if not isinstance(items, list):
            events.append(context.skipped(SkipKind.MALFORMED))
            continue
        events.extend(handler(item, context) for item in items)
    return events


def _message(raw: Any, context: _Value) -> Event:
    message = as_mapping(raw)
    message_type = dig(message, "type")
    if message is None or not isinstance(message_type, str):
        return context.skipped(SkipKind.MALFORMED)
    if "group_id" in message:
        return context.skipped(SkipKind.GROUP)
    classify = _MESSAGE_TYPES.get(message_type)
    if classify is None:
        return context.skipped(SkipKind.UNKNOWN)
    verdict = classify(message)
    if isinstance(verdict, SkipKind):
        link = _id_change(message) if message_type == "system" else None
        return context.skipped(verdict, link)
    phone, bsuid = _sender(message, context.only_contact)
    contact = _address(phone, bsuid)
    if contact is None and _has_no_digit(message.get("from")):
        return context.skipped(SkipKind.BAD_ID)
    timestamp = seconds_from_unix_string(message.get("timestamp"))
    if contact is None or timestamp is None or context.account_id is None:
        return context.skipped(SkipKind.MALFORMED)
    contact_id, contact_kind = contact
    if contact_kind is ContactKind.PHONE and contact_id == context.own_number:
        return context.skipped(SkipKind.SELF)
    return PatientEvent(
        channel=_CHANNEL,
        account_id=context.account_id,
        contact_id=contact_id,
        contact_kind=contact_kind,
        message_id=as_id(message.get("id")),
        timestamp=timestamp,
        kind=verdict,
        link=_phone_and_bsuid(phone, bsuid),
    )


def _has_no_digit(value: Any) -> bool:
    """A ``from`` that is there but holds no digit: not a phone number at all."""
    return isinstance(value, str) and not any(character.isdigit() for character in value)


def _sender(message: Mapping[str, Any], only: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The sender's phone number (``from`` / ``wa_id``) and BSUID (``from_user_id`` /
    ``user_id``), each when given; ``only`` is the value's single contact, if any."""
    phone = as_id(message.get("from")) or as_id(only.get("wa_id"))
    bsuid = as_id(message.get("from_user_id")) or as_id(only.get("user_id"))
    return (None if _has_no_digit(phone) else phone), bsuid


def _phone_and_bsuid(phone: str | None, bsuid: str | None) -> Link | None:
    """The link between a person's phone number and BSUID, when an item names both."""
    if phone is None or bsuid is None or _has_no_digit(phone):
        return None
    return Link(phone, ContactKind.PHONE, bsuid, ContactKind.BSUID)


def _id_change(message: Mapping[str, Any]) -> Link | None:
    """A ``system`` message's old and new BSUID of one user, when it reports a change.

    ``user_changed_user_id`` (and, since a new number means a new BSUID,
    ``user_changed_number``) carries ``system.previous_user_id`` and ``system.user_id``;
    older ``user_changed_user_id`` messages name the old id only as ``from_user_id``.
    """
    system = as_mapping(message.get("system")) or {}
    new = as_id(system.get("user_id"))
    old = as_id(system.get("previous_user_id"))
    if old is None and system.get("type") == "user_changed_user_id":
        old = as_id(message.get("from_user_id"))
    if old is None or new is None or old == new:
        return None
    return Link(old, ContactKind.BSUID, new, ContactKind.BSUID)


def _address(phone: str | None, bsuid: str | None) -> tuple[str, ContactKind] | None:
    """The phone number when there is one (sent as ``to``), else the BSUID (``recipient``)."""
    if phone is not None:
        return phone, ContactKind.PHONE
    if bsuid is not None:
        return bsuid, ContactKind.BSUID
    return None


def _status(raw: Any, context: _Value) -> Event:
    status = as_mapping(raw)
    if status is None:
        return context.skipped(SkipKind.MALFORMED)
    name = status.get("status")
    if not isinstance(name, str) or name not in _STATUSES:
        return context.skipped(SkipKind.UNKNOWN)
    timestamp = seconds_from_unix_string(status.get("timestamp"))
    if timestamp is None or context.account_id is None:
        return context.skipped(SkipKind.MALFORMED)
    errors = status.get("errors")
    code = as_code(dig(errors[0], "code")) if isinstance(errors, list) and errors else None
    return StatusUpdate(
        channel=_CHANNEL,
        account_id=context.account_id,
        status=name,
        tag=as_id(status.get("biz_opaque_callback_data")),
        timestamp=timestamp,
        error_code=code,
        error_class=rule_for(400, code, None).error_class if code is not None else None,
        link=_recipient(status, context),
    )


def _recipient(status: Mapping[str, Any], context: _Value) -> Link | None:
    """The recipient's phone number and BSUID, from the status or its value's contact."""
    if status.get("recipient_type") == "group":
        return None  # the status of a group message names the group, not a person
    only = context.only_contact
    return _phone_and_bsuid(
        as_id(status.get("recipient_id")) or as_id(only.get("wa_id")),
        as_id(status.get("recipient_user_id")) or as_id(only.get("user_id")),
    )


def _error(_raw: Any, context: _Value) -> Event:
    return context.skipped(SkipKind.ERRORS)


def _standby(_raw: Any, context: _Value) -> Event:
    """Meta Business Agent handles the conversation: replying would take it over."""
    return context.skipped(SkipKind.STANDBY)


def _handover(_raw: Any, context: _Value) -> Event:
    return context.skipped(SkipKind.HANDOVER)


def _smb_echo(raw: Any, context: _Value) -> Event:
    """A message staff sent from the WhatsApp Business app on a coexistence number."""
    echo = as_mapping(raw)
    if echo is None:
        return context.skipped(SkipKind.MALFORMED)
    phone, bsuid = as_id(echo.get("to")), as_id(echo.get("to_user_id"))
    contact = _address(phone, bsuid)
    timestamp = seconds_from_unix_string(echo.get("timestamp"))
    if contact is None or timestamp is None or context.account_id is None:
        return context.skipped(SkipKind.MALFORMED)
    contact_id, contact_kind = contact
    return Echo(
        channel=_CHANNEL,
        account_id=context.account_id,
        contact_id=contact_id,
        contact_kind=contact_kind,
        message_id=as_id(echo.get("id")),
        timestamp=timestamp,
        smb=True,
        link=_phone_and_bsuid(phone, bsuid),
    )


_Classifier = Callable[[Mapping[str, Any]], EventKind | SkipKind]


def _always(verdict: EventKind | SkipKind) -> _Classifier:
    def classify(_message: Mapping[str, Any]) -> EventKind | SkipKind:
        return verdict

    return classify


def _unsupported(message: Mapping[str, Any]) -> EventKind | SkipKind:
    """An ``unsupported`` (or older ``unknown``) message is a patient writing something Meta
    cannot show, unless it is an edit of an old one."""
    if dig(message, "unsupported", "type") == "edit":
        return SkipKind.UNSUPPORTED_EDIT
    return EventKind.MESSAGE


# interactive.type values that are no patient asking something: an answer to a call
# permission request, or a completed Flow the practice itself sent.
_INTERACTIVE_SKIPS: dict[str, SkipKind] = {
    "call_permission_reply": SkipKind.CALL_PERMISSION,
    "nfm_reply": SkipKind.FLOW_REPLY,
}


def _interactive(message: Mapping[str, Any]) -> EventKind | SkipKind:
    """A tapped button or list row is a patient writing; the kinds above are not."""
    kind = dig(message, "interactive", "type")
    return (
        _INTERACTIVE_SKIPS.get(kind, EventKind.MESSAGE)
        if isinstance(kind, str)
        else EventKind.MESSAGE
    )


_Handler = Callable[[Any, _Value], Event]

# changes[].field -> the arrays of its value that are read, each with its handler.
_CHANGE_FIELDS: dict[str, dict[str, _Handler]] = {
    "messages": {"messages": _message, "statuses": _status, "errors": _error},
    "smb_message_echoes": {"message_echoes": _smb_echo},
    "standby": dict.fromkeys(("messages", "message_echoes", "statuses", "errors"), _standby),
    "messaging_handovers": {"messaging_handovers": _handover},
}

# messages[].type -> a patient event kind, or the reason it earns no reply.
_MESSAGE_TYPES: dict[str, _Classifier] = {
    **{
        message_type: _always(EventKind.MESSAGE)
        for message_type in (
            "text",
            "image",
            "audio",
            "video",
            "document",
            "sticker",
            "location",
            "contacts",
            "button",
            "order",
        )
    },
    "interactive": _interactive,
    "unsupported": _unsupported,
    "unknown": _unsupported,
    "request_welcome": _always(EventKind.WELCOME),
    "reaction": _always(SkipKind.REACTION),
    "system": _always(SkipKind.SYSTEM),
    "edit": _always(SkipKind.EDIT),
    "revoke": _always(SkipKind.DELETED),
}
