"""The WhatsApp adapter: what it extracts from webhooks, and the send requests it builds."""

from __future__ import annotations

from typing import Any

import pytest

from adapters._meta.wire import SkipKind
from adapters.whatsapp import ADAPTER
from bot.adapter import Outbound, SendConfig
from bot.errors import ErrorClass
from bot.events import (
    Channel,
    ContactKind,
    Echo,
    EventKind,
    Link,
    PatientEvent,
    Skipped,
    StatusUpdate,
)
from bot.replies import Reply
from tests.helpers.fixtures import all_fixtures, fixture_json

PHONE_NUMBER_ID = "109876543210987"
WA = "447700900123"
BSUID = "GB.13491208655302741918"
NEW_BSUID = "GB.99991208655302741918"
TAG = "pb1.7f3c9a2e5d8b4c61"
TOKEN = "wa-token"
BOOKING = "https://example.org/book?practice=1"
TEXT = "This is an automatic reply from Example Dental."
URL = f"https://graph.facebook.com/v25.0/{PHONE_NUMBER_ID}/messages"


def _value(payload: dict[str, Any]) -> dict[str, Any]:
    """The first ``changes[].value`` of a payload."""
    value: dict[str, Any] = payload["entry"][0]["changes"][0]["value"]
    return value


def _message(payload: dict[str, Any]) -> dict[str, Any]:
    """The first ``messages[]`` item of a payload."""
    message: dict[str, Any] = _value(payload)["messages"][0]
    return message


def _skipped(kind: SkipKind) -> Skipped:
    """A WhatsApp skip on the practice's number."""
    return Skipped(channel=Channel.WHATSAPP, kind=kind, account_id=PHONE_NUMBER_ID)


def _config(token: str | None = TOKEN) -> SendConfig:
    """The WhatsApp send config of the example practice."""
    return SendConfig(
        channel=Channel.WHATSAPP,
        account_id=PHONE_NUMBER_ID,
        token=token,
        graph_api_url="https://graph.facebook.com",
        instagram_api_url="https://graph.instagram.com",
        api_version="v25.0",
    )


def _send(
    reply: Reply, contact_kind: ContactKind = ContactKind.PHONE, recipient: str = WA
) -> Outbound:
    """Build the request for ``reply`` to the example patient."""
    return ADAPTER.build_send(
        reply, config=_config(), recipient_id=recipient, contact_kind=contact_kind, tag=TAG
    )


def test_adapter_names_channel_and_object() -> None:
    """The adapter is WhatsApp's and routes ``whatsapp_business_account`` bodies."""
    assert ADAPTER.channel is Channel.WHATSAPP
    assert ADAPTER.object_name == "whatsapp_business_account"


def test_parse_text_extracts_number_contact_id_and_seconds() -> None:
    """A text message becomes one patient event with the receiving number and the wa_id."""
    payload = fixture_json("whatsapp", "text")
    assert ADAPTER.parse(payload) == [
        PatientEvent(
            channel=Channel.WHATSAPP,
            account_id=PHONE_NUMBER_ID,
            contact_id=WA,
            contact_kind=ContactKind.PHONE,
            message_id=_message(payload)["id"],
            timestamp=1767261600.0,
            kind=EventKind.MESSAGE,
        )
    ]


def test_parse_request_welcome_is_welcome_kind() -> None:
    """A ``request_welcome`` is a patient event of kind welcome."""
    [event] = ADAPTER.parse(fixture_json("whatsapp", "request_welcome"))
    assert isinstance(event, PatientEvent)
    assert event.kind is EventKind.WELCOME


def test_parse_bsuid_user_is_addressed_by_bsuid() -> None:
    """A username user without ``from`` is keyed by ``from_user_id`` as a BSUID."""
    [event] = ADAPTER.parse(fixture_json("whatsapp", "bsuid_user"))
    assert isinstance(event, PatientEvent)
    assert (event.contact_id, event.contact_kind) == (BSUID, ContactKind.BSUID)


def test_parse_phone_wins_over_bsuid() -> None:
    """When both ``from`` and ``from_user_id`` are present, the phone number is the key."""
    payload = fixture_json("whatsapp", "text")
    _message(payload)["from_user_id"] = BSUID
    [event] = ADAPTER.parse(payload)
    assert isinstance(event, PatientEvent)
    assert (event.contact_id, event.contact_kind) == (WA, ContactKind.PHONE)


def test_parse_missing_from_uses_single_contact_wa_id() -> None:
    """A message without ``from`` takes the ``wa_id`` of the value's only contact."""
    payload = fixture_json("whatsapp", "text")
    del _message(payload)["from"]
    [event] = ADAPTER.parse(payload)
    assert isinstance(event, PatientEvent)
    assert (event.contact_id, event.contact_kind) == (WA, ContactKind.PHONE)


