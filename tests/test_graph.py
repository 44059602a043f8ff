"""The Graph transport, Meta's error classification, and the fake Graph API used in tests."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import aiohttp
import pytest

from adapters._meta.errors import (
    TABLE,
    classify,
    parse_error_body,
    retry_after_seconds,
    rule_for,
    usage_from_headers,
)
from adapters._meta.graph import GraphTransport
from bot.adapter import Outbound, SendResult, Usage
from bot.errors import DeliveryError, ErrorClass, GraphError
from tests.helpers.fake_graph import Action, FakeGraph, RecordedRequest
from tests.helpers.sends import PHONE_ID, TOKEN, WA_BODY, closed_port, wa_send

T = ErrorClass.TRANSIENT
R = ErrorClass.RATE_LIMITED
P = ErrorClass.PERMANENT
A = ErrorClass.ALERT

MESSENGER_BODY: dict[str, Any] = {
    "recipient": {"id": "6789012345678901"},
    "messaging_type": "RESPONSE",
    "message": {"text": "Automatic reply", "metadata": "job-7f3a"},
}


@pytest.fixture
def transport(session: aiohttp.ClientSession) -> GraphTransport:
    """A transport on the shared session."""
    return GraphTransport(session)


# -- classification ------------------------------------------------------------------------

ROW_CASES = [
    pytest.param(code, subcode, rule.error_class, id=f"{code}/{subcode}")
    for (code, subcode), rule in TABLE.items()
]


@pytest.mark.parametrize(("code", "subcode", "expected"), ROW_CASES)
def test_classify_every_table_row(
    code: int | None, subcode: int | None, expected: ErrorClass
) -> None:
    """Each row decides its own (code, subcode), whatever the HTTP status says."""
    lookup_code = 987654 if code is None else code  # a subcode row rules with any code
    assert classify(400, lookup_code, subcode) is expected
    assert classify(503, lookup_code, subcode) is expected


@pytest.mark.parametrize(
    ("code", "subcode", "expected"),
    [
        (10, 2018278, P),
        (10, 2534022, P),
        (10, 2018065, P),
        (10, 2018108, P),
        (1, 1357046, P),
        (1, 99, A),
        (100, 2534029, A),
        (10, None, A),
        (10, 1357, A),
        (190, None, A),
        (190, 463, A),
        (200, None, A),
        (230, None, A),
        (299, None, A),
        (0, None, A),
        (368, None, A),
        (130497, None, A),
        (131031, None, A),
        (131042, None, A),
        (131045, None, A),
        (131037, None, A),
        (131026, None, P),
        (131047, None, P),
        (131049, None, P),
        (131050, None, P),
        (130403, None, P),
        (551, 1545041, P),
        (100, None, P),
        (100, 2018001, P),
        (100, 2534014, P),
        (33, None, P),
        (131008, None, P),
        (131009, None, P),
        (131021, None, P),
        (1, None, T),
        (2, None, T),
        (131000, None, T),
        (131016, None, T),
        (1200, None, T),
        (131057, None, T),
        (4, None, R),
        (4, 1234567, R),
        (4, 2018354, P),
        (80007, None, R),
        (130429, None, R),
        (131056, None, R),
        (613, None, R),
    ],
)
def test_classify_matches_the_spec_list(
    code: int, subcode: int | None, expected: ErrorClass
) -> None:
    """The classes the brief and SPEC §5 name for Meta's codes."""
    assert classify(400, code, subcode) is expected


@pytest.mark.parametrize(
    ("status", "expected"),
    [(429, R), (500, T), (502, T), (503, T), (504, T), (400, P), (401, P), (403, P), (404, P)],
)
def test_classify_without_code_uses_http_status(status: int, expected: ErrorClass) -> None:
    """With no Graph code, 429 is rate-limited, 5xx transient, other 4xx permanent."""
    assert classify(status, None, None) is expected


@pytest.mark.parametrize(("status", "expected"), [(429, R), (503, T), (400, P)])
def test_classify_unknown_code_uses_http_status(status: int, expected: ErrorClass) -> None:
    """A code missing from the table falls back to the status, as if there were none."""
    assert classify(status, 999_999, 424_242) is expected


def test_rule_sent_but_error_is_never_resent() -> None:
    """1/1357046 ("sent successfully, but the endpoint returns an error") means it was sent."""
    rule = rule_for(400, 1, 1357046)
    assert (rule.error_class, rule.sent) == (P, True)


