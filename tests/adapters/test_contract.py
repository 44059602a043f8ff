"""The contract every adapter keeps, run over every fixture and over garbage (SPEC §4, §6).

``parse`` receives whatever JSON object a signed body decoded to: it must never raise, must
account for every item, and must never let content (the fixtures' ``CANARY-`` strings) out.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters import REGISTRY
from adapters._meta.adapter import BUTTON_TITLE_LIMIT
from adapters._meta.wire import SkipKind
from bot.adapter import Adapter
from bot.events import Channel, Echo, Event, PatientEvent, Skipped, StatusUpdate
from bot.replies import Reply
from tests.helpers.fixtures import all_fixtures, fixture_json

PRACTICE_IDS = {
    Channel.WHATSAPP: "109876543210987",
    Channel.MESSENGER: "200000000000001",
    Channel.INSTAGRAM: "17841400000000001",
}
ADAPTERS = [REGISTRY.adapters[channel] for channel in Channel]
FIXTURES = all_fixtures()
FIXTURE_IDS = [f"{channel}/{case}" for channel, case in FIXTURES]
EVENT_TYPES = (PatientEvent, Echo, StatusUpdate, Skipped)


def _parse(channel: str, case: str) -> list[Event]:
    """Parse one fixture with its channel's adapter."""
    return REGISTRY.adapters[Channel(channel)].parse(fixture_json(channel, case))


def _field_values(event: Event) -> list[Any]:
    """Every field of an event, including those hidden from ``repr``."""
    return [getattr(event, field.name) for field in dataclasses.fields(event)]


def _adapter_id(adapter: Adapter) -> str:
    """A test id for an adapter."""
    return str(adapter.channel)


@pytest.mark.parametrize(("channel", "case"), FIXTURES, ids=FIXTURE_IDS)
def test_parse_fixture_repr_has_no_canary(channel: str, case: str) -> None:
    """No event of any fixture shows content in its repr."""
    events = _parse(channel, case)
    assert events, "every fixture yields at least one event"
    assert all("CANARY" not in repr(event) for event in events)


@pytest.mark.parametrize(("channel", "case"), FIXTURES, ids=FIXTURE_IDS)
def test_parse_fixture_fields_hold_no_canary(channel: str, case: str) -> None:
    """No field of any event, hidden or not, holds content from the payload."""
    for event in _parse(channel, case):
        assert all("CANARY" not in str(value) for value in _field_values(event))


@pytest.mark.parametrize(("channel", "case"), FIXTURES, ids=FIXTURE_IDS)
def test_parse_fixture_events_belong_to_channel_and_practice(channel: str, case: str) -> None:
    """Every event carries its adapter's channel and, when known, the practice's own id."""
    practice = PRACTICE_IDS[Channel(channel)]
    for event in _parse(channel, case):
        assert event.channel is Channel(channel)
        assert event.account_id in (practice, None)


@pytest.mark.parametrize(("channel", "case"), FIXTURES, ids=FIXTURE_IDS)
def test_parse_fixture_skip_kinds_come_from_vocabulary(channel: str, case: str) -> None:
    """Every skipped kind is a member of the fixed vocabulary, never a payload string."""
    for event in _parse(channel, case):
        if isinstance(event, Skipped):
            assert isinstance(event.kind, SkipKind)


@pytest.mark.parametrize(("channel", "case"), FIXTURES, ids=FIXTURE_IDS)
def test_parse_fixture_timestamps_are_seconds(channel: str, case: str) -> None:
    """Timestamps are float Unix seconds, whatever unit the channel sends."""
    for event in _parse(channel, case):
        timestamp = getattr(event, "timestamp", 1767261600.0)
        assert isinstance(timestamp, float)
        assert timestamp == 1767261600.0


@pytest.mark.parametrize("adapter", ADAPTERS, ids=_adapter_id)
def test_registry_routes_object_to_adapter(adapter: Adapter) -> None:
    """Each adapter is registered under its channel and its payload ``object``."""
    assert REGISTRY.adapters[adapter.channel] is adapter
    assert REGISTRY.for_object(adapter.object_name) is adapter


def test_registry_unknown_object_has_no_adapter() -> None:
    """A payload ``object`` no adapter owns is routed nowhere."""
    assert REGISTRY.for_object("user") is None


BOOKING = "https://example.org/b"
BUTTON_CASES = [
    (Channel.WHATSAPP, 1024, True),
    (Channel.WHATSAPP, 1025, False),
    (Channel.MESSENGER, 640, True),
    (Channel.MESSENGER, 641, False),
    (Channel.INSTAGRAM, 10, False),
]


@pytest.mark.parametrize(("channel", "length", "expected"), BUTTON_CASES)
def test_buttons_only_when_the_text_fits_the_button_form(
    channel: Channel, length: int, expected: bool
) -> None:
    """Buttons only with a booking URL and a text that fits the channel's button form."""
    reply = Reply(text="x" * length, booking_url=BOOKING, phone="+441234")
    assert bool(REGISTRY.adapters[channel].buttons(reply)) is expected