def test_parse_missing_from_uses_single_contact_user_id() -> None:
    """A message without any sender field takes the only contact's ``user_id``."""
    payload = fixture_json("whatsapp", "bsuid_user")
    del _message(payload)["from_user_id"]
    [event] = ADAPTER.parse(payload)
    assert isinstance(event, PatientEvent)
    assert (event.contact_id, event.contact_kind) == (BSUID, ContactKind.BSUID)


def test_parse_message_without_sender_is_malformed() -> None:
    """A message with no ``from`` / ``from_user_id`` and no contact to fall back on is skipped."""
    payload = fixture_json("whatsapp", "text")
    del _message(payload)["from"]
    del _value(payload)["contacts"]
    assert ADAPTER.parse(payload) == [_skipped(SkipKind.MALFORMED)]


def test_parse_several_contacts_are_not_guessed() -> None:
    """With several contacts in a value, a message without a sender field is not attributed."""
    payload = fixture_json("whatsapp", "text")
    del _message(payload)["from"]
    _value(payload)["contacts"].append({"wa_id": "447700900999"})
    assert ADAPTER.parse(payload) == [_skipped(SkipKind.MALFORMED)]


def test_parse_shared_contact_is_not_the_sender() -> None:
    """A shared contact card's ``wa_id`` never becomes the sender."""
    [event] = ADAPTER.parse(fixture_json("whatsapp", "contacts"))
    assert isinstance(event, PatientEvent)
    assert event.contact_id == WA


@pytest.mark.parametrize("timestamp", ["", "17672616OO", "1767261600.5", "-1", "12\n", None, []])
def test_parse_bad_timestamp_is_malformed(timestamp: Any) -> None:
    """A timestamp that is not a string of Unix seconds makes the message malformed."""
    payload = fixture_json("whatsapp", "text")
    _message(payload)["timestamp"] = timestamp
    assert ADAPTER.parse(payload) == [_skipped(SkipKind.MALFORMED)]


def test_parse_missing_phone_number_id_is_malformed() -> None:
    """Without ``metadata.phone_number_id`` a message cannot be attributed to a number."""
    payload = fixture_json("whatsapp", "text")
    del _value(payload)["metadata"]["phone_number_id"]
    assert ADAPTER.parse(payload) == [
        Skipped(channel=Channel.WHATSAPP, kind=SkipKind.MALFORMED, account_id=None)
    ]


def test_parse_message_from_own_number_is_self() -> None:
    """A message whose ``from`` is the business's own display number is skipped as self."""
    payload = fixture_json("whatsapp", "text")
    _message(payload)["from"] = _value(payload)["metadata"]["display_phone_number"]
    assert ADAPTER.parse(payload) == [_skipped(SkipKind.SELF)]


def test_parse_unknown_message_type_is_unknown() -> None:
    """A message type the bot does not know is skipped as unknown, not by its name."""
    payload = fixture_json("whatsapp", "text")
    _message(payload)["type"] = "CANARY-whatsapp-new_type"
    assert ADAPTER.parse(payload) == [_skipped(SkipKind.UNKNOWN)]


def test_parse_unsupported_edit_is_skipped() -> None:
    """An ``unsupported`` message of type edit earns no reply."""
    assert ADAPTER.parse(fixture_json("whatsapp", "unsupported_edit")) == [
        _skipped(SkipKind.UNSUPPORTED_EDIT)
    ]


def test_parse_status_carries_callback_tag() -> None:
    """A status becomes a StatusUpdate with ``biz_opaque_callback_data`` as its tag."""
    assert ADAPTER.parse(fixture_json("whatsapp", "status_sent")) == [
        StatusUpdate(
            channel=Channel.WHATSAPP,
            account_id=PHONE_NUMBER_ID,
            status="sent",
            tag=TAG,
            timestamp=1767261600.0,
        )
    ]


def test_parse_status_without_tag_has_none() -> None:
    """A status of a message sent by someone else carries no tag."""
    payload = fixture_json("whatsapp", "status_sent")
    del _value(payload)["statuses"][0]["biz_opaque_callback_data"]
    [event] = ADAPTER.parse(payload)
    assert isinstance(event, StatusUpdate)
    assert event.tag is None


def test_parse_unknown_status_value_is_unknown() -> None:
    """A status value outside Meta's list is skipped, never passed on."""
    payload = fixture_json("whatsapp", "status_sent")
    _value(payload)["statuses"][0]["status"] = "CANARY-whatsapp-status"
    assert ADAPTER.parse(payload) == [_skipped(SkipKind.UNKNOWN)]


