"""The Messenger Send API request for one reply, and Messenger's reply rules (SPEC §5).

https://developers.facebook.com/documentation/business-messaging/messenger-platform/send-messages
https://developers.facebook.com/docs/messenger-platform/send-messages/template/button
"""

from __future__ import annotations

import string
from typing import Any

from adapters._meta.adapter import fits_button_form
from adapters._meta.messaging import send_api_body
from bot.adapter import Button, Outbound, SendConfig, TextLimit
from bot.events import Channel, ContactKind
from bot.replies import Reply

__all__ = ["BUTTON_TEXT_LIMIT", "TEXT_LIMIT", "build_send", "buttons", "call_button_number"]

TEXT_LIMIT = TextLimit("Messenger", 2000, "characters")
BUTTON_TEXT_LIMIT = 640  # the text of a button template


def buttons(reply: Reply) -> tuple[Button, ...]:
    """Book online, and Call us when the phone has digits, if the text fits the template."""
    if not reply.booking_url or not fits_button_form(reply, BUTTON_TEXT_LIMIT):
        return ()
    book = Button(reply.book_title, "opens", reply.booking_url)
    if not reply.phone or call_button_number(reply.phone) is None:
        return (book,)
    return (book, Button(reply.call_title, "calls", reply.phone))


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
    form = buttons(reply)
    if form:
        message = {
            "attachment": {
                "type": "template",
                "payload": {
                    "template_type": "button",
                    "text": reply.text,
                    "buttons": [_button(button) for button in form],
                },
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


def _button(button: Button) -> dict[str, str]:
    if button.action == "opens":
        return {"type": "web_url", "url": button.target, "title": button.title}
    number = call_button_number(button.target) or ""  # buttons() only offers dialable numbers
    return {"type": "phone_number", "title": button.title, "payload": number}


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