@pytest.mark.parametrize("adapter", ADAPTERS, ids=_adapter_id)
def test_buttons_need_a_booking_url(adapter: Adapter) -> None:
    """No booking URL, no buttons, even for a short text."""
    assert adapter.buttons(Reply(text="Hi", phone="+441234")) == ()


@pytest.mark.parametrize("adapter", ADAPTERS, ids=_adapter_id)
def test_button_titles_fit_meta_limit(adapter: Adapter) -> None:
    """Every button title is within Meta's 20-character title limit."""
    reply = Reply(text="Hi", booking_url=BOOKING, phone="+44 20 7946 0000")
    assert all(len(button.title) <= BUTTON_TITLE_LIMIT for button in adapter.buttons(reply))


@pytest.mark.parametrize("adapter", ADAPTERS, ids=_adapter_id)
def test_button_form_limit_is_below_text_limit(adapter: Adapter) -> None:
    """A text that fits the button form always fits the channel's plain-text limit too."""
    if adapter.button_text_limit is not None:
        assert adapter.button_text_limit <= adapter.text_limit.limit


GARBAGE: list[Any] = [
    {},
    [],
    None,
    "entry",
    7,
    {"object": "page"},
    {"entry": None},
    {"entry": "entry"},
    {"entry": {"id": "1"}},
    {"entry": 5},
    {"entry": [None, 1, 1.5, True, "x", [], [[]], {}]},
    {"entry": [{"id": []}, {"id": {"id": "1"}}, {"id": None, "time": "now"}]},
    {"entry": [{"id": "200000000000001", "messaging": "x", "standby": 3, "changes": {}}]},
    {"entry": [{"id": "1", "messaging": [None, "message", 4, [], {}, {"message": None}]}]},
    {"entry": [{"id": "1", "messaging": [{"message": "hi"}, {"message": []}, {"postback": 1}]}]},
    {
        "entry": [
            {
                "id": "1",
                "messaging": [
                    {"sender": "6000", "recipient": 5, "timestamp": "x", "message": {}},
                    {"sender": {"id": 6}, "timestamp": True, "message": {"mid": 5}},
                    {"sender": {"id": ""}, "timestamp": -5, "postback": {}},
                    {"sender": {"id": "6"}, "timestamp": 10**400, "message": {"text": 1}},
                    {"sender": {"id": "6"}, "timestamp": math.inf, "message": {}},
                    {"sender": {"id": "6"}, "timestamp": math.nan, "postback": {"mid": []}},
                    {"recipient": {"id": None}, "timestamp": 1, "message": {"is_echo": True}},
                    {
                        "recipient": {"id": "6"},
                        "timestamp": 1,
                        "message": {"is_echo": True, "app_id": 10**400, "metadata": {}},
                    },
                    {"sender": {"id": "6"}, "timestamp": 1, "message": {"attachments": "x"}},
                    {"sender": {"id": "6"}, "timestamp": 1, "message": {"attachments": [5]}},
                    {"sender": {"id": "x" * 10_000}, "timestamp": 1, "message": {}},
                ],
            }
        ]
    },
    {"entry": [{"changes": None}, {"changes": "x"}, {"changes": [None, 5, "x", [], {}]}]},
    {"entry": [{"changes": [{"field": 5, "value": []}, {"field": ["messages"], "value": {}}]}]},
    {
        "entry": [
            {
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "metadata": [],
                            "contacts": 5,
                            "messages": [5, "x", None, {}, {"type": 5}, {"type": {}}],
                            "statuses": "x",
                            "errors": {},
                        },
                    },
                    {
                        "field": "messages",
                        "value": {
                            "metadata": {"phone_number_id": 109876543210987},
                            "contacts": [None, 5, {"wa_id": 5}],
                            "messages": [
                                {"type": "text", "from": 5, "timestamp": []},
                                {"type": "text", "from": "4477", "timestamp": "9" * 5000},
                                {"type": "text", "from": "4477", "timestamp": "\uff11\uff12\uff13"},
                                {"type": "text", "from": "4477", "timestamp": "12\n"},
                                {"type": "text", "from": "4477", "timestamp": 10**400},
                                {"type": "unsupported", "unsupported": "edit"},
                                {"type": "unsupported", "unsupported": {"type": []}},
                            ],
                            "statuses": [None, {"status": []}, {"status": "sent"}],
                        },
                    },
                    {"field": "smb_message_echoes", "value": {"message_echoes": [None, {}]}},
                    {"field": "smb_message_echoes", "value": {"message_echoes": "x"}},
                ]
            }
        ]
    },
]


