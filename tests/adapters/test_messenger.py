"""The Messenger adapter: what it extracts from webhooks, and the send requests it builds."""

from __future__ import annotations

from typing import Any

import pytest

from adapters._meta.wire import SkipKind
from adapters.messenger import ADAPTER
from adapters.messenger.send import call_button_number
from bot.adapter import Outbound, SendConfig
from bot.events import Channel, ContactKind, Echo, EventKind, PatientEvent, Skipped
from bot.replies import Reply
from tests.helpers.fixtures import fixture_json

PAGE = "200000000000001"
PSID = "6000000000000001"
TAG = "pb1.7f3c9a2e5d8b4c61"
TOKEN = "page-token"
BOOKING = "https://example.org/book?practice=1"
TEXT = "This is an automatic reply from Example Dental."
URL = f"https://graph.facebook.com/v25.0/{PAGE}/messages"


def _item(payload: dict[str, Any], array: str = "messaging") -> dict[str, Any]:
    """The first item of the first entry's ``messaging[]`` (or another array)."""
    item: dict[str, Any] = payload["entry"][0][array][0]
    return item


def _skipped(kind: SkipKind) -> Skipped:
    """A Messenger skip on the practice's Page."""
    return Skipped(channel=Channel.MESSENGER, kind=kind, account_id=PAGE)


def _config(token: str | None = TOKEN) -> SendConfig:
    """The Messenger send config of the example practice."""
    return SendConfig(
        channel=Channel.MESSENGER,
        account_id=PAGE,
        token=token,
        graph_api_url="https://graph.facebook.com",
        instagram_api_url="https://graph.instagram.com",
        api_version="v25.0",
    )


def _send(reply: Reply, contact_kind: ContactKind = ContactKind.SCOPED) -> Outbound:
    """Build the request for ``reply`` to the example patient."""
    return ADAPTER.build_send(
        reply, config=_config(), recipient_id=PSID, contact_kind=contact_kind, tag=TAG
    )


def test_adapter_names_channel_and_object() -> None:
    """The adapter is Messenger's and routes ``page`` bodies."""
    assert ADAPTER.channel is Channel.MESSENGER
    assert ADAPTER.object_name == "page"


def test_parse_text_extracts_page_psid_and_mid() -> None:
    """A text message becomes one patient event with entry id, PSID and mid."""
    payload = fixture_json("messenger", "text")
    assert ADAPTER.parse(payload) == [
        PatientEvent(
            channel=Channel.MESSENGER,
            account_id=PAGE,
            contact_id=PSID,
            contact_kind=ContactKind.SCOPED,
            message_id=_item(payload)["message"]["mid"],
            timestamp=1767261600.0,
            kind=EventKind.MESSAGE,
        )
    ]


def test_parse_milliseconds_become_float_seconds() -> None:
    """Messenger's integer milliseconds are converted to float Unix seconds."""
    payload = fixture_json("messenger", "text")
    _item(payload)["timestamp"] = 1767261600123
    [event] = ADAPTER.parse(payload)
    assert isinstance(event, PatientEvent)
    assert event.timestamp == 1767261600.123


@pytest.mark.parametrize("timestamp", ["1767261600000", True, -1, None, 10**20, 1.5e300])
def test_parse_bad_timestamp_is_malformed(timestamp: Any) -> None:
    """A timestamp that is not sane integer milliseconds makes the event malformed."""
    payload = fixture_json("messenger", "text")
    _item(payload)["timestamp"] = timestamp
    assert ADAPTER.parse(payload) == [_skipped(SkipKind.MALFORMED)]


def test_parse_message_without_mid_has_no_message_id() -> None:
    """A message without ``mid`` is still a patient event, deduplicated by other keys."""
    payload = fixture_json("messenger", "text")
    del _item(payload)["message"]["mid"]
    [event] = ADAPTER.parse(payload)
    assert isinstance(event, PatientEvent)
    assert event.message_id is None


def test_parse_postback_is_postback_kind_with_mid() -> None:
    """A postback is a patient event of kind postback, keyed by its ``mid``."""
    payload = fixture_json("messenger", "postback")
    [event] = ADAPTER.parse(payload)
    assert isinstance(event, PatientEvent)
    assert event.kind is EventKind.POSTBACK
    assert event.message_id == _item(payload)["postback"]["mid"]