def test_parse_smb_echo_is_staff_echo_to_recipient() -> None:
    """A WhatsApp Business app echo is an smb Echo addressed to the ``to`` number."""
    payload = fixture_json("whatsapp", "smb_message_echoes")
    echo = _value(payload)["message_echoes"][0]
    assert ADAPTER.parse(payload) == [
        Echo(
            channel=Channel.WHATSAPP,
            account_id=PHONE_NUMBER_ID,
            contact_id=WA,
            contact_kind=ContactKind.PHONE,
            message_id=echo["id"],
            timestamp=1767261600.0,
            smb=True,
        )
    ]


def test_parse_batch_reads_every_entry_change_and_item() -> None:
    """Each message, status and skip of a batched body is one event, in order."""
    events = ADAPTER.parse(fixture_json("whatsapp", "batch"))
    assert [type(event) for event in events] == [
        PatientEvent,
        StatusUpdate,
        PatientEvent,
        PatientEvent,
        Skipped,
    ]


def test_parse_event_repr_hides_contact_id() -> None:
    """The raw phone number and message id never appear in an event's repr."""
    [event] = ADAPTER.parse(fixture_json("whatsapp", "text"))
    assert isinstance(event, PatientEvent)
    assert WA not in repr(event)
    assert str(event.message_id) not in repr(event)


def test_build_send_plain_text_to_phone() -> None:
    """Without a booking URL the reply is a text message to the wa_id, tagged."""
    assert _send(Reply(text=TEXT)) == Outbound(
        url=URL,
        token=TOKEN,
        body={
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": WA,
            "type": "text",
            "text": {"body": TEXT, "preview_url": False},
            "biz_opaque_callback_data": TAG,
        },
    )


def test_build_send_bsuid_uses_recipient() -> None:
    """A BSUID contact is addressed with ``recipient`` instead of ``to``."""
    outbound = _send(Reply(text=TEXT), ContactKind.BSUID, BSUID)
    assert outbound.body == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "recipient": BSUID,
        "type": "text",
        "text": {"body": TEXT, "preview_url": False},
        "biz_opaque_callback_data": TAG,
    }


def test_build_send_booking_url_uses_cta_url_button() -> None:
    """With a booking URL and a short text, the reply is a ``cta_url`` interactive message."""
    outbound = _send(Reply(text=TEXT, booking_url=BOOKING, phone="+44 20 7946 0000"))
    assert outbound == Outbound(
        url=URL,
        token=TOKEN,
        body={
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": WA,
            "type": "interactive",
            "interactive": {
                "type": "cta_url",
                "body": {"text": TEXT},
                "action": {
                    "name": "cta_url",
                    "parameters": {"display_text": "Book online", "url": BOOKING},
                },
            },
            "biz_opaque_callback_data": TAG,
        },
    )


def test_build_send_button_body_at_limit_keeps_button() -> None:
    """A text of exactly 1024 characters still fits the button form."""
    text = "é" * 1024
    outbound = _send(Reply(text=text, booking_url=BOOKING))
    assert outbound.body["type"] == "interactive"
    assert outbound.body["interactive"]["body"] == {"text": text}


def test_build_send_text_over_button_limit_falls_back_to_plain() -> None:
    """A text over 1024 characters goes as plain text even with a booking URL."""
    text = "a" * 1025
    outbound = _send(Reply(text=text, booking_url=BOOKING))
    assert outbound.body == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": WA,
        "type": "text",
        "text": {"body": text, "preview_url": False},
        "biz_opaque_callback_data": TAG,
    }


def test_build_send_never_quotes_inbound_message() -> None:
    """No request carries ``context``: the inbound message id is not kept."""
    for reply in (Reply(text=TEXT), Reply(text=TEXT, booking_url=BOOKING)):
        assert "context" not in _send(reply).body


def test_build_send_without_token_raises() -> None:
    """A channel in dry-run has no token, so no request can be built."""
    with pytest.raises(ValueError, match="token"):
        ADAPTER.build_send(
            Reply(text=TEXT),
            config=_config(token=None),
            recipient_id=WA,
            contact_kind=ContactKind.PHONE,
            tag=TAG,
        )


def test_build_send_scoped_contact_raises() -> None:
    """A page-scoped id cannot be addressed on WhatsApp; the error names no id."""
    with pytest.raises(ValueError, match="contact kind") as raised:
        _send(Reply(text=TEXT), ContactKind.SCOPED, "6000000000000001")
    assert "6000000000000001" not in str(raised.value)


def test_parse_group_message_of_any_type_is_skipped() -> None:
    """A message in a group chat gets no private reply, whatever its type."""
    payload = fixture_json("whatsapp", "group_text")
    _message(payload)["type"] = "image"
    assert ADAPTER.parse(payload) == [_skipped(SkipKind.GROUP)]