def test_rule_code_2_is_retried_for_an_hour_only() -> None:
    """Code 2 is transient, but also what a blocked business gets: retried for one hour."""
    rule = rule_for(500, 2, None)
    assert (rule.error_class, rule.retry_for) == (T, 3600.0)


def test_classify_table_rows_all_give_a_reason() -> None:
    """Every row documents why it has its class."""
    assert all(rule.reason.strip() for rule in TABLE.values())


# -- error bodies ----------------------------------------------------------------------------


def test_parse_error_body_reads_code_and_subcode() -> None:
    """Meta's error body yields its code and subcode."""
    raw = (
        b'{"error":{"message":"(#10) This message is sent outside of allowed window.",'
        b'"type":"OAuthException","code":10,"error_subcode":2018278,"fbtrace_id":"AbC"}}'
    )
    assert parse_error_body(raw) == (10, 2018278)


def test_parse_error_body_code_without_subcode() -> None:
    """A WhatsApp body without a subcode gives None for it."""
    raw = (
        b'{"error":{"message":"(#130429) Rate limit hit","type":"OAuthException",'
        b'"code":130429,"error_data":{"messaging_product":"whatsapp","details":"x"}}}'
    )
    assert parse_error_body(raw) == (130429, None)


def test_parse_error_body_accepts_numeric_strings() -> None:
    """A code sent as a decimal string is still read."""
    assert parse_error_body(b'{"error":{"code":"613","error_subcode":"7"}}') == (613, 7)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"<html>502 Bad Gateway</html>",
        b"\xff\xfe\x00garbage",
        b"null",
        b"[1, 2]",
        b'"error"',
        b'{"error": "broken"}',
        b'{"error": null}',
        b'{"err": {"code": 4}}',
        b'{"error": {"code": true}}',
        b'{"error": {"code": 4.5}}',
        b'{"error": {"code": -3}}',
        b'{"error": {"code": "4 "}}',
        b'{"error": {"code": "\xd9\xa4"}}',
        b'{"error": {"code": 99999999999999999999}}',
        b'{"error": {"code": NaN}}',
        b'{"error": {"code": ' + b"9" * 5000 + b"}}",
        b"[" * 100_000 + b"]" * 100_000,
    ],
)
def test_parse_error_body_garbage_gives_nothing(raw: bytes) -> None:
    """Anything that is not a well-formed Graph error yields no code at all."""
    assert parse_error_body(raw) == (None, None)


def test_parse_error_body_keeps_subcode_when_code_is_garbage() -> None:
    """Fields are read independently: a bad code does not lose a good subcode."""
    assert parse_error_body(b'{"error":{"code":"x","error_subcode":2534022}}') == (None, 2534022)


# -- Retry-After -----------------------------------------------------------------------------

NOW = datetime(2026, 3, 2, 12, 0, 0, tzinfo=UTC)


def test_retry_after_seconds_reads_delta_seconds() -> None:
    """``Retry-After: 7`` is seven seconds."""
    assert retry_after_seconds({"Retry-After": "7"}) == 7.0


def test_retry_after_seconds_is_case_insensitive() -> None:
    """A plain dict with a lower-case header name still works."""
    assert retry_after_seconds({"retry-after": " 3 "}) == 3.0


def test_retry_after_seconds_reads_http_date() -> None:
    """An HTTP date 30 s ahead of now is 30 seconds."""
    header = format_datetime(NOW + timedelta(seconds=30), usegmt=True)
    assert retry_after_seconds({"Retry-After": header}, now=NOW) == 30.0


def test_retry_after_seconds_past_date_is_zero() -> None:
    """A date already gone asks for no wait."""
    header = format_datetime(NOW - timedelta(minutes=5), usegmt=True)
    assert retry_after_seconds({"Retry-After": header}, now=NOW) == 0.0


def test_retry_after_seconds_is_capped() -> None:
    """An absurd request is cut to the cap."""
    assert retry_after_seconds({"Retry-After": "99999999999"}, cap=60.0) == 60.0


@pytest.mark.parametrize("value", ["", "soon", "-5", "1.5", "Mon, 99 Foo 2026", "9" * 100])
def test_retry_after_seconds_garbage_is_none(value: str) -> None:
    """Unreadable values are ignored."""
    assert retry_after_seconds({"Retry-After": value}, now=NOW) is None