def test_parse_bot_echo_carries_app_id_and_tag() -> None:
    """The bot's own echo reports our app id (as text), the metadata tag and the PSID."""
    payload = fixture_json("messenger", "echo_bot")
    assert ADAPTER.parse(payload) == [
        Echo(
            channel=Channel.MESSENGER,
            account_id=PAGE,
            contact_id=PSID,
            contact_kind=ContactKind.SCOPED,
            message_id=_item(payload)["message"]["mid"],
            timestamp=1767261600.0,
            app_id="1111111111111111",
            tag=TAG,
        )
    ]


def test_parse_page_inbox_echo_has_inbox_app_and_no_tag() -> None:
    """A reply typed in the Page Inbox is an echo from app 263902037430900 without a tag."""
    [event] = ADAPTER.parse(fixture_json("messenger", "echo_page_inbox"))
    assert isinstance(event, Echo)
    assert (event.app_id, event.tag, event.smb) == ("263902037430900", None, False)


def test_parse_echo_app_id_given_as_string() -> None:
    """An ``app_id`` sent as a string of digits is kept as is."""
    payload = fixture_json("messenger", "echo_other_app")
    _item(payload)["message"]["app_id"] = "3333333333333333"
    [event] = ADAPTER.parse(payload)
    assert isinstance(event, Echo)
    assert event.app_id == "3333333333333333"


def test_parse_echo_without_recipient_is_malformed() -> None:
    """An echo that names no patient cannot be attributed and is skipped."""
    payload = fixture_json("messenger", "echo_bot")
    del _item(payload)["recipient"]
    assert ADAPTER.parse(payload) == [_skipped(SkipKind.MALFORMED)]


def test_parse_sender_is_page_is_self() -> None:
    """A non-echo message whose sender is the Page itself earns no reply."""
    assert ADAPTER.parse(fixture_json("messenger", "self_sender")) == [_skipped(SkipKind.SELF)]


def test_parse_postback_from_page_is_self() -> None:
    """A postback whose sender is the Page itself earns no reply."""
    payload = fixture_json("messenger", "postback")
    _item(payload)["sender"]["id"] = PAGE
    assert ADAPTER.parse(payload) == [_skipped(SkipKind.SELF)]


def test_parse_standby_message_is_standby() -> None:
    """A patient message in ``standby[]`` belongs to another app's thread: skipped."""
    assert ADAPTER.parse(fixture_json("messenger", "standby")) == [_skipped(SkipKind.STANDBY)]


def test_parse_message_with_referral_is_message() -> None:
    """A message that also carries an ad referral is still the patient writing."""
    payload = fixture_json("messenger", "text")
    _item(payload)["referral"] = {"ref": "CANARY-messenger-ad-ref", "source": "ADS"}
    [event] = ADAPTER.parse(payload)
    assert isinstance(event, PatientEvent)
    assert event.kind is EventKind.MESSAGE


def test_parse_unknown_messaging_key_is_unknown() -> None:
    """An item whose event key the bot does not know is skipped as unknown."""
    payload = fixture_json("messenger", "read")
    item = _item(payload)
    item["CANARY-messenger-new_event"] = item.pop("read")
    assert ADAPTER.parse(payload) == [_skipped(SkipKind.UNKNOWN)]


def test_parse_missing_entry_id_is_malformed() -> None:
    """Without ``entry[].id`` a message cannot be attributed to a Page."""
    payload = fixture_json("messenger", "text")
    del payload["entry"][0]["id"]
    assert ADAPTER.parse(payload) == [
        Skipped(channel=Channel.MESSENGER, kind=SkipKind.MALFORMED, account_id=None)
    ]


def test_parse_entry_without_known_arrays_is_unknown() -> None:
    """An entry with neither ``messaging``, ``standby`` nor ``changes`` is counted as unknown."""
    assert ADAPTER.parse({"object": "page", "entry": [{"id": PAGE, "time": 1}]}) == [
        _skipped(SkipKind.UNKNOWN)
    ]


