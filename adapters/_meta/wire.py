"""Defensive readers for decoded webhook JSON, and the vocabulary of skipped events.

Webhook bodies are signed by Meta, but their shapes still vary by version, product and
rollout, so every reader here accepts ``Any`` and answers ``None`` (or an empty list) for a
value of the wrong type instead of raising. The parsers build on them and never raise.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "MAX_ID_LENGTH",
    "SkipKind",
    "as_id",
    "as_mapping",
    "as_numeric_id",
    "dig",
    "seconds_from_milliseconds",
    "seconds_from_unix_string",
]

MAX_ID_LENGTH = 512
"""Longest identifier or callback tag accepted (an Instagram ``mid`` is ~200 characters)."""

_MAX_MILLISECONDS = 10**14  # year 5138: anything later is not a real event time
_MAX_SECONDS = 10**11
_UNIX_SECONDS = re.compile(r"[0-9]{1,11}")
_NUMERIC_ID = re.compile(r"[0-9]{1,32}")


class SkipKind(enum.StrEnum):
    """Why an item earns no reply; the only values ``Skipped.kind`` ever takes.

    Each name is a fixed word chosen here, never a key or value read from the payload, so
    it is safe as a metric label and in logs.
    """

    REACTION = "reaction"  # WhatsApp reaction message, Messenger / Instagram reaction
    GROUP = "group"  # a WhatsApp group message (Groups API): the member never wrote to us
    CALL_PERMISSION = "call_permission"  # WhatsApp interactive call_permission_reply
    FLOW_REPLY = "flow_reply"  # WhatsApp interactive nfm_reply: an answer to our own Flow
    BAD_ID = "bad_id"  # a WhatsApp sender that is no phone number and no BSUID
    SYSTEM = "system"  # WhatsApp system message (e.g. user changed number)
    EDIT = "edit"  # an edited message (WhatsApp edit, Messenger / Instagram message_edit)
    UNSUPPORTED_EDIT = "unsupported_edit"  # WhatsApp ``unsupported`` message of type edit
    DELETED = "deleted"  # a message the user unsent (is_deleted, WhatsApp revoke)
    ERRORS = "errors"  # WhatsApp value.errors[]
    READ = "read"  # Messenger read, Instagram seen
    DELIVERY = "delivery"  # Messenger delivery
    STANDBY = "standby"  # another handler owns the conversation (standby[] / field standby)
    HANDOVER = "handover"  # pass / take / request_thread_control, app_roles
    OPTIN = "optin"  # Messenger optin
    POLICY = "policy"  # Messenger policy_enforcement
    REFERRAL = "referral"  # a referral without a message (m.me / ig.me link, ad)
    STORY_MENTION = "story_mention"  # Instagram story mention
    SELF = "self"  # sent by the practice's own id, or flagged is_self
    COMMENT = "comment"  # Instagram comments / live_comments change
    MENTION = "mention"  # Instagram mentions change
    UNKNOWN = "unknown"  # a field, type or key this bot does not know
    MALFORMED = "malformed"  # a known kind whose required parts are missing or of the wrong type


def as_mapping(value: Any) -> Mapping[str, Any] | None:
    """``value`` if it is a JSON object, else ``None``.

    Bodies come from ``json.loads``, whose objects are always ``dict``: checking for ``dict``
    is exact and skips the abstract-class machinery that ``Mapping`` costs on every field.
    """
    return value if isinstance(value, dict) else None


def dig(value: Any, *keys: str) -> Any:
    """The value at ``keys`` inside nested objects, or ``None`` where the path breaks."""
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def as_id(value: Any) -> str | None:
    """A non-empty identifier string of sane length, exactly as received, else ``None``."""
    if isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH:
        return value
    return None


def as_numeric_id(value: Any) -> str | None:
    """An id Meta sends as a number or a string of digits (e.g. an echo's ``app_id``)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value) if 0 <= value < 10**32 else None
    if isinstance(value, str) and _NUMERIC_ID.fullmatch(value):
        return value
    return None


def seconds_from_unix_string(value: Any) -> float | None:
    """WhatsApp's ``timestamp``: a string of Unix seconds (an integer is tolerated)."""
    if isinstance(value, str) and _UNIX_SECONDS.fullmatch(value):
        return float(int(value))
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < _MAX_SECONDS:
        return float(value)
    return None


def seconds_from_milliseconds(value: Any) -> float | None:
    """Messenger / Instagram ``timestamp``: integer milliseconds, as float Unix seconds."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if not 0 <= value < _MAX_MILLISECONDS:
        return None
    return value / 1000