def test_retry_after_seconds_absent_is_none() -> None:
    """No header, no wait."""
    assert retry_after_seconds({"Content-Type": "application/json"}) is None


# -- the transport against the fake: one attempt each -------------------------------------


async def test_post_whatsapp_returns_wamid(graph: FakeGraph, transport: GraphTransport) -> None:
    """A WhatsApp send returns the wamid of Meta's answer."""
    result = await transport.post(wa_send(graph))
    assert result.message_id is not None
    assert result.message_id.startswith("wamid.")


async def test_post_messenger_returns_message_id(
    graph: FakeGraph, transport: GraphTransport
) -> None:
    """A Messenger / Instagram send returns Meta's ``message_id``."""
    outbound = Outbound(url=graph.messages_url("me"), token=TOKEN, body=MESSENGER_BODY)
    result = await transport.post(outbound)
    assert result.message_id is not None
    assert result.message_id.startswith("m_")


async def test_post_sends_bearer_token_and_exact_json(
    graph: FakeGraph, transport: GraphTransport
) -> None:
    """The request carries the bearer token and exactly the adapter's JSON body."""
    await transport.post(wa_send(graph))
    [request] = graph.requests
    assert request.method == "POST"
    assert request.path == f"/v25.0/{PHONE_ID}/messages"
    assert request.authorization == f"Bearer {TOKEN}"
    assert request.content_type == "application/json"
    assert request.json == WA_BODY


async def test_post_two_sends_get_distinct_ids(graph: FakeGraph, transport: GraphTransport) -> None:
    """The fake hands out a new message id per send, like Meta."""
    first = await transport.post(wa_send(graph))
    second = await transport.post(wa_send(graph))
    assert first.message_id != second.message_id


async def test_post_success_without_json_has_no_id(
    graph: FakeGraph, transport: GraphTransport
) -> None:
    """A 2xx whose body is not JSON is still a success, without a message id."""
    graph.script(Action.ok(body=b"OK"))
    assert await transport.post(wa_send(graph)) == SendResult(None)


async def test_post_wrong_token_is_alert_190(graph: FakeGraph, transport: GraphTransport) -> None:
    """A wrong token gets Meta's 401 / code 190, classed alert."""
    with pytest.raises(GraphError) as caught:
        await transport.post(wa_send(graph, token="expired-token"))
    assert (caught.value.status, caught.value.code) == (401, 190)
    assert caught.value.error_class is A
    assert not caught.value.ambiguous


async def test_post_rate_limit_carries_retry_after(
    graph: FakeGraph, transport: GraphTransport
) -> None:
    """A 429 / 130429 answer is rate-limited and carries Meta's ``Retry-After``."""
    graph.script(Action.error(429, 130429, retry_after=3))
    with pytest.raises(GraphError) as caught:
        await transport.post(wa_send(graph))
    assert (caught.value.error_class, caught.value.retry_after) == (R, 3.0)


async def test_post_pair_rate_limit_carries_meta_minimum(
    graph: FakeGraph, transport: GraphTransport
) -> None:
    """131056 without ``Retry-After`` still asks for Meta's 6 s for the same user."""
    graph.script(Action.error(400, 131056))
    with pytest.raises(GraphError) as caught:
        await transport.post(wa_send(graph))
    assert caught.value.retry_after == 6.0


async def test_post_graph_error_keeps_no_message_text(
    graph: FakeGraph, transport: GraphTransport
) -> None:
    """Meta's message text and our token never reach the exception."""
    graph.script(Action.error(400, 100, message="Param to must be Jane Doe +447700900123"))
    with pytest.raises(GraphError) as caught:
        await transport.post(wa_send(graph))
    shown = f"{caught.value!s} {caught.value!r} {vars(caught.value)}"
    for secret in ("Jane", "447700900123", TOKEN, "Zoë"):
        assert secret not in shown


async def test_post_reset_after_write_is_ambiguous(
    graph: FakeGraph, transport: GraphTransport
) -> None:
    """A connection closed after the request was read is ambiguous."""
    graph.script(Action.reset())
    with pytest.raises(DeliveryError) as caught:
        await transport.post(wa_send(graph))
    assert caught.value.ambiguous
    assert caught.value.error_class is T
    assert not isinstance(caught.value, GraphError)
    assert len(graph.requests) == 1


