"""What Messenger (``object: "page"``) and Instagram (``object: "instagram"``) share.

Parsing: both products deliver ``entry[]`` objects whose ``messaging[]`` items are told
apart by the one key each carries (``message``, ``postback``, ``read`` ...), plus
``standby[]`` items for threads another app owns, and (Instagram) ``changes[]`` for comments
and mentions.
References: https://developers.facebook.com/documentation/business-messaging/messenger-platform/webhooks/webhook-events/
and https://developers.facebook.com/docs/instagram-platform/webhooks/examples

Only ids, timestamps and the kind leave this module: never text, attachments, titles,
payloads, referral or reaction content.

Sending: the Messenger Platform Send API body, used by Messenger and by Instagram accounts
connected through Facebook Login.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from adapters._meta.wire import (
    SkipKind,
    as_id,
    as_mapping,
    as_numeric_id,
    dig,
    seconds_from_milliseconds,
)
from bot.events import (
    Channel,
    ContactKind,
    Echo,
    Event,
    EventKind,
    PatientEvent,
    Skipped,
)

__all__ = ["MessageRule", "parse_entries", "send_api_body"]

MessageRule = Callable[[Mapping[str, Any]], SkipKind | None]
"""A channel-specific check on a ``message`` object: a reason to skip it, or ``None``."""


@dataclass(frozen=True, slots=True)
class _Entry:
    """What every item of one ``entry[]`` object is parsed against."""

    channel: Channel
    account_id: str | None  # entry[].id: the practice's Page / Instagram account
    message_rules: Sequence[MessageRule]
    change_kinds: Mapping[str, SkipKind]

    def skipped(self, kind: SkipKind) -> Skipped:
        return Skipped(channel=self.channel, kind=kind, account_id=self.account_id)


_ItemHandler = Callable[[Mapping[str, Any], _Entry], Event]


def parse_entries(
    payload: Mapping[str, Any],
    *,
    channel: Channel,
    message_rules: Sequence[MessageRule] = (),
    change_kinds: Mapping[str, SkipKind] | None = None,
) -> list[Event]:
    """Every event in a decoded ``page`` / ``instagram`` webhook body; never raises.

    ``message_rules`` add channel-specific reasons to skip a ``message`` (e.g. Instagram
    story mentions); ``change_kinds`` names the ``changes[].field`` values the channel knows.
    """
    entries = dig(payload, "entry")
    if not isinstance(entries, list):
        return [Skipped(channel=channel, kind=SkipKind.MALFORMED)]
    events: list[Event] = []
    for raw in entries:
        events.extend(_parse_entry(raw, channel, message_rules, change_kinds or {}))
    return events


def _parse_entry(
    raw: Any,
    channel: Channel,
    message_rules: Sequence[MessageRule],
    change_kinds: Mapping[str, SkipKind],
) -> list[Event]:
    entry = as_mapping(raw)
    if entry is None:
        return [Skipped(channel=channel, kind=SkipKind.MALFORMED)]
    context = _Entry(channel, as_id(entry.get("id")), message_rules, change_kinds)
    present = [key for key in _ENTRY_ARRAYS if key in entry]
    if not present:
        return [context.skipped(SkipKind.UNKNOWN)]
    events: list[Event] = []
    for key in present:
        items = entry[key]
        if not isinstance(items, list):
            events.append(context.skipped(SkipKind.MALFORMED))
            continue
        handler = _ENTRY_ARRAYS[key]
        events.extend(handler(item, context) for item in items)
    return events


def _messaging_item(raw: Any, context: _Entry) -> Event:
    item = as_mapping(raw)
    if item is None:
        return context.skipped(SkipKind.MALFORMED)
    # The first key of the table that the item carries decides its kind: a message that
    # also carries a referral (ad click) is a message, not a referral.
    for key, handler in _ITEM_KINDS.items():
        if key in item:
            return handler(item, context)
    return context.skipped(SkipKind.UNKNOWN)


def _standby_item(_raw: Any, context: _Entry) -> Event:
    return context.skipped(SkipKind.STANDBY)


def _change(raw: Any, context: _Entry) -> Event:
    change = as_mapping(raw)
    if change is None:
        return context.skipped(SkipKind.MALFORMED)
    field = change.get("field")
    kind = context.change_kinds.get(field) if isinstance(field, str) else None
    return context.skipped(kind or SkipKind.UNKNOWN)


def _message(item: Mapping[str, Any], context: _Entry) -> Event:
    message = as_mapping(item.get("message"))
    if message is None:
        return context.skipped(SkipKind.MALFORMED)
    if message.get("is_echo") is True:
        return _echo(item, message, context)
    for flag, kind in _MESSAGE_FLAGS.items():
        if message.get(flag) is True:
            return context.skipped(kind)
    for rule in context.message_rules:
        reason = rule(message)
        if reason is not None:
            return context.skipped(reason)
    return _patient(item, context, EventKind.MESSAGE, message.get("mid"))


def _postback(item: Mapping[str, Any], context: _Entry) -> Event:
    postback = as_mapping(item.get("postback"))
    if postback is None:
        return context.skipped(SkipKind.MALFORMED)
    return _patient(item, context, EventKind.POSTBACK, postback.get("mid"))


def _patient(item: Mapping[str, Any], context: _Entry, kind: EventKind, raw_mid: Any) -> Event:
    sender = as_id(dig(item, "sender", "id"))
    if sender is not None and sender == context.account_id:
        return context.skipped(SkipKind.SELF)
    timestamp = seconds_from_milliseconds(item.get("timestamp"))
    if context.account_id is None or sender is None or timestamp is None:
        return context.skipped(SkipKind.MALFORMED)
    return PatientEvent(
        channel=context.channel,
        account_id=context.account_id,
        contact_id=sender,
        contact_kind=ContactKind.SCOPED,
        message_id=as_id(raw_mid),
        timestamp=timestamp,
        kind=kind,
    )


def _echo(item: Mapping[str, Any], message: Mapping[str, Any], context: _Entry) -> Event:
    """A message the Page / account sent: sender is the practice, recipient the patient."""
    recipient = as_id(dig(item, "recipient", "id"))
    timestamp = seconds_from_milliseconds(item.get("timestamp"))
    if context.account_id is None or recipient is None or timestamp is None:
        return context.skipped(SkipKind.MALFORMED)
    return Echo(
        channel=context.channel,
        account_id=context.account_id,
        contact_id=recipient,
        contact_kind=ContactKind.SCOPED,
        message_id=as_id(message.get("mid")),
        timestamp=timestamp,
        app_id=as_numeric_id(message.get("app_id")),
        tag=as_id(message.get("metadata")),
    )


def _skip(kind: SkipKind) -> _ItemHandler:
    def handler(_item: Mapping[str, Any], context: _Entry) -> Event:
        return context.skipped(kind)

    return handler


_ENTRY_ARRAYS: dict[str, Callable[[Any, _Entry], Event]] = {
    "messaging": _messaging_item,
    "standby": _standby_item,
    "changes": _change,
}

# Keyed on the one event key a messaging[] item carries, in priority order.
_ITEM_KINDS: dict[str, _ItemHandler] = {
    "message": _message,
    "postback": _postback,
    "reaction": _skip(SkipKind.REACTION),
    "message_edit": _skip(SkipKind.EDIT),
    "delivery": _skip(SkipKind.DELIVERY),
    "read": _skip(SkipKind.READ),
    "referral": _skip(SkipKind.REFERRAL),
    "optin": _skip(SkipKind.OPTIN),
    "pass_thread_control": _skip(SkipKind.HANDOVER),
    "take_thread_control": _skip(SkipKind.HANDOVER),
    "request_thread_control": _skip(SkipKind.HANDOVER),
    "app_roles": _skip(SkipKind.HANDOVER),
    "policy_enforcement": _skip(SkipKind.POLICY),
    "policy-enforcement": _skip(SkipKind.POLICY),  # the spelling real payloads carry
}

# Boolean flags on a non-echo message that mean no patient is waiting for an answer.
_MESSAGE_FLAGS: dict[str, SkipKind] = {
    "is_deleted": SkipKind.DELETED,
    "is_self": SkipKind.SELF,
}


def send_api_body(recipient_id: str, message: dict[str, Any]) -> dict[str, Any]:
    """A Send API request body answering a patient inside the standard messaging window."""
    return {"recipient": {"id": recipient_id}, "messaging_type": "RESPONSE", "message": message}