@pytest.mark.parametrize("adapter", ADAPTERS, ids=_adapter_id)
@pytest.mark.parametrize("payload", GARBAGE, ids=[f"garbage{n}" for n in range(len(GARBAGE))])
def test_parse_garbage_never_raises(adapter: Adapter, payload: Any) -> None:
    """Wrong types, missing keys and absurd values anywhere yield events, not exceptions."""
    events = adapter.parse(payload)
    assert isinstance(events, list)
    assert all(isinstance(event, EVENT_TYPES) for event in events)


@pytest.mark.parametrize("adapter", ADAPTERS, ids=_adapter_id)
def test_parse_non_object_payload_is_malformed(adapter: Adapter) -> None:
    """A payload without an ``entry`` list is one malformed skip."""
    assert adapter.parse({"object": adapter.object_name}) == [
        Skipped(channel=adapter.channel, kind=SkipKind.MALFORMED)
    ]


def _messages_of(payload: dict[str, Any]) -> list[Any]:
    """The one list of inbound items in a single-message fixture."""
    entry = payload["entry"][0]
    if "changes" in entry:
        items: list[Any] = entry["changes"][0]["value"]["messages"]
        return items
    messaging: list[Any] = entry["messaging"]
    return messaging


@pytest.mark.parametrize("channel", list(Channel), ids=str)
def test_parse_thousand_item_batch_yields_every_item(channel: Channel) -> None:
    """A batch of 1000 messages in one entry yields 1000 patient events."""
    payload = fixture_json(channel, "text")
    items = _messages_of(payload)
    items[:] = [copy.deepcopy(items[0]) for _ in range(1000)]
    events = REGISTRY.adapters[channel].parse(payload)
    assert len(events) == 1000
    assert all(isinstance(event, PatientEvent) for event in events)


@pytest.mark.parametrize("channel", list(Channel), ids=str)
def test_parse_thousand_entries_yield_every_entry(channel: Channel) -> None:
    """A batch of 1000 entries, each with one message, yields 1000 patient events."""
    payload = fixture_json(channel, "text")
    payload["entry"] = [copy.deepcopy(payload["entry"][0]) for _ in range(1000)]
    events = REGISTRY.adapters[channel].parse(payload)
    assert len(events) == 1000
    assert all(isinstance(event, PatientEvent) for event in events)


_META_KEYS = (
    "entry",
    "id",
    "changes",
    "field",
    "value",
    "messages",
    "statuses",
    "type",
    "from",
    "timestamp",
    "messaging",
    "standby",
    "message",
    "sender",
    "postback",
    "is_echo",
    "metadata",
    "phone_number_id",
)
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from(["", "text", "message", "is_echo", "1767261600", "200000000000001"])
)
_JSON = st.recursive(
    _SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(_META_KEYS), children, max_size=5)
    ),
    max_leaves=25,
)


@settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(payload=_JSON)
def test_parse_random_json_never_raises(payload: Any) -> None:
    """Random JSON built from Meta's own key names never makes any adapter raise."""
    for adapter in ADAPTERS:
        events = adapter.parse(payload)
        assert all(isinstance(event, EVENT_TYPES) for event in events)


def _replace_at(node: Any, path: list[int], replacement: Any) -> Any:
    """``node`` with the sub-value chosen by ``path`` (indices into children) replaced."""
    children: list[tuple[Any, Any]]
    if isinstance(node, Mapping):
        children = list(node.items())
    elif isinstance(node, list):
        children = list(enumerate(node))
    else:
        children = []
    if not path or not children:
        return replacement
    key, child = children[path[0] % len(children)]
    new_child = _replace_at(child, path[1:], replacement)
    if isinstance(node, list):
        return [new_child if index == key else item for index, item in enumerate(node)]
    return {k: (new_child if k == key else v) for k, v in node.items()}


@settings(
    max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    fixture=st.sampled_from(FIXTURES),
    path=st.lists(st.integers(min_value=0, max_value=50), max_size=12),
    replacement=_JSON,
)
def test_parse_mutated_fixture_never_raises(
    fixture: tuple[str, str], path: list[int], replacement: Any
) -> None:
    """A recorded payload with any one value swapped for random JSON never raises."""
    channel, case = fixture
    payload = _replace_at(fixture_json(channel, case), path, replacement)
    events = REGISTRY.adapters[Channel(channel)].parse(payload)
    assert all("CANARY" not in str(value) for event in events for value in _field_values(event))


@pytest.mark.parametrize(("channel", "emoji"), [(Channel.WHATSAPP, 512), (Channel.MESSENGER, 320)])
def test_buttons_count_an_emoji_as_two_characters(channel: Channel, emoji: int) -> None:
    """An emoji is two of Meta's characters: exactly the button form's limit, then one over."""
    adapter = REGISTRY.adapters[channel]
    fits = Reply(text="\U0001f600" * emoji, booking_url=BOOKING, phone="+441234")
    over = Reply(text=fits.text + "x", booking_url=BOOKING, phone="+441234")
    assert adapter.buttons(fits)
    assert not adapter.buttons(over)
