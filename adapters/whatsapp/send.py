"""The WhatsApp Cloud API send request for one reply (SPEC §5).

https://developers.facebook.com/documentation/business-messaging/whatsapp/messages/text-messages
https://developers.facebook.com/documentation/business-messaging/whatsapp/messages/interactive-cta-url-messages
"""

from __future__ import annotations

from typing import Any

from bot.adapter import Outbound, SendConfig
from bot.events import Channel, ContactKind
from bot.replies import Reply
from bot.templates import BOOK_ONLINE_TITLE, WHATSAPP_BUTTON_BODY_LIMIT, uses_buttons

__all__ = ["BUTTON_TEXT_LIMIT", "build_send"]

# The core decides when a reply fits the button form, so previews and sends always agree.
BUTTON_TEXT_LIMIT = WHATSAPP_BUTTON_BODY_LIMIT
_BOOK_ONLINE = BOOK_ONLINE_TITLE

# How each kind of contact id is addressed: a phone number as ``to``, a BSUID as ``recipient``.
_ADDRESS_KEYS: dict[ContactKind, str] = {
    ContactKind.PHONE: "to",
    ContactKind.BSUID: "recipient",
}


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
    if reply.booking_url and uses_buttons(Channel.WHATSAPP, reply):
        body["type"] = "interactive"
        body["interactive"] = {
            "type": "cta_url",
            "body": {"text": reply.text},
            "action": {
                "name": "cta_url",
                "parameters": {"display_text": _BOOK_ONLINE, "url": reply.booking_url},
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
