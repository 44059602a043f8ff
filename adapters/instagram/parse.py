"""Instagram messaging webhooks (``object: "instagram"``) to neutral events.

Examples: https://developers.facebook.com/docs/instagram-platform/webhooks/examples
Instagram shares Messenger's ``messaging[]`` rules (``adapters._meta.messaging``) and adds
story mentions, which earn no reply, and ``changes[]`` for comments and mentions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters._meta.messaging import parse_entries
from adapters._meta.wire import SkipKind, dig
from bot.events import Channel, Event

__all__ = ["parse"]

# entry[].changes[].field values of an Instagram account; none is a direct message.
_CHANGE_KINDS: dict[str, SkipKind] = {
    "comments": SkipKind.COMMENT,
    "live_comments": SkipKind.COMMENT,
    "mentions": SkipKind.MENTION,
}


def parse(payload: Mapping[str, Any]) -> list[Event]:
    """Every event in a decoded Instagram webhook body; never raises."""
    return parse_entries(
        payload,
        channel=Channel.INSTAGRAM,
        message_rules=(_story_mention,),
        change_kinds=_CHANGE_KINDS,
    )


def _story_mention(message: Mapping[str, Any]) -> SkipKind | None:
    """A story that mentions the practice: no one wrote to it, so no reply."""
    attachments = message.get("attachments")
    if isinstance(attachments, list) and any(
        dig(attachment, "type") == "story_mention" for attachment in attachments
    ):
        return SkipKind.STORY_MENTION
    return None
