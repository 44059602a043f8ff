"""Webhook bodies as Meta sends them for one text message, for ``practice-bot simulate``.

Only the shapes the parsers read are filled in; the text is a fixed test sentence, so a
simulated message carries no patient content either.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["SIMULATED_TEXT", "Simulate", "messaging_text", "whatsapp_text"]

SIMULATED_TEXT = "practice-bot test message"

# (account id, sender id, message id, Unix time) -> a webhook body
Simulate = Callable[[str, str, str, float], dict[str, Any]]


def whatsapp_text(account_id: str, sender_id: str, message_id: str, at: float) -> dict[str, Any]:
    """A WhatsApp Cloud API ``messages`` webhook for the number ``account_id``."""
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "0",  # the business account, which the bot does not read
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {"display_phone_number": "", "phone_number_id": account_id},
                            "contacts": [{"profile": {"name": "Test"}, "wa_id": sender_id}],
                            "messages": [
                                {
                                    "from": sender_id,
                                    "id": message_id,
                                    "timestamp": str(int(at)),
                                    "type": "text",
                                    "text": {"body": SIMULATED_TEXT},
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }


def messaging_text(object_name: str) -> Simulate:
    """A Messenger (``page``) or Instagram (``instagram``) ``messaging`` webhook builder."""

    def build(account_id: str, sender_id: str, message_id: str, at: float) -> dict[str, Any]:
        ms = int(at * 1000)
        return {
            "object": object_name,
            "entry": [
                {
                    "id": account_id,
                    "time": ms,
                    "messaging": [
                        {
                            "sender": {"id": sender_id},
                            "recipient": {"id": account_id},
                            "timestamp": ms,
                            "message": {"mid": message_id, "text": SIMULATED_TEXT},
                        }
                    ],
                }
            ],
        }

    return build
