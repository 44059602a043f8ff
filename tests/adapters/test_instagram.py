"""The Instagram adapter: what it extracts from webhooks, and the send requests it builds."""

from __future__ import annotations

from typing import Any

import pytest

from adapters._meta.wire import SkipKind
from adapters.instagram import ADAPTER
from bot.adapter import Outbound, SendConfig
from bot.events import Channel, ContactKind, Echo, EventKind, PatientEvent, Skipped
from bot.replies import Reply
from tests.helpers.fixtures import fixture_json

ACCOUNT = "17841400000000001"
IGSID = "7000000000000001"
TAG = "pb1.7f3c9a2e5d8b4c61"
TOKEN = "ig-token"
BOOKING = "https://example.org/book?practice=1"
TEXT = "This is an automatic reply from Example Dental."


def _item(payload: dict[str, Any]) -> dict[str, Any]:
    """The first item of the first entry's ``messaging[]``."""
    item: dict[str, Any] = payload["entry"][0]["messaging"][0]
    return item


def _skipped(kind: SkipKind) -> Skipped:
    """An Instagram skip on the practice's account."""
    return Skipped(channel=Channel.INSTAGRAM, kind=kind, account_id=ACCOUNT)


def _config(login: str = "instagram", token: str | None = TOKEN) -> SendConfig:
    """The Instagram send config of the example practice."""
    return SendConfig(
        channel=Channel.INSTAGRAM,
        account_id=ACCOUNT,
        token=token,
        graph_api_url="https://graph.facebook.com",
        instagram_api_url="https://graph.instagram.com",
        api_version="v25.0",
        instagram_login=login,
    )


def _send(reply: Reply, login: str = "instagram") -> Outbound:
    """Build the request for ``reply`` to the example patient."""
    return ADAPTER.build_send(
        reply,
        config=_config(login),
        recipient_id=IGSID,
        contact_kind=ContactKind.SCOPED,
        tag=TAG,
    )


def test_adapter_names_channel_and_object() -> None:
    """The adapter is Instagram's and routes ``instagram`` bodies."""
    assert ADAPTER.channel is Channel.INSTAGRAM
    assert ADAPTER.object_name == "instagram"


def test_parse_text_extracts_account_igsid_and_mid() -> None:
    """A text message becomes one patient event with the account id, IGSID and mid."""
    payload = fixture_json("instagram", "text")
    assert ADAPTER.parse(payload) == [
        PatientEvent(
            channel=Channel.INSTAGRAM,
            account_id=ACCOUNT,
            contact_id=IGSID,
            contact_kind=ContactKind.SCOPED,
            message_id=_item(payload)["message"]["mid"],
            timestamp=1767261600.0,
            kind=EventKind.MESSAGE,
        )
    ]


def test_parse_milliseconds_become_float_seconds() -> None:
    """Instagram's integer milliseconds are converted to float Unix seconds."""
    payload = fixture_json("instagram", "story_reply")
    _item(payload)["timestamp"] = 1767261600999
    [event] = ADAPTER.parse(payload)
    assert isinstance(event, PatientEvent)
    assert event.timestamp == 1767261600.999


@pytest.mark.parametrize("case", ["story_reply", "ad_referral_message", "unsupported"])
def test_parse_patient_message_variants_are_messages(case: str) -> None:
    """Story replies, ad-referral messages and unsupported messages are patient messages."""
    [event] = ADAPTER.parse(fixture_json("instagram", case))
    assert isinstance(event, PatientEvent)
    assert (event.kind, event.contact_id) == (EventKind.MESSAGE, IGSID)


def test_parse_story_mention_among_attachments_is_skipped() -> None:
    """A message whose attachments include a story mention earns no reply."""
    payload = fixture_json("instagram", "story_mention")
    attachments = _item(payload)["message"]["attachments"]
    attachments.insert(0, {"type": "image", "payload": {"url": "https://example.org/i"}})
    assert ADAPTER.parse(payload) == [_skipped(SkipKind.STORY_MENTION)]