def test_build_send_plain_text_with_metadata_tag() -> None:
    """Without a booking URL the reply is a RESPONSE text carrying the tag as metadata."""
    assert _send(Reply(text=TEXT, phone="+44 20 7946 0000")) == Outbound(
        url=URL,
        token=TOKEN,
        body={
            "recipient": {"id": PSID},
            "messaging_type": "RESPONSE",
            "message": {"text": TEXT, "metadata": TAG},
        },
    )


def test_build_send_booking_url_uses_button_template() -> None:
    """With a booking URL and a phone, the reply is a button template with both buttons."""
    outbound = _send(Reply(text=TEXT, booking_url=BOOKING, phone="+44 20 7946 0000"))
    assert outbound == Outbound(
        url=URL,
        token=TOKEN,
        body={
            "recipient": {"id": PSID},
            "messaging_type": "RESPONSE",
            "message": {
                "attachment": {
                    "type": "template",
                    "payload": {
                        "template_type": "button",
                        "text": TEXT,
                        "buttons": [
                            {"type": "web_url", "url": BOOKING, "title": "Book online"},
                            {
                                "type": "phone_number",
                                "title": "Call us",
                                "payload": "+442079460000",
                            },
                        ],
                    },
                },
                "metadata": TAG,
            },
        },
    )


def test_build_send_button_template_without_phone_has_one_button() -> None:
    """Without a practice phone only the ``web_url`` button is sent."""
    outbound = _send(Reply(text=TEXT, booking_url=BOOKING))
    assert outbound.body["message"] == {
        "attachment": {
            "type": "template",
            "payload": {
                "template_type": "button",
                "text": TEXT,
                "buttons": [{"type": "web_url", "url": BOOKING, "title": "Book online"}],
            },
        },
        "metadata": TAG,
    }


def test_build_send_text_at_limit_keeps_template() -> None:
    """A text of exactly 640 characters still fits the button template."""
    text = "é" * 640
    outbound = _send(Reply(text=text, booking_url=BOOKING))
    assert outbound.body["message"]["attachment"]["payload"]["text"] == text


def test_build_send_text_over_template_limit_falls_back_to_plain() -> None:
    """A text over 640 characters goes as plain text even with a booking URL."""
    text = "a" * 641
    outbound = _send(Reply(text=text, booking_url=BOOKING, phone="+44 20 7946 0000"))
    assert outbound.body == {
        "recipient": {"id": PSID},
        "messaging_type": "RESPONSE",
        "message": {"text": text, "metadata": TAG},
    }


@pytest.mark.parametrize(
    ("phone", "payload"),
    [
        ("+44 20 7946 0000", "+442079460000"),
        ("+44 (0)20 7946 0000", "+442079460000"),
        ("0044 20-7946-0000", "+442079460000"),
        ("+1 (415) 555.0100", "+14155550100"),
        ("+442079460000", "+442079460000"),
        ("call reception", None),
        ("", None),
    ],
)
def test_call_button_number_normalises(phone: str, payload: str | None) -> None:
    """The call button payload is ``+`` followed by digits only."""
    assert call_button_number(phone) == payload


def test_build_send_phone_without_digits_drops_call_button() -> None:
    """A phone with no digits cannot be called, so only the booking button is sent."""
    outbound = _send(Reply(text=TEXT, booking_url=BOOKING, phone="reception"))
    buttons = outbound.body["message"]["attachment"]["payload"]["buttons"]
    assert [button["type"] for button in buttons] == ["web_url"]


def test_build_send_without_token_raises() -> None:
    """A channel in dry-run has no token, so no request can be built."""
    with pytest.raises(ValueError, match="token"):
        ADAPTER.build_send(
            Reply(text=TEXT),
            config=_config(token=None),
            recipient_id=PSID,
            contact_kind=ContactKind.SCOPED,
            tag=TAG,
        )


def test_build_send_phone_contact_raises() -> None:
    """A WhatsApp phone contact cannot be addressed on Messenger."""
    with pytest.raises(ValueError, match="page-scoped"):
        _send(Reply(text=TEXT), ContactKind.PHONE)
