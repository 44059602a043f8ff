"""The WhatsApp Cloud API send request for one reply, and WhatsApp's reply rules (SPEC §5).

https://developers.facebook.com/documentation/business-messaging/whatsapp/messages/text-messages
https://developers.facebook.com/documentation/business-messaging/whatsapp/messages/interactive-cta-url-messages
"""

from __future__ import annotations

from typing import Any

from adapters._meta.adapter import fits_button_form
from bot.adapter import Button, Outbound, SendConfig, TextLimit
from bot.events import Channel, ContactKind
from bot.replies import Reply

__all__ = ["BUTTON_TEXT_LIMIT", "TEXT_LIMIT", "build_send", "buttons"]

TEXT_LIMIT = TextLimit("WhatsApp", 4096, "characters")
BUTTON_TEXT_LIMIT = 1024  # the body of a cta_url interactive message

# How each kind of contact id is addressed: a phone number as ``to``, a BSUID as ``recipient``.
_ADDRESS_KEYS: dict[ContactKind, str] = {
    ContactKind.PHONE: "to",
    ContactKind.BSUID: "recipient",
}


def buttons(reply: Reply) -> tuple[Button, ...]:
    """One ``cta_url`` button to the booking page when the text fits its body."""
    if reply.booking_url and fits_button_form(reply, BUTTON_TEXT_LIMIT):
        return (Button(reply.book_title, "opens", reply.booking_url),)
    return ()


def build_send(
    reply: Reply,
    *,
    config: SendConfig,
    recipient_id: str,
    contact_kind: ContactKind,
    tag: str,
) -> Outbound:
    """``POST {graph}/{version}/{phone_number_id}/messages``, tagged for status webhooks.

    Raises:
        ValueError: the config is not WhatsApp's, has no token, or the contact kind is not
            a WhatsApp one.
    """
    if config.channel is not Channel.WHATSAPP:
        raise ValueError("send config is not for whatsapp")
    if config.token is None:
        raise ValueError("whatsapp has no access token (dry-run)")
    address_key = _ADDRESS_KEYS.get(contact_kind)
    if address_key is None:
        raise ValueError("whatsapp cannot address this contact kind")
    body: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        address_key: recipient_id,
    }
    form = buttons(reply)
    if form:
        [book] = form
        body["type"] = "interactive"
        body["interactive"] = {
            "type": "cta_url",
            "body": {"text": reply.text},
            "action": {
                "name": "cta_url",
                "parameters": {"display_text": book.title, "url": book.target},
            },
        }
    else:
        body["type"] = "text"
        body["text"] = {"body": reply.text, "preview_url": False}
    body["biz_opaque_callback_data"] = tag
    return Outbound(
        url=f"{config.graph_api_url}/{config.api_version}/{config.account_id}/messages",
        token=config.token,
        body=body,
    )