@pytest.mark.parametrize(
    ("case", "kind"),
    [("deleted", SkipKind.DELETED), ("is_self", SkipKind.SELF)],
)
def test_parse_flagged_messages_are_skipped(case: str, kind: SkipKind) -> None:
    """Unsent (``is_deleted``) and ``is_self`` messages earn no reply."""
    assert ADAPTER.parse(fixture_json("instagram", case)) == [_skipped(kind)]


def test_parse_echo_is_addressed_to_recipient() -> None:
    """An Instagram echo names the patient it went to, with no app id or tag."""
    payload = fixture_json("instagram", "echo")
    assert ADAPTER.parse(payload) == [
        Echo(
            channel=Channel.INSTAGRAM,
            account_id=ACCOUNT,
            contact_id=IGSID,
            contact_kind=ContactKind.SCOPED,
            message_id=_item(payload)["message"]["mid"],
            timestamp=1767261600.0,
        )
    ]


def test_parse_sender_is_account_is_self() -> None:
    """A non-echo message whose sender is the account itself earns no reply."""
    payload = fixture_json("instagram", "text")
    _item(payload)["sender"]["id"] = ACCOUNT
    assert ADAPTER.parse(payload) == [_skipped(SkipKind.SELF)]


@pytest.mark.parametrize(
    ("field", "kind"),
    [
        ("comments", SkipKind.COMMENT),
        ("live_comments", SkipKind.COMMENT),
        ("mentions", SkipKind.MENTION),
        ("CANARY-instagram-new_field", SkipKind.UNKNOWN),
    ],
)
def test_parse_changes_are_skipped_by_field(field: str, kind: SkipKind) -> None:
    """``entry[].changes`` items are never messages; known fields get their own kind."""
    payload = fixture_json("instagram", "comments_change")
    payload["entry"][0]["changes"][0]["field"] = field
    assert ADAPTER.parse(payload) == [_skipped(kind)]


def test_build_send_instagram_login_plain_text() -> None:
    """With Instagram Login the reply goes to graph.instagram.com as bare text, no metadata."""
    assert _send(Reply(text=TEXT)) == Outbound(
        url=f"https://graph.instagram.com/v25.0/{ACCOUNT}/messages",
        token=TOKEN,
        body={"recipient": {"id": IGSID}, "message": {"text": TEXT}},
    )


def test_build_send_facebook_login_carries_only_documented_fields() -> None:
    """With Facebook Login the reply goes to /me/messages with the recipient and text only."""
    assert _send(Reply(text=TEXT), login="facebook") == Outbound(
        url="https://graph.facebook.com/v25.0/me/messages",
        token=TOKEN,
        body={"recipient": {"id": IGSID}, "message": {"text": TEXT}},
    )


@pytest.mark.parametrize("login", ["instagram", "facebook"])
def test_build_send_booking_url_stays_plain_text(login: str) -> None:
    """Instagram replies are always plain text, even with a booking URL and a phone."""
    reply = Reply(text=TEXT, booking_url=BOOKING, phone="+44 20 7946 0000")
    message = _send(reply, login=login).body["message"]
    assert "attachment" not in message
    assert message["text"] == TEXT


def test_build_send_unknown_login_raises() -> None:
    """A login mode other than instagram / facebook is refused."""
    with pytest.raises(ValueError, match="login mode"):
        _send(Reply(text=TEXT), login="twitter")


def test_build_send_without_token_raises() -> None:
    """A channel in dry-run has no token, so no request can be built."""
    with pytest.raises(ValueError, match="token"):
        ADAPTER.build_send(
            Reply(text=TEXT),
            config=_config(token=None),
            recipient_id=IGSID,
            contact_kind=ContactKind.SCOPED,
            tag=TAG,
        )


def test_build_send_bsuid_contact_raises() -> None:
    """A WhatsApp BSUID cannot be addressed on Instagram."""
    with pytest.raises(ValueError, match="instagram-scoped"):
        ADAPTER.build_send(
            Reply(text=TEXT),
            config=_config(),
            recipient_id="GB.13491208655302741918",
            contact_kind=ContactKind.BSUID,
            tag=TAG,
        )