@pytest.mark.parametrize(
    "client_timeout",
    [
        aiohttp.ClientTimeout(total=5, connect=1, sock_read=0.2),
        aiohttp.ClientTimeout(total=0.3, connect=0.2),
    ],
    ids=["sock_read", "total"],
)
async def test_post_hang_beyond_timeout_is_ambiguous(
    graph: FakeGraph, client_timeout: aiohttp.ClientTimeout
) -> None:
    """A read timeout after the request was written is ambiguous."""
    graph.script(Action.hang())
    async with GraphTransport.open(timeout=client_timeout) as transport:
        with pytest.raises(DeliveryError) as caught:
            await transport.post(wa_send(graph))
    assert caught.value.ambiguous
    assert len(graph.requests) == 1


async def test_post_connection_refused_is_transient_not_ambiguous(
    transport: GraphTransport,
) -> None:
    """Nothing listening: the request never left, so it is transient and not ambiguous."""
    url = f"http://127.0.0.1:{closed_port()}/v25.0/{PHONE_ID}/messages"
    with pytest.raises(DeliveryError) as caught:
        await transport.post(Outbound(url=url, token=TOKEN, body=WA_BODY))
    assert not caught.value.ambiguous
    assert caught.value.error_class is T


async def test_post_invalid_url_is_alert(transport: GraphTransport) -> None:
    """A malformed Graph URL is a configuration problem: alert, never ambiguous."""
    with pytest.raises(DeliveryError) as caught:
        await transport.post(Outbound(url="graph.invalid/messages", token=TOKEN, body=WA_BODY))
    assert caught.value.error_class is A
    assert not caught.value.ambiguous


async def test_post_request_that_cannot_be_encoded_is_permanent(
    graph: FakeGraph, transport: GraphTransport
) -> None:
    """An id that cannot be encoded can never be sent: permanent, and nothing is written."""
    body = {**WA_BODY, "to": "44770\ud800"}
    with pytest.raises(DeliveryError) as caught:
        await transport.post(Outbound(url=graph.messages_url(PHONE_ID), token=TOKEN, body=body))
    assert (caught.value.error_class, caught.value.ambiguous) == (P, False)
    assert graph.requests == []


async def test_transport_open_owns_its_session(graph: FakeGraph) -> None:
    """``open()`` makes a working transport whose ``close()`` closes its session."""
    async with GraphTransport.open() as transport:
        result = await transport.post(wa_send(graph))
    assert result.message_id is not None
    with pytest.raises(RuntimeError):
        await transport.post(wa_send(graph))


async def test_transport_close_leaves_callers_session_open(
    graph: FakeGraph, session: aiohttp.ClientSession
) -> None:
    """A session passed in belongs to the caller and stays open."""
    transport = GraphTransport(session)
    await transport.close()
    assert not session.closed
    await transport.post(wa_send(graph))


def test_send_result_repr_hides_message_id() -> None:
    """A wamid embeds the phone number, so ``repr`` never shows it."""
    assert "447700900123" not in repr(SendResult("wamid.HBgMNDQ3NzAwOTAwMTIzFQIAERgS"))
    assert "HBgM" not in repr(SendResult("wamid.HBgMNDQ3NzAwOTAwMTIzFQIAERgS"))


# -- the fake itself -----------------------------------------------------------------------


async def test_fake_graph_on_sent_sees_each_success(
    graph: FakeGraph, transport: GraphTransport
) -> None:
    """``on_sent`` receives the recorded request and the answer the client got."""
    seen: list[tuple[RecordedRequest, dict[str, Any]]] = []
    done = asyncio.Event()

    async def on_sent(request: RecordedRequest, answer: dict[str, Any]) -> None:
        seen.append((request, answer))
        done.set()

    graph.on_sent = on_sent
    result = await transport.post(wa_send(graph))
    await asyncio.wait_for(done.wait(), 2)
    [(request, answer)] = seen
    assert request.json["biz_opaque_callback_data"] == "job-7f3a"
    assert answer["messages"][0]["id"] == result.message_id
    assert answer["contacts"] == [{"input": "447700900123", "wa_id": "447700900123"}]