def test_parse_sender_without_digits_falls_back_to_the_bsuid() -> None:
    """A ``from`` with no digit is no phone number: the sender's BSUID addresses them."""
    payload = fixture_json("whatsapp", "from_without_digits")
    _value(payload)["contacts"] = [{"user_id": BSUID}]
    [event] = ADAPTER.parse(payload)
    assert isinstance(event, PatientEvent)
    assert (event.contact_id, event.contact_kind) == (BSUID, ContactKind.BSUID)


@pytest.mark.parametrize("kind", ["button_reply", "list_reply", "product_list_reply"])
def test_parse_interactive_answers_from_patients_get_replies(kind: str) -> None:
    """Tapping a button or a list row is a patient writing; only known non-patient kinds skip."""
    payload = fixture_json("whatsapp", "interactive_call_permission_reply")
    _message(payload)["interactive"] = {"type": kind}
    [event] = ADAPTER.parse(payload)
    assert isinstance(event, PatientEvent)


def test_parse_failed_status_carries_its_first_error_code_and_class() -> None:
    """A failed status keeps Meta's first error code and its class, numbers only."""
    [event] = ADAPTER.parse(fixture_json("whatsapp", "status_failed_account_locked"))
    assert isinstance(event, StatusUpdate)
    assert (event.failed, event.error_code, event.error_class) == (True, 131031, ErrorClass.ALERT)


def test_parse_delivered_status_has_no_error() -> None:
    """A status without errors carries no code and no class."""
    [event] = ADAPTER.parse(fixture_json("whatsapp", "status_sent"))
    assert isinstance(event, StatusUpdate)
    assert (event.failed, event.error_code, event.error_class) == (False, None, None)


# -- one person under two ids ---------------------------------------------------------

PHONE_AND_BSUID = Link(WA, ContactKind.PHONE, BSUID, ContactKind.BSUID)

# The recorded payloads that say two ids are one person; every other one says nothing.
LINKS: dict[str, list[Link]] = {
    "text_phone_and_bsuid": [PHONE_AND_BSUID],
    "status_delivered_contacts": [PHONE_AND_BSUID],
    "smb_message_echoes_bsuid": [PHONE_AND_BSUID],
    "system_user_changed_user_id": [Link(BSUID, ContactKind.BSUID, NEW_BSUID, ContactKind.BSUID)],
}


@pytest.mark.parametrize(
    "case", [case for channel, case in all_fixtures() if channel == "whatsapp"]
)
def test_parse_links_exactly_the_ids_a_payload_gives_together(case: str) -> None:
    """Each recorded payload yields the links the table names, and no other."""
    events = ADAPTER.parse(fixture_json("whatsapp", case))
    assert [event.link for event in events if event.link is not None] == LINKS.get(case, [])


def test_parse_id_change_without_previous_user_id_reads_from_user_id() -> None:
    """An older ``user_changed_user_id`` names the old BSUID only as ``from_user_id``."""
    payload = fixture_json("whatsapp", "system_user_changed_user_id")
    message = _message(payload)
    del message["system"]["previous_user_id"]
    message["from_user_id"] = BSUID
    [event] = ADAPTER.parse(payload)
    assert isinstance(event, Skipped)
    assert event.kind == SkipKind.SYSTEM
    assert event.link == Link(BSUID, ContactKind.BSUID, NEW_BSUID, ContactKind.BSUID)


def test_parse_number_change_links_the_old_and_new_bsuid() -> None:
    """A changed number also regenerates the BSUID: the two BSUIDs are one person."""
    payload = fixture_json("whatsapp", "system")
    _message(payload)["system"].update(previous_user_id=BSUID, user_id=NEW_BSUID)
    [event] = ADAPTER.parse(payload)
    assert event.link == Link(BSUID, ContactKind.BSUID, NEW_BSUID, ContactKind.BSUID)


def test_parse_status_of_a_group_message_links_nobody() -> None:
    """A status with ``recipient_type: group`` names a group, never a person's ids."""
    payload = fixture_json("whatsapp", "status_delivered_contacts")
    status = _value(payload)["statuses"][0]
    status.update(recipient_type="group", recipient_id="120363012345678901")
    [event] = ADAPTER.parse(payload)
    assert isinstance(event, StatusUpdate)
    assert event.link is None


def test_parse_batched_contacts_link_nobody() -> None:
    """A value listing several contacts cannot say whose BSUID goes with which phone."""
    payload = fixture_json("whatsapp", "text_phone_and_bsuid")
    del _message(payload)["from_user_id"]
    _value(payload)["contacts"].append({"wa_id": "447700900999", "user_id": NEW_BSUID})
    [event] = ADAPTER.parse(payload)
    assert isinstance(event, PatientEvent)
    assert event.link is None


def test_link_hides_raw_ids_from_repr() -> None:
    """A link's ids are raw phone numbers and BSUIDs: never shown by ``repr``."""
    assert WA not in repr(PHONE_AND_BSUID)
    assert BSUID not in repr(PHONE_AND_BSUID)
