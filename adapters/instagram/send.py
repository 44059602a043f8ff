"""The Instagram send request for one reply, and Instagram's reply rule (SPEC §5).

Instagram replies are always plain text, at most 1000 bytes of UTF-8.

Instagram Login: https://developers.facebook.com/docs/instagram-platform/instagram-api-with-instagram-login/messaging-api
Facebook Login: https://developers.facebook.com/docs/messenger-platform/instagram/features/send-message
"""

from __future__ import annotations

from collections.abc import Callable

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

    Both carry only what Meta documents for Instagram, the recipient and the text: no
    ``metadata`` (documented for Messenger only) and no ``messaging_type``. So the job's
    ``tag`` goes nowhere, and an echo of the reply is matched by recipient and time instead.

    Raises:
        ValueError: the config is not Instagram's, has no token or an unknown login mode,
            or the contact is not an IGSID.
    """
    del tag  # Instagram has no field to carry it
    if config.channel is not Channel.INSTAGRAM:
        raise ValueError("send config is not for instagram")
    if config.token is None:
        raise ValueError("instagram has no access token (dry-run)")
    if contact_kind is not ContactKind.SCOPED:
        raise ValueError("instagram can only address an instagram-scoped id")
    base = _BASES.get(config.instagram_login)
    if base is None:
        raise ValueError("unknown instagram login mode")
    return Outbound(
        url=base(config),
        token=config.token,
        body={"recipient": {"id": recipient_id}, "message": {"text": reply.text}},
    )


# Where each login sends: the account on graph.instagram.com, or the linked Page's
# /me/messages on graph.facebook.com.
_BASES: dict[str, Callable[[SendConfig], str]] = {
    "instagram": lambda c: f"{c.instagram_api_url}/{c.api_version}/{c.account_id}/messages",
    "facebook": lambda c: f"{c.graph_api_url}/{c.api_version}/me/messages",
}