async def test_fake_graph_rejects_body_without_recipient(
    graph: FakeGraph, transport: GraphTransport
) -> None:
    """A send body Meta would refuse gets 400 / code 100 (permanent)."""
    with pytest.raises(GraphError) as caught:
        await transport.post(Outbound(url=graph.messages_url("me"), token=TOKEN, body={"x": 1}))
    assert (caught.value.status, caught.value.code, caught.value.error_class) == (400, 100, P)


async def test_fake_graph_rejects_missing_token(graph: FakeGraph) -> None:
    """No Authorization header at all is Meta's 401 with code 190."""
    async with (
        aiohttp.ClientSession() as plain,
        plain.post(graph.messages_url(PHONE_ID), json=WA_BODY) as response,
    ):
        body = await response.json()
    assert response.status == 401
    assert body["error"]["code"] == 190
    assert body["error"]["type"] == "OAuthException"


async def test_fake_graph_delay_holds_the_answer(
    graph: FakeGraph, transport: GraphTransport
) -> None:
    """``Action.ok(delay=…)`` answers after the delay."""
    graph.script(Action.ok(delay=0.2))
    loop = asyncio.get_running_loop()
    started = loop.time()
    await transport.post(wa_send(graph))
    assert loop.time() - started >= 0.19


async def test_fake_graph_wait_for_requests(graph: FakeGraph, transport: GraphTransport) -> None:
    """``wait_for_requests`` returns once the count is reached."""
    task = asyncio.create_task(transport.post(wa_send(graph)))
    requests = await graph.wait_for_requests(1, within=2)
    await task
    assert len(requests) == 1


# -- rate-limit usage headers ------------------------------------------------------------------

BUSINESS_USAGE = (
    '{"109876543210987":[{"type":"whatsapp_business_messaging","call_count":88,'
    '"total_cputime":12,"total_time":40,"estimated_time_to_regain_access":0}]}'
)


def test_usage_reads_the_highest_business_use_case_share() -> None:
    """X-Business-Use-Case-Usage: the highest percentage of any object and field."""
    usage = usage_from_headers({"X-Business-Use-Case-Usage": BUSINESS_USAGE})
    assert usage == Usage(percent=88.0, regain_after=0.0)


def test_usage_regain_time_is_minutes() -> None:
    """``estimated_time_to_regain_access`` is in minutes."""
    header = BUSINESS_USAGE.replace(
        '"estimated_time_to_regain_access":0', '"estimated_time_to_regain_access":3'
    )
    usage = usage_from_headers({"x-business-use-case-usage": header})
    assert usage is not None
    assert usage.regain_after == 180.0


def test_usage_reads_app_usage() -> None:
    """X-App-Usage carries the app's own percentages."""
    usage = usage_from_headers(
        {"X-App-Usage": '{"call_count":12,"total_time":97,"total_cputime":3}'}
    )
    assert usage == Usage(percent=97.0, regain_after=0.0)


@pytest.mark.parametrize(
    "value", ["", "{", "[]", '{"call_count":"90"}', '{"x":[{"call_count":true}]}', "9" * 9000]
)
def test_usage_garbage_is_none(value: str) -> None:
    """Unreadable usage headers are ignored."""
    assert usage_from_headers({"X-App-Usage": value, "X-Business-Use-Case-Usage": value}) is None


async def test_post_success_carries_the_reported_usage(
    graph: FakeGraph, transport: GraphTransport
) -> None:
    """A 200 answer's usage headers come back with the result."""
    graph.script(Action.ok(headers={"X-Business-Use-Case-Usage": BUSINESS_USAGE}))
    result = await transport.post(wa_send(graph))
    assert result.usage == Usage(percent=88.0, regain_after=0.0)


async def test_post_throttled_waits_the_regain_time_without_retry_after(
    graph: FakeGraph, transport: GraphTransport
) -> None:
    """Throttled with no Retry-After: the regain time Graph reports is the wait."""
    header = BUSINESS_USAGE.replace('"call_count":88', '"call_count":100').replace(
        '"estimated_time_to_regain_access":0', '"estimated_time_to_regain_access":2'
    )
    graph.script(Action.error(400, 80007, headers={"X-Business-Use-Case-Usage": header}))
    with pytest.raises(GraphError) as caught:
        await transport.post(wa_send(graph))
    assert (caught.value.error_class, caught.value.retry_after) == (R, 120.0)
    assert caught.value.usage == Usage(percent=100.0, regain_after=120.0)
