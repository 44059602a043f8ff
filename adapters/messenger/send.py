"""The Messenger Send API request for one reply (SPEC §5).

https://developers.facebook.com/documentation/business-messaging/messenger-platform/send-messages
https://developers.facebook.com/docs/messenger-platform/send-messages/template/button
"""

from __future__ import annotations

import string
from typing import Any

from adapters._meta.messaging import send_api_body
from bot.adapter import Outbound, SendConfig
from bot.events import Channel, ContactKind
from bot.replies import Reply
from bot.templates import (
    BOOK_ONLINE_TITLE,
    CALL_US_TITLE,
    MESSENGER_BUTTON_TEXT_LIMIT,
    uses_buttons,
)

__all__ = ["BUTTON_TEXT_LIMIT", "build_send", "call_button_number"]

# The core decides when a reply fits the button form, so previews and sends always agree.
BUTTON_TEXT_LIMIT = MESSENGER_BUTTON_TEXT_LIMIT


def build_send(
    reply: Reply,
    *,
    config: SendConfig,
    recipient_id: str,
    contact_kind: ContactKind,
    tag: str,
) -> Outbound:
    """``POST {graph}/{version}/{page_id}/messages`` with the job's tag as ``metadata``.

    Raises:
        ValueError: the config is not Messenger's, has no token, or the contact is not a PSID.
    """
    if config.channel is not Channel.MESSENGER:
        raise ValueError("send config is not for messenger")
    if config.token is None:
        raise ValueError("messenger has no page access token (dry-run)")
    if contact_kind is not ContactKind.SCOPED:
        raise ValueError("messenger can only address a page-scoped id")
    message: dict[str, Any]
    if reply.booking_url and uses_buttons(Channel.MESSENGER, reply):
        buttons: list[dict[str, str]] = [
            {"type": "web_url", "url": reply.booking_url, "title": BOOK_ONLINE_TITLE}
        ]
        number = call_button_number(reply.phone) if reply.phone else None
        if number is not None:
            buttons.append({"type": "phone_number", "title": CALL_US_TITLE, "payload": number})
        message = {
            "attachment": {
                "type": "template",
                "payload": {"template_type": "button", "text": reply.text, "buttons": buttons},
            },
            "metadata": tag,
        }
    else:
        message = {"text": reply.text, "metadata": tag}
    return Outbound(
        url=f"{config.graph_api_url}/{config.api_version}/{config.account_id}/messages",
        token=config.token,
        body=send_api_body(recipient_id, message),
    )


def call_button_number(phone: str) -> str | None:
    """The ``+``-and-digits form a ``phone_number`` button needs, or ``None`` without digits.

    Spaces, dashes, dots and brackets go; a UK-style ``(0)`` trunk digit after the country
    code goes too, and a ``00`` international prefix becomes ``+``.
    """
    cleaned = phone.replace("(0)", "").strip()
    digits = "".join(character for character in cleaned if character in string.digits)
    if cleaned.startswith("00"):
        digits = digits[2:]
    return f"+{digits}" if digits else None
