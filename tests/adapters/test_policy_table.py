"""The reply policy at parse level, as one table over every recorded payload (SPEC §4).

Each fixture maps to the events its payload must yield, as ``(event type, kind, contact)``:
a ``PatientEvent`` is a reply candidate for that contact; every other row is acknowledged
and never answered. A new fixture fails ``test_policy_table_covers_every_fixture`` until
it is classified here.
"""

from __future__ import annotations

import pytest

from adapters import REGISTRY
from bot.events import Channel, Echo, Event, PatientEvent, Skipped, StatusUpdate
from tests.helpers.fixtures import all_fixtures, fixture_json

Row = tuple[type, str, str | None]

WA = "447700900123"
WA2 = "447700900124"
VECTOR_WA = "15551230001"
BSUID = "GB.13491208655302741918"
PSID, PSID2, PSID3 = "6000000000000001", "6000000000000002", "6000000000000003"
IGSID, IGSID3 = "7000000000000001", "7000000000000003"

MESSAGE, WELCOME, POSTBACK = "message", "welcome", "postback"

POLICY: dict[tuple[str, str], list[Row]] = {
    # WhatsApp: messages[] of content types are replied to; everything else is not.
    ("whatsapp", "text"): [(PatientEvent, MESSAGE, WA)],
    ("whatsapp", "text_referral"): [(PatientEvent, MESSAGE, WA)],
    ("whatsapp", "image"): [(PatientEvent, MESSAGE, WA)],
    ("whatsapp", "image_nonascii_raw"): [(PatientEvent, MESSAGE, VECTOR_WA)],
    ("whatsapp", "audio_voice"): [(PatientEvent, MESSAGE, WA)],
    ("whatsapp", "video"): [(PatientEvent, MESSAGE, WA)],
    ("whatsapp", "document"): [(PatientEvent, MESSAGE, WA)],
    ("whatsapp", "sticker"): [(PatientEvent, MESSAGE, WA)],
    ("whatsapp", "location"): [(PatientEvent, MESSAGE, WA)],
    ("whatsapp", "contacts"): [(PatientEvent, MESSAGE, WA)],
    ("whatsapp", "interactive_button_reply"): [(PatientEvent, MESSAGE, WA)],
    ("whatsapp", "interactive_list_reply"): [(PatientEvent, MESSAGE, WA)],
    ("whatsapp", "button"): [(PatientEvent, MESSAGE, WA)],
    ("whatsapp", "order"): [(PatientEvent, MESSAGE, WA)],
    ("whatsapp", "unsupported"): [(PatientEvent, MESSAGE, WA)],
    ("whatsapp", "unknown_131051"): [(PatientEvent, MESSAGE, WA)],
    ("whatsapp", "request_welcome"): [(PatientEvent, WELCOME, WA)],
    ("whatsapp", "bsuid_user"): [(PatientEvent, MESSAGE, BSUID)],
    ("whatsapp", "text_phone_and_bsuid"): [(PatientEvent, MESSAGE, WA)],
    ("whatsapp", "unsupported_edit"): [(Skipped, "unsupported_edit", None)],
    ("whatsapp", "reaction"): [(Skipped, "reaction", None)],
    ("whatsapp", "system"): [(Skipped, "system", None)],
    ("whatsapp", "system_user_changed_user_id"): [(Skipped, "system", None)],
    ("whatsapp", "edit"): [(Skipped, "edit", None)],
    ("whatsapp", "revoke"): [(Skipped, "deleted", None)],
    ("whatsapp", "group_text"): [(Skipped, "group", None)],
    ("whatsapp", "interactive_call_permission_reply"): [(Skipped, "call_permission", None)],
    ("whatsapp", "interactive_nfm_reply"): [(Skipped, "flow_reply", None)],
    ("whatsapp", "from_without_digits"): [(Skipped, "bad_id", None)],
    ("whatsapp", "standby_text"): [(Skipped, "standby", None)],
    ("whatsapp", "messaging_handovers"): [(Skipped, "handover", None)],
    ("whatsapp", "errors"): [(Skipped, "errors", None)],
    ("whatsapp", "unknown_field"): [(Skipped, "unknown", None)],
    ("whatsapp", "status_sent"): [(StatusUpdate, "sent", None)],
    ("whatsapp", "status_failed"): [(StatusUpdate, "failed", None)],
    ("whatsapp", "status_failed_account_locked"): [(StatusUpdate, "failed", None)],
    ("whatsapp", "status_delivered_contacts"): [(StatusUpdate, "delivered", None)],
    ("whatsapp", "smb_message_echoes"): [(Echo, "smb_echo", WA)],
    ("whatsapp", "smb_message_echoes_bsuid"): [(Echo, "smb_echo", WA)],
    ("whatsapp", "batch"): [
        (PatientEvent, MESSAGE, WA),
        (StatusUpdate, "delivered", None),
        (PatientEvent, MESSAGE, WA2),
        (PatientEvent, MESSAGE, BSUID),
        (Skipped, "reaction", None),
    ],
    # Messenger: a message or a postback from a patient; never echoes, receipts or standby.
    ("messenger", "text"): [(PatientEvent, MESSAGE, PSID)],
    ("messenger", "attachment_image"): [(PatientEvent, MESSAGE, PSID)],
    ("messenger", "sticker"): [(PatientEvent, MESSAGE, PSID)],
    ("messenger", "quick_reply"): [(PatientEvent, MESSAGE, PSID)],
    ("messenger", "postback"): [(PatientEvent, POSTBACK, PSID)],
    ("messenger", "echo_bot"): [(Echo, "echo", PSID)],
    ("messenger", "echo_page_inbox"): [(Echo, "echo", PSID)],
    ("messenger", "echo_other_app"): [(Echo, "echo", PSID)],
    ("messenger", "delivery"): [(Skipped, "delivery", None)],
    ("messenger", "read"): [(Skipped, "read", None)],
    ("messenger", "reaction"): [(Skipped, "reaction", None)],
    ("messenger", "edit"): [(Skipped, "edit", None)],
    ("messenger", "referral"): [(Skipped, "referral", None)],
    ("messenger", "handover"): [(Skipped, "handover", None), (Skipped, "handover", None)],
    ("messenger", "optin"): [(Skipped, "optin", None)],
    ("messenger", "policy_enforcement"): [(Skipped, "policy", None)],
    ("messenger", "policy_enforcement_hyphen"): [(Skipped, "policy", None)],
    ("messenger", "standby"): [(Skipped, "standby", None)],
    ("messenger", "self_sender"): [(Skipped, "self", None)],
    ("messenger", "batch"): [
        (PatientEvent, MESSAGE, PSID),
        (Skipped, "delivery", None),
        (PatientEvent, POSTBACK, PSID2),
        (Echo, "echo", PSID3),
        (Skipped, "standby", None),
    ],
    # Instagram: as Messenger, plus story replies, ad referrals and unsupported messages;
    # never story mentions, deletions, is_self or comments.
    ("instagram", "text"): [(PatientEvent, MESSAGE, IGSID)],
    ("instagram", "image"): [(PatientEvent, MESSAGE, IGSID)],
    ("instagram", "story_reply"): [(PatientEvent, MESSAGE, IGSID)],
    ("instagram", "ad_referral_message"): [(PatientEvent, MESSAGE, IGSID)],
    ("instagram", "share_ig_post"): [(PatientEvent, MESSAGE, IGSID)],
    ("instagram", "unsupported"): [(PatientEvent, MESSAGE, IGSID)],
    ("instagram", "postback"): [(PatientEvent, POSTBACK, IGSID)],
    ("instagram", "story_mention"): [(Skipped, "story_mention", None)],
    ("instagram", "deleted"): [(Skipped, "deleted", None)],
    ("instagram", "is_self"): [(Skipped, "self", None)],
    ("instagram", "echo"): [(Echo, "echo", IGSID)],
    ("instagram", "reaction"): [(Skipped, "reaction", None)],
    ("instagram", "seen"): [(Skipped, "read", None)],
    ("instagram", "edit"): [(Skipped, "edit", None)],
    ("instagram", "referral"): [(Skipped, "referral", None)],
    ("instagram", "standby"): [(Skipped, "standby", None)],
    ("instagram", "comments_change"): [(Skipped, "comment", None)],
    ("instagram", "batch"): [
        (PatientEvent, MESSAGE, IGSID),
        (Skipped, "read", None),
        (Skipped, "story_mention", None),
        (PatientEvent, POSTBACK, IGSID3),
        (Echo, "echo", IGSID3),
        (Skipped, "standby", None),
    ],
}


def _row(event: Event) -> Row:
    """An event reduced to its table row."""
    if isinstance(event, PatientEvent):
        return (PatientEvent, event.kind.value, event.contact_id)
    if isinstance(event, Echo):
        return (Echo, "smb_echo" if event.smb else "echo", event.contact_id)
    if isinstance(event, StatusUpdate):
        return (StatusUpdate, event.status, None)
    return (Skipped, str(event.kind), None)


def test_policy_table_covers_every_fixture() -> None:
    """Every fixture file is classified in the table, and the table names no missing file."""
    files = set(all_fixtures())
    assert sorted(files - POLICY.keys()) == [], "fixtures not classified in POLICY"
    assert sorted(POLICY.keys() - files) == [], "POLICY rows without a fixture file"


@pytest.mark.parametrize(
    ("channel", "case"),
    sorted(POLICY),
    ids=[f"{channel}/{case}" for channel, case in sorted(POLICY)],
)
def test_policy_table_matches_parse(channel: str, case: str) -> None:
    """Parsing the fixture yields exactly the table's events, in payload order."""
    events = REGISTRY.adapters[Channel(channel)].parse(fixture_json(channel, case))
    assert [_row(event) for event in events] == POLICY[(channel, case)]
