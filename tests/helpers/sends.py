"""One WhatsApp send to the fake Graph API, for the transport and retry tests."""

from __future__ import annotations

import socket
from typing import Any

from bot.adapter import Outbound
from tests.helpers.fake_graph import FakeGraph

__all__ = ["PHONE_ID", "TOKEN", "WA_BODY", "closed_port", "wa_send"]

TOKEN = "EAAG-test-token-not-real"
PHONE_ID = "106540352242922"
WA_BODY: dict[str, Any] = {
    "messaging_product": "whatsapp",
    "recipient_type": "individual",
    "to": "447700900123",
    "type": "text",
    "text": {"body": "Automatic reply: we will call you back — Zoë", "preview_url": False},
    "biz_opaque_callback_data": "job-7f3a",
}


def wa_send(graph: FakeGraph, *, token: str = TOKEN) -> Outbound:
    """A WhatsApp text send to the fake."""
    return Outbound(url=graph.messages_url(PHONE_ID), token=token, body=WA_BODY)


def closed_port() -> int:
    """A loopback port with nothing listening on it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
