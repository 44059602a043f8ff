"""The Instagram send request for one reply, and Instagram's reply rule (SPEC §5).

Instagram replies are always plain text, at most 1000 bytes of UTF-8.

Instagram Login: https://developers.facebook.com/docs/instagram-platform/instagram-api-with-instagram-login/messaging-api
Facebook Login: https://developers.facebook.com/docs/messenger-platform/instagram/features/send-message
"""

from __future__ import annotations

from adapters._meta.messaging import send_api_body
from bot.adapter import Outbound, SendConfig, TextLimit
from bot.events import Channel, ContactKind
from bot.replies import Reply

__all__ = ["TEXT_LIMIT", "build_send"]

TEXT_LIMIT = TextLimit("Instagram", 1000, "bytes")


def build_send(
    reply: Reply,
    *,
    config: SendConfig,
    recipient_id: str,
    contact_kind: ContactKind,
    tag: str,
) -> Outbound:
    """The request for ``config.instagram_login``: ``instagram`` or ``facebook``.

    With Instagram Login the body carries no ``metadata`` (the API has none), so an echo of
    the reply is matched by recipient and time instead of by ``tag``.

    Raises:
        ValueError: the config is not Instagram's, has no token or an unknown login mode,
            or the contact is not an IGSID.
    """
    if config.channel is not Channel.INSTAGRAM:
        raise ValueError("send config is not for instagram")
    if config.token is None:
        raise ValueError("instagram has no access token (dry-run)")
    if contact_kind is not ContactKind.SCOPED:
        raise ValueError("instagram can only address an instagram-scoped id")
    if config.instagram_login == "instagram":
        return Outbound(
            url=f"{config.instagram_api_url}/{config.api_version}/{config.account_id}/messages",
            token=config.token,
            body={"recipient": {"id": recipient_id}, "message": {"text": reply.text}},
        )
    if config.instagram_login == "facebook":
        return Outbound(
            url=f"{config.graph_api_url}/{config.api_version}/me/messages",
            token=config.token,
            body=send_api_body(recipient_id, {"text": reply.text, "metadata": tag}),
        )
    raise ValueError("unknown instagram login mode")
